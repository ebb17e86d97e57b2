"""One dense layer (csrc/dense.hpp), forward then backward:

    forward:           Z = X W + b,  A = f(Z)
    weight gradients:  dW = Xᵀ dZ,   db = Σ_rows dZ        ("gradient = error × input")
    delta propagation: dZ_prev = (dZ Wᵀ) ⊙ f'(Z_prev)
"""

from __future__ import annotations

from .._typing import ActivationArg, FloatArray
from .activations import activation_derivative, activation_forward


def dense_forward(X: FloatArray, W: FloatArray, b: FloatArray, activation: ActivationArg = "relu",
                  grad_at_zero: float = 0.0, *, n_threads: int = 0,
                  check_finite: bool = True) -> tuple[FloatArray, FloatArray]:
    Z = X @ W + b
    return Z, activation_forward(Z, activation)


def dense_backward(dZ: FloatArray, X: FloatArray, *, n_threads: int = 0,
                   check_finite: bool = True) -> tuple[FloatArray, FloatArray]:
    return X.T @ dZ, dZ.sum(axis=0)


def delta_propagate(dZ: FloatArray, W: FloatArray, Z_prev: FloatArray,
                    activation: ActivationArg = "relu", grad_at_zero: float = 0.0, *,
                    n_threads: int = 0, check_finite: bool = True) -> FloatArray:

    return (dZ @ W.T) * activation_derivative(Z_prev, activation, grad_at_zero)
