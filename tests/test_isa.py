"""Every GEMM path (generic, AVX2, AVX-512) this CPU can run, forced one at a time: products at
sizes just below, at and above its own micro-kernel tile and cache blocks, the fused epilogues,
and whole training runs, each against the NumPy reference."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from helpers import DTYPES, assert_close, python

import deltaprop as dp
from deltaprop import reference as ref

KC = 256  # the GEMM's k-slice (csrc/gemm.cpp)


def edge_sizes(tile):
    return sorted({1, tile - 1, tile, tile + 1, 2 * tile + 1} - {0})


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_at_the_paths_own_tile_edges(isa, rng, dtype):
    mr, nr = dp.ops.gemm_tile(np.dtype(dtype).name)
    shapes = [(m, n, k) for m in edge_sizes(mr) for n in edge_sizes(nr) for k in (7, KC + 1)]
    shapes += [(mr + 1, nr + 1, k) for k in (KC - 1, KC, 2 * KC + 3)]
    shapes += [(3 * mr + 5, 10, 97), (128, 10, 300), (10, 3 * nr + 1, 64)]  # narrow C
    shapes += [(nr, 1, 9), (133, 3, 100), (200, 1, 2 * KC + 3), (300, 4, 61)]  # dot products
    shapes += [(2, 100, 200), (10, 100, 200), (mr - 1, 2 * nr + 3, KC + 1)]  # short C: packed
    shapes += [(mr + 1, nr + nr // 2 + extra, 33) for extra in (0, 1)]  # half-width edge or not
    for m, n, k in shapes:
        for trans_a in (False, True):
            for trans_b in (False, True):
                A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
                B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
                C0 = rng.standard_normal((m, n)).astype(dtype)
                for beta in (0.0, 1.0, -0.5):
                    out = C0.copy()
                    dp.ops.gemm(A, B, trans_a, trans_b, alpha=0.75, beta=beta, out=out)
                    expected = ref.gemm(A, B, trans_a, trans_b, alpha=0.75, beta=beta,
                                        out=C0.copy())
                    assert_close(out, expected, what=f"{isa} {(m, n, k, trans_a, trans_b, beta)}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_operands_read_in_place(isa, rng, dtype):
    # The packed path reads op(A) (row-major or transposed), and a small row-major B at
    # alpha = 1, where they lie (csrc/gemm.cpp, gemm_packed): row strides wider than the rows
    # (views into larger arrays), tile edges in both directions, k past one slice, B's column
    # sums taken in a pass of their own, and a large B that is packed again, each against the
    # reference.
    mr, nr = dp.ops.gemm_tile(np.dtype(dtype).name)
    shapes = [(10, 100, 200), (4 * mr + 1, 2 * nr + 3, 61), (64, 100, KC + 7), (mr - 1, nr, 3),
              (200, 3 * nr + 5, 64), (5 * mr, 260, 520)]  # the last: B over 512 KiB in float64
    for m, n, k in shapes:
        for trans_a in (False, True):
            a_rows, a_cols = (k, m) if trans_a else (m, k)
            A = rng.standard_normal((a_rows, a_cols + 5)).astype(dtype)[:, :a_cols]
            B = rng.standard_normal((k, n + 3)).astype(dtype)[:, :n]
            for beta in (0.0, 1.0):
                C0 = rng.standard_normal((m, n)).astype(dtype)
                out = C0.copy()
                dp.ops.gemm(A, B, trans_a, False, beta=beta, out=out)
                expected = ref.gemm(A, B, trans_a, False, beta=beta, out=C0.copy())
                assert_close(out, expected, what=f"{isa} {(m, n, k, trans_a, beta)}")
        # The weight gradient: X^T dZ with the bias gradient summed from dZ.
        X = rng.standard_normal((k, m)).astype(dtype)
        dZ = rng.standard_normal((k, n)).astype(dtype)
        for threads in (1, 2):
            dW, db = dp.ops.dense_backward(dZ, X, n_threads=threads)
            dW_ref, db_ref = ref.dense_backward(dZ, X)
            assert_close(dW, dW_ref, what=f"{isa} dW {(m, n, k)}")
            assert_close(db, db_ref, what=f"{isa} db {(m, n, k)}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, grad_at_zero", [("relu", 0.0), ("relu", 0.5), ("relu", 1.0),
                                                      ("tanh", 0.0), ("sigmoid", 0.0),
                                                      ("identity", 0.0)])
# ReLU's epilogues run in the kernels' registers (gemm_kernel.hpp, TileOps): on full tiles and
# right edges stored masked (27, 20 and 100 columns: partial full- and half-width kernels), after
# a k past one slice (32 x 300 x 40), and in the direct loop (k < 8) on 32-, 8- and overlapping
# last 8-column blocks (37, 100 columns) or one column at a time (5); the rest after the product.
@pytest.mark.parametrize("n, i, o", [(32, 64, 128), (128, 257, 10), (5, 40, 33), (200, 30, 1),
                                     (133, 100, 3), (32, 300, 40), (50, 5, 37), (50, 5, 5),
                                     (64, 37, 3), (64, 20, 27), (100, 100, 10)])
def test_fused_epilogues_match_the_unfused_reference(isa, rng, dtype, activation, grad_at_zero,
                                                     n, i, o):
    X = rng.standard_normal((n, i)).astype(dtype)
    W = rng.standard_normal((i, o)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dZ = rng.standard_normal((n, o)).astype(dtype)
    Z_prev = rng.standard_normal((n, i)).astype(dtype)
    Z_prev[::3, ::4] = 0  # the kink, where ReLU'(0) shows
    Z_prev[1::3, ::5] = -0.0  # at -0 as well
    for threads in (1, 2):
        Z, A = dp.ops.dense_forward(X, W, b, activation, grad_at_zero, n_threads=threads)
        Z_ref, A_ref = ref.dense_forward(X, W, b, activation, grad_at_zero)
        assert_close(Z, Z_ref, what="Z")
        assert_close(A, A_ref, what="A (bias + activation epilogue)")
        dW, db = dp.ops.dense_backward(dZ, X, n_threads=threads)
        dW_ref, db_ref = ref.dense_backward(dZ, X)
        assert_close(dW, dW_ref, what="dW")
        assert_close(db, db_ref, what="db (summed while packing or in its own pass)")
        got = dp.ops.delta_propagate(dZ, W, Z_prev, activation, grad_at_zero,
                                     n_threads=threads)
        want = ref.delta_propagate(dZ, W, Z_prev, activation, grad_at_zero)
        assert_close(got, want, what="delta_propagate (derivative-mask epilogue)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad_at_zero", [0.0, 1.0])
def test_training_run_matches_reference_on_every_path(isa, rng, dtype, grad_at_zero):
    X = rng.standard_normal((150, 40))
    y = rng.integers(0, 10, 150)
    kwargs = dict(dtype=dtype, seed=2, grad_at_zero=grad_at_zero)
    cpp = dp.MLP([40, 64, 48, 10], **kwargs)
    numpy = dp.MLP([40, 64, 48, 10], backend="numpy", **kwargs)
    fit = dict(epochs=3, batch_size=16, lr=0.05, momentum=0.9)  # 30 steps
    h_cpp, h_ref = cpp.fit(X, y, **fit), numpy.fit(X, y, **fit)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(np.array(h_cpp.loss), np.array(h_ref.loss), rtol=rtol)
    for a, b in zip(cpp.coefs_ + cpp.intercepts_, numpy.coefs_ + numpy.intercepts_):
        assert_close(a, b, rtol=rtol)


def test_isa_controls():
    paths = dp.ops.available_isas()
    assert paths[0] == "generic"
    assert dp.ops.get_isa() in paths
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        dp.ops.set_isa("sse9")
    for path in ("generic", "avx2", "avx512"):
        if path not in paths:
            with pytest.raises(ValueError, match=path):
                dp.ops.set_isa(path)


@pytest.mark.parametrize("value, expected", [("generic", "generic"), ("nonsense", None),
                                             ("AVX2", None), ("", "best")])
def test_environment_variable_chooses_the_path(value, expected):
    env = dict(os.environ, DELTAPROP_ISA=value)
    code = "import deltaprop as dp; print(dp.ops.get_isa(), dp.ops.available_isas()[-1])"
    run = subprocess.run(python("-c", code), env=env, capture_output=True, text=True, check=True)
    chosen, best = run.stdout.split()
    assert chosen == (best if expected in (None, "best") else expected)  # an unusable name
    said = f"RuntimeWarning: DELTAPROP_ISA={value!r} names no path this CPU runs"  # falls back
    assert (said in run.stderr) == (expected is None), run.stderr  # and says so (empty: unset)


def test_fma_peak_probe_is_positive_and_above_what_the_gemm_reaches(isa):
    peak = dp.ops.fma_peak_gflops("float32", 0.05)
    assert peak > 0
    with pytest.raises(ValueError, match="dtype"):
        dp.ops.fma_peak_gflops("int8")
