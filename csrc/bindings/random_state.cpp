// _core.legacy_shuffled_orders: a chunk of epochs' row orders drawn as NumPy's legacy
// RandomState.shuffle draws them (legacy_shuffle.hpp), from a state that Python reads and writes
// back (python/deltaprop/sklearn/_backend.py, EpochShuffles).
#include <limits>

#include "../legacy_shuffle.hpp"
#include "checks.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;
using O = const py::object&;

py::tuple legacy_shuffled_orders_op(O key_obj, O pos_obj, O start_obj, O epochs_obj) {
    const py::array key = as_array(key_obj, "key");
    std::uint32_t* words = output<std::uint32_t>(key, "key", {Mt19937::kWords});
    const int pos = int(arg_int(pos_obj, "pos", 0, Mt19937::kWords));
    const py::array start_array = as_array(start_obj, "start");
    const std::int64_t* start = input<std::int64_t>(start_array, "start", {-1}, false);
    const idx n = start_array.shape(0);
    if (n > idx(std::numeric_limits<std::uint32_t>::max()))
        throw py::value_error("start has " + std::to_string(n) + " rows: at most 2**32 - 1 are drawn here");
    const idx epochs = idx(arg_int(epochs_obj, "epochs", 0, std::numeric_limits<idx>::max()));
    require_no_overlap(key, "key", start_array, "start");
    py::array_t<std::int64_t> orders = new_array<std::int64_t>({epochs, n}, "the orders");
    Mt19937 mt{words, pos};
    {
        py::gil_scoped_release nogil;
        legacy_shuffled_orders(mt, start, n, epochs, orders.mutable_data());
    }
    return py::make_tuple(std::move(orders), mt.pos);
}

}  // namespace

void bind_random_state(py::module_& m) {
    m.def("legacy_shuffled_orders", &legacy_shuffled_orders_op, "key"_a, "pos"_a, "start"_a, "epochs"_a,
          "(orders, pos): orders[e] = previous[p_e], previous = start, then orders[e - 1], and p_e "
          "= arange(n) shuffled as numpy.random.RandomState.shuffle does with the MT19937 state "
          "(key, pos); key is advanced in place and pos returned.");
}

}  // namespace dp::bind
