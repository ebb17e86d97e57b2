// dp.ops: the engine's kernels on NumPy arrays, for tests, benchmarks and curious users.
// Each op checks its arguments, allocates its outputs as NumPy arrays, releases the GIL and runs.
// Argument names and order match the NumPy reference (python/deltaprop/reference/).
#include "../dense.hpp"
#include "../isa.hpp"
#include "../loss.hpp"
#include "../names.hpp"
#include "../train.hpp"
#include "checks.hpp"
#include "gil.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;

// A 2-D operand of gemm as (pointer, leading dimension, stored transposed?). Accepts any view
// with unit stride along one axis: C-ordered arrays, row slices, and transposes (F-ordered).
template <typename T>
struct Operand {
    const T* data;
    idx ld;
    bool transposed;
};

template <typename T>
Operand<T> operand(const py::array& a, const std::string& name, bool check_finite) {
    require_dtype<T>(a, name);
    require_shape(a, name, {-1, -1});
    const idx rows = a.shape(0), cols = a.shape(1), item = a.itemsize();
    const idx s0 = a.strides(0), s1 = a.strides(1);
    const T* p = static_cast<const T*>(a.data());
    Operand<T> op{p, std::max<idx>(cols, 1), false};
    if (rows == 0 || cols == 0) return op;  // nothing is read: any strides will do
    require_aligned<T>(a, name);
    if ((cols <= 1 || s1 == item) && (rows <= 1 || (s0 > 0 && s0 % item == 0 && s0 / item >= cols))) {
        if (rows > 1) op.ld = s0 / item;
    } else if ((rows <= 1 || s0 == item) && s1 > 0 && s1 % item == 0 && s1 / item >= rows) {
        op = {p, s1 / item, true};
    } else {
        throw py::value_error(name + " needs a unit stride along one axis (strides " +
                              std::to_string(s0) + ", " + std::to_string(s1) +
                              "); pass numpy.ascontiguousarray(" + name + ")");
    }
    if (check_finite) {  // each stored row is contiguous: rows of A, or of A^T when transposed
        const idx stored_rows = op.transposed ? cols : rows, stored_cols = op.transposed ? rows : cols;
        for (idx s = 0; s < stored_rows; ++s)
            if (!all_finite(p + s * op.ld, stored_cols)) {
                idx t = 0;
                while (std::isfinite(p[s * op.ld + t])) ++t;
                const idx r = op.transposed ? t : s, c = op.transposed ? s : t;
                throw py::value_error(name + " contains NaN or inf (at [" + std::to_string(r) +
                                      ", " + std::to_string(c) + "])");
            }
    }
    return op;
}

template <typename T>
py::array gemm_op(const py::array& A, const py::array& B, bool trans_a, bool trans_b, double alpha,
                  double beta, const py::object& out, int n_threads, bool check_finite) {
    const Operand<T> a = operand<T>(A, "A", check_finite), b = operand<T>(B, "B", check_finite);
    const idx M = trans_a ? A.shape(1) : A.shape(0), K = trans_a ? A.shape(0) : A.shape(1);
    const idx Kb = trans_b ? B.shape(1) : B.shape(0), N = trans_b ? B.shape(0) : B.shape(1);
    if (K != Kb)
        throw py::value_error("op(A) is " + std::to_string(M) + " x " + std::to_string(K) +
                              " but op(B) is " + std::to_string(Kb) + " x " + std::to_string(N) +
                              ": inner dimensions differ");
    if (!std::isfinite(alpha) || !std::isfinite(beta))
        throw py::value_error("alpha and beta must be finite");
    py::array C;
    if (!out.is_none()) {
        C = as_array(out, "out");  // never converted: a converted copy would swallow the result
        require_dtype<T>(C, "out");
        require_shape(C, "out", {M, N});
        require_writeable(C, "out");
        require_aligned<T>(C, "out");
        const bool empty = M == 0 || N == 0;  // nothing is written: any strides will do
        if (!empty && N > 1 && C.strides(1) != C.itemsize())
            throw py::value_error("out must have unit stride along its last axis");
        if (!empty && M > 1 &&
            (C.strides(0) <= 0 || C.strides(0) % C.itemsize() != 0 || C.strides(0) / C.itemsize() < N))
            throw py::value_error("out must have rows that do not overlap");
        require_no_overlap(C, "out", A, "A");
        require_no_overlap(C, "out", B, "B");
        if (check_finite && beta != 0.0) {
            const py::array c = C;
            for (idx i = 0; i < M; ++i)
                require_finite(static_cast<const T*>(c.data()) + i * (M > 1 ? c.strides(0) / c.itemsize() : 0), N, "out");
        }
    } else {
        if (beta != 0.0) throw py::value_error("beta != 0 accumulates into C, so it needs out=");
        C = new_array<T>({M, N}, "the product");
    }
    const idx ldc = M > 1 && N > 0 ? C.strides(0) / C.itemsize() : std::max<idx>(N, 1);
    T* c = static_cast<T*>(C.mutable_data());
    {
        ReleasedGil nogil;
        gemm<T>(c, ldc, a.data, a.ld, b.data, b.ld, M, N, K, trans_a != a.transposed,
                trans_b != b.transposed, T(alpha), T(beta), n_threads);
    }
    return C;
}

