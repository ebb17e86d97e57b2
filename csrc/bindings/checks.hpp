// Argument checks at the Python boundary. Every check raises a Python exception that names the
// argument and says what was expected and what was seen; nothing reaches a kernel unchecked.
//   TypeError   not an ndarray, or the wrong dtype (never silently cast: a cast copy of an array
//               we write would leave the caller's array unchanged)
//   ValueError  shape, memory layout, read-only output, empty, NaN/inf, overlapping output
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../common.hpp"
#include "../names.hpp"

namespace dp::bind {

namespace py = pybind11;
using namespace pybind11::literals;

template <typename T>
const char* dtype_name() {
    if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) return sizeof(T) == 8 ? "uint64" : "uint32";
    if constexpr (std::is_integral_v<T>) return sizeof(T) == 8 ? "int64" : "int32";
    return sizeof(T) == 4 ? "float32" : "float64";
}

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string shape_str(const std::vector<idx>& shape) {
    std::string s = "(";
    for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

inline bool is_instance_of(py::handle h, const char* module, const char* type) {
    return py::isinstance(h, py::module_::import(module).attr(type));
}

// The object as an ndarray, or TypeError. No conversion: lists and scalars are the Python
// layer's job, where a copy is visible.
inline py::array as_array(py::handle h, const std::string& name) {
    if (!py::isinstance<py::array>(h))
        throw py::type_error(name + " must be a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(h).attr("__name__"))));
    // Subclasses pass (np.matrix, np.memmap) but a masked array's mask would be silently
    // ignored: its hidden values would count. (The exact type is checked first: the common case.)
    static PyObject* const ndarray = py::object(py::module_::import("numpy").attr("ndarray")).release().ptr();
    if (reinterpret_cast<PyObject*>(Py_TYPE(h.ptr())) != ndarray && is_instance_of(h, "numpy.ma", "MaskedArray"))
        throw py::type_error(name + " is a masked array, whose mask the kernels would ignore; pass " +
                             name + ".filled(value) or " + name + ".data");
    return py::reinterpret_borrow<py::array>(h);
}

template <typename T>
void require_dtype(const py::array& a, const std::string& name) {
    if (!a.dtype().equal(py::dtype::of<T>()))
        throw py::type_error(name + " must have dtype " + dtype_name<T>() + ", got " +
                             std::string(py::str(a.dtype())));
}

// shape entries of -1 match any size.
inline void require_shape(const py::array& a, const std::string& name, const std::vector<idx>& shape) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || a.shape(d) == shape[d];
    if (ok) return;
    std::string want = "(";
    for (size_t d = 0; d < shape.size(); ++d)
        want += (d ? ", " : "") + (shape[d] < 0 ? std::string("any") : std::to_string(shape[d]));
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(name + " must have shape " + want + ", got " + shape_str(a));
}

inline void require_c_contiguous(const py::array& a, const std::string& name) {
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(name + " must be C-contiguous (pass numpy.ascontiguousarray(" + name +
                              "))");
}

// A T loaded from an address that is not a multiple of alignof(T) is undefined behaviour: the
// compiler may assume alignment when it vectorises, and UBSan stops on it (gemm.cpp's packing
// was the first it met). So views at an odd byte offset of a buffer are refused like
// non-contiguous ones, before anything is read. With unit or row strides that are multiples of
// the item size (checked beside this), an aligned start makes every element aligned.
template <typename T>
void require_aligned(const py::array& a, const std::string& name) {
    if (a.size() != 0 && reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
        throw py::value_error(name + " is not aligned to its dtype (it starts at an odd byte offset); "
                              "pass numpy.require(" + name + ", requirements='CA')");
}

inline void require_writeable(const py::array& a, const std::string& name) {
    if (!a.writeable()) throw py::value_error(name + " is read-only, but it is written in place");
}

inline void require_nonempty(const py::array& a, const std::string& name) {
    if (a.size() == 0) throw py::value_error(name + " is empty (shape " + shape_str(a) + ")");
}

// "" when p[0, count) is finite, else the message naming `name` and the first NaN or inf.
template <typename T>
std::string non_finite_message(const T* p, idx count, const std::string& name) {
    if (all_finite(p, count)) return {};
    idx e = 0;
    while (std::isfinite(p[e])) ++e;  // only to name the first one
    return name + " contains NaN or inf (first at flat index " + std::to_string(e) + ")";
}

template <typename T>
void require_finite(const T* p, idx count, const std::string& name) {
    const std::string message = non_finite_message(p, count, name);
    if (!message.empty()) throw py::value_error(message);
}

// A C-contiguous T array of `shape`, checked, for reading.
template <typename T>
const T* input(const py::array& a, const std::string& name, const std::vector<idx>& shape,
               bool check_finite) {
    require_dtype<T>(a, name);
    require_shape(a, name, shape);
    require_c_contiguous(a, name);
    require_aligned<T>(a, name);
    const T* p = static_cast<const T*>(a.data());
    if (check_finite) require_finite(p, a.size(), name);
    return p;
}

// A C-contiguous, writeable T array of `shape`, checked, for writing in place.
template <typename T>
T* output(const py::array& a, const std::string& name, const std::vector<idx>& shape) {
    require_dtype<T>(a, name);
    require_shape(a, name, shape);
    require_c_contiguous(a, name);
    require_aligned<T>(a, name);
    require_writeable(a, name);
    return static_cast<T*>(const_cast<py::array&>(a).mutable_data());  // the handle is const, not the data
}

// The bytes an array's elements span, [first, last).
inline std::pair<std::uintptr_t, std::uintptr_t> byte_span(const py::array& a) {
    auto lo = reinterpret_cast<std::uintptr_t>(a.data()), hi = lo;
    if (a.size() == 0) return {lo, lo};
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const py::ssize_t step = a.strides(d) * (a.shape(d) - 1);
        if (step < 0) lo += step; else hi += step;
    }
    return {lo, hi + a.itemsize()};
}

inline bool spans_overlap(const std::pair<std::uintptr_t, std::uintptr_t>& a,
                          const std::pair<std::uintptr_t, std::uintptr_t>& b) {
    return a.first < b.second && b.first < a.second;
}

inline void require_no_overlap(const py::array& out, const std::string& out_name, const py::array& in,
                               const std::string& in_name) {
    if (spans_overlap(byte_span(out), byte_span(in)))
        throw py::value_error(out_name + " must not share memory with " + in_name);
}

// -- scalar arguments: converted by name, so a wrong one is a TypeError that names it -------

inline std::string type_name(py::handle h) {
    return std::string(py::str(py::type::of(h).attr("__name__")));
}

inline bool arg_bool(py::handle h, const std::string& name) {
    if (PyBool_Check(h.ptr()) || is_instance_of(h, "numpy", "bool_")) return h.cast<bool>();
    throw py::type_error(name + " must be a bool, got " + type_name(h));
}

// A real number: int or float (Python's or NumPy's), not bool. An int past double's range is a
// ValueError naming the argument (float() would raise OverflowError, which names nothing).
inline double arg_real(py::handle h, const std::string& name) {
    if (PyFloat_Check(h.ptr())) return PyFloat_AsDouble(h.ptr());
    if (PyBool_Check(h.ptr()) || !(PyLong_Check(h.ptr()) || is_instance_of(h, "numbers", "Real")))
        throw py::type_error(name + " must be a real number, got " + type_name(h));
    try {
        return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
    } catch (py::error_already_set& error) {
        if (!error.matches(PyExc_OverflowError)) throw;
        throw py::value_error(name + " must be finite, got an integer past float's range");
    }
}

// The value of an integer argument (Python's or NumPy's, not bool), or TypeError.
inline py::int_ integer(py::handle h, const std::string& name) {
    if (PyBool_Check(h.ptr()) || !(PyLong_Check(h.ptr()) || is_instance_of(h, "numbers", "Integral")))
        throw py::type_error(name + " must be an integer, got " + type_name(h));
    return py::int_(py::reinterpret_borrow<py::object>(h));
}

// An integer in [lo, hi], or ValueError.
inline long long arg_int(py::handle h, const std::string& name, long long lo, long long hi) {
    const py::int_ value = integer(h, name);
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    if (overflow == 0 && lo <= v && v <= hi) return v;
    // below a bound that is only the integer's width, that width says nothing to a user
    const bool too_small = overflow < 0 || (overflow == 0 && v < lo);
    const std::string bounds = too_small && hi == std::numeric_limits<long long>::max()
        ? ">= " + std::to_string(lo)
        : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    // (py::str of a handle: pybind11 3.0.0 and 3.0.1 find py::str(py::int_) ambiguous)
    throw py::value_error(name + " must be " + bounds + ", got " +
                          std::string(py::str(py::handle(value))));
}

// An unsigned 64-bit integer (seeds, epoch counters), or ValueError.
inline std::uint64_t arg_u64(py::handle h, const std::string& name) {
    const py::int_ value = integer(h, name);
    const unsigned long long v = PyLong_AsUnsignedLongLong(value.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(name + " must be in [0, 2**64 - 1], got " +
                              std::string(py::str(py::handle(value))));
    }
    return v;
}

inline std::string arg_str(py::handle h, const std::string& name) {
    if (!py::isinstance<py::str>(h)) throw py::type_error(name + " must be a str, got " + type_name(h));
    return h.cast<std::string>();
}

// n_threads at the boundary: 0 (OpenMP's default) to kMaxThreads.
inline int arg_threads(py::handle h) { return int(arg_int(h, "n_threads", 0, kMaxThreads)); }

// The engine's spec of an activation given as a name or a deltaprop.Activation. Names,
// defaults and parameter checks are python/deltaprop/activations.py's (one table for both
// backends): this resolves through it and maps the result onto the engine's kinds. Activations
// with learned parameters are refused unless the caller passes them (`learned`).
inline ActivationSpec activation_spec(py::handle activation, double grad_at_zero, bool learned = false) {
    if (!py::isinstance<py::str>(activation) &&
        !is_instance_of(activation, "deltaprop.activations", "Activation"))
        throw py::type_error("activation must be a str or a deltaprop Activation, got " +
                             type_name(activation));
    const py::object spec = py::module_::import("deltaprop.activations")
                                .attr("resolve_with_grad_at_zero")(activation, grad_at_zero);
    const std::string name = spec.attr("name").cast<std::string>();
    const bool learnable = spec.attr("learnable").cast<bool>();
    if (learnable && !learned)
        throw py::value_error("activation '" + name + "' learns parameters, which this function does not "
                              "take; use activation_forward, activation_backward or activation_param_gradients "
                              "with params");
    const auto real_or = [&](const char* field, double fallback) {
        const py::object v = spec.attr(field);
        return v.is_none() ? fallback : v.cast<double>();
    };
    ActivationSpec f;
    f.kind = parse_name(activation_names(), name, "activation");
    f.grad_at_zero = real_or("grad_at_zero", 0.0);
    f.alpha = real_or("alpha", 0.0);
    f.beta = real_or("beta", 1.0);
    f.surrogate_slope = real_or("surrogate_slope", 0.0);
    f.learnable = learnable;
    return f;
}

// Per-row sample weights: any real 1-D array-like of N entries (not bool, not complex), as a
// C-contiguous float64 array (a copy when it is not one already; weights are only read), finite
// and non-negative, with a positive and finite sum (each row's share is its weight over the sum:
// an infinite sum would silently give every row none).
inline py::array sample_weights(const py::handle& obj, idx N, const std::string& name = "sample_weight") {
    const py::module_ np = py::module_::import("numpy");
    const py::array a = np.attr("asarray")(obj);
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u' && kind != 'f')
        throw py::type_error(name + " must hold real numbers, got dtype " + std::string(py::str(a.dtype())));
    require_shape(a, name, {N});
    const py::array w = np.attr("ascontiguousarray")(a, "dtype"_a = "float64");
    const double* p = static_cast<const double*>(w.data());
    double sum = 0;
    for (idx n = 0; n < N; ++n) {
        if (!std::isfinite(p[n]) || p[n] < 0) throw py::value_error(name + " must be finite and non-negative");
        sum += p[n];
    }
    if (!(sum > 0)) throw py::value_error(name + " sums to zero; at least one weight must be positive");
    if (!std::isfinite(sum)) throw py::value_error(name + " sums to more than float64 holds; scale the weights down");
    return w;
}

// The optimizer settings' ranges, checked alike by the ops and the engine.
inline void require_lr(double lr) {
    if (!(std::isfinite(lr) && lr >= 0)) throw py::value_error("lr must be finite and >= 0, got " + std::to_string(lr));
}
inline void require_alpha(double alpha) {
    if (!(std::isfinite(alpha) && alpha >= 0)) throw py::value_error("alpha must be finite and >= 0");
}
inline void require_momentum(double momentum) {
    if (!(momentum >= 0 && momentum <= 1))
        throw py::value_error("momentum must be in [0, 1], got " + std::to_string(momentum));
}
inline void require_adam(double beta_1, double beta_2, double epsilon) {
    if (!(beta_1 >= 0 && beta_1 < 1)) throw py::value_error("beta_1 must be in [0, 1)");
    if (!(beta_2 >= 0 && beta_2 < 1)) throw py::value_error("beta_2 must be in [0, 1)");
    if (!(std::isfinite(epsilon) && epsilon > 0)) throw py::value_error("epsilon must be finite and > 0");
}

// A new array of `shape`, or MemoryError naming `what` when it cannot exist.
template <typename T>
py::array_t<T> new_array(const std::vector<idx>& shape, const std::string& what) {
    idx count = 1;
    for (idx d : shape) {
        if (d != 0 && count > std::numeric_limits<idx>::max() / idx(sizeof(T)) / d) {
            PyErr_SetString(PyExc_MemoryError, (what + " of shape " + shape_str(shape) +
                                                " is too large to allocate").c_str());
            throw py::error_already_set();
        }
        count *= d;
    }
    return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

// Calls f(T{}) with T the dtype of `a` (float32 or float64), else TypeError.
template <typename F>
decltype(auto) dispatch_dtype(const py::array& a, const std::string& name, F&& f) {
    if (a.dtype().equal(py::dtype::of<float>())) return f(float{});
    if (a.dtype().equal(py::dtype::of<double>())) return f(double{});
    throw py::type_error(name + " must have dtype float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

}  // namespace dp::bind
