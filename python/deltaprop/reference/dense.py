"""One dense layer (csrc/dense.hpp), forward then backward:

    forward:           Z = X W + b,  A = f(Z)
    weight gradients:  dW = Xᵀ dZ,   db = Σ_rows dZ        ("gradient = error × input", seed 003)
    delta propagation: dZ_prev = (dZ Wᵀ) ⊙ f'(Z_prev)
"""

from __future__ import annotations

from .activations import activation_derivative, activation_forward


def dense_forward(X, W, b, activation="relu", grad_at_zero=0.0, *, n_threads=0,
                  check_finite=True):
    Z = X @ W + b
    return Z, activation_forward(Z, activation)


def dense_backward(dZ, X, *, n_threads=0, check_finite=True):
    return X.T @ dZ, dZ.sum(axis=0)


def delta_propagate(dZ, W, Z_prev, activation="relu", grad_at_zero=0.0, *, n_threads=0,
                    check_finite=True):
    return (dZ @ W.T) * activation_derivative(Z_prev, activation, grad_at_zero)
