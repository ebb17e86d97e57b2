// dp.ops, the optimizer steps: SGD with momentum, Nesterov, Adam, L2 decay and gradient
// clipping on NumPy arrays, updated in place. Same conventions as ops.cpp: every argument is
// converted by name, arrays updated in place must be writeable ndarrays that share no memory.
#include "../optim.hpp"
#include "checks.hpp"
#include "gil.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;

template <typename T>
void sgd_momentum_step_op(const py::array& p, const py::array& v, const py::array& g, double lr,
                          double momentum, int n_threads, bool check_finite) {
    std::vector<idx> shape(p.shape(), p.shape() + p.ndim());
    T* param = output<T>(p, "p", shape);
    T* vel = output<T>(v, "v", shape);
    const T* grad = input<T>(g, "g", shape, check_finite);
    if (check_finite) {  // p and v are read too
        require_finite(param, p.size(), "p");
        require_finite(vel, v.size(), "v");
    }
    require_no_overlap(v, "v", p, "p");
    require_no_overlap(p, "p", g, "g");
    require_no_overlap(v, "v", g, "g");
    require_lr(lr);
    require_momentum(momentum);
    ReleasedGil nogil;
    sgd_momentum_step<T>(param, vel, grad, p.size(), T(lr), T(momentum), resolve_threads(n_threads));
}


// Arrays of one shape: the first ones updated in place (ndarrays, writeable, disjoint), the rest
// read; all checked finite when asked. Returns their data pointers in order.
template <typename T>
std::vector<T*> same_shape(const std::vector<std::pair<py::array, const char*>>& arrays,
                           size_t written, bool check_finite) {
    const py::array& first = arrays.front().first;
    const std::vector<idx> shape(first.shape(), first.shape() + first.ndim());
    std::vector<T*> data;
    for (size_t a = 0; a < arrays.size(); ++a) {
        const auto& [array, name] = arrays[a];
        data.push_back(a < written ? output<T>(array, name, shape)
                                   : const_cast<T*>(input<T>(array, name, shape, false)));
        if (check_finite) require_finite(data.back(), array.size(), name);
        for (size_t b = 0; b < a; ++b)
            if (a < written || b < written)
                require_no_overlap(arrays[b].first, arrays[b].second, array, name);
    }
    return data;
}


}  // namespace

