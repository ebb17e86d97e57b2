"""The seeds' question, measured: does the gradient reach the first layers?

    python -m deltaprop.examples.vanishing [--quick] [--out DIR]

On scikit-learn's bundled digits (1 797 8×8 images, 10 classes), networks of width 32 and
depth 2 to 50 with sigmoid, tanh, relu, leaky_relu, selu (LeCun init) and relu with residual
blocks: the first layer's gradient norm relative to the last layer's at initialisation and
after training, and the test accuracy. Then, for a 5-layer ReLU network, the fraction of dead
units after training against the bias init and the learning rate, beside necro_relu. Writes
PNG figures and results.md into DIR (default: ./vanishing). Needs the ``examples`` extra.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import deltaprop as dp
from deltaprop.diagnostics import HealthWarning, gradient_health

CONFIGS = {  # label: MLP keywords
    "sigmoid": dict(activation="sigmoid"),
    "tanh": dict(activation="tanh"),
    "relu": dict(activation="relu"),
    "leaky_relu": dict(activation="leaky_relu"),
    "selu": dict(activation="selu"),  # LeCun normal init: SELU's default
    "relu + residual": dict(activation="relu", residual=True),
}
WIDTH = 32


def load(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=seed, stratify=y)


def first_layer_ratio(net, X, y) -> float:
    return float(gradient_health(net, X, y, warn=False)["grad_norm_ratio"][0])


def depth_study(data, depths, epochs):
    X, X_test, y, y_test = data
    rows = []
    for label, kwargs in CONFIGS.items():
        for depth in depths:
            net = dp.MLP([64] + [WIDTH] * depth + [10], seed=0, **kwargs)
            at_init = first_layer_ratio(net, X, y)
            try:
                net.fit(X, y, epochs=epochs, batch_size=32, lr=0.02, momentum=0.9)
                trained = first_layer_ratio(net, X, y)
                accuracy = (net.predict(X_test) == y_test).mean()
            except FloatingPointError:
                trained, accuracy = np.nan, np.nan
            rows.append(dict(config=label, depth=depth, at_init=at_init, trained=trained,
                             accuracy=accuracy))
            print(f"  {label:16s} depth {depth:3d}: first/last at init {at_init:9.2e}, "
                  f"after {trained:9.2e}, test accuracy {accuracy:.3f}")
    return rows


def dead_study(data, biases, rates, epochs):
    X, X_test, y, y_test = data
    rows = []
    for activation in ("relu", "necro_relu"):
        for bias in biases:
            for lr in rates:
                net = dp.MLP([64] + [WIDTH] * 5 + [10], activation, seed=0,
                             bias_init=[bias] * 5 + [0.0])
                try:
                    net.fit(X, y, epochs=epochs, batch_size=32, lr=lr, momentum=0.9,
                            record_health=True)
                    dead = float(np.mean(net.health_["dead_fraction"][-1, :-1]))
                    accuracy = (net.predict(X_test) == y_test).mean()
                except FloatingPointError:
                    dead = accuracy = np.nan
                rows.append(dict(activation=activation, bias=bias, lr=lr, dead=dead,
                                 accuracy=accuracy))
                print(f"  {activation:10s} bias {bias:+.2f} lr {lr:<5}: dead {dead:.2f}, "
                      f"test accuracy {accuracy:.3f}")
    return rows


def figures(depth_rows, dead_rows, biases, rates, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, title, name in [
        ("at_init", "first layer's gradient / last layer's, at initialisation", "depth_init.png"),
        ("trained", "first layer's gradient / last layer's, after training", "depth_trained.png"),
        ("accuracy", "test accuracy after training (digits)", "accuracy.png"),
    ]:
        fig, axes = plt.subplots(figsize=(6.4, 4.2))
        for label in CONFIGS:
            rows = [r for r in depth_rows if r["config"] == label]
            x, y = [r["depth"] for r in rows], [r[key] for r in rows]
            (axes.plot if key == "accuracy" else axes.semilogy)(x, y, marker="o", label=label)
        axes.set(title=title, xlabel="hidden layers")
        axes.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    fig, panels = plt.subplots(1, 2, figsize=(10, 3.8))
    for axes, activation in zip(panels, ("relu", "necro_relu")):
        grid = np.array([[next(r["dead"] for r in dead_rows if r["activation"] == activation
                               and r["bias"] == b and r["lr"] == lr) for lr in rates]
                         for b in biases])
        image = axes.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        axes.set(title=f"{activation}: dead units after training", xlabel="learning rate",
                 ylabel="bias init", xticks=range(len(rates)), xticklabels=rates,
                 yticks=range(len(biases)), yticklabels=biases)
        for i in range(len(biases)):
            for j in range(len(rates)):
                axes.text(j, i, "diverged" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}",
                          ha="center", va="center", color="w" if grid[i, j] < 0.6 else "k")
        fig.colorbar(image, ax=axes)
    fig.tight_layout()
    fig.savefig(out / "dead_units.png", dpi=110)
    plt.close(fig)


def markdown(depth_rows, dead_rows) -> str:
    lines = ["| network | hidden layers | first/last gradient at init | after training | "
             "test accuracy |", "|---|---:|---:|---:|---:|"]
    for r in depth_rows:
        lines.append(f"| {r['config']} | {r['depth']} | {r['at_init']:.1e} | {r['trained']:.1e} "
                     f"| {r['accuracy']:.3f} |")
    lines += ["", "| activation | bias init | learning rate | dead units | test accuracy |",
              "|---|---:|---:|---:|---:|"]
    for r in dead_rows:
        lines.append(f"| {r['activation']} | {r['bias']:+.2f} | {r['lr']} | {r['dead']:.2f} | "
                     f"{r['accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 depths, 2 epochs")
    parser.add_argument("--out", type=Path, default=Path("vanishing"))
    args = parser.parse_args(argv)
    depths = [2, 10] if args.quick else [2, 5, 10, 20, 30, 50]
    biases = [-1.0, 0.0, 0.1] if not args.quick else [-1.0, 0.1]
    rates = [0.01, 0.1, 0.5] if not args.quick else [0.1]
    epochs = 2 if args.quick else 20
    args.out.mkdir(parents=True, exist_ok=True)
    data = load()
    start = time.perf_counter()
    with warnings.catch_warnings():  # the study shows these conditions on purpose
        warnings.simplefilter("ignore", HealthWarning)
        print("depth: the first layer's share of the gradient")
        depth_rows = depth_study(data, depths, epochs)
        print("dead units: bias init x learning rate")
        dead_rows = dead_study(data, biases, rates, epochs)
    figures(depth_rows, dead_rows, biases, rates, args.out)
    (args.out / "results.md").write_text(markdown(depth_rows, dead_rows))
    print(f"wrote {args.out}/ (figures and results.md) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
