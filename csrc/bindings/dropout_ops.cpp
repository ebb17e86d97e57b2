// dp.ops, dropout and AlphaDropout (dropout.hpp) on NumPy arrays, with the reference's names
// and arguments (reference/dropout.py). Masks are boolean arrays the size of what they drop.
#include "../dropout.hpp"
#include "checks.hpp"
#include "gil.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;
using O = const py::object&;

double arg_rate(py::handle h) {
    const double rate = arg_real(h, "rate");
    if (!(rate >= 0 && rate < 1)) throw py::value_error("rate must be in [0, 1), got " + std::to_string(rate));
    return rate;
}

py::array dropout_mask_op(O shape_obj, O rate_obj, O seed, O epoch, O batch, O layer, O nt) {
    if (!py::isinstance<py::sequence>(shape_obj) || py::isinstance<py::str>(shape_obj))
        throw py::type_error("shape must be a tuple of integers, got " + type_name(shape_obj));
    std::vector<idx> shape;
    for (size_t d = 0; d < py::len(shape_obj); ++d)
        shape.push_back(idx(arg_int(shape_obj[py::int_(d)], "shape[" + std::to_string(d) + "]", 0, 1LL << 40)));
    const double rate = arg_rate(rate_obj);
    const int n_threads = arg_threads(nt);
    const std::uint64_t h = dropout_stream(arg_u64(seed, "seed"), arg_u64(epoch, "epoch"),
                                           arg_u64(batch, "batch"), arg_u64(layer, "layer"));
    py::array_t<bool> mask = new_array<bool>(shape, "the mask");
    auto* keep = reinterpret_cast<std::uint8_t*>(mask.mutable_data());  // numpy bools are bytes 0/1
    const idx count = mask.size();
    ReleasedGil nogil;
    dropout_mask(keep, count, rate, h, resolve_threads(n_threads));
    return std::move(mask);
}

// The input (any shape, C-contiguous), its mask (bool, same shape), and a new output.
template <typename T, typename Kernel>
py::array apply(const py::array& x, const char* x_name, O mask_obj, double rate, int n_threads, bool check_finite,
                Kernel&& kernel) {
    const std::vector<idx> shape(x.shape(), x.shape() + x.ndim());
    const T* in = input<T>(x, x_name, shape, check_finite);
    const py::array mask = as_array(mask_obj, "mask");
    if (!mask.dtype().equal(py::dtype::of<bool>()))
        throw py::type_error("mask must have dtype bool, got " + std::string(py::str(mask.dtype())));
    require_shape(mask, "mask", shape);
    require_c_contiguous(mask, "mask");
    const auto* keep = static_cast<const std::uint8_t*>(mask.data());
    py::array_t<T> out = new_array<T>(shape, "the result");
    T* o = out.mutable_data();
    const idx count = x.size();
    ReleasedGil nogil;
    kernel(o, in, keep, count, rate, resolve_threads(n_threads));
    return std::move(out);
}

// Binds one of the four maps: f(x, mask, rate, *, n_threads, check_finite).
template <template <typename> class Map>
void bind_map(py::module_& m, const char* name, const char* x_name, const char* doc) {
    m.def(name, [x_name](O x_obj, O mask, O rate, O nt, O cf) {
              const py::array x = as_array(x_obj, x_name);
              const double r = arg_rate(rate);
              const int n_threads = arg_threads(nt);
              const bool check = arg_bool(cf, "check_finite");
              return dispatch_dtype(x, x_name, [&](auto t) {
                  using T = decltype(t);
                  return apply<T>(x, x_name, mask, r, n_threads, check, Map<T>{});
              });
          },
          py::arg(x_name), "mask"_a, "rate"_a, py::kw_only(), "n_threads"_a = 0, "check_finite"_a = true, doc);
}

template <typename T> struct DropoutForward { void operator()(T* o, const T* x, const std::uint8_t* k, idx c, double r, int nt) const { dropout_forward<T>(o, x, k, c, r, nt); } };
template <typename T> struct DropoutBackward { void operator()(T* o, const T* x, const std::uint8_t* k, idx c, double r, int nt) const { dropout_backward<T>(o, x, k, c, r, nt); } };
template <typename T> struct AlphaForward { void operator()(T* o, const T* x, const std::uint8_t* k, idx c, double r, int nt) const { alpha_dropout_forward<T>(o, x, k, c, r, nt); } };
template <typename T> struct AlphaBackward { void operator()(T* o, const T* x, const std::uint8_t* k, idx c, double r, int nt) const { alpha_dropout_backward<T>(o, x, k, c, r, nt); } };

}  // namespace

void bind_dropout_ops(py::module_& m) {
    m.def("dropout_stream", [](O seed, O epoch, O batch, O layer) {
              return dropout_stream(arg_u64(seed, "seed"), arg_u64(epoch, "epoch"), arg_u64(batch, "batch"),
                                    arg_u64(layer, "layer"));
          },
          "seed"_a, "epoch"_a, "batch"_a, "layer"_a,
          "h, the splitmix64 state of one (seed, epoch, batch, layer) from which a mask is drawn.");
    m.def("dropout_mask", &dropout_mask_op, "shape"_a, "rate"_a, "seed"_a, "epoch"_a, "batch"_a, "layer"_a,
          py::kw_only(), "n_threads"_a = 0,
          "The boolean keep-mask: each element kept with probability 1 - rate, independently.");
    bind_map<DropoutForward>(m, "dropout_forward", "A", "A . mask / (1 - rate).");
    bind_map<DropoutBackward>(m, "dropout_backward", "dA", "dZ = dA . mask / (1 - rate).");
    bind_map<AlphaForward>(m, "alpha_dropout_forward", "A", "a A + b where kept, a alpha' + b where dropped.");
    bind_map<AlphaBackward>(m, "alpha_dropout_backward", "dA", "dZ = a dA where kept, 0 where dropped.");
    m.def("alpha_dropout_coefficients", [](O rate) {
              const auto c = alpha_dropout_coefficients(arg_rate(rate));
              return py::make_tuple(c.a, c.b, c.alpha_p);
          },
          "rate"_a, "(a, b, alpha'): AlphaDropout's slope, shift and dropped value, in float64.");
}

}  // namespace dp::bind
