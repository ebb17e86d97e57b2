// One dense layer, forward then backward (design.md section 1):
//   forward:          Z = X W + b,   A = f(Z)                    X (N x I), W (I x O), b (O)
//   weight gradients: dW = X^T dZ,   db = sum over rows of dZ
//   delta propagation: dZ_prev = (dZ W^T) . f'(Z_prev)           ("gradient = error x input")
#pragma once

#include <algorithm>

#include "activations.hpp"
#include "gemm.hpp"

namespace dp {

template <typename T>
void dense_forward(T* Z, T* A, const T* X, const T* W, const T* b, idx N, idx I, idx O,
                   const ActivationSpec& f, int n_threads) {
    // Z starts as the bias broadcast over rows, then the product accumulates onto it (beta = 1).
    const int nt = threads_for(N * O, n_threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (idx n = 0; n < N; ++n) std::copy(b, b + O, Z + n * O);  // split over rows
    gemm<T>(Z, O, X, I, W, O, N, O, I, false, false, T(1), T(1), n_threads);
    if (A != nullptr) activation_forward(A, Z, N * O, f, n_threads);
}

// db[o] = sum_n dZ[n, o], rows summed in order so the result does not depend on threads.
template <typename T>
void bias_gradient(T* db, const T* dZ, idx N, idx O, int n_threads) {
    constexpr idx kChunk = 64;  // columns per task: each thread owns whole columns of db
    const idx chunks = (O + kChunk - 1) / kChunk;
    const int nt = threads_for(N * O, n_threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (idx c = 0; c < chunks; ++c) {
        const idx o0 = c * kChunk, o1 = std::min(O, o0 + kChunk);
        std::fill(db + o0, db + o1, T(0));
        for (idx n = 0; n < N; ++n)
            for (idx o = o0; o < o1; ++o) db[o] += dZ[n * O + o];
    }
}

template <typename T>
void dense_backward(T* dW, T* db, const T* dZ, const T* X, idx N, idx I, idx O, int n_threads) {
    gemm<T>(dW, O, X, I, dZ, O, I, O, N, true, false, T(1), T(0), n_threads);
    bias_gradient(db, dZ, N, O, n_threads);
}

// dZ_prev (N x I) = (dZ (N x O) . W^T) . f'(Z_prev), with A_prev = f(Z_prev).
template <typename T>
void delta_propagate(T* dZ_prev, const T* dZ, const T* W, const T* Z_prev, const T* A_prev, idx N,
                     idx I, idx O, const ActivationSpec& f_prev, int n_threads) {
    gemm<T>(dZ_prev, I, dZ, O, W, O, N, I, O, false, true, T(1), T(0), n_threads);
    activation_backward(dZ_prev, dZ_prev, Z_prev, A_prev, N * I, f_prev, n_threads);
}

}  // namespace dp
