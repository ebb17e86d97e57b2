"""The matrix multiply: ``dp.ops.gemm`` against NumPy's matmul (OpenBLAS, as NumPy's wheels
ship it), at 1024^3 and at the three products of the large network's first layer on a batch of
128 (forward NN, weight gradient TN, delta NT). Each (dtype, shape) is one group; within it,
each side on 1 and 2 threads. Both write into a preallocated output; transposed operands are
transposed views for NumPy and trans_a/trans_b flags for deltaprop, as the engine calls them.
Each benchmark asserts its product agrees with NumPy's (float64 to 1e-12, float32 to 1e-5 of
the largest entry).
"""

from __future__ import annotations

import numpy as np
import pytest
from workloads import (
    DTYPES,
    GEMM_CASES,
    THREADS,
    CpuMonitor,
    assert_gemm_agrees,
    blas_threads,
    have_threadpoolctl,
    is_noisy,
    settle,
)

import deltaprop as dp

RUNNERS = [("deltaprop", t) for t in THREADS]
RUNNERS += [("numpy", t) for t in THREADS] if have_threadpoolctl() else [("numpy", None)]
RUNNER_IDS = [f"{b}-{t}t" if t else f"{b}-default" for b, t in RUNNERS]

CASES = [pytest.param(case, dt, id=f"{case.name}-{case.layout}-{dt}",
                      marks=pytest.mark.benchmark(group=f"gemm {dt} {case.label} ({case.name})"))
         for dt in DTYPES for case in GEMM_CASES]


@pytest.mark.parametrize(("case", "dtype"), CASES)
@pytest.mark.parametrize(("impl", "threads"), RUNNERS, ids=RUNNER_IDS)
def test_gemm(benchmark, case, dtype, impl, threads):
    A, B, C = case.operands(dtype)
    An, Bn = case.numpy_views(A, B)
    expected = An @ Bn  # untimed, before any timing: NumPy's product is the yardstick

    if impl == "deltaprop":
        def run():
            return dp.ops.gemm(A, B, case.trans_a, case.trans_b, out=C, n_threads=threads)
    else:
        def run():
            return np.matmul(An, Bn, out=C)

    settle()  # the previous benchmark's BLAS threads may still be spinning
    monitor = CpuMonitor()
    with blas_threads(threads if impl == "numpy" else None):
        # 1024^3 takes up to ~0.2 s a call on one core: a fixed few rounds; the rest calibrate.
        if case.m * case.k * case.n >= 1 << 30:
            benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
        else:
            benchmark(run)
    err = assert_gemm_agrees(C, expected, dtype, f"{impl} {case.label} {dtype}")
    benchmark.extra_info.update(shape=case.label, impl=impl, threads=threads,
                                gflop=case.flops / 1e9, max_rel_error_vs_numpy=err,
                                others_cpu_share=monitor.busy_share(), noisy=is_noisy(monitor))
    median = benchmark.stats.stats.median if benchmark.stats else None
    if median:
        benchmark.extra_info["gflops_per_s"] = case.flops / median / 1e9
