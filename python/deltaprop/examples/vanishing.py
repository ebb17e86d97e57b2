"""The seeds' question, measured: does the gradient reach the first layers?

    python -m deltaprop.examples.vanishing [--quick] [--out DIR]

On scikit-learn's bundled digits (1 797 8×8 images, 10 classes), networks of width 32 and
depth 2 to 50 with sigmoid, tanh, relu, leaky_relu, selu (LeCun init) and relu with residual
blocks: the first layer's gradient norm relative to the last layer's at initialisation and
after training at two learning rates, the dead and saturated units then, the test accuracy, and
the first layer's share epoch by epoch at depth 20. Then, for a 5-layer network of relu,
necro_relu and leaky_relu, the units switched off (z ≤ 0 for every sample) after training
against the bias init and the learning rate. Writes PNG figures and results.md into DIR
(default: ./vanishing). Needs the ``examples`` extra.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import deltaprop as dp
from deltaprop.diagnostics import HealthWarning, gradient_health

CONFIGS: dict[str, dict[str, Any]] = {  # label: MLP keywords
    "sigmoid": dict(activation="sigmoid"),
    "tanh": dict(activation="tanh"),
    "relu": dict(activation="relu"),
    "leaky_relu": dict(activation="leaky_relu"),
    "selu": dict(activation="selu"),  # LeCun normal init: SELU's default
    "relu + residual": dict(activation="relu", residual=True),
}
WIDTH = 32
# Networks this narrow gain nothing from a second thread, and on a busy machine OpenMP's
# waiting threads can cost 100x; the results are the same for any thread count.
THREADS = 1
TRACE_DEPTH = 20  # the depth whose training is followed epoch by epoch
DEAD_ACTIVATIONS = ("relu", "necro_relu", "leaky_relu")


Data = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[Any],
             npt.NDArray[Any]]  # X, X_test, y, y_test
Row = dict[str, Any]  # one result: a table row, a point of a figure


def load(seed: int = 0) -> Data:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    parts: Data = tuple(train_test_split(X / 16.0, y, test_size=0.25, random_state=seed,
                                         stratify=y))
    return parts


def hidden_mean(values: npt.NDArray[np.float64]) -> float:
    """The mean over the hidden layers (the output layer's fractions are NaN)."""
    return float(np.mean(values[:-1]))


def train(net: dp.MLP, X: npt.NDArray[np.float64], y: npt.NDArray[Any],
          **fit: Any) -> tuple[list[float], bool]:
    """Fits with record_health; returns the loss per epoch, cut short where training
    diverged (fit then raises, and the model keeps its weights from before that epoch)."""
    losses: list[float] = []
    try:
        net.fit(X, y, batch_size=32, momentum=0.9, record_health=True,
                callback=lambda history: losses.append(history.loss[-1]), **fit)
        return losses, False
    except FloatingPointError:
        return losses, True


def depth_study(data: Data, depths: Sequence[int], rates: Sequence[float],
                epochs: int) -> list[Row]:
    X, X_test, y, y_test = data
    rows = []
    for label, kwargs in CONFIGS.items():
        for depth in depths:
            at_init = None
            for lr in rates:
                net = dp.MLP([64] + [WIDTH] * depth + [10], seed=0, n_threads=THREADS,
                             **kwargs)
                if at_init is None:  # the same network for every rate
                    at_init = float(gradient_health(net, X, y, warn=False)["grad_norm_ratio"][0])
                losses, diverged = train(net, X, y, epochs=epochs, lr=lr)
                grad = net.health_["grad_norm"]
                row = dict(config=label, depth=depth, lr=lr, at_init=at_init, losses=losses,
                           share=grad[:, 0] / grad[:, -1], trained=np.nan, dead=np.nan,
                           saturated=np.nan, accuracy=np.nan)
                if not diverged:
                    health = gradient_health(net, X, y, warn=False)
                    row.update(trained=float(health["grad_norm_ratio"][0]),
                               dead=hidden_mean(health["dead_fraction"]),
                               saturated=hidden_mean(health["saturated_fraction"]),
                               accuracy=float((net.predict(X_test) == y_test).mean()))
                rows.append(row)
                print(f"  {label:16s} depth {depth:3d} lr {lr:<6}: first/last at init "
                      f"{at_init:9.2e}, after {row['trained']:9.2e}, dead {row['dead']:.2f}, "
                      f"saturated {row['saturated']:.2f}, test accuracy {row['accuracy']:.3f}"
                      + (f" (diverged at epoch {len(losses) + 1})" if diverged else ""))
    return rows


def units_off(net: dp.MLP, X: npt.NDArray[np.float64],
              activation: str) -> npt.NDArray[np.float64]:
    """Per hidden layer, the share of units whose input z is ≤ 0 for every sample: for relu and
    necro_relu these output 0 everywhere (dead_fraction); a leaky_relu unit there still passes
    0.01 of the gradient."""
    A: npt.NDArray[np.floating[Any]] = X
    off = []
    for W, b in zip(net.coefs_[:-1], net.intercepts_[:-1]):
        Z = A @ W + b
        off.append(np.mean((Z <= 0).all(axis=0)))
        A = dp.reference.activation_forward(Z, activation)
    return np.array(off)


def dead_study(data: Data, biases: Sequence[float], rates: Sequence[float],
               epochs: int) -> list[Row]:
    X, X_test, y, y_test = data
    rows = []
    for activation in DEAD_ACTIVATIONS:
        for bias in biases:
            for lr in rates:
                net = dp.MLP([64] + [WIDTH] * 5 + [10], activation, seed=0,
                             bias_init=[bias] * 5 + [0.0], n_threads=THREADS)
                before = float(np.mean(units_off(net, X, activation)))
                _, diverged = train(net, X, y, epochs=epochs, lr=lr)
                off = dead = accuracy = np.nan
                if not diverged:
                    off = float(np.mean(units_off(net, X, activation)))
                    dead = hidden_mean(gradient_health(net, X, y, warn=False)["dead_fraction"])
                    accuracy = float((net.predict(X_test) == y_test).mean())
                rows.append(dict(activation=activation, bias=bias, lr=lr, before=before, off=off,
                                 dead=dead, accuracy=accuracy))
                print(f"  {activation:10s} bias {bias:+.2f} lr {lr:<5}: off {before:.2f} -> "
                      f"{off:.2f}, dead {dead:.2f}, test accuracy {accuracy:.3f}")
    return rows


def _by_rate(rows: list[Row], key: str, rates: Sequence[float], title: str, name: str,
             out: Path, plt: Any, log: bool = True) -> None:
    """One panel per learning rate, one line per network, against the depth."""
    fig, panels = plt.subplots(1, len(rates), figsize=(5.2 * len(rates), 4.2), sharey=True,
                               squeeze=False)
    for axes, lr in zip(panels[0], rates):
        for label in CONFIGS:
            picked = [r for r in rows if r["config"] == label and r["lr"] == lr]
            (axes.semilogy if log else axes.plot)([r["depth"] for r in picked],
                                                  [r[key] for r in picked], marker="o",
                                                  label=label)
        axes.set(title=f"{title}, lr {lr}", xlabel="hidden layers")
    panels[0][0].legend(fontsize="small")
    fig.text(0.5, 0.005, "a missing point: training diverged (fit stopped with "
             "FloatingPointError)", ha="center", fontsize="small")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out / name, dpi=110)
    plt.close(fig)


