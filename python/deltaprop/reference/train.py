"""The epoch loop (csrc/train.hpp): order the samples, cut batches, forward, loss, backward,
update. The C++ engine runs the same loop without the GIL; this one is the readable version.
"""

from __future__ import annotations

import numpy as np

from .mlp import mlp_loss_and_gradients
from .optim import (
    adam_step,
    add_l2,
    clip_by_global_norm,
    l2_penalty,
    nesterov_step,
    sgd_momentum_step,
)

OPTIMIZERS = ("sgd", "nesterov", "adam")

_MASK64 = (1 << 64) - 1
_C1 = 0x9E3779B97F4A7C15
_C2 = 0xC2B2AE3D27D4EB4F


def mix64(x):
    """splitmix64's output function on a uint64 array (wrapping arithmetic, as in C++)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shuffle_order(n, seed, epoch):
    """The sample order of epoch ``epoch``: argsort of key_i = mix64(seed·C1 + epoch·C2 + i),
    ties broken by index. The C++ engine computes exactly the same order."""
    base = np.uint64((seed * _C1 + epoch * _C2) & _MASK64)
    keys = mix64(base + np.arange(n, dtype=np.uint64))
    return np.argsort(keys, kind="stable")


def train_epoch(params, state1, state2, X, Y, spec, *, batch_size, lr, momentum=0.0,
                shuffle=True, seed=0, epoch=0, optimizer="sgd", beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, alpha=0.0, clip_norm=0.0, step=0):
    """One epoch of minibatch training of the network ``spec`` (mlp.NetSpec), updating the
    flat lists ``params`` and the optimizer state in place.

    Per batch: forward and backward; with ``alpha`` the L2 term ½α‖W‖²/rows joins the loss and
    (α/rows)·W the weight gradients; with ``clip_norm`` the gradients are clipped by global norm;
    then one step of ``optimizer``: "sgd" (momentum in scikit-learn's form), "nesterov", or
    "adam" (t counts batches from ``step`` + 1; its second moment is ``state2``). ``state1`` is
    the velocity or Adam's first moment. Returns the epoch's mean loss: each batch's loss before
    its update, weighted by its rows."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    n = X.shape[0]
    batch = min(batch_size, n)
    order = shuffle_order(n, seed, epoch) if shuffle else np.arange(n)
    coefs = params[0::2]
    state2 = state2 if optimizer == "adam" else [None] * len(params)
    total, t = 0.0, step
    for start in range(0, n, batch):
        rows = order[start:start + batch]
        loss, grads = mlp_loss_and_gradients(params, X[rows], Y[rows], spec)
        if alpha > 0:
            loss += l2_penalty(coefs, alpha, len(rows))
            for g, W in zip(grads[0::2], coefs):
                add_l2(g, W, alpha, len(rows))
        if clip_norm > 0:
            clip_by_global_norm(grads, clip_norm)
        total += loss * len(rows)
        t += 1
        for p, s1, s2, g in zip(params, state1, state2, grads):
            if optimizer == "sgd":
                sgd_momentum_step(p, s1, g, lr, momentum)
            elif optimizer == "nesterov":
                nesterov_step(p, s1, g, lr, momentum)
            else:
                adam_step(p, s1, s2, g, t, lr, beta_1, beta_2, epsilon)
    return total / n
