"""The figures of ``python -m deltaprop.examples.vanishing``: each point or line is the median
over the seeds that finished training, its bar or band the min–max range over them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from deltaprop.examples.vanishing import CONFIGS, DEAD_ACTIVATIONS, TRACE_DEPTH, Row, Spread, spread

FOOTNOTE = ("points: median over the seeds that finished training; bars: min–max; a missing "
            "point: every seed diverged (results.md counts the diverged seeds)")


def _errorbar(axes: Any, x: Sequence[float], values: Sequence[Spread], offset: float,
              label: str) -> None:
    """Medians with min–max bars, shifted by offset so that six networks' bars stay apart."""
    median, low, high = np.array(values, dtype=np.float64).reshape(-1, 3).T
    keep = np.isfinite(median)
    axes.errorbar(np.asarray(x, dtype=np.float64)[keep] + offset, median[keep],
                  yerr=[median[keep] - low[keep], high[keep] - median[keep]], marker="o",
                  ms=4, capsize=2, lw=1, label=label)


def _offset(index: int) -> float:
    return (index - (len(CONFIGS) - 1) / 2) * 0.35  # in hidden layers: the x axis' unit


def _by_rate(rows: list[Row], key: str, rates: Sequence[float], title: str, name: str,
             out: Path, plt: Any, log: bool = True) -> None:
    """One panel per learning rate, one line per network, against the depth."""
    fig, panels = plt.subplots(1, len(rates), figsize=(5.2 * len(rates), 4.4), sharey=True,
                               squeeze=False)
    for axes, lr in zip(panels[0], rates):
        for index, label in enumerate(CONFIGS):
            picked = [r for r in rows if r["config"] == label and r["lr"] == lr]
            _errorbar(axes, [r["depth"] for r in picked], [r[key] for r in picked],
                      _offset(index), label)
        axes.set(title=f"{title}, lr {lr}", xlabel="hidden layers")
        if log:
            axes.set_yscale("log")
    panels[0][0].legend(fontsize="small")
    fig.text(0.5, 0.005, FOOTNOTE, ha="center", fontsize="small")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out / name, dpi=110)
    plt.close(fig)


def _at_init(rows: list[Row], out: Path, plt: Any) -> None:
    """The first layer's share at initialisation, with sigmoid's bound of ¼ per layer."""
    fig, axes = plt.subplots(figsize=(6.4, 4.4))
    for index, label in enumerate(CONFIGS):
        picked = {r["depth"]: r["at_init"] for r in rows if r["config"] == label}
        _errorbar(axes, list(picked), list(picked.values()), _offset(index), label)
    sigmoid = {r["depth"]: r["at_init"][0] for r in rows if r["config"] == "sigmoid"}
    first = min(sigmoid)
    depths = np.array(sorted(sigmoid))
    axes.semilogy(depths, sigmoid[first] * 0.25 ** (depths - first), "k--", lw=1,
                  label="× ¼ per layer")
    axes.set(title="first layer's gradient / last layer's, at initialisation",
             xlabel="hidden layers")
    axes.legend(fontsize="small")
    fig.text(0.5, 0.005, "points: median over the seeds; bars: min–max", ha="center",
             fontsize="small")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out / "depth_init.png", dpi=110)
    plt.close(fig)


def _per_epoch(traces: list[Any], epochs: int) -> npt.NDArray[np.float64]:
    """epochs × (median, min, max) over the seeds still training at each epoch (a diverged
    seed's trace ends at its last good epoch); NaN once none is."""
    return np.array([spread(t[e] for t in traces if e < len(t)) for e in range(epochs)])


def _band(axes: Any, traces: list[Any], epochs: int, label: str) -> None:
    median, low, high = _per_epoch(traces, epochs).T
    x = np.arange(1, epochs + 1)
    (line,) = axes.plot(x, median, marker=".", lw=1, label=label)
    axes.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)


def _training(rows: list[Row], rates: Sequence[float], depth: int, epochs: int, out: Path,
              plt: Any) -> None:
    """At one depth: the first layer's share and the training loss, epoch by epoch."""
    from matplotlib.ticker import MaxNLocator

    fig, panels = plt.subplots(2, len(rates), figsize=(5.2 * len(rates), 7), sharex=True,
                               squeeze=False)
    for column, lr in enumerate(rates):
        share, loss = panels[0][column], panels[1][column]
        for label in CONFIGS:
            r = next(r for r in rows if r["config"] == label and r["lr"] == lr
                     and r["depth"] == depth)
            _band(share, r["share"], epochs, label)
            _band(loss, r["losses"], epochs, label)
        share.set(title=f"{depth} hidden layers, lr {lr}: first layer's gradient / last's",
                  yscale="log")
        loss.set(title="training loss", xlabel="epoch", ylim=(0, 3))
        loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[0][0].legend(fontsize="small")
    fig.text(0.5, 0.005, "lines: median over the seeds still training at that epoch (a "
             "diverged seed drops out); bands: min–max", ha="center", fontsize="small")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)


def _dead_text(r: Row) -> str:
    median, low, high = r["off"]
    diverged = f"{r['diverged']}/{r['seeds']} diverged"
    if np.isnan(median):
        return diverged
    return f"{median:.2f}\n[{low:.2f}, {high:.2f}]" + (f"\n{diverged}" if r["diverged"] else "")


def _dead(rows: list[Row], biases: Sequence[float], rates: Sequence[float], out: Path,
          plt: Any) -> None:
    fig, panels = plt.subplots(1, len(DEAD_ACTIVATIONS), figsize=(4.8 * len(DEAD_ACTIVATIONS),
                                                                   4.4), layout="constrained")
    for axes, activation in zip(panels, DEAD_ACTIVATIONS):
        cells = [[next(r for r in rows if r["activation"] == activation and r["bias"] == b
                       and r["lr"] == lr) for lr in rates] for b in biases]
        grid = np.array([[r["off"][0] for r in line] for line in cells])
        image = axes.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        axes.set(title=f"{activation}: units off after training", xlabel="learning rate",
                 ylabel="bias init", xticks=range(len(rates)), xticklabels=rates,
                 yticks=range(len(biases)), yticklabels=biases)
        for i, line in enumerate(cells):
            for j, r in enumerate(line):
                axes.text(j, i, _dead_text(r), ha="center", va="center", fontsize="small",
                          color="w" if grid[i, j] < 0.6 else "k")  # NaN (blank): black
    fig.colorbar(image, ax=list(panels), shrink=0.8)
    fig.suptitle("5 hidden layers: share of units with z ≤ 0 for every training sample (for "
                 "relu and necro_relu: dead units); median [min, max] over the seeds that "
                 "finished", fontsize="medium")
    fig.savefig(out / "dead_units.png", dpi=110)
    plt.close(fig)


def figures(depth_rows: list[Row], dead_rows: list[Row], biases: Sequence[float],
            rates: Sequence[float], dead_rates: Sequence[float], epochs: int,
            out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _at_init(depth_rows, out, plt)
    _by_rate(depth_rows, "trained", rates, "first/last gradient after training",
             "depth_trained.png", out, plt)
    _by_rate(depth_rows, "accuracy", rates, "test accuracy", "accuracy.png", out, plt, log=False)
    trace_depth = max(d for d in {r["depth"] for r in depth_rows} if d <= TRACE_DEPTH)
    _training(depth_rows, rates, trace_depth, epochs, out, plt)
    _dead(dead_rows, biases, dead_rates, out, plt)
