"""Gradient health: does the error signal reach the first layers, and are units alive?

Measured per layer (first layer first, the output layer last):

    grad_norm           ‖∂C/∂W_l‖, L2's term included, before any clipping
    grad_norm_ratio     ÷ the last layer's (NaN where that is 0 or not finite)
    delta_norm          ‖Δ_l‖ = ‖∂C/∂Z_l‖, the error signal reaching layer l; delta_norm_ratio
    update_ratio        ‖ΔW_l‖ / ‖W_l‖ of one plain SGD step of learning rate ``lr`` (inf from
                        all-zero weights)
    zero_fraction       activations exactly 0 (sparsity: about half at a He-initialised ReLU layer)
    dead_fraction       units whose activation is 0 for every sample given (dying ReLU)
    saturated_fraction  units whose |f'| stays below 1% of its largest value for every sample
                        (sigmoid or tanh pinned at its ends: "network paralysis"),
                        that 1% in the network's dtype (a float32 leaky slope of 0.01 is not)

Sigmoid's derivative is at most 1/4, so each sigmoid layer shrinks Δ by 4× or more: twenty of
them leave the first layer a 4^-20 share of the signal. ReLU's derivative is 0 or 1, so Δ keeps
its size through live units, while the product of the weight matrices can still shrink or grow
it, and dead units pass nothing. ``fit(record_health=True)`` gathers the same numbers each epoch
inside the C++ loop (``net.health_``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._typing import ActivationArg
from .activations import Activation, resolve
from .reference.health import HEALTH_ROWS

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["DEAD", "HEALTH_ROWS", "SATURATED", "VANISHING", "HealthWarning", "check_health",
           "gradient_health", "with_ratios"]

VANISHING = 1e-6   # a layer whose gradient is below this share of the last layer's
DEAD = 0.5         # a layer with more than this share of dead units
SATURATED = 0.5    # ... or of saturated units that are not dead (f' ~ 0 while f is not 0)


class HealthWarning(UserWarning):
    """A layer's gradient vanished or broke, or too many of its units died or saturated."""


def with_ratios(health: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """Adds grad_norm_ratio and delta_norm_ratio: each layer's norm over the last layer's
    (along the last axis, so per epoch for a record of epochs × layers); NaN where the last
    layer's is 0 or not finite (over inf, every finite norm would read as vanished)."""
    out = dict(health)
    for name in ("grad_norm", "delta_norm"):
        values = np.asarray(health[name], dtype=np.float64)
        last = values[..., -1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{name}_ratio"] = np.where((last > 0) & np.isfinite(last), values / last, np.nan)
    return out


def gradient_health(net: MLP, X: npt.ArrayLike, Y: npt.ArrayLike, *, lr: float = 0.01,
                    alpha: float = 0.0, sample_weight: npt.ArrayLike | None = None,
                    warn: bool = True) -> dict[str, npt.NDArray[Any]]:
    """The health of ``net`` (a deltaprop.MLP) on (X, Y), from one forward and backward pass in
    its own engine: a dict of per-layer float64 arrays (see the module docstring), the
    gradient that of the objective with fit's L2 penalty ``alpha``. With ``warn``, emits a
    :class:`HealthWarning` for each problem :func:`check_health` finds."""
    from .validation import check_real

    inputs, Y, sample_weight = net._checked_rows(X, Y, sample_weight)
    lr, alpha = check_real(lr, "lr", 0.0), check_real(alpha, "alpha", 0.0)
    rows = net._engine.health(net._params(), inputs, Y, sample_weight, lr, alpha)
    health = with_ratios(dict(zip(HEALTH_ROWS, rows)))
    if warn:
        for message in check_health(health, net._specs):
            warnings.warn(message, HealthWarning, stacklevel=2)
    return health


def _layers(indices: Sequence[int]) -> str:
    return f"layer {indices[0]}" if len(indices) == 1 else "layers " + ", ".join(map(str, indices))


def check_health(health: Mapping[str, npt.ArrayLike],
                 activations: Sequence[ActivationArg] | None = None) -> list[str]:
    """Problems a user can act on, one sentence per kind naming the layers: non-finite norms,
    vanishing gradients, dead layers, saturated layers. A record of epochs × layers is judged
    by its last epoch. ``activations``, the hidden layers' (as a model has them), tells
    necro_relu layers apart: their units that are off still learn, through the leaky backward
    pass, so they are not dead and need other advice."""
    health = with_ratios({name: np.atleast_2d(health[name])[-1] for name in HEALTH_ROWS})
    grad, ratio, dead = health["grad_norm"], health["grad_norm_ratio"], health["dead_fraction"]
    problems = []
    broken = [l for l in range(len(grad)) if not np.isfinite(grad[l])]
    if broken:
        problems.append(f"{_layers(broken)}: the gradient norm is NaN or inf: lower the learning "
                        f"rate, scale the inputs, or clip the gradients (clip_norm)")
    vanished = [l for l in range(len(grad)) if np.isfinite(grad[l]) and ratio[l] < VANISHING]
    if vanished:
        problems.append(
            f"{_layers(vanished)}: the gradient vanished (down to {np.nanmin(ratio[vanished]):.1e} "
            f"of the last layer's): use a ReLU-family activation with He init, SELU with LeCun "
            f"init, or residual blocks")
    # A dead ReLU unit is saturated too (its f' is 0 wherever f is); what is left of the
    # saturated share is sigmoid, tanh or ELU units pinned at a flat end for every sample: seed
    # 003's "network paralysis".
    if isinstance(activations, (str, Activation)):  # one for every hidden layer, as MLP takes
        activations = [activations] * (len(dead) - 1)
    revivable = [resolve(a).name == "necro_relu" for a in activations or ()]
    off = np.array([s if l < len(revivable) and revivable[l] else 0.0 for l, s in enumerate(dead)])
    for share, threshold, what, advice in (
            (dead - off, DEAD, "dead (zero for every sample)",
             "lower the learning rate, use a small positive bias_init, or leaky_relu / necro_relu"),
            (off, DEAD, "off (zero for every sample; necro_relu's backward pass still trains "
             "them, but they pass nothing on)",
             "lower the learning rate or use a small positive bias_init to keep them on"),
            (health["saturated_fraction"] - dead, SATURATED,
             "saturated (f' below 1% of its largest for every sample: network paralysis)",
             "scale the inputs, lower the learning rate or the initial weights, or use a "
             "ReLU-family activation")):
        layers = [l for l in range(len(share)) if share[l] > threshold]
        if layers:
            problems.append(f"{_layers(layers)}: up to {max(share[l] for l in layers):.0%} of the "
                            f"units are {what}: {advice}")
    return problems
