// Dropout and AlphaDropout, forward beside backward (reference/dropout.py is the readable twin).
//
// Masks are counter-based: element e of hidden layer `layer` in batch `batch` of epoch `epoch`
// is kept when u_e = (mix64(h + (e + 1) gamma) >> 11) 2^-53 >= rate, with
//     h = mix64(mix64(mix64(mix64(seed ^ "DROPOUT!") + epoch gamma) + batch gamma) + layer gamma)
// so a mask needs no generator state, is the same for any thread count, and never needs storing
// beyond the step that uses it.
//   dropout (Srivastava et al. 2014, inverted): out = keep ? a / (1 - rate) : 0
//   AlphaDropout (Klambauer et al. 2017): out = keep ? s a + b : s alpha' + b, alpha' = -lambda alpha
//     (SELU's saturation value), s = (q + alpha'^2 q (1 - q))^-1/2 and b = -s (1 - q) alpha',
//     q = 1 - rate: inputs of mean 0 and variance 1 keep mean 0 and variance 1.
// Both are affine in a where kept, so the backward is dZ = dA times the slope where kept, else 0.
#pragma once

#include <cmath>
#include <cstdint>

#include "activations.hpp"
#include "common.hpp"
#include "mix64.hpp"

namespace dp {

constexpr std::uint64_t kDropoutTag = 0x44524F504F555421ULL;  // "DROPOUT!": apart from the shuffle

inline std::uint64_t dropout_stream(std::uint64_t seed, std::uint64_t epoch, std::uint64_t batch,
                                    std::uint64_t layer) {
    std::uint64_t h = mix64(seed ^ kDropoutTag);
    for (std::uint64_t counter : {epoch, batch, layer}) h = mix64(h + counter * kGolden);
    return h;
}

// keep[e] = 1 where element first + e of the layer's batch (e < count) survives a dropout of
// `rate` drawn from stream h: a block of rows draws its part of the batch's mask.
inline void dropout_mask(std::uint8_t* keep, idx count, double rate, std::uint64_t h, int n_threads,
                         idx first = 0) {
    parallel_for(count, threads_for(count, n_threads), [&](idx e) {  // split over elements
        const std::uint64_t u = mix64(h + (std::uint64_t(first + e) + 1) * kGolden);
        keep[e] = double(u >> 11) * 0x1.0p-53 >= rate;
    });
}

// out = A . keep / (1 - rate), the scale rounded once to T; out may alias A.
template <typename T>
void dropout_forward(T* out, const T* A, const std::uint8_t* keep, idx count, double rate, int n_threads) {
    const T scale = T(1.0 / (1.0 - rate));
    parallel_for(count, threads_for(count, n_threads), [&](idx e) { out[e] = keep[e] ? A[e] * scale : T(0); });
}

template <typename T>
void dropout_backward(T* dZ, const T* dA, const std::uint8_t* keep, idx count, double rate, int n_threads) {
    dropout_forward<T>(dZ, dA, keep, count, rate, n_threads);  // linear: the same map
}

struct AlphaDropoutCoefficients {
    double a, b, alpha_p;  // slope, shift, and the dropped units' value before the affine map
};

inline AlphaDropoutCoefficients alpha_dropout_coefficients(double rate) {
    const double q = 1.0 - rate, alpha_p = -kSeluLambda * kSeluAlpha;
    const double a = std::pow(q + alpha_p * alpha_p * q * (1.0 - q), -0.5);  // as the reference
    return {a, -a * (1.0 - q) * alpha_p, alpha_p};
}

// out = keep ? a A + b : a alpha' + b (coefficients rounded once to T); out may alias A.
template <typename T>
void alpha_dropout_forward(T* out, const T* A, const std::uint8_t* keep, idx count, double rate,
                           int n_threads) {
    const auto c = alpha_dropout_coefficients(rate);
    const T a = T(c.a), b = T(c.b), dropped = T(c.a * c.alpha_p + c.b);
    parallel_for(count, threads_for(count, n_threads), [&](idx e) { out[e] = keep[e] ? a * A[e] + b : dropped; });
}

template <typename T>
void alpha_dropout_backward(T* dZ, const T* dA, const std::uint8_t* keep, idx count, double rate,
                            int n_threads) {
    const T a = T(alpha_dropout_coefficients(rate).a);
    parallel_for(count, threads_for(count, n_threads), [&](idx e) { dZ[e] = keep[e] ? a * dA[e] : T(0); });
}

}  // namespace dp
