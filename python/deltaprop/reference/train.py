"""The epoch loop (csrc/train.hpp): order the samples, cut batches, forward, loss, backward,
update. The C++ engine runs the same loop without the GIL; this one is the readable version.
"""

from __future__ import annotations

import numpy as np

from .mlp import mlp_loss_and_gradients
from .optim import sgd_momentum_step

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


def train_epoch(coefs, intercepts, vcoefs, vintercepts, X, Y, batch_size, lr, momentum, shuffle,
                seed, epoch, activation="relu", grad_at_zero=0.0, output="softmax"):
    """One epoch of minibatch SGD, updating parameters and velocities in place. Returns the
    epoch's mean loss: each batch's loss before its update, weighted by its rows."""
    n = X.shape[0]
    batch = min(batch_size, n)
    order = shuffle_order(n, seed, epoch) if shuffle else np.arange(n)
    total = 0.0
    for start in range(0, n, batch):
        rows = order[start:start + batch]
        loss, dcoefs, dintercepts = mlp_loss_and_gradients(
            coefs, intercepts, X[rows], Y[rows], activation, grad_at_zero, output)
        total += loss * len(rows)
        for p, v, g in zip(coefs + intercepts, vcoefs + vintercepts, dcoefs + dintercepts):
            sgd_momentum_step(p, v, g, lr, momentum)
    return total / n
