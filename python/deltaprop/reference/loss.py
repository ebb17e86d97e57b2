"""Output layers fused with their losses (csrc/loss.hpp).

The loss is a weighted mean over the N rows of the per-row loss, summed over the outputs:

    C = Σ_n w_n Σ_k ℓ(z_nk, y_nk),   w_n = 1/N, or s_n / Σ_m s_m with sample weights s

(the objective of scikit-learn 1.7+'s MLP with sample_weight), and the output delta is
dZ_nk = w_n ∂ℓ/∂z_nk. Per output, its losses (the first is the default):

    identity  squared_error   ℓ = ½ r²,  r = a − y                    ∂ℓ/∂z = r
              absolute_error  ℓ = |r|                                 ∂ℓ/∂z = sign(r), 0 at r = 0
              huber           ℓ = ½ r² for |r| ≤ δ, δ(|r| − ½δ) beyond  ∂ℓ/∂z = clip(r, −δ, δ)
    sigmoid   binary_log_loss ℓ = softplus(z) − y z  (= −y log p − (1−y) log(1−p))   ∂ℓ/∂z = p − y
    softmax   log_loss        row: Σ_k y_k (lse(z) − z_k)             ∂/∂z = a − y  (Σ_k y_k = 1)
    exp       poisson         ℓ = e^z − y z + y log y − y             ∂ℓ/∂z = e^z − y

Poisson's ℓ is the half Poisson deviance y log(y/a) − y + a, a = e^z (scikit-learn's): 0 where
the prediction is exact, y log y taken as 0 at y = 0. The negative log-likelihood −log P(y; a)
is ℓ + log(y!) − (y log y − y): the two differ by constants of the data, so their gradients agree.
Identity losses are summed over outputs, as deltaprop's squared error always was; scikit-learn's
½ mean squared error also divides by the number of outputs (``mean_over_outputs``), and its log
losses clip the probabilities (``clip_probabilities``): values only, for its drop-in's loss curve.

The names are scikit-learn's (its ``_base.LOSS_FUNCTIONS``) where it has the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray
from ..validation import check_sample_weight
from .activations import sigmoid, softplus

LOSSES = {
    "identity": ("squared_error", "absolute_error", "huber"),
    "sigmoid": ("binary_log_loss",),
    "softmax": ("log_loss",),
    "exp": ("poisson",),
}

OUTPUTS = tuple(LOSSES)

__all__ = ["LOSSES", "OUTPUTS", "output_forward", "output_loss_delta", "softmax", "softplus"]


def softmax(Z: FloatArray) -> FloatArray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    out: FloatArray = E / E.sum(axis=1, keepdims=True)
    return out


def _check_output(output: str) -> None:
    if output not in LOSSES:
        raise ValueError(f"unknown output {output!r}; expected one of "
                         f"{', '.join(map(repr, LOSSES))}")


def output_forward(Z: FloatArray, output: str = "softmax", *, n_threads: int = 0,
                   check_finite: bool = True) -> FloatArray:
    _check_output(output)
    if output == "identity":
        return Z.copy()
    if output == "sigmoid":
        return sigmoid(Z)
    if output == "exp":
        return np.exp(Z)
    return softmax(Z)


def _row_weights(sample_weight: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float64] | None:
    """w_n (float64): None (that is, 1/N), or s_n / Σ s."""
    s = check_sample_weight(sample_weight, n)
    return None if s is None else s / s.sum()


# scikit-learn's log losses (sklearn/neural_network/_base.py) clip each probability to
# [eps, 1 − eps], eps of the dtype, before its log; its drop-in reports the same values.
def _neg_log_bounds(dtype: np.dtype[Any]) -> tuple[float, float]:
    """The bounds of −log p for p in [eps, 1 − eps]."""
    eps = float(np.finfo(dtype).eps)
    return float(-np.log1p(-eps)), float(-np.log(eps))


def _clipped_binary_log_loss(A: FloatArray, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """−(y log p + (1 − y) log(1 − p)) from the stored p, clipped: where p nears 1, its 1 − p
    keeps only p's last digits, as scikit-learn's does."""
    eps = float(np.finfo(A.dtype).eps)
    p = np.clip(A.astype(np.float64), eps, 1 - eps)
    out: npt.NDArray[np.float64] = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return out


def _elementwise(z: npt.NDArray[np.float64], y: npt.NDArray[np.float64], loss: str,
                 huber_delta: float,
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """(ℓ, ∂ℓ/∂z) per element, in float64, for the elementwise losses."""
    r = z - y
    if loss == "squared_error":
        return 0.5 * r * r, None  # the canonical link: a − y, computed in the array's dtype
    if loss == "absolute_error":
        return np.abs(r), np.sign(r)
    if loss == "huber":
        small = np.abs(r) <= huber_delta
        value = np.where(small, 0.5 * r * r, huber_delta * (np.abs(r) - 0.5 * huber_delta))
        return value, np.clip(r, -huber_delta, huber_delta)
    if loss == "binary_log_loss":
        # softplus(z) − y z, grouped as C++ does so that a label matching a large |z| leaves
        # the small log term alone: softplus(30) − 30 keeps 1.3% of e^-30's digits
        return (np.maximum(z, 0) - y * z) + np.log1p(np.exp(-np.abs(z))), None
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)  # poisson
    return (np.exp(z) - y * z) + (ylogy - y), None


def output_loss_delta(Z: FloatArray, Y: FloatArray, output: str = "softmax", *,
                      loss: str | None = None, sample_weight: npt.ArrayLike | None = None,
                      huber_delta: float = 1.0, mean_over_outputs: bool = False,
                      clip_probabilities: bool = False, n_threads: int = 0,
                      check_finite: bool = True,
                      ) -> tuple[float, FloatArray, FloatArray]:

    """(loss, A, dZ): A = out(Z), the weighted mean loss over rows (a Python float), and
    dZ = w_n ∂ℓ/∂z (= (A − Y)/N for each output's canonical loss without weights).
    ``mean_over_outputs`` divides each row's loss value, not its gradient, by the number of
    outputs: scikit-learn's squared error reports that value while stepping along the sum's
    gradient, and its drop-in must report the same loss curve. ``clip_probabilities`` does the
    same for its log losses, whose values clip each probability to [eps, 1 − eps] (eps of Z's
    dtype) before the log: each −log p is bounded to [−log(1 − eps), −log eps]."""
    _check_output(output)
    if loss is not None and not isinstance(loss, str):
        raise TypeError(f"loss must be a str, got {type(loss).__name__}")
    if isinstance(huber_delta, bool) or not isinstance(huber_delta, (int, float, np.floating)):
        raise TypeError(f"huber_delta must be a real number, got {type(huber_delta).__name__}")
    for name, flag in (("mean_over_outputs", mean_over_outputs),
                       ("clip_probabilities", clip_probabilities)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    loss = LOSSES[output][0] if loss is None else loss
    if loss not in LOSSES[output]:
        raise ValueError(f"loss {loss!r} does not go with output {output!r}; expected one of "
                         f"{', '.join(map(repr, LOSSES[output]))}")
    if not (np.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be finite and > 0, got {huber_delta!r}")
    if loss == "poisson" and (np.asarray(Y) < 0).any():
        raise ValueError("Y must be non-negative for the poisson loss")
    n = Z.shape[0]
    w = _row_weights(sample_weight, n)
    A = output_forward(Z, output)
    z, y = Z.astype(np.float64), Y.astype(np.float64)  # losses are summed in float64, as in C++
    grad: FloatArray | None

    if output == "softmax":
        zmax = z.max(axis=1)
        # −log p = (max − z) + log(1 + rest), rest the sum of e^(z − max) but the max's own 1:
        # (max + log Σ) − z cancels large logits' max, and rounding 1 + rest first loses rest
        rest = np.exp(z - zmax[:, None])
        rest[np.arange(n), z.argmax(axis=1)] = 0
        neg_log_p = (zmax[:, None] - z) + np.log1p(rest.sum(axis=1))[:, None]
        if clip_probabilities:
            neg_log_p = np.clip(neg_log_p, *_neg_log_bounds(Z.dtype))
        value, grad = y * neg_log_p, None
    elif output == "sigmoid" and clip_probabilities:
        value, grad = _clipped_binary_log_loss(A, y), None
    else:
        value, grad = _elementwise(z, y, loss, huber_delta)
    row_loss = value.sum(axis=1)
    grad = A - Y if grad is None else grad.astype(Z.dtype)
    if mean_over_outputs:
        row_loss = row_loss / Z.shape[1]
    if w is None:
        dZ = grad * Z.dtype.type(1 / n)
        return float(row_loss.sum() / n), A, dZ
    # a row of weight 0 is absent: no loss and no delta, even where its loss is infinite
    absent = w == 0
    with np.errstate(invalid="ignore"):  # inf x 0 in an absent row, zeroed next
        dZ = grad * w.astype(Z.dtype)[:, None]
    dZ[absent] = 0
    return float((w * np.where(absent, 0.0, row_loss)).sum()), A, dZ
