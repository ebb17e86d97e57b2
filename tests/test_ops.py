"""Every C++ kernel against its NumPy twin (dp.reference), for both dtypes and 1 and 2 threads,
at sizes around the GEMM's blocks (MB 32, NB 64, KC = NC 256) and tiny and prime ones."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, RTOL, THREADS, assert_close

import deltaprop as dp
from deltaprop import reference as ref

EDGE = [1, 3, 4, 5, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257]
GEMM_SHAPES = [(m, n, k) for m, n, k in [
    (1, 1, 1), (1, 7, 3), (5, 1, 4), (3, 4, 1), (33, 65, 257), (32, 64, 256), (31, 63, 255),
    (4, 257, 5), (65, 3, 97), (128, 10, 784), (97, 300, 513), (257, 256, 33),
]] + [(e, 17, 19) for e in EDGE] + [(13, e, 11) for e in EDGE] + [(7, 9, e) for e in EDGE]

ACTIVATIONS = ["identity", "relu", "sigmoid", "logistic", "tanh"]


def operand(rng, shape, dtype, transposed):
    """A matrix of logical `shape`, stored transposed (F-order view) or not."""
    if transposed:
        return np.ascontiguousarray(rng.standard_normal(shape[::-1]).astype(dtype)).T
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("m, n, k", GEMM_SHAPES)
def test_gemm_matches_reference(rng, dtype, trans_a, trans_b, m, n, k):
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    expected = ref.gemm(A, B, trans_a, trans_b)
    for threads in THREADS:
        got = dp.ops.gemm(A, B, trans_a, trans_b, n_threads=threads)
        assert got.dtype == dtype
        assert_close(got, expected, what=f"n_threads={threads}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_alpha_beta_and_out_view(rng, dtype):
    A, B = operand(rng, (70, 300), dtype, False), operand(rng, (300, 90), dtype, True)
    big = rng.standard_normal((80, 100)).astype(dtype)
    out = big[5:75, 3:93]  # a view with row stride 100
    before = big.copy()
    expected = ref.gemm(A, B, alpha=-0.5, beta=2.0, out=out.copy())
    result = dp.ops.gemm(A, B, alpha=-0.5, beta=2.0, out=out)
    assert result is out
    assert_close(out, expected)
    outside = np.ones(big.shape, bool)
    outside[5:75, 3:93] = False
    np.testing.assert_array_equal(big[outside], before[outside])  # nothing written outside


# One shape per path of csrc/gemm.cpp: direct (small, and k < 8), narrow dot products (a few
# columns, also in a product under the direct loop's size), packed with few rows, packed as C^T
# (narrow C; with trans_a) or with idle columns (without), packed.
PATH_SHAPES = [(6, 4, 5), (50, 40, 3), (64, 3, 100), (26, 1, 100), (5, 100, 200), (200, 10, 100),
               (40, 50, 60)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", PATH_SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("alpha", [1.0, 0.0])
def test_gemm_beta_zero_ignores_nan_in_out(rng, dtype, m, n, k, trans_a, alpha):
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    dp.ops.gemm(A, B, trans_a, alpha=alpha, out=out)
    assert_close(out, alpha * ((A.T if trans_a else A) @ B))


# The narrow path's dot products take the last k mod L values as the L ending at k (L = 8, 4 or
# 2 values to a vector, with the CPU's vector registers), the lanes summed before zeroed in both
# operands: an infinity there must count once, not turn into NaN as infinity x 0. (Rows of 100:
# with 8 lanes the last step overlaps k = 92..95; rows of 103 leave a remainder for every L.)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, where", [(100, 5), (100, 93), (100, 97),
                                      (103, 98), (103, 100), (103, 102)])
def test_gemm_narrow_dot_products_count_an_infinity_once(rng, dtype, k, where):
    A = rng.standard_normal((64, k)).astype(dtype)
    B = np.abs(rng.standard_normal((k, 3))).astype(dtype) + 1
    A[::2, where] = np.inf
    got = dp.ops.gemm(A, B, n_threads=1, check_finite=False)
    np.testing.assert_array_equal(got[::2], np.inf)
    assert_close(got[1::2], A[1::2] @ B)


# (20, 0, 10): no columns in a shape the narrow path would otherwise take.
@pytest.mark.parametrize("m, n, k", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0), (20, 0, 10)])
def test_gemm_zero_sized(rng, m, n, k):
    A, B = np.ones((m, k)), np.ones((k, n))
    np.testing.assert_array_equal(dp.ops.gemm(A, B), np.zeros((m, n)))
    out = np.full((m, n), 3.0)
    dp.ops.gemm(A, B, beta=0.5, out=out)
    np.testing.assert_array_equal(out, np.full((m, n), 1.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_is_bitwise_identical_across_thread_counts(rng, dtype):
    A = rng.standard_normal((300, 700)).astype(dtype)
    B = rng.standard_normal((700, 200)).astype(dtype)
    one = dp.ops.gemm(A, B, n_threads=1)
    np.testing.assert_array_equal(one, dp.ops.gemm(A, B, n_threads=2))
    np.testing.assert_array_equal(one, dp.ops.gemm(A, B, n_threads=3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n, i, o", [(1, 1, 1), (33, 17, 65), (200, 64, 300)])
def test_dense_forward_backward_and_delta_propagate(rng, dtype, threads, activation, n, i, o):
    X = rng.standard_normal((n, i)).astype(dtype)
    W = rng.standard_normal((i, o)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dZ = rng.standard_normal((n, o)).astype(dtype)
    Z_prev = rng.standard_normal((n, i)).astype(dtype)
    for got, want, what in [
        (dp.ops.dense_forward(X, W, b, activation, n_threads=threads),
         ref.dense_forward(X, W, b, activation), "dense_forward"),
        (dp.ops.dense_backward(dZ, X, n_threads=threads), ref.dense_backward(dZ, X),
         "dense_backward"),
        ((dp.ops.delta_propagate(dZ, W, Z_prev, activation, n_threads=threads),),
         (ref.delta_propagate(dZ, W, Z_prev, activation),), "delta_propagate"),
    ]:
        for g, w in zip(got, want):
            assert g.dtype == dtype
            assert_close(g, w, what=what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("grad_at_zero", [0.0, 0.5, 1.0])
def test_activation_forward_backward(rng, dtype, activation, grad_at_zero):
    Z = rng.standard_normal((50, 70)).astype(dtype) * 4
    Z[::7, ::5] = 0  # exact zeros: the ReLU kink
    Z[0, :3] = [40, -40, 1e-30]  # saturation
    dA = rng.standard_normal(Z.shape).astype(dtype)
    assert_close(dp.ops.activation_forward(Z, activation), ref.activation_forward(Z, activation))
    assert_close(dp.ops.activation_backward(dA, Z, activation, grad_at_zero),
                 ref.activation_backward(dA, Z, activation, grad_at_zero))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
@pytest.mark.parametrize("threads", THREADS)
def test_output_loss_delta(rng, dtype, output, threads):
    Z = (rng.standard_normal((300, 12)) * 5).astype(dtype)
    Y = rng.random((300, 12)).astype(dtype)
    loss, A, dZ = dp.ops.output_loss_delta(Z, Y, output, n_threads=threads)
    loss_ref, A_ref, dZ_ref = ref.output_loss_delta(Z, Y, output)
    assert loss == pytest.approx(loss_ref, rel=RTOL[np.dtype(dtype)])
    assert_close(A, A_ref)
    assert_close(dZ, dZ_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_momentum_step(rng, dtype, momentum):
    p, v, g = (rng.standard_normal((40, 30)).astype(dtype) for _ in range(3))
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(3):
        dp.ops.sgd_momentum_step(p, v, g, 0.1, momentum)
        ref.sgd_momentum_step(p_ref, v_ref, g, 0.1, momentum)
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(p, p_ref)


@pytest.mark.parametrize("n, seed, epoch", [(0, 0, 0), (1, 5, 0), (10, 3, 1), (1797, 0, 0),
                                            (1797, 0, 1), (5000, 2**63 + 7, 123456)])
def test_shuffle_order_is_the_same_permutation_on_both_backends(n, seed, epoch):
    order = dp.ops.shuffle_order(n, seed, epoch)
    np.testing.assert_array_equal(order, ref.shuffle_order(n, seed, epoch))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    if n > 100:  # it really shuffles, and epochs differ
        assert (order != np.arange(n)).mean() > 0.9
        assert (order != dp.ops.shuffle_order(n, seed, epoch + 1)).mean() > 0.9
