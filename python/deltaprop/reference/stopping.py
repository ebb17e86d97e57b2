"""scikit-learn's stopping rules (csrc/stopping.hpp): the plateau of the training loss, or with
early stopping, of a score on held-out rows, and what an epoch leaves of those rows (their
loss, their score, the parameters of the best score so far).

The score is scikit-learn's _score read from the network's outputs in their encoding: accuracy
for softmax outputs (np.argmax's class) and sigmoid outputs (above 0.5 reads as 1; a multilabel
row is right when all its labels are), R² averaged over the outputs for identity and exp
outputs (NaN once a prediction is not finite). A classifier of one class predicts it whatever
its output, so every row is right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray
from .loss import output_loss_delta
from .mlp import NetSpec, mlp_forward

__all__ = ["HeldOut", "Plateau", "evaluate_rows", "score_outputs"]


class Plateau:
    """An epoch whose value (the training loss, or a negated score) is not below
    ``best - tol`` adds to ``count``, any other resets it; stop once ``count`` exceeds
    ``patience``. A NaN compares false both ways, as in scikit-learn."""

    def __init__(self, tol: float, patience: float, best: float = np.inf, count: int = 0):
        self.tol, self.patience, self.best, self.count = tol, patience, best, count
        self.improved = False  # the last value recorded was a new best

    def record(self, value: float) -> bool:
        """Records one epoch's value; True when training should stop."""
        self.count = self.count + 1 if value > self.best - self.tol else 0
        self.improved = value < self.best
        if self.improved:
            self.best = value
        return self.count > self.patience


def evaluate_rows(params: Sequence[FloatArray], X: FloatArray, Y: FloatArray, spec: NetSpec,
                  sample_weight: npt.ArrayLike | None = None) -> tuple[float, FloatArray]:
    """(loss, A): mlp_loss_and_gradients' loss without the backward pass, and the output
    activations of the rows of X."""
    Zs, _ = mlp_forward(params, X, spec)
    loss, A, _ = output_loss_delta(Zs[-1], Y, spec.output, sample_weight=sample_weight,
                                   **spec.loss_options())
    return loss, A


def score_outputs(A: FloatArray, Y: FloatArray, sample_weight: npt.ArrayLike | None,
                  output: str, one_class: bool = False) -> float:
    """scikit-learn's early-stopping score of rows with outputs A and encoded targets Y, of a
    classifier of one class when ``one_class``."""
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if output in ("identity", "exp"):
        if len(A) < 2 or not np.isfinite(A).all():
            return float("nan")
        y, a = Y.astype(np.float64), A.astype(np.float64)
        weight = np.ones(len(y)) if w is None else w
        mean = (weight[:, None] * y).sum(axis=0) / weight.sum()
        numerator = (weight[:, None] * (y - a) ** 2).sum(axis=0)
        denominator = (weight[:, None] * (y - mean) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(numerator == 0, 1.0,
                              np.where(denominator == 0, 0.0, 1 - numerator / denominator))
        return float(scores.mean())
    if one_class:
        right = np.ones(len(A), dtype=bool)
    elif output == "softmax":
        right = A.argmax(axis=1) == Y.argmax(axis=1)
    else:
        right = ((A > 0.5) == (Y > 0.5)).all(axis=1)
    return float(np.average(right, weights=w))


@dataclass
class HeldOut:
    """Early stopping's held-out rows, the parameter list the best epoch is copied to, and
    per epoch of a train_epochs call the rows' loss and score."""
    X: FloatArray
    Y: FloatArray
    sample_weight: npt.NDArray[np.float64] | None
    best: Sequence[FloatArray]
    losses: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    one_class: bool = False  # a classifier of one class (score_outputs)

    def record(self, e: int, params: Sequence[FloatArray], spec: NetSpec,
               plateau: Plateau) -> bool:
        """After epoch e: its loss and score; plateau records the score (negated: it keeps
        the lowest value) and the parameters are copied where it improved. True: stop."""
        self.losses[e], A = evaluate_rows(params, self.X, self.Y, spec, self.sample_weight)
        self.scores[e] = score_outputs(A, self.Y, self.sample_weight, spec.output,
                                       self.one_class)
        stop = plateau.record(-float(self.scores[e]))
        if plateau.improved:
            for best, p in zip(self.best, params):
                np.copyto(best, p)
        return stop
