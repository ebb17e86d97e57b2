"""Parameter updates (csrc/optim.hpp), regularisation of gradients, and learning-rate schedules.

Steps update their arrays in place and follow scikit-learn's conventions
(sklearn/neural_network/_stochastic_optimizers.py, 1.9), so the drop-in estimators reproduce its
training: the learning rate sits inside the velocity, and Adam folds its bias corrections into
the step size and adds ε after them. Gradients are those of the mean loss (already divided by the
batch's N, or by Σ sample weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray

SCHEDULES = ("constant", "invscaling", "adaptive", "step", "cosine")


def sgd_momentum_step(p: FloatArray, v: FloatArray, g: FloatArray, lr: float,
                      momentum: float = 0.0, *, n_threads: int = 0,
                      check_finite: bool = True) -> None:
    """SGD with momentum, in place, in scikit-learn's convention (the learning rate inside the
    velocity; sklearn/neural_network/_stochastic_optimizers.py):

        v ← momentum · v − lr · g
        p ← p + v
    """
    v[...] = momentum * v - lr * g
    p += v


def nesterov_step(p: FloatArray, v: FloatArray, g: FloatArray, lr: float, momentum: float, *,
                  n_threads: int = 0, check_finite: bool = True) -> None:
    """Nesterov's accelerated gradient, in place, in scikit-learn's form (SGDOptimizer with
    nesterov=True; Sutskever et al. 2013, "On the importance of initialization and momentum in
    deep learning", eq. 3-4, rewritten for the look-ahead parameters):

        v ← momentum · v − lr · g
        p ← p + momentum · v − lr · g        (with the new v)

    g is the gradient at the current p; both updates use the same g.
    """
    v[...] = momentum * v - lr * g
    p += momentum * v - lr * g


def adam_step(p: FloatArray, m: FloatArray, v: FloatArray, g: FloatArray, t: int, lr: float,
              beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, *,
              n_threads: int = 0, check_finite: bool = True) -> float:
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1 with the
    efficiency note of section 2), in place, in scikit-learn's form (AdamOptimizer):

        m ← β1 · m + (1 − β1) · g
        v ← β2 · v + (1 − β2) · g²
        lr_t = lr · √(1 − β2^t) / (1 − β1^t)          (the bias corrections, folded into the step)
        p ← p − lr_t · m / (√v + ε)                    (ε added after: not the paper's ε̂)

    t counts steps (batches) from 1 for the first. Returns lr_t.
    """
    if t < 1:
        raise ValueError(f"t counts Adam steps from 1, got {t}")
    m[...] = beta_1 * m + (1 - beta_1) * g
    v[...] = beta_2 * v + (1 - beta_2) * (g * g)
    lr_t = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    p += -lr_t * m / (np.sqrt(v) + epsilon)
    return lr_t


def add_l2(g: FloatArray, W: FloatArray, alpha: float, n: float, *, n_threads: int = 0,
           check_finite: bool = True) -> None:
    """L2 weight decay folded into a weight gradient, in place: g ← g + (α / n) · W.

    The objective's term is ½ α Σ‖W‖² / n (:func:`l2_penalty`) over the weights (not the biases),
    with n the batch's rows or Σ of its sample weights: scikit-learn's
    ``(a.T @ delta + alpha * W) / sw_sum`` (_multilayer_perceptron.py, _compute_loss_grad), with
    our g already divided by n."""
    g += (alpha / n) * W


def l2_penalty(coefs: Iterable[FloatArray], alpha: float, n: float) -> float:
    """½ α Σ_l ‖W_l‖² / n, summed in float64: the term :func:`add_l2`'s gradient belongs to."""
    return 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in coefs) / n


