"""Fits on 1 and 2 threads while another process keeps a core busy, side by side in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/busy_cores.py [--repeat 5]

A parallel region ends when its slowest thread does; beside a busy process the scheduler takes
one of ours off its core now and then, and the other waits. csrc/contention.hpp times regions
against their threads' CPU time and, after one that lost, runs regions on one thread for a
while. This starts one busy-loop process, then fits deltaprop.sklearn's MLPClassifier with
scikit-learn's defaults on breast_cancer and digits and one epoch of 20 000 x 784 rows through
(512, 512), alternating 1 and 2 threads, and prints the medians, their ratio (1-thread time
over 2-thread time: below 1, the second thread costs time) and the gate's counts. Then the same
with the busy process stopped (after 1.5 s: a wait begun beside it lasts up to 1 s). Timings are
printed, never judged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np

from deltaprop import _core
from deltaprop.sklearn import MLPClassifier


def problems():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    for name, loader in (("breast_cancer", load_breast_cancer), ("digits", load_digits)):
        X, y = loader(return_X_y=True)
        yield name, StandardScaler().fit_transform(X), y, {}
    rng = np.random.default_rng(0)
    yield ("20000x784 (512, 512), 1 epoch", rng.standard_normal((20000, 784)),
           rng.integers(0, 10, 20000), dict(hidden_layer_sizes=(512, 512), batch_size=128,
                                             max_iter=1))


def medians(X, y, params, repeat):
    times = {1: [], 2: []}
    for _ in range(repeat):
        for threads in (1, 2):
            start = time.perf_counter()
            MLPClassifier(random_state=0, n_threads=threads, **params).fit(X, y)
            times[threads].append(time.perf_counter() - start)
    return {threads: float(np.median(t)) for threads, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="fits per thread count and row")
    args = parser.parse_args()
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print("OpenBLAS variables set (unset them for this command):" if unset else
          "OpenBLAS variables unset", *unset)
    warnings.simplefilter("ignore")  # the one-epoch fit's ConvergenceWarning
    rows = list(problems())
    for busy in (True, False):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            print(f"\n{'beside one busy process' if busy else 'no other process started'}:")
            for name, X, y, params in rows:
                before = _core.contention_info()
                t = medians(X, y, params, args.repeat)
                after = _core.contention_info()
                print(f"  {name:32s} 1 thread {t[1] * 1e3:8.1f} ms   2 threads {t[2] * 1e3:8.1f} ms"
                      f"   1/2 {t[1] / t[2]:5.2f}   regions lost "
                      f"{after['lost_regions'] - before['lost_regions']}, run on one thread "
                      f"{after['serial_regions'] - before['serial_regions']}")
        finally:
            if hog:
                hog.kill()
                hog.wait()
                time.sleep(1.5)  # the gate's longest wait, so the next rows start afresh


if __name__ == "__main__":
    main()
