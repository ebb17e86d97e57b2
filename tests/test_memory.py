"""No memory leaks across calls: the resident set size stays flat over a long training run and
over many models made and dropped, and the arrays the bindings create are all freed.

The sizes make a leak loud: each epoch's workspace (activations and deltas of a full batch of
256 rows through 128-unit layers) is about 1 MB, so leaking it once per epoch, per fit call or
per model would grow the process by 100 MB or more, against a tolerance of 16 MB for the
allocator's own noise. scripts/leak_check.sh runs the same kind of workload under valgrind."""

from __future__ import annotations

import gc
import os
import tracemalloc

import numpy as np
import pytest

import deltaprop as dp

# Under AddressSanitizer (scripts/sanitize.sh) freed memory waits in ASan's quarantine (256 MB by
# default, so that a use after free is caught) instead of going back: resident memory grows by
# design there, and LeakSanitizer/valgrind (scripts/leak_check.sh) check leaks instead.
linux_only = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm") or bool(dp.config_info()["deltaprop"]["sanitizers"]),
    reason="needs /proc, and an allocator that returns freed memory (not ASan's quarantine)")
TOLERANCE = 16 << 20


def resident_bytes() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def problem(rng):
    X = rng.standard_normal((256, 64))
    return X, (X[:, :10] @ rng.standard_normal((10, 10))).argmax(axis=1)


@linux_only
@pytest.mark.parametrize("calls", ["one fit of 200 epochs", "100 fits of one epoch"])
def test_resident_memory_stays_flat_over_200_epochs(rng, calls):
    X, y = problem(rng)
    net = dp.MLP([64, 128, 128, 10], dtype="float64", seed=0)
    net.fit(X, y, epochs=10, batch_size=256, lr=0.01)  # workspace and allocator warmed up
    before = resident_bytes()
    if calls.startswith("one"):
        net.fit(X, y, epochs=200, batch_size=256, lr=0.01, optimizer="adam")
    else:
        for _ in range(100):
            net.fit(X, y, epochs=1, batch_size=256, lr=0.01, optimizer="adam")
    net.predict(X)
    growth = resident_bytes() - before
    assert growth < TOLERANCE, f"resident memory grew by {growth / 2**20:.1f} MB"


@linux_only
def test_resident_memory_stays_flat_over_many_models(rng):
    X, y = problem(rng)

    def one_model(seed):
        net = dp.MLP([64, 128, 128, 10], dtype="float32", seed=seed)
        net.fit(X, y, epochs=1, batch_size=256)
        net.predict(X)
        net.loss_and_gradients(X, y)

    for seed in range(10):
        one_model(seed)
    before = resident_bytes()
    for seed in range(100):
        one_model(seed)
    growth = resident_bytes() - before
    assert growth < TOLERANCE, f"resident memory grew by {growth / 2**20:.1f} MB"


def test_arrays_made_by_the_bindings_are_freed(rng):
    """NumPy reports its buffers to tracemalloc, so an array a binding creates and never
    releases (a reference leaked in C++) stays traced."""
    X, y = problem(rng)
    net = dp.MLP([64, 32, 10], seed=0)
    Z = rng.standard_normal((200, 100))

    def calls():
        net.forward(X)
        net.loss_and_gradients(X, y)
        net.fit(X, y, epochs=1, batch_size=64)
        dp.ops.gemm(Z, Z, trans_b=True)
        dp.ops.dense_forward(Z, Z[:100], Z[0], "tanh")
        dp.ops.dense_backward(Z, Z)
        dp.ops.activation_backward(Z, Z, "elu")
        dp.ops.output_loss_delta(Z, np.abs(Z), "sigmoid")
        dp.ops.shuffle_order(1000, 1, 2)
        for bad in (lambda: dp.ops.gemm(Z, Z), lambda: net.forward(Z)):  # raising paths too
            try:
                bad()
            except ValueError:
                pass

    calls()
    gc.collect()
    tracemalloc.start()
    try:
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            calls()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert growth < 256 << 10, f"{growth} bytes still traced after 50 rounds"
