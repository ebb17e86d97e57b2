// Output layers fused with their losses. Each pair has the canonical link, so the delta is
//   dZ = (A - Y) / N
// for all three (design.md section 1). Losses are averaged over the N rows and summed over outputs:
//   identity + squared error:   C = 1/(2N) sum (A - Y)^2
//   sigmoid  + binary x-entropy: C = 1/N sum [softplus(z) - y z]          (stable form of -y log p - (1-y) log(1-p))
//   softmax  + cross-entropy:    C = 1/N sum_n [lse(z_n) sum_k y_nk - sum_k y_nk z_nk]   (lse: log-sum-exp)
// Per-row losses go to `row_loss` and are summed in row order, so the total does not depend on threads.
#pragma once

#include <algorithm>
#include <cmath>

#include "activations.hpp"
#include "common.hpp"

namespace dp {

enum class Output : int { identity = 0, sigmoid = 1, softmax = 2 };

// log(1 + e^z) without overflow.
template <typename T>
inline T softplus(T z) {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::fabs(z)));
}

// One row: a = out(z), returns the row's loss when y != nullptr.
template <typename T>
double output_row(T* a, const T* z, const T* y, idx O, Output out) {
    double loss = 0.0;
    switch (out) {
        case Output::identity:
            for (idx k = 0; k < O; ++k) {
                a[k] = z[k];
                if (y) loss += 0.5 * double(z[k] - y[k]) * double(z[k] - y[k]);
            }
            break;
        case Output::sigmoid:
            for (idx k = 0; k < O; ++k) {
                a[k] = sigmoid(z[k]);
                if (y) loss += double(softplus(z[k])) - double(y[k]) * double(z[k]);
            }
            break;
        case Output::softmax: {
            const T zmax = *std::max_element(z, z + O);  // shift so exp never overflows
            T sum = 0;
            for (idx k = 0; k < O; ++k) sum += (a[k] = std::exp(z[k] - zmax));
            for (idx k = 0; k < O; ++k) a[k] /= sum;
            if (y) {
                const double lse = double(zmax) + std::log(double(sum));
                for (idx k = 0; k < O; ++k) loss += double(y[k]) * (lse - double(z[k]));
            }
            break;
        }
    }
    return loss;
}

// A = out(Z) row by row (prediction).
template <typename T>
void output_forward(T* A, const T* Z, idx N, idx O, Output out, int n_threads) {
    const int nt = threads_for(N * O, n_threads);
    parallel_for(N, nt, [&](idx n) { output_row<T>(A + n * O, Z + n * O, nullptr, O, out); });  // split over rows
}

// A = out(Z); dZ = (A - Y) / N (skipped when dZ is null); returns the mean loss.
template <typename T>
double output_loss_delta(T* dZ, T* A, double* row_loss, const T* Z, const T* Y, idx N, idx O,
                         Output out, int n_threads) {
    const int nt = threads_for(N * O, n_threads);
    const T inv_n = T(1) / T(N);
    parallel_for(N, nt, [&](idx n) {  // split over rows: each thread owns whole rows
        row_loss[n] = output_row<T>(A + n * O, Z + n * O, Y + n * O, O, out);
        if (dZ)
            for (idx k = 0; k < O; ++k) dZ[n * O + k] = (A[n * O + k] - Y[n * O + k]) * inv_n;
    });
    double total = 0.0;
    for (idx n = 0; n < N; ++n) total += row_loss[n];
    return total / double(N);
}

}  // namespace dp
