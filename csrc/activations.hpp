// Hidden-layer activations: each forward f(z) sits beside its derivative f'(z).
//
// The derivative takes both z and a = f(z) and uses whichever is exact and cheapest
// (tanh: 1 - a^2, sigmoid: a(1 - a), ReLU: the unit step of z). ReLU'(0) is a convention
// (seed 000): `grad_at_zero` is 0 (PyTorch, scikit-learn), 0.5 or 1.
#pragma once

#include <cmath>

#include "common.hpp"

namespace dp {

enum class Activation : int { identity = 0, relu = 1, sigmoid = 2, tanh = 3 };

struct ActivationSpec {
    Activation kind = Activation::relu;
    double grad_at_zero = 0.0;  // ReLU'(0)
};

// Numerically stable logistic function: never exponentiates a large positive number.
template <typename T>
inline T sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
}

template <typename T>
inline T activate(const ActivationSpec& f, T z) {
    switch (f.kind) {
        case Activation::identity: return z;
        case Activation::relu: return z > T(0) ? z : T(0);
        case Activation::sigmoid: return sigmoid(z);
        case Activation::tanh: return std::tanh(z);
    }
    return z;
}

template <typename T>
inline T derivative(const ActivationSpec& f, T z, T a) {
    switch (f.kind) {
        case Activation::identity: return T(1);
        case Activation::relu: return z > T(0) ? T(1) : (z < T(0) ? T(0) : T(f.grad_at_zero));
        case Activation::sigmoid: return a * (T(1) - a);
        case Activation::tanh: return T(1) - a * a;
    }
    return T(1);
}

// A = f(Z), elementwise over `count` values.
template <typename T>
void activation_forward(T* A, const T* Z, idx count, const ActivationSpec& f, int n_threads) {
    const int nt = threads_for(count, n_threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (idx e = 0; e < count; ++e) A[e] = activate(f, Z[e]);  // split over elements
}

// dZ = dA . f'(Z), elementwise; dZ may alias dA.
template <typename T>
void activation_backward(T* dZ, const T* dA, const T* Z, const T* A, idx count,
                         const ActivationSpec& f, int n_threads) {
    const int nt = threads_for(count, n_threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (idx e = 0; e < count; ++e) dZ[e] = dA[e] * derivative(f, Z[e], A[e]);
}

}  // namespace dp
