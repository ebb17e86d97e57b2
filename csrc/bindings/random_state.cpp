// _core.legacy_shuffled_orders: a chunk of epochs' row orders drawn as NumPy's legacy
// RandomState.shuffle draws them (legacy_shuffle.hpp), from a state that Python reads and writes
// back (python/deltaprop/sklearn/_backend.py, EpochShuffles); _core.mt19937_state_views: that
// state where NumPy keeps it, so the draws can advance it in place.
#include <Python.h>

#include <cstdint>
#include <limits>

#include "../legacy_shuffle.hpp"
#include "checks.hpp"
#include "gil.hpp"

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
        ReleasedGil nogil;
        legacy_shuffled_orders(mt, start, n, epochs, orders.mutable_data());
    }
    return py::make_tuple(std::move(orders), mt.pos);
}

// NumPy's C interface to a bit generator (numpy/random/bitgen.h, public: the "BitGenerator"
// capsule every BitGenerator has), and its MT19937's state (numpy/random/src/mt19937/mt19937.h:
// the words, then the position). That layout is NumPy's own, not its API: Python compares the
// views with MT19937.state before it trusts them (EpochShuffles).
struct NumpyBitgen {
    void* state;
    std::uint64_t (*next_uint64)(void*);
    std::uint32_t (*next_uint32)(void*);
    double (*next_double)(void*);
    std::uint64_t (*next_raw)(void*);
};
struct NumpyMt19937State {
    std::uint32_t key[Mt19937::kWords];
    int pos;
};
static_assert(sizeof(int) == 4, "the position view is an int32 array");

// (key, pos): writable views of an MT19937's words and position, kept alive by the generator.
py::tuple mt19937_state_views(O bit_generator) {
    const py::object capsule = bit_generator.attr("capsule");
    if (!PyCapsule_IsValid(capsule.ptr(), "BitGenerator"))
        throw py::type_error("bit_generator.capsule is not a NumPy BitGenerator capsule");
    auto* bitgen = static_cast<NumpyBitgen*>(PyCapsule_GetPointer(capsule.ptr(), "BitGenerator"));
    if (!bitgen || !bitgen->state) throw py::value_error("the bit generator has no state");
    auto* state = static_cast<NumpyMt19937State*>(bitgen->state);
    py::array_t<std::uint32_t> key({idx(Mt19937::kWords)}, {idx(sizeof(std::uint32_t))}, state->key, bit_generator);
    py::array_t<std::int32_t> pos({idx(1)}, {idx(sizeof(std::int32_t))},
                                  reinterpret_cast<std::int32_t*>(&state->pos), bit_generator);
    return py::make_tuple(std::move(key), std::move(pos));
}

}  // namespace

void bind_random_state(py::module_& m) {
    m.def("mt19937_state_views", &mt19937_state_views, "bit_generator"_a,
          "(key, pos): writable views of a numpy.random.MT19937's 624 words and its position "
          "(an int32 array of one), where NumPy keeps them. Their layout is NumPy's internal "
          "one: compare with bit_generator.state before relying on them.");
    m.def("legacy_shuffled_orders", &legacy_shuffled_orders_op, "key"_a, "pos"_a, "start"_a, "epochs"_a,
          "(orders, pos): orders[e] = previous[p_e], previous = start, then orders[e - 1], and p_e "
          "= arange(n) shuffled as numpy.random.RandomState.shuffle does with the MT19937 state "
          "(key, pos); key is advanced in place and pos returned.");
}

}  // namespace dp::bind