// Z and A come from two products: Z with the bias epilogue, A with the fused bias + activation
// epilogue, so the op exposes (and the tests check) the fused path the training step uses.
template <typename T>
py::tuple dense_forward_op(const py::array& X, const py::array& W, const py::array& b,
                           const ActivationSpec& f, int n_threads, bool check_finite) {
    require_shape(X, "X", {-1, -1});
    const idx N = X.shape(0), I = X.shape(1);
    require_shape(W, "W", {I, -1});
    const idx O = W.shape(1);
    const T* x = input<T>(X, "X", {N, I}, check_finite);
    const T* w = input<T>(W, "W", {I, O}, check_finite);
    const T* bias = input<T>(b, "b", {O}, check_finite);
    auto Z = new_array<T>({N, O}, "Z"), A = new_array<T>({N, O}, "A");
    T *z = Z.mutable_data(), *a = A.mutable_data();
    {
        ReleasedGil nogil;
        const int nt = resolve_threads(n_threads);
        dense_forward<T>(z, nullptr, x, w, bias, N, I, O, f, nt);
        dense_forward<T>(nullptr, a, x, w, bias, N, I, O, f, nt);
    }
    return py::make_tuple(Z, A);
}

template <typename T>
py::tuple dense_backward_op(const py::array& dZ, const py::array& X, int n_threads, bool check_finite) {
    require_shape(dZ, "dZ", {-1, -1});
    const idx N = dZ.shape(0), O = dZ.shape(1);
    require_shape(X, "X", {N, -1});
    const idx I = X.shape(1);
    const T* dz = input<T>(dZ, "dZ", {N, O}, check_finite);
    const T* x = input<T>(X, "X", {N, I}, check_finite);
    auto dW = new_array<T>({I, O}, "dW"), db = new_array<T>({O}, "db");
    T *dw = dW.mutable_data(), *dbias = db.mutable_data();
    {
        ReleasedGil nogil;
        dense_backward<T>(dw, dbias, dz, x, N, I, O, resolve_threads(n_threads));
    }
    return py::make_tuple(dW, db);
}

template <typename T>
py::array delta_propagate_op(const py::array& dZ, const py::array& W, const py::array& Z_prev,
                             const ActivationSpec& f, int n_threads, bool check_finite) {
    require_shape(dZ, "dZ", {-1, -1});
    const idx N = dZ.shape(0), O = dZ.shape(1);
    require_shape(W, "W", {-1, O});
    const idx I = W.shape(0);
    const T* dz = input<T>(dZ, "dZ", {N, O}, check_finite);
    const T* w = input<T>(W, "W", {I, O}, check_finite);
    const T* z_prev = input<T>(Z_prev, "Z_prev", {N, I}, check_finite);
    auto A_prev = new_array<T>({N, I}, "A_prev"), dZ_prev = new_array<T>({N, I}, "dZ_prev");
    T *a_prev = A_prev.mutable_data(), *dz_prev = dZ_prev.mutable_data();
    {
        ReleasedGil nogil;
        const int nt = resolve_threads(n_threads);
        activation_forward<T>(a_prev, z_prev, N * I, f, nt);  // what a forward pass would store
        delta_propagate<T>(dz_prev, dz, w, derivative_needs_z(f) ? z_prev : a_prev, N, I, O, f, nt);
    }
    return dZ_prev;
}

template <typename T>
py::array activation_forward_op(const py::array& Z, const ActivationSpec& f, int n_threads,
                                bool check_finite) {
    const T* z = input<T>(Z, "Z", std::vector<idx>(Z.ndim(), -1), check_finite);
    py::array_t<T> A = new_array<T>(std::vector<idx>(Z.shape(), Z.shape() + Z.ndim()), "A");
    T* a = A.mutable_data();
    {
        ReleasedGil nogil;
        activation_forward<T>(a, z, Z.size(), f, resolve_threads(n_threads));
    }
    return A;
}

