"""The epoch loop (csrc/train.hpp): order the samples, cut batches, forward, loss, backward,
update. The C++ engine runs the same loop without the GIL; this one is the readable version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray
from .health import HealthAccumulator, samples_norms
from .mix64 import C1, C2, MASK64, mix64
from .mlp import NetSpec, Trace, mlp_loss_and_gradients
from .optim import (
    adam_step,
    add_l2,
    clip_by_global_norm,
    l2_penalty,
    nesterov_step,
    sgd_momentum_step,
)
from .stopping import HeldOut, Plateau

OPTIMIZERS = ("sgd", "nesterov", "adam")

def shuffle_order(n: int, seed: int, epoch: int) -> npt.NDArray[np.intp]:
    """The sample order of epoch ``epoch``: argsort of key_i = mix64(seed·C1 + epoch·C2 + i),
    ties broken by index. The C++ engine computes exactly the same order."""
    base = np.uint64((seed * C1 + epoch * C2) & MASK64)
    keys = mix64(base + np.arange(n, dtype=np.uint64))
    return np.argsort(keys, kind="stable")


def train_epoch(params: Sequence[FloatArray], state1: Sequence[FloatArray],
                state2: Sequence[FloatArray] | None, X: FloatArray, Y: FloatArray,
                spec: NetSpec, sample_weight: npt.NDArray[np.float64] | None = None, *,
                order: npt.NDArray[np.intp] | None = None, batch_size: int, lr: float,
                momentum: float = 0.0, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                optimizer: str = "sgd", beta_1: float = 0.9, beta_2: float = 0.999,
                epsilon: float = 1e-8, alpha: float = 0.0, clip_norm: float = 0.0,
                step: int = 0,
                health: npt.NDArray[np.float64] | None = None) -> tuple[float, int]:
    """One epoch of minibatch training of the network ``spec`` (mlp.NetSpec), updating the
    flat lists ``params`` and the optimizer state in place.

    Per batch: forward and backward; with ``alpha`` the L2 term ½α‖W‖²/rows joins the loss and
    (α/rows)·W the weight gradients; with ``clip_norm`` the gradients are clipped by global norm;
    then one step of ``optimizer``: "sgd" (momentum in scikit-learn's form), "nesterov", or
    "adam" (t counts batches trained from ``step`` + 1; its second moment is ``state2``).
    ``state1`` is the velocity or Adam's first moment. Returns (the epoch's mean loss: each
    batch's loss before its update, weighted by its rows, the rows trained on: skipped batches
    do not count; Adam's t after the epoch: ``step`` plus the steps taken).

    With ``sample_weight`` (scikit-learn 1.7+'s objective), a batch's loss is
    Σ s_n ℓ_n / Σ s_n + ½α‖W‖² / Σ s_n, its rows' sum of weights taking the place of their
    count; the epoch's mean still weights batches by rows, as scikit-learn's loss_curve_ does.
    A batch whose weights are all zero carries nothing to learn from and is skipped, taking no
    step, as if its rows were absent (its L2 term alone would divide by zero). Dropout masks
    are drawn from (seed, epoch, batch index).
    ``order`` (n row indices) sets the order the rows are read in; without it, ``shuffle``
    decides between shuffle_order and stored order.
    ``health``, a (6, layers) array, receives the epoch's gradient health (health.py)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if optimizer == "adam" and state2 is None:
        raise ValueError("adam needs its second moment: pass state2, one array per parameter")
    n = X.shape[0]
    batch = min(batch_size, n)
    if order is None:
        order = shuffle_order(n, seed, epoch) if shuffle else np.arange(n)
    weights = spec.weight_indices()  # L2 decays the weights only
    # only adam reads state2; the None placeholders the other optimizers zip over are never read
    state2 = cast("Sequence[FloatArray]", state2 if optimizer == "adam" else [None] * len(params))
    total, trained, t = 0.0, 0, step
    record = None if health is None else HealthAccumulator(spec)
    for index, start in enumerate(range(0, n, batch)):
        rows = order[start:start + batch]
        weight = None if sample_weight is None else sample_weight[rows]
        size = len(rows) if weight is None else float(weight.sum())
        if size == 0:
            continue
        trace: Trace = {}

        loss, grads = mlp_loss_and_gradients(params, X[rows], Y[rows], spec, weight,
                                             dropout_key=(seed, epoch, index),
                                             trace=trace)
        if alpha > 0:
            loss += l2_penalty([params[a] for a in weights], alpha, size)
            for a in weights:
                add_l2(grads[a], params[a], alpha, size)
        norms = record is not None and samples_norms(index)
        if record is not None:  # ∂C/∂W itself: before clipping scales it to clip_norm
            record.add_batch(trace, [grads[a] for a in weights], spec.unpack(params), norms)
        if clip_norm > 0:
            clip_by_global_norm(grads, clip_norm)
        total += loss * len(rows)
        trained += len(rows)
        t += 1
        before = [params[a].copy() for a in weights] if norms else None
        for p, s1, s2, g in zip(params, state1, state2, grads):
            if optimizer == "sgd":
                sgd_momentum_step(p, s1, g, lr, momentum)
            elif optimizer == "nesterov":
                nesterov_step(p, s1, g, lr, momentum)
            else:
                adam_step(p, s1, s2, g, t, lr, beta_1, beta_2, epsilon)
        if record is not None and before is not None:  # that is, if norms
            for l, (a, W_old) in enumerate(zip(weights, before)):
                record.add_update(l, params[a].astype(np.float64) - W_old, W_old)
    if record is not None and health is not None:  # the one is None when the other is
        record.write(health)

    return (total / trained if trained else 0.0), t


def train_epochs(params: Sequence[FloatArray], state1: Sequence[FloatArray],
                 state2: Sequence[FloatArray] | None, X: FloatArray, Y: FloatArray,
                 spec: NetSpec, sample_weight: npt.NDArray[np.float64] | None = None, *,
                 orders: npt.NDArray[np.intp] | None = None, lrs: Sequence[float],
                 losses: npt.NDArray[np.float64], batch_size: int, seed: int = 0, epoch: int = 0,
                 step: int = 0, tol: float = 0.0, n_iter_no_change: float = np.inf,
                 best_loss: float = np.inf, no_improvement_count: int = 0,
                 held_out: tuple[FloatArray, FloatArray, npt.ArrayLike | None,
                                 Sequence[FloatArray], npt.NDArray[np.float64],
                                 npt.NDArray[np.float64], bool] | None = None,
                 best_score: float = -np.inf, health: npt.NDArray[np.float64] | None = None,
                 **settings: Any) -> tuple[int, str, float, int, int, None]:
    """Up to ``len(lrs)`` epochs of train_epoch: epoch e reads the rows ``orders[e]`` (None:
    stored order) at learning rate ``lrs[e]`` and writes its loss to ``losses[e]``; Adam's t
    continues from ``step`` (each epoch from where the one before left it), the dropout epoch
    from ``epoch``. Stops after an epoch that leaves a parameter NaN or inf ("diverged") or
    whose loss makes the Plateau rule stop ("plateau").
    With ``held_out`` = (X, Y, sample_weight, best, losses, scores, one_class), early stopping's
    rows, the rule is on their score after each epoch (stopping.HeldOut), starting from
    ``best_score``.
    ``health``, an (epochs, 6, layers) array, receives each epoch's gradient health.
    Returns (epochs, stop, best_loss or best score, no_improvement_count, Adam's t after them,
    None), as the C++ engine does (its last entry is the exception that interrupted it)."""
    plateau = Plateau(tol, n_iter_no_change, best_loss, no_improvement_count)
    rows = None
    if held_out is not None:
        X_held, Y_held, w_held, best, held_losses, held_scores, one_class = held_out
        rows = HeldOut(X_held, Y_held,
                       None if w_held is None else np.asarray(w_held, dtype=np.float64),
                       best, held_losses, held_scores, one_class)
        plateau.best = -best_score  # the rule keeps the lowest value: the negated score
    stop, epochs = "done", 0
    for e, lr in enumerate(lrs):
        losses[e], step = train_epoch(params, state1, state2, X, Y, spec, sample_weight,
                                      order=None if orders is None else orders[e],
                                      batch_size=batch_size, lr=lr, shuffle=False, seed=seed,
                                      epoch=epoch + e, step=step,
                                      health=None if health is None else health[e], **settings)
        epochs += 1
        if not all(np.isfinite(p).all() for p in params):
            stop = "diverged"
            break
        if (plateau.record(float(losses[e])) if rows is None
                else rows.record(e, params, spec, plateau)):
            stop = "plateau"
            break
    return (epochs, stop, plateau.best if rows is None else -plateau.best, plateau.count, step,
            None)
