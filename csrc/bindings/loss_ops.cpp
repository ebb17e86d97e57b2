// dp.ops, the output layers and their losses (loss.hpp): output_forward and output_loss_delta.
// Same conventions as ops.cpp: every argument is converted by name and checked before the GIL
// is released.
#include "../loss.hpp"
#include "../names.hpp"
#include "checks.hpp"
#include "gil.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;

template <typename T>
py::tuple output_loss_delta_op(const py::array& Z, const py::array& Y, const LossSpec& spec,
                               const py::object& weight_obj, int n_threads, bool check_finite) {
    require_shape(Z, "Z", {-1, -1});
    const idx N = Z.shape(0), O = Z.shape(1);
    require_nonempty(Z, "Z");
    const T* z = input<T>(Z, "Z", {N, O}, check_finite);
    const T* y = input<T>(Y, "Y", {N, O}, check_finite);
    const double* w = nullptr;
    py::array weights;
    if (!weight_obj.is_none()) {
        weights = sample_weights(weight_obj, N);
        w = static_cast<const double*>(weights.data());
    }
    if (spec.output == Output::exp)
        for (idx e = 0; e < N * O; ++e)
            if (y[e] < 0) throw py::value_error("Y must be non-negative for the poisson loss");
    auto A = new_array<T>({N, O}, "A"), dZ = new_array<T>({N, O}, "dZ");
    T *a = A.mutable_data(), *dz = dZ.mutable_data();
    std::vector<double> row_loss(static_cast<size_t>(N));
    double loss;
    {
        ReleasedGil nogil;
        loss = output_loss_delta<T>(dz, a, row_loss.data(), z, y, N, O, spec, w, resolve_threads(n_threads));
    }
    return py::make_tuple(loss, A, dZ);
}

}  // namespace

void bind_loss_ops(py::module_& m) {
    using O = const py::object&;
    const auto threads = py::arg("n_threads") = 0;
    const auto finite = py::arg("check_finite") = true;
    const auto arr = [](O h, const char* name) { return as_array(h, name); };
    m.def("output_loss_delta",
          [arr](O Z, O Y, O output, O loss, O sample_weight, O huber_delta, O mean_over_outputs,
                O clip_probabilities, O nt, O cf) {
              const py::array z = arr(Z, "Z"), y = arr(Y, "Y");
              LossSpec spec = parse_loss(arg_str(output, "output"), loss.is_none() ? "" : arg_str(loss, "loss"),
                                         arg_real(huber_delta, "huber_delta"));
              spec.mean_over_outputs = arg_bool(mean_over_outputs, "mean_over_outputs");
              spec.clip_probabilities = arg_bool(clip_probabilities, "clip_probabilities");
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(z, "Z", [&](auto t) {
                  return output_loss_delta_op<decltype(t)>(z, y, spec, sample_weight, n_threads, check);
              });
          },
          "Z"_a, "Y"_a, "output"_a = "softmax", py::kw_only(), "loss"_a = py::none(),
          "sample_weight"_a = py::none(), "huber_delta"_a = 1.0, "mean_over_outputs"_a = false,
          "clip_probabilities"_a = false, threads, finite,
          "(loss, A, dZ): A = out(Z), the loss (a weighted mean over rows of each row's loss summed\n"
          "over outputs) and dZ = w_n dl/dz, = (A - Y) / N for each output's own loss.");
    m.def("output_forward",
          [arr](O Z, O output, O nt, O cf) {
              const py::array z = arr(Z, "Z");
              const Output out = parse_output(arg_str(output, "output"));
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(z, "Z", [&](auto t) -> py::array {
                  using T = decltype(t);
                  require_shape(z, "Z", {-1, -1});
                  const idx N = z.shape(0), O = z.shape(1);
                  require_nonempty(z, "Z");
                  const T* zp = input<T>(z, "Z", {N, O}, check);
                  auto A = new_array<T>({N, O}, "A");
                  T* a = A.mutable_data();
                  ReleasedGil nogil;
                  output_forward<T>(a, zp, N, O, out, resolve_threads(n_threads));
                  return A;
              });
          },
          "Z"_a, "output"_a = "softmax", py::kw_only(), threads, finite, "A = out(Z), row by row.");
}

}  // namespace dp::bind
