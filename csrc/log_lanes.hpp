// log x for x >= 1 in plain arithmetic that vectorises (the twin of exp_lanes.hpp): the
// log-sum-exp of a softmax row (its sum of e^(z - max z) is at least 1, the max's own term) and
// the binary log-loss's log(1 + e^-|z|), each a block of rows at once where libm's log is one
// call per value. Double only: both are summed in double.
//
//   x = 2^k m, m in [sqrt(2)/2, sqrt(2))   (bit patterns: adding 1 - sqrt(2)/2's exponent and
//                                           mantissa offset carries k into the exponent field)
//   f = m - 1, s = f / (2 + f)             log m = 2 atanh s = f - s (f - R) rearranged below,
//   R = a polynomial in s^2 of degree 7     with fdlibm's coefficients (e_log.c), error < 1 ulp
//   log x = k ln2_hi - ((f^2/2 - (s (f^2/2 + R) + k ln2_lo)) - f)
// k is at most 1024 here, so it becomes a double through the 1.5 2^52 shifter (as exp_lanes.hpp
// builds 2^k): no 64-bit integer conversion, which AVX2 lacks. Accuracy: within an ulp or two
// of libm's log (tests/test_loss.py). NaN gives NaN; infinity and x < 1 are outside the domain.
#pragma once

#include <cstdint>
#include <cstring>

namespace dp {

struct LogConstants {
    static constexpr std::uint64_t kSqrtHalf = 0x3fe6a09e667f3bcdULL;  // sqrt(2)/2's pattern
    static constexpr std::uint64_t kOne = 0x3ff0000000000000ULL;
    static constexpr std::uint64_t kMantissaMask = 0x000fffffffffffffULL;
    static constexpr std::uint64_t kShifterBits = 0x4338000000000000ULL;  // 1.5 2^52
    static constexpr double kShifter = 6755399441055744.0;
    static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000
    static constexpr double kLn2Lo = 1.90821492927058770002e-10;
    static constexpr double kLg[] = {6.666666666666735130e-01, 3.999999999940941908e-01,
                                     2.857142874366239149e-01, 2.222219843214978396e-01,
                                     1.818357216161805012e-01, 1.531383769920937332e-01,
                                     1.479819860511658591e-01};
};

// log x for finite x >= 1, or NaN (NaN).
[[gnu::always_inline]] inline double log_from_one(double x) {
    using C = LogConstants;
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const std::uint64_t shifted = bits + (C::kOne - C::kSqrtHalf);  // exponent field: k + 1023
    const std::uint64_t k = (shifted >> 52) - 1023, m_bits = (shifted & C::kMantissaMask) + C::kSqrtHalf;
    double m, k_shifted;
    std::memcpy(&m, &m_bits, sizeof m);
    const std::uint64_t k_bits = C::kShifterBits + k;
    std::memcpy(&k_shifted, &k_bits, sizeof k_shifted);
    const double dk = k_shifted - C::kShifter;
    const double f = m - 1.0, s = f / (2.0 + f), z = s * s, w = z * z;
    const double t1 = w * (C::kLg[1] + w * (C::kLg[3] + w * C::kLg[5]));
    const double t2 = z * (C::kLg[0] + w * (C::kLg[2] + w * (C::kLg[4] + w * C::kLg[6])));
    const double R = t2 + t1, hfsq = 0.5 * f * f;
    const double log_x = dk * C::kLn2Hi - ((hfsq - (s * (hfsq + R) + dk * C::kLn2Lo)) - f);
    return log_x + (x - x);  // NaN stays NaN (its pattern would give a finite value)
}

// log(1 + e) for finite e >= 0, or NaN (inf gives NaN; the callers' e are at most a row's
// width): u = 1 + e rounded and c its rounding error (exact: Fast2Sum, the larger addend
// first), then log u + c / u, the first-order correction (e below 2^-53 gives e itself).
[[gnu::always_inline]] inline double log1p_nonnegative(double e) {
    const double big = e > 1.0 ? e : 1.0, small = e > 1.0 ? 1.0 : e;  // NaN: small is NaN
    const double u = big + small, c = (big - u) + small;
    return log_from_one(u) + c / u;
}

}  // namespace dp
