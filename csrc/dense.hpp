// One dense layer, forward then backward (design.md section 1), each a single fused GEMM:
//   forward:           Z = X W + b,  A = f(Z)       bias and f applied to each tile of the product
//   weight gradients:  dW = X^T dZ,  db = sum over rows of dZ   (db summed while dZ is packed,
//                                                                 or beside it when read in place)
//   delta propagation: dZ_prev = (dZ W^T) . f'(S_prev)           (the mask applied per tile)
// S is the matrix the derivative reads: A, or Z where f' needs it (derivative_needs_z).
#pragma once

#include "activations.hpp"
#include "gemm.hpp"

namespace dp {

// X (N x I), W (I x O), b (O). Writes A = f(XW + b) when Z is null (fused: Z is never stored),
// Z = XW + b when A is null, and both otherwise.
template <typename T>
void dense_forward(T* Z, T* A, const T* X, const T* W, const T* b, idx N, idx I, idx O,
                   const ActivationSpec& f, int n_threads) {
    Epilogue<T> ep;
    ep.bias = b;
    if (Z == nullptr) {
        ep.activation = &f;
        gemm<T>(A, O, X, I, W, O, N, O, I, false, false, T(1), T(0), n_threads, ep);
        return;
    }
    gemm<T>(Z, O, X, I, W, O, N, O, I, false, false, T(1), T(0), n_threads, ep);
    if (A != nullptr) activation_forward(A, Z, N * O, f, n_threads);
}

template <typename T>
void dense_backward(T* dW, T* db, const T* dZ, const T* X, idx N, idx I, idx O, int n_threads) {
    gemm<T>(dW, O, X, I, dZ, O, I, O, N, true, false, T(1), T(0), n_threads, {}, db);
}

// dZ (N x O), W (I x O), S_prev (N x I): the previous layer's stored A or Z.
template <typename T>
void delta_propagate(T* dZ_prev, const T* dZ, const T* W, const T* S_prev, idx N, idx I, idx O,
                     const ActivationSpec& f_prev, int n_threads) {
    Epilogue<T> ep;
    if (f_prev.kind != Activation::identity) {  // identity's derivative is 1: no mask
        ep.derivative = &f_prev;
        ep.stored = S_prev;
        ep.ld_stored = I;
    }
    gemm<T>(dZ_prev, I, dZ, O, W, O, N, I, O, false, true, T(1), T(0), n_threads, ep);
}

// Whether gemm.hpp's narrow_relu_backward can serve layer l's backward: few outputs, a ReLU
// before them, at least 8 of its units and a vector's worth (its last vector is the L units
// ending at the last), and products small enough that the passes it replaces would run on one
// thread (it is serial).
inline bool narrow_backward_fits(const ActivationSpec& f_prev, idx N, idx I, idx O, int n_threads, bool f64) {
    return O <= kNarrowOutputs && I >= std::max<idx>(8, small_product_lanes(f64)) && f_prev.kind == Activation::relu &&
           threads_for(N * I * O, resolve_threads(n_threads), kParallelMinMultiplyAdds) == 1;
}

}  // namespace dp
