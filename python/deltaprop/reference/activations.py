"""Hidden-layer activations (csrc/activations.hpp): each forward f(z) beside its derivative.

A derivative takes z and a = f(z) and uses whichever is exact and cheapest: tanh' = 1 - a²,
sigmoid' = a(1 - a), ReLU' = the unit step of z, whose value at 0 is a convention (seed 000):
``grad_at_zero`` = 0 (PyTorch, scikit-learn), 0.5 or 1.
"""

from __future__ import annotations

import numpy as np


def identity(z):
    return z.copy()


def identity_derivative(z, a, grad_at_zero=0.0):
    return np.ones_like(z)


def relu(z):
    return np.maximum(z, 0)


def relu_derivative(z, a, grad_at_zero=0.0):
    """The unit step: 1 for z > 0, 0 for z < 0, ``grad_at_zero`` at z == 0."""
    step = (z > 0).astype(z.dtype)
    step[z == 0] = grad_at_zero
    return step


def sigmoid(z):
    """1 / (1 + e^-z), never exponentiating a large positive number."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype)


def sigmoid_derivative(z, a, grad_at_zero=0.0):
    return a * (1 - a)  # at most 0.25: the vanishing factor of seed 001


def tanh(z):
    return np.tanh(z)


def tanh_derivative(z, a, grad_at_zero=0.0):
    return 1 - a * a


ACTIVATIONS = {
    "identity": (identity, identity_derivative),
    "relu": (relu, relu_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "logistic": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
}


def _pair(activation):
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        known = ", ".join(repr(name) for name in ACTIVATIONS)
        raise ValueError(f"unknown activation {activation!r}; expected one of {known}") from None


def activation_forward(Z, activation="relu", *, n_threads=0, check_finite=True):
    """A = f(Z), elementwise."""
    forward, _ = _pair(activation)
    return forward(Z)


def activation_backward(dA, Z, activation="relu", grad_at_zero=0.0, *, n_threads=0,
                        check_finite=True):
    """dZ = dA * f'(Z), elementwise."""
    forward, derivative = _pair(activation)
    return dA * derivative(Z, forward(Z), grad_at_zero)


def activation_derivative(Z, activation="relu", grad_at_zero=0.0, *, n_threads=0,
                          check_finite=True):
    """f'(Z), elementwise."""
    forward, derivative = _pair(activation)
    return derivative(Z, forward(Z), grad_at_zero)


def relu_forward(Z, *, n_threads=0, check_finite=True):
    """ReLU(Z) = max(Z, 0)."""
    return relu(Z)


def relu_backward(dA, Z, grad_at_zero=0.0, *, n_threads=0, check_finite=True):
    """dZ = dA · step(Z): the ReLU mask, with ReLU'(0) = grad_at_zero."""
    return dA * relu_derivative(Z, None, grad_at_zero)


def relu_step(Z, grad_at_zero=0.0, *, n_threads=0, check_finite=True):
    """ReLU'(Z), the unit step: 1 where Z > 0, 0 where Z < 0, grad_at_zero where Z == 0."""
    return relu_derivative(Z, None, grad_at_zero)