void bind_optim_ops(py::module_& m) {
    using O = const py::object&;
    const auto threads = py::arg("n_threads") = 0;
    const auto finite = py::arg("check_finite") = true;
    const auto arr = [](O h, const char* name) { return as_array(h, name); };

    m.def("sgd_momentum_step",
          [arr](O p_obj, O v_obj, O g_obj, O lr, O mom, O nt, O cf) {
              // p and v are updated in place, so they must already be arrays: never converted.
              const py::array p = arr(p_obj, "p"), v = arr(v_obj, "v"), g = arr(g_obj, "g");
              const double rate = arg_real(lr, "lr"), momentum = arg_real(mom, "momentum");
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              dispatch_dtype(p, "p", [&](auto t) {
                  sgd_momentum_step_op<decltype(t)>(p, v, g, rate, momentum, n_threads, check);
              });
          },
          "p"_a, "v"_a, "g"_a, "lr"_a, "momentum"_a = 0.0, py::kw_only(), threads, finite,
          "In place: v = momentum * v - lr * g; p += v.");
    m.def("nesterov_step",
          [arr](O p_obj, O v_obj, O g_obj, O lr_obj, O mom_obj, O nt, O cf) {
              const py::array p = arr(p_obj, "p"), v = arr(v_obj, "v"), g = arr(g_obj, "g");
              const double lr = arg_real(lr_obj, "lr"), momentum = arg_real(mom_obj, "momentum");
              require_lr(lr);
              require_momentum(momentum);
              const int n_threads = resolve_threads(arg_threads(nt));
              const bool check = arg_bool(cf, "check_finite");
              dispatch_dtype(p, "p", [&](auto t) {
                  using T = decltype(t);
                  const auto d = same_shape<T>({{p, "p"}, {v, "v"}, {g, "g"}}, 2, check);
                  ReleasedGil nogil;
                  nesterov_step<T>(d[0], d[1], d[2], p.size(), T(lr), T(momentum), n_threads);
              });
          },
          "p"_a, "v"_a, "g"_a, "lr"_a, "momentum"_a, py::kw_only(), threads, finite,
          "In place, scikit-learn's Nesterov: v = momentum * v - lr * g; p += momentum * v - lr * g.");
    m.def("adam_step",
          [arr](O p_obj, O m_obj, O v_obj, O g_obj, O t_obj, O lr_obj, O b1_obj, O b2_obj, O eps_obj,
                O nt, O cf) {
              const py::array p = arr(p_obj, "p"), m1 = arr(m_obj, "m"), v = arr(v_obj, "v"),
                              g = arr(g_obj, "g");
              const long long t = arg_int(t_obj, "t", 1, std::numeric_limits<long long>::max());
              const double lr = arg_real(lr_obj, "lr"), b1 = arg_real(b1_obj, "beta_1"),
                           b2 = arg_real(b2_obj, "beta_2"), eps = arg_real(eps_obj, "epsilon");
              require_lr(lr);
              require_adam(b1, b2, eps);
              const int n_threads = resolve_threads(arg_threads(nt));
              const bool check = arg_bool(cf, "check_finite");
              const double lr_t = adam_step_size(lr, b1, b2, double(t));
              dispatch_dtype(p, "p", [&](auto tag) {
                  using T = decltype(tag);
                  const auto d = same_shape<T>({{p, "p"}, {m1, "m"}, {v, "v"}, {g, "g"}}, 3, check);
                  // a second moment below 0 has no square root: p would turn NaN, silently
                  if (check && std::any_of(d[2], d[2] + v.size(), [](T x) { return x < T(0); }))
                      throw py::value_error("v, Adam's second moment, must be >= 0 (a running mean of g^2)");
                  ReleasedGil nogil;
                  adam_step<T>(d[0], d[1], d[2], d[3], p.size(), T(lr_t), b1, b2, T(eps), n_threads);
              });
              return lr_t;
          },
          "p"_a, "m"_a, "v"_a, "g"_a, "t"_a, "lr"_a, "beta_1"_a = 0.9, "beta_2"_a = 0.999,
          "epsilon"_a = 1e-8, py::kw_only(), threads, finite,
          "In place, scikit-learn's Adam; t counts steps from 1. Returns the step size lr_t.");
    m.def("add_l2",
          [arr](O g_obj, O W_obj, O alpha_obj, O n_obj, O nt, O cf) {
              const py::array g = arr(g_obj, "g"), W = arr(W_obj, "W");
              const double alpha = arg_real(alpha_obj, "alpha"), n = arg_real(n_obj, "n");
              if (!(std::isfinite(alpha) && alpha >= 0)) throw py::value_error("alpha must be finite and >= 0");
              if (!(std::isfinite(n) && n > 0)) throw py::value_error("n must be finite and > 0");
              const int n_threads = resolve_threads(arg_threads(nt));
              const bool check = arg_bool(cf, "check_finite");
              dispatch_dtype(g, "g", [&](auto tag) {
                  using T = decltype(tag);
                  const auto d = same_shape<T>({{g, "g"}, {W, "W"}}, 1, check);
                  ReleasedGil nogil;
                  add_l2<T>(d[0], d[1], g.size(), alpha, n, n_threads);
              });
          },
          "g"_a, "W"_a, "alpha"_a, "n"_a, py::kw_only(), threads, finite,
          "In place: g += (alpha / n) * W (L2 weight decay, scikit-learn's form).");
    m.def("clip_by_global_norm",
          [arr](O grads_obj, O max_obj, O nt, O cf) {
              if (!py::isinstance<py::sequence>(grads_obj) || py::isinstance<py::str>(grads_obj))
                  throw py::type_error("grads must be a sequence of arrays, got " + type_name(grads_obj));
              const auto seq = py::reinterpret_borrow<py::sequence>(grads_obj);
              const double max_norm = arg_real(max_obj, "max_norm");
              if (!(std::isfinite(max_norm) && max_norm > 0)) throw py::value_error("max_norm must be finite and > 0");
              const int n_threads = resolve_threads(arg_threads(nt));
              const bool check = arg_bool(cf, "check_finite");
              std::vector<py::array> arrays;
              std::vector<std::string> names;
              for (size_t a = 0; a < py::len(seq); ++a) {
                  names.push_back("grads[" + std::to_string(a) + "]");
                  arrays.push_back(arr(seq[a], names.back().c_str()));
              }
              if (arrays.empty()) return 1.0;
              return dispatch_dtype(arrays[0], names[0], [&](auto tag) {
                  using T = decltype(tag);
                  std::vector<T*> data;
                  std::vector<idx> counts;
                  for (size_t a = 0; a < arrays.size(); ++a) {
                      data.push_back(output<T>(arrays[a], names[a], std::vector<idx>(arrays[a].shape(), arrays[a].shape() + arrays[a].ndim())));
                      if (check) require_finite(data.back(), arrays[a].size(), names[a]);
                      counts.push_back(arrays[a].size());
                      for (size_t b = 0; b < a; ++b) require_no_overlap(arrays[b], names[b], arrays[a], names[a]);
                  }
                  ReleasedGil nogil;
                  return clip_by_global_norm<T>(data.data(), counts.data(), idx(data.size()), max_norm, n_threads);
              });
          },
          "grads"_a, "max_norm"_a, py::kw_only(), threads, finite,
          "In place: scales every gradient by max_norm / max(global norm, max_norm). Returns the scale.");
}

}  // namespace dp::bind
