// Hidden-layer activations: one struct each, its forward f(z) beside its derivative f'.
//
// The derivative is computed from the layer's output a = f(z) wherever that is exact
// (tanh: 1 - a^2, sigmoid: a(1 - a), ReLU: a > 0), from z otherwise. ReLU'(0) is a convention
// (seed 000): `grad_at_zero` is 0 (PyTorch, scikit-learn), 0.5 or 1.
// Loops dispatch on the kind once (visit) and then run a loop the compiler can vectorise.
#pragma once

#include <cmath>

#include "common.hpp"

namespace dp {

enum class Activation : int { identity = 0, relu = 1, sigmoid = 2, tanh = 3 };

struct ActivationSpec {
    Activation kind = Activation::relu;
    double grad_at_zero = 0.0;  // ReLU'(0)
};

// Backward reads one stored matrix per layer: A = f(Z), from which every derivative here is
// exact, except ReLU with ReLU'(0) != 0, which needs Z (A is 0 for z = 0 and z < 0 alike).
// Storing only what the derivative needs saves a pass over memory in the forward.
inline bool derivative_needs_z(const ActivationSpec& f) {
    return f.kind == Activation::relu && f.grad_at_zero != 0.0;
}

// Numerically stable logistic function: never exponentiates a large positive number.
template <typename T>
inline T sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
}

// Each: forward(z), derivative(s) with s the stored value (see derivative_needs_z).
template <typename T>
struct IdentityFn {
    T forward(T z) const { return z; }
    T derivative(T) const { return T(1); }
};

template <typename T>
struct ReluFn {
    T grad_at_zero;
    T forward(T z) const { return z > T(0) ? z : T(0); }
    // From Z: the unit step with its convention at 0. From A (when ReLU'(0) = 0): A > 0.
    T derivative(T s) const { return s > T(0) ? T(1) : (s < T(0) ? T(0) : grad_at_zero); }
};

template <typename T>
struct SigmoidFn {
    T forward(T z) const { return sigmoid(z); }
    T derivative(T a) const { return a * (T(1) - a); }  // at most 1/4: seed 001's vanishing factor
};

template <typename T>
struct TanhFn {
    T forward(T z) const { return std::tanh(z); }
    T derivative(T a) const { return T(1) - a * a; }
};

// Calls body(fn) with the struct of f's kind: one switch per call, not per element.
template <typename T, typename Body>
void visit(const ActivationSpec& f, Body&& body) {
    switch (f.kind) {
        case Activation::identity: body(IdentityFn<T>{}); return;
        case Activation::relu: body(ReluFn<T>{T(f.grad_at_zero)}); return;
        case Activation::sigmoid: body(SigmoidFn<T>{}); return;
        case Activation::tanh: body(TanhFn<T>{}); return;
    }
}

// A = f(Z), elementwise over `count` values; A may alias Z.
template <typename T>
void activation_forward(T* A, const T* Z, idx count, const ActivationSpec& f, int n_threads) {
    const int nt = threads_for(count, n_threads);
    visit<T>(f, [&](auto fn) {  // split over elements
        parallel_for(count, nt, [&](idx e) { A[e] = fn.forward(Z[e]); });
    });
}

// dZ = dA . f'(Z), elementwise, with S the stored matrix; dZ may alias dA.
template <typename T>
void activation_backward(T* dZ, const T* dA, const T* S, idx count, const ActivationSpec& f,
                         int n_threads) {
    const int nt = threads_for(count, n_threads);
    visit<T>(f, [&](auto fn) {  // split over elements
        parallel_for(count, nt, [&](idx e) { dZ[e] = dA[e] * fn.derivative(S[e]); });
    });
}

}  // namespace dp