template <typename T>
py::array activation_backward_op(const py::array& dA, const py::array& Z, const ActivationSpec& f,
                                 int n_threads, bool check_finite) {
    std::vector<idx> shape(Z.shape(), Z.shape() + Z.ndim());
    const T* z = input<T>(Z, "Z", std::vector<idx>(Z.ndim(), -1), check_finite);
    const T* da = input<T>(dA, "dA", shape, check_finite);
    py::array_t<T> A = new_array<T>(shape, "A"), dZ = new_array<T>(shape, "dZ");
    T *a = A.mutable_data(), *dz = dZ.mutable_data();
    {
        ReleasedGil nogil;
        const int nt = resolve_threads(n_threads);
        activation_forward<T>(a, z, Z.size(), f, nt);
        activation_backward<T>(dz, da, derivative_needs_z(f) ? z : a, Z.size(), f, nt);
    }
    return dZ;
}

py::array shuffle_order_op(idx n, std::uint64_t seed, std::uint64_t epoch) {
    py::array_t<std::int64_t> order = new_array<std::int64_t>({n}, "the order");
    std::vector<idx> tmp(static_cast<size_t>(n));
    std::vector<std::uint64_t> keys(static_cast<size_t>(n));
    {
        ReleasedGil nogil;
        shuffle_order(tmp.data(), keys.data(), n, seed, epoch);
    }
    std::copy(tmp.begin(), tmp.end(), order.mutable_data());
    return std::move(order);
}

// f'(Z) itself: the step function for ReLU ("step derivative"), 1 - tanh^2, ...
template <typename T>
py::array activation_derivative_op(const py::array& Z, const ActivationSpec& f, int n_threads,
                                   bool check_finite) {
    std::vector<idx> shape(Z.shape(), Z.shape() + Z.ndim());
    const T* z = input<T>(Z, "Z", std::vector<idx>(Z.ndim(), -1), check_finite);
    py::array_t<T> A = new_array<T>(shape, "A"), D = new_array<T>(shape, "the derivative");
    T *a = A.mutable_data(), *d = D.mutable_data();
    {
        ReleasedGil nogil;
        const int nt = resolve_threads(n_threads);
        activation_forward<T>(a, z, Z.size(), f, nt);
        std::fill(d, d + Z.size(), T(1));
        activation_backward<T>(d, d, derivative_needs_z(f) ? z : a, Z.size(), f, nt);
    }
    return std::move(D);
}

}  // namespace