def _at_init(rows: list[Row], out: Path, plt: Any) -> None:
    """The first layer's share at initialisation, with sigmoid's bound of ¼ per layer."""
    fig, axes = plt.subplots(figsize=(6.4, 4.2))
    for label in CONFIGS:
        picked = {r["depth"]: r["at_init"] for r in rows if r["config"] == label}
        axes.semilogy(list(picked), list(picked.values()), marker="o", label=label)
    sigmoid = {r["depth"]: r["at_init"] for r in rows if r["config"] == "sigmoid"}
    first = min(sigmoid)
    depths = np.array(sorted(sigmoid))
    axes.semilogy(depths, sigmoid[first] * 0.25 ** (depths - first), "k--", lw=1,
                  label="× ¼ per layer")
    axes.set(title="first layer's gradient / last layer's, at initialisation",
             xlabel="hidden layers")
    axes.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "depth_init.png", dpi=110)
    plt.close(fig)


def _training(rows: list[Row], rates: Sequence[float], depth: int, out: Path,
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
            share.semilogy(np.arange(1, len(r["share"]) + 1), r["share"], marker=".", label=label)
            loss.plot(np.arange(1, len(r["losses"]) + 1), r["losses"], marker=".", label=label)
        share.set(title=f"{depth} hidden layers, lr {lr}: first layer's gradient / last's")
        loss.set(title="training loss (a line that stops: diverged)", xlabel="epoch",
                 ylim=(0, 3))
        loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)


