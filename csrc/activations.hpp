// Hidden-layer activations: one struct each, its forward f(z) beside its derivative f'.
//
// The derivative is computed from the layer's output a = f(z) wherever an identity gives it
// (tanh: 1 - a^2, sigmoid: a(1 - a), ReLU: a > 0), from z otherwise. Near saturation these
// identities cancel, leaving an absolute error of about one rounding of a (activations.py). ReLU'(0) is a convention
// (seed 000): `grad_at_zero` is 0 (PyTorch, scikit-learn), 0.5 or 1.
// Loops dispatch on the kind once (visit) and then run a loop the compiler can vectorise.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common.hpp"

namespace dp {

// The ReLU family of the seeds and the classic squashing functions. Names, defaults and the
// validation of parameters live in python/deltaprop/activations.py (one table for both
// backends); the bindings hand the engine a resolved spec.
enum class Activation : int {
    identity, relu, leaky_relu, elu, selu, softplus, sigmoid, tanh, abs, swish, silu, mish, necro_relu,
    prelu, acon  // learned parameters only (learned.hpp)
};

struct ActivationSpec {
    Activation kind = Activation::relu;
    double grad_at_zero = 0.0;     // f'(0) for relu and necro_relu
    double alpha = 0.0;            // leaky_relu's slope below 0; elu's alpha
    double beta = 1.0;             // swish's beta (fixed)
    double surrogate_slope = 0.0;  // necro_relu's backward slope below 0
    bool learnable = false;        // swish: beta is a learned parameter
};

// prelu's slopes, acon's p1, p2, beta and a learnable swish's beta are parameters passed with
// each call (learned.hpp), so these never go through the fused, parameter-free paths below.
inline bool is_learned(const ActivationSpec& f) {
    return f.kind == Activation::prelu || f.kind == Activation::acon ||
           (f.kind == Activation::swish && f.learnable);
}

// SELU's constants (Klambauer et al. 2017, eq. 14; seed 003 misprints alpha).
constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSeluAlpha = 1.6732632423543772;

// Backward reads one stored matrix per layer: A = f(Z) where the derivative follows from it,
// Z otherwise (the table in activations.py). Storing only what the derivative needs saves a pass
// over memory in the forward.
inline bool derivative_needs_z(const ActivationSpec& f) {
    switch (f.kind) {
        case Activation::relu: return f.grad_at_zero != 0.0;  // A is 0 for z = 0 and z < 0 alike
        case Activation::necro_relu: return f.grad_at_zero != f.surrogate_slope;
        case Activation::swish: case Activation::silu: case Activation::mish: case Activation::abs:
        case Activation::prelu: case Activation::acon:
            return true;
        default: return false;
    }
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

template <typename T>
struct LeakyReluFn {  // alpha >= 0, so A keeps the sign of z; f'(0) = alpha, as PyTorch
    T alpha;
    T forward(T z) const { return z > T(0) ? z : alpha * z; }
    T derivative(T a) const { return a > T(0) ? T(1) : alpha; }
};

template <typename T>
struct EluFn {  // below 0, f' = alpha e^z = A + alpha (seed 003); f'(0) = alpha
    T alpha;
    T forward(T z) const { return z > T(0) ? z : alpha * std::expm1(z); }
    T derivative(T a) const { return a > T(0) ? T(1) : a + alpha; }
};

template <typename T>
struct SeluFn {  // lambda . elu_alpha, with the paper's fixed constants
    T forward(T z) const { return T(kSeluLambda) * (z > T(0) ? z : T(kSeluAlpha) * std::expm1(z)); }
    T derivative(T a) const { return a > T(0) ? T(kSeluLambda) : a + T(kSeluLambda * kSeluAlpha); }
};

template <typename T>
struct SoftplusFn {  // f' = sigma(z) = 1 - e^-A, written with expm1 so a tiny A keeps its digits
    T forward(T z) const { return std::max(z, T(0)) + std::log1p(std::exp(-std::fabs(z))); }
    T derivative(T a) const { return -std::expm1(-a); }
};

template <typename T>
struct AbsFn {  // from Z: A has lost the sign; f'(0) = 0
    T forward(T z) const { return std::fabs(z); }
    T derivative(T z) const { return z > T(0) ? T(1) : (z < T(0) ? T(-1) : T(0)); }
};

template <typename T>
struct SwishFn {  // z . sigma(beta z), from Z; silu is beta = 1
    T beta;
    T forward(T z) const { return z * sigmoid(beta * z); }
    T derivative(T z) const {
        const T s = sigmoid(beta * z);
        return s * (T(1) + beta * z * (T(1) - s));
    }
};

// tanh(softplus(z)) without overflow: with n = e^z (e^z + 2) it is n / (n + 2); for z > 0,
// dividing through by e^2z, (1 + 2u) / (1 + 2u + 2u^2) with u = e^-z.
template <typename T>
inline T tanh_softplus(T z) {
    if (z > T(0)) {
        const T u = std::exp(-z);
        return (T(1) + T(2) * u) / (T(1) + T(2) * u + T(2) * u * u);
    }
    const T e = std::exp(z), n = e * (e + T(2));
    return n / (n + T(2));
}

template <typename T>
struct MishFn {  // z . tanh(softplus(z)), from Z
    T forward(T z) const { return z * tanh_softplus(z); }
    T derivative(T z) const {
        const T t = tanh_softplus(z);
        return t + z * (T(1) - t * t) * sigmoid(z);
    }
};

template <typename T>
struct NecroReluFn {  // seed 002: ReLU forward, a leaky surrogate backward so no unit can die
    T slope, grad_at_zero;
    T forward(T z) const { return z > T(0) ? z : T(0); }
    T derivative(T s) const { return s > T(0) ? T(1) : (s < T(0) ? slope : grad_at_zero); }
};

// Calls body(fn) with the struct of f's kind: one switch per call, not per element. Learned
// activations have no such struct (their parameters vary per unit): std::invalid_argument,
// thrown before any parallel region, and the bindings never let one get this far.
template <typename T, typename Body>
void visit(const ActivationSpec& f, Body&& body) {
    if (is_learned(f)) throw std::invalid_argument("a learned activation needs its parameters (learned.hpp)");
    switch (f.kind) {
        case Activation::identity: body(IdentityFn<T>{}); return;
        case Activation::relu: body(ReluFn<T>{T(f.grad_at_zero)}); return;
        case Activation::sigmoid: body(SigmoidFn<T>{}); return;
        case Activation::tanh: body(TanhFn<T>{}); return;
        case Activation::leaky_relu: body(LeakyReluFn<T>{T(f.alpha)}); return;
        case Activation::elu: body(EluFn<T>{T(f.alpha)}); return;
        case Activation::selu: body(SeluFn<T>{}); return;
        case Activation::softplus: body(SoftplusFn<T>{}); return;
        case Activation::abs: body(AbsFn<T>{}); return;
        case Activation::swish: body(SwishFn<T>{T(f.beta)}); return;
        case Activation::silu: body(SwishFn<T>{T(1)}); return;
        case Activation::mish: body(MishFn<T>{}); return;
        case Activation::necro_relu: body(NecroReluFn<T>{T(f.surrogate_slope), T(f.grad_at_zero)}); return;
        case Activation::prelu: case Activation::acon: return;  // is_learned: thrown above
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
