// dp.ops, the activations with learned parameters (learned.hpp): one entry point,
// learned_activation(op, Z, dA, activation, params), that deltaprop/ops.py calls from
// activation_forward / _derivative / _backward / _param_gradients when the activation learns
// parameters. Python resolves `params` (names, initial values); this checks the arrays.
#include "../learned.hpp"
#include "checks.hpp"
#include "gil.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;
using O = const py::object&;

template <typename T>
py::object learned_op(const std::string& op, const py::array& Z, O dA_obj, const ActivationSpec& f,
                      const py::sequence& params, int n_threads, bool check_finite) {
    const std::vector<idx> shape(Z.shape(), Z.shape() + Z.ndim());
    const T* z = input<T>(Z, "Z", shape, check_finite);
    const idx units = Z.ndim() ? Z.shape(Z.ndim() - 1) : 1, rows = units ? Z.size() / units : 0;
    const int count = learned_param_count(f);
    if (idx(py::len(params)) != count)
        throw py::value_error("params: activation takes " + std::to_string(count) + " arrays, got " +
                              std::to_string(py::len(params)));
    std::vector<const T*> theta;
    std::vector<py::array> keep;
    for (int k = 0; k < count; ++k) {
        const std::string name = std::string("params['") + learned_param_name(f, k) + "']";
        keep.push_back(as_array(params[size_t(k)], name));
        theta.push_back(input<T>(keep.back(), name, {learned_param_size(f, units)}, true));
    }
    const int nt = resolve_threads(n_threads);
    if (op == "forward" || op == "derivative") {
        py::array_t<T> out = new_array<T>(shape, op == "forward" ? "A" : "the derivative");
        T* o = out.mutable_data();
        ReleasedGil nogil;
        if (op == "forward") learned_forward<T>(o, z, rows, units, f, theta.data(), nt);
        else learned_derivative<T>(o, z, rows, units, f, theta.data(), nt);
        return std::move(out);
    }
    const T* da = input<T>(as_array(dA_obj, "dA"), "dA", shape, check_finite);
    py::array_t<T> dZ = new_array<T>(shape, "dZ");
    std::vector<py::array_t<T>> grads;
    std::vector<T*> g;
    for (int k = 0; k < count; ++k) {
        grads.push_back(new_array<T>({learned_param_size(f, units)}, "a parameter gradient"));
        g.push_back(grads.back().mutable_data());
    }
    T* dz = dZ.mutable_data();
    {
        ReleasedGil nogil;
        learned_backward<T>(dz, g.data(), da, z, rows, units, f, theta.data(), nt);
    }
    if (op == "backward") return std::move(dZ);
    py::dict out;
    for (int k = 0; k < count; ++k) out[learned_param_name(f, k)] = grads[size_t(k)];
    return std::move(out);
}

}  // namespace

void bind_learned_ops(py::module_& m) {
    m.def("learned_activation",
          [](O op_obj, O Z_obj, O dA, O activation, O params, O nt, O cf) {
              const std::string op = arg_str(op_obj, "op");
              if (op != "forward" && op != "derivative" && op != "backward" && op != "param_gradients")
                  throw py::value_error("op must be 'forward', 'derivative', 'backward' or 'param_gradients'");
              const ActivationSpec f = activation_spec(activation, 0.0, true);
              if (!is_learned(f)) throw py::value_error("activation learns no parameters");
              const py::array Z = as_array(Z_obj, "Z");
              const py::sequence seq = py::reinterpret_borrow<py::sequence>(params);
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(Z, "Z", [&](auto t) {
                  return learned_op<decltype(t)>(op, Z, dA, f, seq, n_threads, check);
              });
          },
          "op"_a, "Z"_a, "dA"_a, "activation"_a, "params"_a, py::kw_only(), "n_threads"_a = 0,
          "check_finite"_a = true,
          "Internal: the learned activations' kernels (use activation_forward and friends).");
}

}  // namespace dp::bind