def _dead(rows: list[Row], biases: Sequence[float], rates: Sequence[float], out: Path,
          plt: Any) -> None:
    fig, panels = plt.subplots(1, len(DEAD_ACTIVATIONS), figsize=(4.6 * len(DEAD_ACTIVATIONS), 4),
                               layout="constrained")
    for axes, activation in zip(panels, DEAD_ACTIVATIONS):
        grid = np.array([[next(r["off"] for r in rows if r["activation"] == activation
                               and r["bias"] == b and r["lr"] == lr) for lr in rates]
                         for b in biases])
        image = axes.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        axes.set(title=f"{activation}: units off after training", xlabel="learning rate",
                 ylabel="bias init", xticks=range(len(rates)), xticklabels=rates,
                 yticks=range(len(biases)), yticklabels=biases)
        for i in range(len(biases)):
            for j in range(len(rates)):
                axes.text(j, i, "diverged" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}",
                          ha="center", va="center", color="w" if grid[i, j] < 0.6 else "k")
    fig.colorbar(image, ax=list(panels), shrink=0.8)
    fig.suptitle("5 hidden layers: share of units with z ≤ 0 for every training "
                 "sample (for relu and necro_relu: dead units)", fontsize="medium")
    fig.savefig(out / "dead_units.png", dpi=110)
    plt.close(fig)


def figures(depth_rows: list[Row], dead_rows: list[Row], biases: Sequence[float],
            rates: Sequence[float], dead_rates: Sequence[float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _at_init(depth_rows, out, plt)
    _by_rate(depth_rows, "trained", rates, "first/last gradient after training",
             "depth_trained.png", out, plt)
    _by_rate(depth_rows, "accuracy", rates, "test accuracy", "accuracy.png", out, plt, log=False)
    trace_depth = max(d for d in {r["depth"] for r in depth_rows} if d <= TRACE_DEPTH)
    _training(depth_rows, rates, trace_depth, out, plt)
    _dead(dead_rows, biases, dead_rates, out, plt)


def markdown(depth_rows: list[Row], dead_rows: list[Row]) -> str:
    lines = ["| network | hidden layers | first/last gradient at init | learning rate | "
             "after training | dead units | saturated units | test accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in depth_rows:
        lines.append(f"| {r['config']} | {r['depth']} | {r['at_init']:.1e} | {r['lr']} | "
                     f"{r['trained']:.1e} | {r['dead']:.2f} | {r['saturated']:.2f} | "
                     f"{r['accuracy']:.3f} |")
    lines += ["", "| activation | bias init | learning rate | units off at init | "
              "units off after training | dead units | test accuracy |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in dead_rows:
        lines.append(f"| {r['activation']} | {r['bias']:+.2f} | {r['lr']} | {r['before']:.2f} | "
                     f"{r['off']:.2f} | {r['dead']:.2f} | {r['accuracy']:.3f} |")
    return re.sub(r"(?<=\| )nan(?= \|)", "diverged", "\n".join(lines)) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 depths, 2 epochs")
    parser.add_argument("--out", type=Path, default=Path("vanishing"))
    args = parser.parse_args(argv)
    depths = [2, 10] if args.quick else [2, 5, 10, 20, 30, 50]
    rates = [0.02] if args.quick else [0.02, 0.005]
    biases = [-1.0, 0.1] if args.quick else [-1.0, 0.0, 0.1]
    dead_rates = [0.1] if args.quick else [0.01, 0.1, 0.5]
    epochs = 2 if args.quick else 20
    args.out.mkdir(parents=True, exist_ok=True)
    data = load()
    start = time.perf_counter()
    with warnings.catch_warnings():  # the study shows these conditions on purpose
        warnings.simplefilter("ignore", HealthWarning)
        print("depth: the first layer's share of the gradient")
        depth_rows = depth_study(data, depths, rates, epochs)
        print("dead units: bias init x learning rate")
        dead_rows = dead_study(data, biases, dead_rates, epochs)
    figures(depth_rows, dead_rows, biases, rates, dead_rates, args.out)
    (args.out / "results.md").write_text(markdown(depth_rows, dead_rows))
    print(f"wrote {args.out}/ (figures and results.md) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
