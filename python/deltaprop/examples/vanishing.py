"""The seeds' question, measured: does the gradient reach the first layers?

    python -m deltaprop.examples.vanishing [--quick] [--seeds N] [--out DIR]

On scikit-learn's bundled digits (1 797 8×8 images, 10 classes), networks of width 32 and
depth 2 to 50 with sigmoid, tanh, relu, leaky_relu, selu (LeCun init) and relu with residual
blocks: the first layer's gradient norm relative to the last layer's at initialisation and
after training at two learning rates, the dead and saturated units then, the test accuracy, and
the first layer's share epoch by epoch at depth 20. Then, for a 5-layer network of relu,
necro_relu and leaky_relu, the units switched off (z ≤ 0 for every sample) after training
against the bias init and the learning rate. Every configuration is trained from several
initial weights (seeds 0 to N − 1, default 5; the data split stays fixed) and reported as the
median and the range over them. Writes PNG figures and results.md into DIR (default:
./vanishing). Needs the ``examples`` extra.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import deltaprop as dp
from deltaprop.diagnostics import HealthWarning, gradient_health, with_ratios

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
DEPTH_STATS = ("trained", "dead", "saturated", "accuracy")  # measured after training
DEAD_STATS = ("off", "dead", "accuracy")
NAN = float("nan")


Data = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[Any],
             npt.NDArray[Any]]  # X, X_test, y, y_test
Run = dict[str, Any]  # one seed's result
Row = dict[str, Any]  # one configuration over the seeds: a table row, a point of a figure
Spread = tuple[float, float, float]  # median, min, max


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


def spread(values: Iterable[float]) -> Spread:
    """Median, min and max of the defined (non-NaN) values; NaN if there are none. The median
    of an even count is the lower middle value, so it is always one seed's result: the mean of
    two gradient shares 10⁴ apart would describe neither."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return NAN, NAN, NAN
    return float(np.quantile(v, 0.5, method="lower")), float(v.min()), float(v.max())


def summarise(runs: list[Run], keys: Sequence[str]) -> Row:
    """One configuration over its seeds: the spread of each key over the seeds that finished
    training (a diverged fit leaves nothing to measure), how many diverged, and per key how
    many finished seeds left it undefined (the first/last share is 0/0 when the last hidden
    layer died entirely: then no layer gets any gradient)."""
    finished = [r for r in runs if not r["diverged"]]
    row: Row = dict(seeds=len(runs), diverged=len(runs) - len(finished))
    for key in keys:
        row[key] = spread(r[key] for r in finished)
        row[f"{key}_undefined"] = sum(bool(np.isnan(r[key])) for r in finished)
    return row


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


def depth_runs(data: Data, kwargs: dict[str, Any], depth: int, seed: int,
               rates: Sequence[float], epochs: int) -> list[Run]:
    """One seed's network: its share at initialisation, then trained afresh at each rate."""
    X, X_test, y, y_test = data
    runs = []
    at_init = None
    for lr in rates:
        net = dp.MLP([64] + [WIDTH] * depth + [10], seed=seed, n_threads=THREADS, **kwargs)
        if at_init is None:  # the same network for every rate
            at_init = float(gradient_health(net, X, y, warn=False)["grad_norm_ratio"][0])
        losses, diverged = train(net, X, y, epochs=epochs, lr=lr)
        # one value per epoch that finished; NaN where the last layer's gradient was 0
        share = with_ratios(net.health_)["grad_norm_ratio"][:, 0]
        run = dict(lr=lr, at_init=at_init, losses=losses, share=share, diverged=diverged)
        if not diverged:
            health = gradient_health(net, X, y, warn=False)
            run.update(trained=float(health["grad_norm_ratio"][0]),
                       dead=hidden_mean(health["dead_fraction"]),
                       saturated=hidden_mean(health["saturated_fraction"]),
                       accuracy=float((net.predict(X_test) == y_test).mean()))
        runs.append(run)
    return runs


def depth_study(data: Data, depths: Sequence[int], rates: Sequence[float], epochs: int,
                seeds: Sequence[int]) -> list[Row]:
    rows = []
    for label, kwargs in CONFIGS.items():
        for depth in depths:
            runs = [r for seed in seeds for r in depth_runs(data, kwargs, depth, seed, rates,
                                                            epochs)]
            for lr in rates:
                picked = [r for r in runs if r["lr"] == lr]
                row = summarise(picked, DEPTH_STATS)
                row.update(config=label, depth=depth, lr=lr,
                           at_init=spread(r["at_init"] for r in picked),
                           losses=[r["losses"] for r in picked],
                           share=[r["share"] for r in picked])
                rows.append(row)
                print(f"  {label:16s} depth {depth:3d} lr {lr:<6}: first/last at init "
                      f"{row['at_init'][0]:9.2e}, after {row['trained'][0]:9.2e}, dead "
                      f"{row['dead'][0]:.2f}, saturated {row['saturated'][0]:.2f}, test "
                      f"accuracy {row['accuracy'][0]:.3f} (medians), diverged "
                      f"{row['diverged']}/{row['seeds']}")
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


def dead_run(data: Data, activation: str, bias: float, lr: float, seed: int,
             epochs: int) -> Run:
    X, X_test, y, y_test = data
    net = dp.MLP([64] + [WIDTH] * 5 + [10], activation, seed=seed, bias_init=[bias] * 5 + [0.0],
                 n_threads=THREADS)
    before = float(np.mean(units_off(net, X, activation)))
    _, diverged = train(net, X, y, epochs=epochs, lr=lr)
    run = dict(before=before, diverged=diverged)
    if not diverged:
        run.update(off=float(np.mean(units_off(net, X, activation))),
                   dead=hidden_mean(gradient_health(net, X, y, warn=False)["dead_fraction"]),
                   accuracy=float((net.predict(X_test) == y_test).mean()))
    return run


