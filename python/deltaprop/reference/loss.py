"""Output layers fused with their losses (csrc/loss.hpp).

Each output has its canonical loss, so the delta is dZ = (A - Y) / N for all three. The loss is
averaged over the N rows and summed over outputs:

    identity + squared error:     C = 1/(2N) Σ (A - Y)²
    sigmoid + binary cross-entropy: C = 1/N Σ softplus(z) - y z     (= -y log p - (1-y) log(1-p))
    softmax + cross-entropy:      C = 1/N Σ_n [lse(z_n) Σ_k y_nk - Σ_k y_nk z_nk]
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid

OUTPUTS = ("identity", "sigmoid", "softmax")


def softmax(Z):
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def softplus(Z):
    """log(1 + e^z) without overflow."""
    return np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z)))


def output_forward(Z, output="softmax", *, n_threads=0):
    if output == "identity":
        return Z.copy()
    if output == "sigmoid":
        return sigmoid(Z)
    if output == "softmax":
        return softmax(Z)
    raise ValueError(f"unknown output {output!r}; expected one of {', '.join(map(repr, OUTPUTS))}")


def output_loss_delta(Z, Y, output="softmax", *, n_threads=0, check_finite=True):
    """(loss, A, dZ): A = out(Z), the mean loss over rows (a Python float), dZ = (A - Y) / N."""
    A = output_forward(Z, output)
    z, y = Z.astype(np.float64), Y.astype(np.float64)  # losses are summed in float64, as in C++
    if output == "identity":
        row_loss = 0.5 * ((z - y) ** 2).sum(axis=1)
    elif output == "sigmoid":
        row_loss = (softplus(z) - y * z).sum(axis=1)
    else:
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
        row_loss = lse * y.sum(axis=1) - (y * z).sum(axis=1)
    n = Z.shape[0]
    dZ = (A - Y) * Z.dtype.type(1 / n)
    return float(row_loss.sum() / n), A, dZ
