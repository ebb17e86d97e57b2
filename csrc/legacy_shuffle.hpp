// NumPy's legacy RandomState.shuffle of a 1-D array (mtrand.pyx: Fisher-Yates from the last
// element, each swap partner drawn by random_interval from MT19937), so that the scikit-learn
// estimators can draw a chunk of epochs' row orders in one call and still take exactly the draws
// scikit-learn's loop takes (sklearn.utils.shuffle, once per epoch), leaving the generator where
// that loop leaves it. Python's shuffle cost more than a small network's epoch. The state is
// NumPy's own (RandomState.get_state(legacy=False)): 624 words and a position.
// tests/test_sklearn_shuffles.py checks it draw for draw against NumPy.
#pragma once

#include <cstdint>
#include <algorithm>
#include <utility>
#include <vector>

#include "common.hpp"

namespace dp {

struct Mt19937 {
    static constexpr int kWords = 624, kShift = 397;
    std::uint32_t* key;  // kWords words, the caller's: read and advanced in place
    int pos;             // the next word to temper; kWords: regenerate first

    // Matsumoto & Nishimura's recurrence over all 624 words, word i from words i, i + 1 and
    // i + 397 (mod 624; the later ones already new), in three loops with no index wrapping.
    void regenerate() {
        auto twist = [](std::uint32_t upper, std::uint32_t lower, std::uint32_t shifted) {
            const std::uint32_t y = (upper & 0x80000000u) | (lower & 0x7fffffffu);
            return shifted ^ (y >> 1) ^ ((0u - (y & 1u)) & 0x9908b0dfu);
        };
        int i = 0;
        for (; i < kWords - kShift; ++i) key[i] = twist(key[i], key[i + 1], key[i + kShift]);
        for (; i < kWords - 1; ++i) key[i] = twist(key[i], key[i + 1], key[i + kShift - kWords]);
        key[i] = twist(key[i], key[0], key[i + kShift - kWords]);
        pos = 0;
    }

    std::uint32_t next32() {
        if (pos >= kWords) regenerate();
        std::uint32_t y = key[pos++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }
};

// `order` (n entries, n below 2^32: NumPy then draws 64-bit words, which this does not)
// shuffled in place as RandomState.shuffle shuffles a 1-D array: for i from n - 1 down to 1,
// swap i with random_interval(i), a uniform draw from [0, i] made by drawing words masked to the
// smallest all-ones word covering i until one is not above i.
inline void legacy_shuffle(Mt19937& mt, std::int64_t* order, idx n) {
    // One draw per step: a rejected draw swaps i with itself and keeps i. Branch-free: a
    // branch on the draw's acceptance (the rejection loop's exit, or the compiler's for a
    // ?: here) mispredicts on about a quarter of the draws, and the partner is chosen with
    // integer masks instead (331 rows: 2.4 -> 1.1 us). The mask is the same for every i in
    // (mask / 2, mask], so it is taken once per such range, off each step's path.
    for (idx i = n - 1; i >= 1;) {
        const std::uint32_t mask = 0xffffffffu >> __builtin_clz(std::uint32_t(i));
        for (const idx low = idx(mask >> 1); i > low;) {
            const idx value = idx(mt.next32() & mask);
            const idx reject = value > i;  // 1: the partner is i itself
            std::swap(order[i], order[value ^ ((value ^ i) & -reject)]);
            i -= 1 - reject;
        }
    }
}

// `epochs` row orders of n rows: orders[e] = previous[perm_e], previous being `start` for the
// first and orders[e - 1] after it, perm_e = arange(n) shuffled as RandomState.shuffle does
// (legacy_shuffle): those swaps done to a copy of previous give previous[perm_e] directly.
inline void legacy_shuffled_orders(Mt19937& mt, const std::int64_t* start, idx n, idx epochs,
                                   std::int64_t* orders) {
    for (idx e = 0; e < epochs; ++e) {
        std::int64_t* order = orders + e * n;
        const std::int64_t* previous = e == 0 ? start : order - n;
        std::copy(previous, previous + n, order);
        legacy_shuffle(mt, order, n);
    }
}

}  // namespace dp
