"""One training epoch, the C++ engine against the NumPy reference.

Groups (one comparison table each): the issue's 784-512-512-10 network on 2048 synthetic rows
(batch 128, the matrix products dominate) and the digits demo's 64-128-64-10 network on
1797 x 64 (batch 32, per-batch overhead dominates), each in float64 and float32. Within a
group: the C++ engine on 1 and 2 OpenMP threads, and the NumPy reference with its BLAS held to
1 and 2 threads (by threadpoolctl; without it, at NumPy's default).

Correctness: before any timing, a module-level fixture trains one epoch per (network, dtype) on
each backend from the same seed and asserts the parameters agree (float64 to 1e-9, float32 to
1e-4) and that the C++ result does not depend on the thread count. Every timed round then
trains that same epoch from a fresh network, and each benchmark asserts its last round's
parameters agree with the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from workloads import (
    DTYPES,
    LARGE,
    SMALL,
    THREADS,
    CpuMonitor,
    Workload,
    assert_params_agree,
    blas_threads,
    epoch_data,
    fit_one_epoch,
    have_threadpoolctl,
    is_noisy,
    new_net,
    settle,
)

# (backend, threads): the engine's n_threads, or the reference's BLAS threads.
RUNNERS = [("cpp", t) for t in THREADS]
RUNNERS += [("numpy", t) for t in THREADS] if have_threadpoolctl() else [("numpy", None)]
RUNNER_IDS = [f"{b}-{t}t" if t else f"{b}-default" for b, t in RUNNERS]

# Timed rounds per benchmark (plus one warm-up round): an epoch of the large network takes
# 0.05 to 0.7 s on 2 cores, one of the small network a few milliseconds.
ROUNDS = {"large": 7, "small": 15}


def dtype_params(workload: Workload):
    return [pytest.param(dt, id=dt,
                         marks=pytest.mark.benchmark(group=f"epoch {workload.label} {dt}"))
            for dt in DTYPES]


@dataclass
class Reference:
    """One epoch of the NumPy reference from the workload's seed: the data it trained on and
    the parameters and loss it ended with."""

    X: np.ndarray
    y: np.ndarray
    params: list
    loss: float


@pytest.fixture(scope="module")
def reference_epoch():
    """Returns get(workload, dtype) -> Reference, computed once per module and key. Computing
    it asserts the C++ engine (1 and 2 threads) agrees with the reference on that epoch."""
    cache = {}

    def get(workload: Workload, dtype: str) -> Reference:
        key = (workload.name, dtype)
        if key not in cache:
            X, y = epoch_data(workload, dtype)
            ref = new_net(workload, dtype, "numpy")
            loss = fit_one_epoch(ref, workload, X, y).loss[0]
            want = ref.coefs_ + ref.intercepts_
            cpp_params = []
            for threads in THREADS:
                cpp = new_net(workload, dtype, "cpp", threads)
                cpp_loss = fit_one_epoch(cpp, workload, X, y).loss[0]
                assert cpp_loss == pytest.approx(loss, rel=1e-9 if dtype == "float64" else 1e-4)
                got = cpp.coefs_ + cpp.intercepts_
                assert_params_agree(got, want, dtype,
                                    f"{workload.label} {dtype}, C++ on {threads} threads")
                cpp_params.append(got)
            for a, b in zip(*cpp_params):  # the engine promises bitwise thread independence
                np.testing.assert_array_equal(a, b)
            cache[key] = Reference(X, y, want, loss)
        return cache[key]

    return get


def run_epoch_benchmark(benchmark, reference_epoch, workload, backend, threads, dtype):
    ref = reference_epoch(workload, dtype)
    nets = []

    def setup():  # untimed: a fresh, untrained network, so every round trains the same epoch
        net = new_net(workload, dtype, backend, threads if backend == "cpp" else None)
        nets.append(net)
        return (net,), {}

    def epoch(net):
        return fit_one_epoch(net, workload, ref.X, ref.y)

    settle()  # the previous benchmark's BLAS threads may still be spinning
    monitor = CpuMonitor()
    with blas_threads(threads if backend == "numpy" else None):
        history = benchmark.pedantic(epoch, setup=setup, rounds=ROUNDS[workload.name],
                                     warmup_rounds=1, iterations=1)
    net = nets[-1]
    err = assert_params_agree(net.coefs_ + net.intercepts_, ref.params, dtype,
                              f"{workload.label} {dtype}, {backend} benchmark's last round")
    assert history.loss[0] == pytest.approx(ref.loss, rel=1e-9 if dtype == "float64" else 1e-4)
    benchmark.extra_info.update(network=workload.label, rows=int(ref.X.shape[0]),
                                batch_size=workload.batch_size, backend=backend,
                                threads=threads, loss=float(history.loss[0]),
                                max_rel_error_vs_reference=err,
                                others_cpu_share=monitor.busy_share(), noisy=is_noisy(monitor))


@pytest.mark.parametrize("dtype", dtype_params(LARGE))
@pytest.mark.parametrize(("backend", "threads"), RUNNERS, ids=RUNNER_IDS)
def test_epoch_784_512_512_10(benchmark, reference_epoch, backend, threads, dtype):
    run_epoch_benchmark(benchmark, reference_epoch, LARGE, backend, threads, dtype)


@pytest.mark.parametrize("dtype", dtype_params(SMALL))
@pytest.mark.parametrize(("backend", "threads"), RUNNERS, ids=RUNNER_IDS)
def test_epoch_64_128_64_10(benchmark, reference_epoch, backend, threads, dtype):
    run_epoch_benchmark(benchmark, reference_epoch, SMALL, backend, threads, dtype)
