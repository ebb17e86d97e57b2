// splitmix64's output function, on which the shuffle and the dropout masks are built:
// counter-based randomness that needs no generator state, so it does not depend on the thread
// count and the NumPy reference (reference/mix64.py) computes the same numbers.
#pragma once

#include <cstdint>

namespace dp {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;  // splitmix64's increment (gamma)

// Steele, Lea & Flood 2014: a bijection on 64-bit words whose outputs look independent for
// consecutive inputs.
inline std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

}  // namespace dp