def global_norm(arrays: Sequence[npt.ArrayLike]) -> float:
    """√(Σ_arrays Σ a²) in float64; where the squares overflow (past ~1e154), m √(Σ (a/m)²) with
    m = max |a|, as the engine (and LAPACK's dnrm2) rescales."""
    flat = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    with np.errstate(over="ignore"):  # an overflow is caught just below
        norm = math.sqrt(sum(float(np.dot(a, a)) for a in flat))
    m = max((float(np.abs(a).max()) for a in flat if a.size), default=0.0)
    if math.isinf(norm) and math.isfinite(m):
        norm = m * math.sqrt(sum(float(np.dot(a / m, a / m)) for a in flat))
    return norm


def clip_by_global_norm(grads: Sequence[FloatArray], max_norm: float, *, n_threads: int = 0,
                        check_finite: bool = True) -> float:
    """Gradient clipping by global norm (Pascanu et al. 2013, "On the difficulty of training
    recurrent neural networks", algorithm 1; TensorFlow's clip_by_global_norm), in place:

        norm  = √(Σ_arrays Σ g²)                 (summed in float64)
        scale = max_norm / max(norm, max_norm)   (1 when norm ≤ max_norm: nothing changes)
        g ← scale · g                            for every array

    Returns scale. The remedy for exploding gradients: the direction is kept, the length capped.
    Where the squares overflow (a norm past ~1e154) the norm is m √(Σ (g/m)²), m = max |g|."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    norm = global_norm(grads)
    scale = max_norm / max(norm, max_norm)
    if scale < 1.0:
        for g in grads:
            g *= g.dtype.type(scale)
    return scale


# -- learning-rate schedules: the learning rate for the next epoch --------------------------------
#
# adaptive (scikit-learn's, learning_rate="adaptive") is training-loop state, not a formula of
# time: after each epoch the loop counts epochs without improvement (loss > best_loss − tol, or
# with early stopping, validation score < best + tol; the count resets on improvement). When the
# count exceeds n_iter_no_change, :func:`adaptive_lr` divides the rate by 5 and resets the count,
# or, once the rate is ≤ 1e-6, says stop (SGDOptimizer.trigger_stopping).


def invscaling_lr(lr0: float, t: float, power_t: float = 0.5) -> float:
    """scikit-learn's invscaling: lr0 / (t + 1)^power_t, with t the training samples seen so far
    (its ``t_``), set at the end of each epoch (SGDOptimizer.iteration_ends). Its docs write
    lr0 / t^power_t; the code adds 1."""
    try:
        decay: float = (t + 1) ** power_t
    except OverflowError:  # a decay past the float range (a huge power_t): the rate is 0 to it
        return 0.0
    return float(lr0) / decay


def step_lr(lr0: float, epoch: int, step_size: int, gamma: float = 0.1) -> float:
    """Step decay: lr0 · γ^⌊epoch / step_size⌋, epoch counted from 0 (PyTorch's StepLR)."""
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    return lr0 * gamma ** (epoch // step_size)


def cosine_lr(lr0: float, epoch: int, n_epochs: int, lr_min: float = 0.0) -> float:
    """Cosine annealing: lr_min + ½(lr0 − lr_min)(1 + cos(π · epoch / n_epochs)), held at lr_min
    after n_epochs (Loshchilov & Hutter 2017, "SGDR", eq. 5, one cycle without restarts)."""
    if n_epochs < 1:
        raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
    e = min(epoch, n_epochs)
    return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * e / n_epochs))


def adaptive_lr(lr: float, no_improvement_count: int,
                n_iter_no_change: int = 10) -> tuple[float, int, bool]:

    """One end-of-epoch decision of scikit-learn's adaptive schedule:
    returns (lr, no_improvement_count, stop).

    While no_improvement_count ≤ n_iter_no_change nothing changes. Beyond it: stop if lr ≤ 1e-6,
    else lr / 5 with the count reset to 0."""
    if no_improvement_count <= n_iter_no_change:
        return lr, no_improvement_count, False
    if lr <= 1e-6:
        return lr, no_improvement_count, True
    return lr / 5.0, 0, False
