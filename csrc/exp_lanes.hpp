// e^x for x <= 0 in plain arithmetic that vectorises: softmax's exponentials, of logits less
// their row's largest, a whole block of rows at once. libm's exp is one call per value, and an
// output layer of 3 classes gives a loop too short to fill a vector; across rows it is not.
//
//   x = k ln2 + r, |r| <= ln2/2, k an integer    (Cody & Waite: ln2 split in two, so k ln2_hi
//                                                  is exact and r keeps its low bits)
//   e^x = 2^k e^r, e^r by its Taylor polynomial   (degree 13 for double, 7 for float: the
//                                                  truncation is below half an ulp)
//   2^k = 2^(k/2) 2^(k - k/2), each a normal number built from its exponent bits, so results
//   down into the subnormal range round once, in the last product.
// Integers are rounded, and 2^j built, with the 1.5 2^52 (2^23) shifter, whose sum with j holds
// j in the low bits of its pattern: no float-to-integer conversion (undefined for NaN) and no
// 64-bit arithmetic shift (which AVX2 lacks: the loop would not vectorise). Accuracy: within an
// ulp of libm's exp over the whole range (tests/test_loss.py holds softmax to 4 of NumPy's).
// NaN gives NaN; -inf and anything below the smallest subnormal's logarithm give 0.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace dp {

template <typename T>
struct ExpConstants;

template <>
struct ExpConstants<double> {
    using Bits = std::uint64_t;
    static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
    static constexpr double kShifter = 6755399441055744.0;  // 1.5 2^52
    static constexpr double kLowest = -1000.0;  // e^-1000 is 0 in double; k >= -1443
    static constexpr double kLog2e = 1.4426950408889634074;
    static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000
    static constexpr double kLn2Lo = 1.90821492927058770002e-10;
};

template <>
struct ExpConstants<float> {
    using Bits = std::uint32_t;
    static constexpr int kMantissa = 23, kBias = 127, kDegree = 7;
    static constexpr float kShifter = 12582912.0f;  // 1.5 2^23
    static constexpr float kLowest = -150.0f;  // e^-150 is 0 in float; k >= -217
    static constexpr float kLog2e = 1.44269504088896341f;
    static constexpr float kLn2Hi = 0.693145751953125f;  // 0x3f317200
    static constexpr float kLn2Lo = 1.428606765330187045e-06f;
};

// 1 / n!, n = 0 .. 13, each rounded once (to double; a float polynomial rounds them again).
constexpr double kInverseFactorials[] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};

// 2^j for an integer-valued j in the normal exponent range. j + shifter is exact and holds j in
// its low bits, so its pattern less the shifter's is j: shifted into the exponent field.
template <typename T>
[[gnu::always_inline]] inline T pow2_of(T j) {
    using C = ExpConstants<T>;
    using Bits = typename C::Bits;
    const T shifted = j + C::kShifter, shifter = C::kShifter;
    Bits bits, zero;
    std::memcpy(&bits, &shifted, sizeof bits);
    std::memcpy(&zero, &shifter, sizeof zero);
    bits = (bits - zero + Bits(C::kBias)) << C::kMantissa;
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

template <typename T>
[[gnu::always_inline]] inline std::make_signed_t<typename ExpConstants<T>::Bits> pattern_of(T x) {
    std::make_signed_t<typename ExpConstants<T>::Bits> bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits;
}

// x below kLowest (-inf too) becomes kLowest and NaN stays NaN, by comparing bit patterns: for
// x <= 0 a larger pattern (as a signed integer) is a larger |x|, and the NaNs lie beyond -inf's.
// An integer select vectorises where a floating-point one does not (AVX2, under GCC's default
// -ftrapping-math: the loop stayed scalar, at libm's speed).
template <typename T>
[[gnu::always_inline]] inline T clamp_below(T x) {
    const auto bits = pattern_of(x), lowest = pattern_of(ExpConstants<T>::kLowest),
               minus_inf = pattern_of(-std::numeric_limits<T>::infinity());
    const auto below = -decltype(bits)((bits > lowest) & (bits <= minus_inf));  // all ones or 0
    const auto clamped = (lowest & below) | (bits & ~below);
    std::memcpy(&x, &clamped, sizeof x);
    return x;
}

template <typename T>
[[gnu::always_inline]] inline T exp_nonpositive(T x) {
    using C = ExpConstants<T>;
    x = clamp_below(x);
    const T k = (x * C::kLog2e + C::kShifter) - C::kShifter;  // x / ln2 to the nearest integer
    const T r = (x - k * C::kLn2Hi) - k * C::kLn2Lo;
    T p = T(kInverseFactorials[C::kDegree]);  // Horner: sum of r^n / n!, n = degree .. 0
#pragma GCC unroll 16  // (a loop left inside the caller's loop stops it vectorising)
    for (int n = C::kDegree - 1; n >= 0; --n) p = p * r + T(kInverseFactorials[n]);
    const T k1 = (k * T(0.5) + C::kShifter) - C::kShifter, k2 = k - k1;  // k1 + k2 = k, halves
    return p * pow2_of(k1) * pow2_of(k2);
}

}  // namespace dp
