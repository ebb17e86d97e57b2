"""What fit(record_health=True) costs, as a ratio: one epoch of the issue's 784-512-512-10
network (2048 synthetic rows, batch 128) with and without recording, alternated in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/health_overhead.py

It measures the process's CPU time on one thread (median of 15 pairs), which other processes on
a shared machine disturb far less than wall time; the learning rate is 0 so every epoch does the
same work. The target (issue 6) is under 5%. test_bench_health.py times the same in wall time
with pytest-benchmark and checks the recorded run trains the same weights.
"""

from __future__ import annotations

import time

import numpy as np

import deltaprop as dp


def overhead(dtype: str, pairs: int = 15):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 784)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 2048)]
    net = dp.MLP([784, 512, 512, 10], dtype=dtype, n_threads=1)
    params = net._params()
    state = [np.zeros_like(p) for p in params]
    health = np.empty((6, 3))

    def epoch(record):
        start = time.process_time()
        net._engine.train_epoch(params, state, None, X, Y, batch_size=128, lr=0.0,
                                health=health if record else None)
        return time.process_time() - start

    epoch(False), epoch(True)  # warm-up: workspaces, page faults
    plain, recorded = [], []
    for _ in range(pairs):
        plain.append(epoch(False))
        recorded.append(epoch(True))
    return np.median(plain), np.median(recorded)


def main():
    print("record_health overhead, 784-512-512-10, 2048 rows, batch 128, 1 thread, CPU time")
    for dtype in ("float32", "float64"):
        plain, recorded = overhead(dtype)
        print(f"  {dtype}: plain {plain * 1e3:6.1f} ms   recording {recorded * 1e3:6.1f} ms   "
              f"overhead {recorded / plain - 1:+.1%}")


if __name__ == "__main__":
    main()