// Every argument arrives as a Python object and is converted here by name, so a wrong one is a
// TypeError or ValueError that says which (pybind11's own overload error names none).
void bind_ops(py::module_& m) {
    m.doc() = "The engine's kernels on NumPy arrays (float32 or float64; all arrays of one call share a dtype).";
    using O = const py::object&;
    const auto threads = py::arg("n_threads") = 0;
    const auto finite = py::arg("check_finite") = true;
    // The first array decides the dtype; the others must match it.
    const auto arr = [](O h, const char* name) { return as_array(h, name); };

    m.def("gemm",
          [arr](O A, O B, O ta, O tb, O alpha, O beta, O out, O nt, O cf) {
              const py::array a = arr(A, "A"), b = arr(B, "B");
              const bool trans_a = arg_bool(ta, "trans_a"), trans_b = arg_bool(tb, "trans_b");
              const double al = arg_real(alpha, "alpha"), be = arg_real(beta, "beta");
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(a, "A", [&](auto t) {
                  return gemm_op<decltype(t)>(a, b, trans_a, trans_b, al, be, out, n_threads, check);
              });
          },
          "A"_a, "B"_a, "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0,
          "out"_a = py::none(), py::kw_only(), threads, finite,
          "C = alpha * op(A) @ op(B) + beta * C, written to `out` when given.");
    m.def("dense_forward",
          [arr](O X, O W, O b, O act, O g0, O nt, O cf) {
              const py::array x = arr(X, "X"), w = arr(W, "W"), bias = arr(b, "b");
              const ActivationSpec a = activation_spec(act, arg_real(g0, "grad_at_zero"));
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(x, "X", [&](auto t) {
                  return dense_forward_op<decltype(t)>(x, w, bias, a, n_threads, check);
              });
          },
          "X"_a, "W"_a, "b"_a, "activation"_a = "relu", "grad_at_zero"_a = 0.0, py::kw_only(), threads,
          finite, "(Z, A) with Z = X @ W + b and A = f(Z).");
    m.def("dense_backward",
          [arr](O dZ, O X, O nt, O cf) {
              const py::array dz = arr(dZ, "dZ"), x = arr(X, "X");
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(dz, "dZ", [&](auto t) {
                  return dense_backward_op<decltype(t)>(dz, x, n_threads, check);
              });
          },
          "dZ"_a, "X"_a, py::kw_only(), threads, finite, "(dW, db) with dW = X.T @ dZ and db = dZ.sum(0).");
    m.def("delta_propagate",
          [arr](O dZ, O W, O Z_prev, O act, O g0, O nt, O cf) {
              const py::array dz = arr(dZ, "dZ"), w = arr(W, "W"), zp = arr(Z_prev, "Z_prev");
              const ActivationSpec a = activation_spec(act, arg_real(g0, "grad_at_zero"));
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(dz, "dZ", [&](auto t) {
                  return delta_propagate_op<decltype(t)>(dz, w, zp, a, n_threads, check);
              });
          },
          "dZ"_a, "W"_a, "Z_prev"_a, "activation"_a = "relu", "grad_at_zero"_a = 0.0, py::kw_only(),
          threads, finite, "dZ_prev = (dZ @ W.T) * f'(Z_prev).");
    m.def("activation_forward",
          [arr](O Z, O act, O nt, O cf) {
              const py::array z = arr(Z, "Z");
              const ActivationSpec a = activation_spec(act, 0.0);
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(z, "Z", [&](auto t) {
                  return activation_forward_op<decltype(t)>(z, a, n_threads, check);
              });
          },
          "Z"_a, "activation"_a = "relu", py::kw_only(), threads, finite, "A = f(Z), elementwise.");
    m.def("activation_backward",
          [arr](O dA, O Z, O act, O g0, O nt, O cf) {
              const py::array da = arr(dA, "dA"), z = arr(Z, "Z");
              const ActivationSpec a = activation_spec(act, arg_real(g0, "grad_at_zero"));
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(da, "dA", [&](auto t) {
                  return activation_backward_op<decltype(t)>(da, z, a, n_threads, check);
              });
          },
          "dA"_a, "Z"_a, "activation"_a = "relu", "grad_at_zero"_a = 0.0, py::kw_only(), threads, finite,
          "dZ = dA * f'(Z), elementwise.");
    m.def("activation_derivative",
          [arr](O Z, O act, O g0, O nt, O cf) {
              const py::array z = arr(Z, "Z");
              const ActivationSpec a = activation_spec(act, arg_real(g0, "grad_at_zero"));
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(z, "Z", [&](auto t) {
                  return activation_derivative_op<decltype(t)>(z, a, n_threads, check);
              });
          },
          "Z"_a, "activation"_a = "relu", "grad_at_zero"_a = 0.0, py::kw_only(), threads, finite,
          "f'(Z), elementwise (for ReLU the unit step, with ReLU'(0) = grad_at_zero).");
    m.def("get_isa", [] { return std::string(isa_name(active_isa())); },
          "The instruction-set path the GEMM uses now: 'generic', 'avx2' or 'avx512'.");
    m.def("set_isa", [](O name) { set_isa(parse_isa(arg_str(name, "isa"))); }, "isa"_a,
          "Forces a GEMM path (ValueError if it is not built or this CPU lacks it). The first "
          "choice is the best usable path, or the one the DELTAPROP_ISA environment variable names.");
    m.def("available_isas", [] {
              std::vector<std::string> names;
              for (Isa isa : usable_isas()) names.emplace_back(isa_name(isa));
              return names;
          },
          "The paths built into this binary that this CPU supports, slowest first.");
    m.def("gemm_tile",
          [](O dtype_obj) {
              const std::string dtype = arg_str(dtype_obj, "dtype");
              if (dtype != "float32" && dtype != "float64")
                  throw py::value_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
              const bool f64 = dtype == "float64";
              return py::make_tuple(gemm_mr(f64), gemm_nr(f64));
          },
          "dtype"_a, "(MR, NR): the micro-kernel tile of the active path for this dtype.");
    m.def("fma_peak_gflops",
          [](O dtype_obj, O seconds_obj) {
              const std::string dtype = arg_str(dtype_obj, "dtype");
              if (dtype != "float32" && dtype != "float64")
                  throw py::value_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
              const double seconds = arg_real(seconds_obj, "seconds");
              if (!(seconds > 0 && seconds <= 10)) throw py::value_error("seconds must be in (0, 10]");
              ReleasedGil nogil;
              return fma_peak_gflops(dtype == "float64", seconds);
          },
          "dtype"_a = "float32", "seconds"_a = 0.2,
          "One core's multiply-add peak on the active path in GFLOP/s, measured by a register-only "
          "loop (2 flops per multiply-add).");
    m.def("shuffle_order",
          [](O n, O seed, O epoch) {
              return shuffle_order_op(idx(arg_int(n, "n", 0, std::numeric_limits<idx>::max())),
                                      arg_u64(seed, "seed"), arg_u64(epoch, "epoch"));
          },
          "n"_a, "seed"_a, "epoch"_a,
          "The sample order of one epoch: argsort of splitmix64 keys (the reference computes the same).");
}

}  // namespace dp::bind
