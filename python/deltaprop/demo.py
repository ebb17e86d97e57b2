"""deltaprop's main job, shown on real data: train a ReLU network on scikit-learn's bundled
handwritten digits with the C++ engine, then the same run on the NumPy reference.

    python -m deltaprop.demo [--epochs 30] [--dtype float32] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

import deltaprop as dp


def load_digits_split(seed: int) -> list[npt.NDArray[Any]]:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("the demo needs scikit-learn for its bundled digits: "
                 "pip install 'deltaprop[demo]'")
    X, y = load_digits(return_X_y=True)
    split: list[npt.NDArray[Any]] = train_test_split(X / 16.0, y, test_size=0.25, stratify=y,
                                                     random_state=seed)
    return split


def train(backend: str, data: list[npt.NDArray[Any]],
          args: argparse.Namespace) -> tuple[dp.History, float]:
    X_train, X_test, y_train, y_test = data
    net = dp.MLP([64, 128, 64, 10], activation="relu", output="softmax", dtype=args.dtype,
                 seed=args.seed, backend=backend, n_threads=args.threads)
    label = {"cpp": "C++ engine", "numpy": "NumPy reference"}[backend]
    print(f"\n{label}: {net}")
    elapsed = [0.0]

    def report(history: dp.History) -> None:
        elapsed[0] += history.seconds[-1]
        print(f"  epoch {history.epochs:3d}   loss {history.loss[-1]:.6f}   "
              f"{history.seconds[-1] * 1e3:8.2f} ms   elapsed {elapsed[0]:7.3f} s")

    history = net.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, momentum=args.momentum, callback=report)
    accuracy = float((net.predict(X_test) == y_test).mean())
    print(f"  test accuracy {accuracy:.2%} on {len(y_test)} held-out digits")
    return history, accuracy


def positive_int(text: str) -> int:
    """argparse's type for counts: a usage error for 0 or less, not a crash after training."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m deltaprop.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=30,
                        help="passes over the training images (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="rows per SGD step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="learning rate (default: %(default)s)")
    parser.add_argument("--momentum", type=float, default=0.9,
                        help="SGD momentum (default: %(default)s)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads (default: OMP_NUM_THREADS or all cores)")
    parser.add_argument("--seed", type=int, default=0,
                        help="initial weights, shuffles and the train/test split "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)

    data = load_digits_split(args.seed)
    print(f"digits: {len(data[0])} training and {len(data[1])} test images of 8x8 pixels, "
          f"10 classes; {args.epochs} epochs of minibatch SGD (batch {args.batch_size}, "
          f"lr {args.lr}, momentum {args.momentum}), {args.dtype}, "
          f"{args.threads or dp._core.default_threads()} thread(s)")
    cpp, cpp_accuracy = train("cpp", data, args)
    ref, ref_accuracy = train("numpy", data, args)

    cpp_time, ref_time = sum(cpp.seconds), sum(ref.seconds)
    gap = float(np.max(np.abs(np.subtract(cpp.loss, ref.loss))))
    print("\nsummary")
    print(f"  C++ engine      {cpp_time:8.3f} s   test accuracy {cpp_accuracy:.2%}")
    print(f"  NumPy reference {ref_time:8.3f} s   test accuracy {ref_accuracy:.2%}")
    speed = ref_time / cpp_time
    verdict = f"{speed:.1f}x faster than" if speed >= 1 else f"{1 / speed:.1f}x slower than"
    print(f"  the C++ engine trained {verdict} the NumPy reference; the two loss curves "
          f"differ by at most {gap:.1e} (same seed, same batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
