"""Dropout and AlphaDropout (csrc/dropout.hpp): seeded masks both backends draw alike.

The mask is counter-based: each element's keep/drop is a pure function of (seed, epoch, batch,
layer, element index), so it needs no generator state, does not depend on the thread count, and
the backward pass can recompute it instead of storing it. With γ = 0x9E3779B97F4A7C15 (splitmix64's
increment) and mix64 splitmix64's output function (reference/mix64.py), all arithmetic mod 2^64:

    h = mix64(seed ⊕ 0x44524F504F555421)     the tag spells "DROPOUT!": a stream apart from
                                             shuffle_order's keys
    h = mix64(h + epoch · γ)                 epoch: as in shuffle_order, counted across fits
    h = mix64(h + batch · γ)                 batch: its index within the epoch, from 0
    h = mix64(h + layer · γ)                 layer: the hidden layer whose output is dropped, from 0
    u_e = mix64(h + (e + 1) · γ)             e: the element's row-major index within the batch's
                                             (rows × units) matrix; u_e is splitmix64's e-th
                                             output from state h
    keep_e = (u_e >> 11) · 2^-53 ≥ rate      a uniform double in [0, 1), exact in C++ and NumPy

Dropout is active in training only; prediction uses A unchanged. Dropout scales the kept units
by 1/(1 − rate), so each unit's expected training output equals A. AlphaDropout's affine
correction (Klambauer et al. 2017, as PyTorch's) keeps instead the mean 0 and variance 1 of
inputs that have them, as SELU's outputs do; a single unit's expected training output is
a·(1 − rate)·A (a below), not A.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import BoolArray, FloatArray
from ..activations import SELU_ALPHA, SELU_LAMBDA
from .mix64 import C1 as GAMMA
from .mix64 import MASK64, mix64

DROPOUT_TAG = 0x44524F504F555421  # b"DROPOUT!"

__all__ = ["DROPOUT_TAG", "alpha_dropout_backward", "alpha_dropout_coefficients",
           "alpha_dropout_forward", "dropout_backward", "dropout_forward", "dropout_mask",
           "dropout_stream"]


def _mix(x: int) -> int:
    return int(mix64(np.array([x & MASK64], dtype=np.uint64))[0])


def _check_counter(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= MASK64:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {value}")
    return int(value)


def _check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"rate must be a real number, got {type(rate).__name__}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    return float(rate)


def dropout_stream(seed: int, epoch: int, batch: int, layer: int) -> int:
    """h, the splitmix64 state of one (seed, epoch, batch, layer): see the module docstring."""
    h = _mix(_check_counter(seed, "seed") ^ DROPOUT_TAG)
    for value, name in ((epoch, "epoch"), (batch, "batch"), (layer, "layer")):
        h = _mix(h + _check_counter(value, name) * GAMMA)
    return h


def dropout_mask(shape: Sequence[int], rate: float, seed: int, epoch: int, batch: int,
                 layer: int, *, n_threads: int = 0) -> BoolArray:
    """The boolean keep-mask of the given shape: True where the element is kept. Each element is
    kept with probability 1 − rate, independently."""
    rate = _check_rate(rate)
    count = math.prod(shape)
    h = np.uint64(dropout_stream(seed, epoch, batch, layer))
    counters = (np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GAMMA)) + h  # wraps mod 2^64
    u = mix64(counters)
    uniform = (u >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (uniform >= rate).reshape(shape)


# -- inverted dropout (Srivastava et al. 2014, "Dropout", with the scaling moved to training) -----
# Kept elements are scaled by 1/(1 − rate), computed in float64 and rounded once to the array's
# dtype, so E[output] = input and prediction needs no change.


def _check(x: object, name: str, mask: object, rate: object) -> float:
    """The engine's argument rules: a float32/float64 ndarray, a bool mask of its shape."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a float32 or float64 numpy.ndarray, got {got}")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"mask must be a numpy.ndarray of dtype bool, got {got}")
    if mask.shape != x.shape:
        raise ValueError(f"mask must have the shape of {name}, {x.shape}, got {mask.shape}")
    return _check_rate(rate)


def _scale(rate: float, dtype: np.dtype[np.floating[Any]]) -> np.floating[Any]:
    return np.dtype(dtype).type(1.0 / (1.0 - _check_rate(rate)))


def dropout_forward(A: FloatArray, mask: BoolArray, rate: float, *,
                    n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """A ⊙ mask / (1 − rate)."""
    _check(A, "A", mask, rate)
    return np.where(mask, A * _scale(rate, A.dtype), A.dtype.type(0))


def dropout_backward(dA: FloatArray, mask: BoolArray, rate: float, *,
                     n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """dZ = dA ⊙ mask / (1 − rate): the forward is linear in A."""
    _check(dA, "dA", mask, rate)
    return np.where(mask, dA * _scale(rate, dA.dtype), dA.dtype.type(0))


# -- AlphaDropout: SELU's partner (Klambauer et al. 2017, "Self-Normalizing Neural Networks",
# section "New Dropout Technique"). A dropped unit is set to SELU's saturation value
# α' = −λα instead of 0, and the result is mapped by an affine a·x + b chosen so that inputs of
# mean 0 and variance 1 keep mean 0 and variance 1. With q = 1 − rate the keep probability:
#     a = (q + α'² q (1 − q))^(−1/2),   b = −a (1 − q) α'
# Forward: a·(mask ? x : α') + b.  Backward: a·mask·dy.


def alpha_dropout_coefficients(rate: float) -> tuple[float, float, float]:
    """(a, b, α') in float64 for dropout rate `rate`."""
    q = 1.0 - _check_rate(rate)
    alpha_p = -SELU_LAMBDA * SELU_ALPHA
    a = (q + alpha_p * alpha_p * q * (1.0 - q)) ** -0.5
    b = -a * (1.0 - q) * alpha_p
    return a, b, alpha_p


def alpha_dropout_forward(A: FloatArray, mask: BoolArray, rate: float, *,
                          n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """a·A + b where kept, a·α' + b where dropped (coefficients rounded once to A's dtype)."""
    _check(A, "A", mask, rate)
    a, b, alpha_p = alpha_dropout_coefficients(rate)
    t = A.dtype.type
    return np.where(mask, t(a) * A + t(b), t(a * alpha_p + b))


def alpha_dropout_backward(dA: FloatArray, mask: BoolArray, rate: float, *,
                           n_threads: int = 0, check_finite: bool = True) -> FloatArray:

    """dZ = a·dA where kept, 0 where dropped (the dropped value is a constant)."""
    _check(dA, "dA", mask, rate)
    a, _, _ = alpha_dropout_coefficients(rate)
    return np.where(mask, dA.dtype.type(a) * dA, dA.dtype.type(0))