def dead_study(data: Data, biases: Sequence[float], rates: Sequence[float], epochs: int,
               seeds: Sequence[int]) -> list[Row]:
    rows = []
    for activation in DEAD_ACTIVATIONS:
        for bias in biases:
            for lr in rates:
                runs = [dead_run(data, activation, bias, lr, seed, epochs) for seed in seeds]
                row = summarise(runs, DEAD_STATS)
                row.update(activation=activation, bias=bias, lr=lr,
                           before=spread(r["before"] for r in runs))
                rows.append(row)
                print(f"  {activation:10s} bias {bias:+.2f} lr {lr:<5}: off {row['before'][0]:.2f}"
                      f" -> {row['off'][0]:.2f}, dead {row['dead'][0]:.2f}, test accuracy "
                      f"{row['accuracy'][0]:.3f} (medians), diverged "
                      f"{row['diverged']}/{row['seeds']}")
    return rows


def _cell(row: Row, key: str, spec: str) -> str:
    """A table cell: the median [min, max] over the finished seeds and how many of them left
    the value undefined; "diverged" when no seed finished."""
    median, low, high = row[key]
    undefined = row.get(f"{key}_undefined", 0)
    parts = [] if np.isnan(median) else [f"{median:{spec}} [{low:{spec}}, {high:{spec}}]"]
    if undefined:
        parts.append(f"{undefined} undefined")
    return ", ".join(parts) or "diverged"


def _build() -> str:
    """What the numbers depend on: the kernels' rounding differs between builds and
    instruction-set paths (not thread counts), and deep networks amplify it."""
    info = dp.config_info()
    return (f"deltaprop {info['deltaprop']['version']}, {info['compiler']['id']} "
            f"{info['compiler']['version']}, instruction-set path {info['isa']['active']}")


def markdown(depth_rows: list[Row], dead_rows: list[Row], seeds: Sequence[int]) -> str:
    lines = [f"Each configuration trained from seeds {seeds[0]}–{seeds[-1]} (the initial "
             "weights; the data split is fixed). Each cell: the median [min, max] over the "
             "seeds, after training over those that finished (the columns before *seeds "
             "diverged* are over all seeds); an even count's median is the lower middle value. "
             "*diverged*: seeds whose fit stopped with FloatingPointError. *undefined*: finished "
             "seeds whose last layer got no gradient at all (its inputs, the last hidden "
             "layer, died entirely), so the first/last ratio is 0/0 and left out. "
             f"Produced by {_build()}.", "",
             "| network | hidden layers | first/last gradient at init | learning rate | "
             "seeds diverged | first/last after training | dead units | saturated units | "
             "test accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in depth_rows:
        lines.append(f"| {r['config']} | {r['depth']} | {_cell(r, 'at_init', '.1e')} | "
                     f"{r['lr']} | {r['diverged']}/{r['seeds']} | {_cell(r, 'trained', '.1e')} | "
                     f"{_cell(r, 'dead', '.2f')} | {_cell(r, 'saturated', '.2f')} | "
                     f"{_cell(r, 'accuracy', '.3f')} |")
    lines += ["", "| activation | bias init | learning rate | units off at init | seeds diverged "
              "| units off after training | dead units | test accuracy |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in dead_rows:
        lines.append(f"| {r['activation']} | {r['bias']:+.2f} | {r['lr']} | "
                     f"{_cell(r, 'before', '.2f')} | {r['diverged']}/{r['seeds']} | "
                     f"{_cell(r, 'off', '.2f')} | {_cell(r, 'dead', '.2f')} | "
                     f"{_cell(r, 'accuracy', '.3f')} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    from deltaprop.examples._vanishing_figures import figures

    parser = argparse.ArgumentParser(prog="python -m deltaprop.examples.vanishing",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 depths, 2 epochs, 2 seeds")
    parser.add_argument("--seeds", type=int, default=None,
                        help="initial weights per configuration (default 5; --quick: 2)")
    parser.add_argument("--out", type=Path, default=Path("vanishing"),
                        help="folder for the figures and the results table "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    depths = [2, 10] if args.quick else [2, 5, 10, 20, 30, 50]
    rates = [0.02] if args.quick else [0.02, 0.005]
    biases = [-1.0, 0.1] if args.quick else [-1.0, 0.0, 0.1]
    dead_rates = [0.1] if args.quick else [0.01, 0.1, 0.5]
    epochs = 2 if args.quick else 20
    seeds = range(args.seeds if args.seeds is not None else 2 if args.quick else 5)
    if not seeds:
        parser.error("--seeds must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    data = load()
    start = time.perf_counter()
    with warnings.catch_warnings():  # the study shows these conditions on purpose
        warnings.simplefilter("ignore", HealthWarning)
        print(f"depth: the first layer's share of the gradient, seeds {seeds[0]}–{seeds[-1]}")
        depth_rows = depth_study(data, depths, rates, epochs, seeds)
        print("dead units: bias init x learning rate")
        dead_rows = dead_study(data, biases, dead_rates, epochs, seeds)
    figures(depth_rows, dead_rows, biases, rates, dead_rates, epochs, args.out)
    (args.out / "results.md").write_text(markdown(depth_rows, dead_rows, seeds))
    print(f"wrote {args.out}/ (figures and results.md) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
