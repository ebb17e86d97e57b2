"""Figures of gradient health (matplotlib, the optional extra ``plot``: pip install
"deltaprop[plot]"). Each function returns its matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from .diagnostics import gradient_health, with_ratios

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .model import MLP, History


def _pyplot() -> ModuleType:
    """matplotlib.pyplot, imported when a figure is drawn (typed loosely: a module object)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('deltaprop.plot draws with matplotlib: pip install "deltaprop[plot]"'
                          ) from error
    return plt


def draw_loss_curve(axes: Any, loss: Sequence[float], validation: Sequence[float] | None = None,
                    title: str = "") -> None:
    """The loss per epoch on ``axes`` (and the held-out loss beside it, where there is one)."""
    from matplotlib.ticker import MaxNLocator

    axes.plot(np.arange(1, len(loss) + 1), loss, label="training loss")
    if validation is not None and len(validation):  # (an epoch that diverged has none)
        axes.plot(np.arange(1, len(validation) + 1), validation, label="validation loss")
    axes.set(xlabel="epoch", ylabel="loss", title=title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()


def loss_curve(history: History, *, log: bool = False) -> Figure:
    """The training loss per epoch of a ``fit``'s History (and its validation loss, with
    validation_data), and the learning rate where that changed (a schedule); ``log`` draws the
    loss on a log scale."""
    plt = _pyplot()
    fig: Figure
    axes: Any
    fig, axes = plt.subplots(figsize=(6, 3.8))
    draw_loss_curve(axes, history.loss, history.val_loss, title="loss per epoch")
    if log:
        axes.set_yscale("log")
    if len(set(history.lr)) > 1:
        rate = axes.twinx()
        rate.plot(np.arange(1, history.epochs + 1), history.lr, color="grey", ls="--",
                  label="learning rate")
        rate.set_ylabel("learning rate")
        lines = axes.get_lines() + rate.get_lines()
        axes.legend(lines, [line.get_label() for line in lines])  # one legend for both
    fig.tight_layout()
    return fig


def health(record: History | Mapping[str, npt.ArrayLike] | None) -> Figure:
    """Gradient norm per layer over the epochs (log scale), and the dead and saturated
    fractions per layer: ``record`` is ``net.health_`` or the History of a
    ``fit(..., record_health=True)``."""
    # a History's (or any object's) .health, else the record itself
    rows = cast("Mapping[str, npt.ArrayLike] | None", getattr(record, "health", record))
    if rows is None:
        raise ValueError("no health record: fit with record_health=True")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    grad = np.atleast_2d(rows["grad_norm"])
    epochs = np.arange(1, grad.shape[0] + 1)
    fig: Figure
    fig, (norms, dead, saturated) = plt.subplots(1, 3, figsize=(13, 3.8))
    for l in range(grad.shape[1]):
        norms.semilogy(epochs, grad[:, l], marker="o", ms=3, label=f"layer {l}")
    norms.set(title="gradient norm ‖∂C/∂W‖ per layer", xlabel="epoch")
    for axes, name, title in [(dead, "dead_fraction", "dead units (zero for every sample)"),
                              (saturated, "saturated_fraction", "saturated units (|f′| < 1% max)")]:
        values = np.atleast_2d(rows[name])
        for l in range(values.shape[1] - 1):  # the output layer has no activation of its own
            axes.plot(epochs, values[:, l], marker="o", ms=3, label=f"layer {l}")
        axes.set(title=title, xlabel="epoch", ylabel="fraction of the layer's units",
                 ylim=(-0.05, 1.05))
    for axes in (norms, dead, saturated):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    norms.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def gradient_profile(net: MLP, X: npt.ArrayLike, Y: npt.ArrayLike, *, lr: float = 0.01) -> Figure:
    """Per-layer gradient and delta norms relative to the last layer at this moment (log
    scale): where the error signal fades, or grows, on its way to the first layer."""
    plt = _pyplot()
    h = with_ratios(gradient_health(net, X, Y, lr=lr, warn=False))
    layers = np.arange(len(h["grad_norm"]))
    fig: Figure
    axes: Any
    fig, axes = plt.subplots(figsize=(6, 3.8))

    axes.semilogy(layers, h["grad_norm_ratio"], marker="o", label="‖∂C/∂W_l‖ / last layer's")
    axes.semilogy(layers, h["delta_norm_ratio"], marker="s", label="‖Δ_l‖ / last layer's")
    axes.set(title="gradient profile", xlabel="layer (0 = first)", xticks=layers)
    axes.legend(fontsize="small")
    fig.tight_layout()
    return fig
