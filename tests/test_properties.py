"""Property-based tests (Hypothesis) of dp.ops: random shapes (0 and 1 included), dtypes,
memory layouts (C, F, strided, reversed, misaligned, read-only, np.memmap) and sizes too large
to allocate. Every accepted case must give the reference's answer; every refused one a
documented exception naming the argument. tests/test_properties_hostile.py feeds the ops wrong
dtypes, NaN/inf and wrong types; tests/test_properties_model.py does the model API.

tests/test_bad_input.py holds the hand-written cases and a crash fuzz; these files add what they
cannot: the accepted random cases are checked against the reference, and Hypothesis shrinks a
failure to its smallest case (tests/properties.py has the profiles).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given
from hypothesis import strategies as st
from properties import (
    ACTIVATIONS,
    accepted_input,
    dims,
    examples,
    float_dtypes,
    grad_at_zero,
    layouts,
    make,
    names_argument,
    normal,
    positive_dims,
    seeds,
)

import deltaprop as dp
from deltaprop import ops
from deltaprop import reference as ref

# -- gemm: every layout it documents, against the reference --------------------------------

def gemm_operand(a: np.ndarray, layout: str) -> np.ndarray:
    """gemm takes any view with unit stride along one axis: C, F, row-sliced and transposed."""
    if layout == "strided":  # rows sliced out of a wider matrix: unit stride, longer rows
        wide = np.zeros((a.shape[0], a.shape[1] + 3), a.dtype)
        wide[:, :a.shape[1]] = a
        return wide[:, :a.shape[1]]
    return make(a, layout)


def gemm_accepts(a: np.ndarray) -> bool:
    if a.size == 0 or a.ndim != 2:
        return a.ndim == 2
    if not a.flags.aligned:
        return False
    item = a.itemsize
    rows, cols = a.shape
    s0, s1 = a.strides
    row_major = (cols <= 1 or s1 == item) and (rows <= 1 or (s0 > 0 and s0 % item == 0
                                                             and s0 // item >= cols))
    col_major = (rows <= 1 or s0 == item) and s1 > 0 and s1 % item == 0 and s1 // item >= rows
    return row_major or col_major


@examples(500)
@given(m=dims, n=dims, k=dims, trans_a=st.booleans(), trans_b=st.booleans(), dtype=float_dtypes,
       layout_a=layouts, layout_b=layouts, alpha=st.sampled_from([1.0, 0.0, -0.5, 3.0]),
       beta=st.sampled_from([0.0, 1.0, 0.25]), with_out=st.booleans(), seed=seeds,
       n_threads=st.sampled_from([0, 1, 2]))
def test_gemm_matches_the_reference_or_names_the_layout(m, n, k, trans_a, trans_b, dtype,
                                                       layout_a, layout_b, alpha, beta,
                                                       with_out, seed, n_threads):
    A = gemm_operand(normal(seed, (k, m) if trans_a else (m, k), dtype), layout_a)
    B = gemm_operand(normal(seed + 1, (n, k) if trans_b else (k, n), dtype), layout_b)
    C0 = normal(seed + 2, (m, n), dtype)
    out = C0.copy() if with_out else None
    if not (gemm_accepts(A) and gemm_accepts(B)):
        with pytest.raises(ValueError) as info:
            ops.gemm(A, B, trans_a, trans_b, alpha, beta if with_out else 0.0, out,
                     n_threads=n_threads)
        assert names_argument(info.value, "A", "B")
        return
    got = ops.gemm(A, B, trans_a, trans_b, alpha, beta if with_out else 0.0, out,
                   n_threads=n_threads)
    expected = ref.gemm(A, B, trans_a, trans_b, alpha, beta if with_out else 0.0,
                        C0.copy() if with_out else None)
    assert got.dtype == dtype and got.shape == (m, n)
    if with_out:
        assert got is out
    assert_close(got, expected, what="gemm")


# -- elementwise activations: any shape and ndim, every name --------------------------------

shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)


@examples(500)
@given(shape=shapes, dtype=float_dtypes, activation=st.sampled_from(ACTIVATIONS),
       layout=layouts, g0=grad_at_zero, seed=seeds, scale=st.sampled_from([1.0, 4.0, 30.0]),
       which=st.sampled_from(["forward", "derivative", "backward"]))
def test_activation_ops_match_the_reference(shape, dtype, activation, layout, g0, seed, scale,
                                            which):
    Z = make(normal(seed, shape, dtype, scale), layout)
    dA = normal(seed + 1, shape, dtype)
    if which == "forward":
        call = lambda k: k.activation_forward(Z, activation)  # noqa: E731
    elif which == "derivative":
        call = lambda k: k.activation_derivative(Z, activation, g0)  # noqa: E731
    else:
        call = lambda k: k.activation_backward(dA, Z, activation, g0)  # noqa: E731
    if not accepted_input(Z):
        with pytest.raises(ValueError, match=r"\bZ\b.*(C-contiguous|aligned)"):
            call(ops)
        return
    got = call(ops)
    assert got.dtype == dtype and got.shape == shape
    assert_close(got, call(ref), what=f"{which} {activation}")


# -- dense layer, forward and backward ------------------------------------------------------

@examples(400)
@given(N=dims, I=dims, O=dims, dtype=float_dtypes, activation=st.sampled_from(ACTIVATIONS),
       g0=grad_at_zero, layout=layouts, seed=seeds, n_threads=st.sampled_from([0, 1, 2]),
       which=st.sampled_from(["forward", "backward", "delta"]))
def test_dense_ops_match_the_reference(N, I, O, dtype, activation, g0, layout, seed, n_threads,
                                       which):
    X = make(normal(seed, (N, I), dtype), layout)
    W, b = normal(seed + 1, (I, O), dtype), normal(seed + 2, (O,), dtype)
    dZ = normal(seed + 3, (N, O), dtype)
    if which == "forward":
        call = lambda k: k.dense_forward(X, W, b, activation, g0, n_threads=n_threads)  # noqa: E731
    elif which == "backward":
        call = lambda k: k.dense_backward(dZ, X, n_threads=n_threads)  # noqa: E731
    else:  # X plays Z_prev
        call = lambda k: k.delta_propagate(dZ, W, X, activation, g0,  # noqa: E731
                                           n_threads=n_threads)
    if not accepted_input(X):
        with pytest.raises(ValueError) as info:
            call(ops)
        assert names_argument(info.value, "X", "Z_prev")
        return
    got, expected = call(ops), call(ref)
    for g, e in zip(got if isinstance(got, tuple) else [got],
                    expected if isinstance(expected, tuple) else [expected]):
        assert g.dtype == dtype
        assert_close(g, e, what=which)


# -- outputs and losses ---------------------------------------------------------------------

@examples(300)
@given(N=positive_dims, O=positive_dims, dtype=float_dtypes,
       output=st.sampled_from(["softmax", "sigmoid", "identity"]), seed=seeds,
       scale=st.sampled_from([1.0, 10.0, 60.0]))
def test_output_loss_delta_matches_the_reference(N, O, dtype, output, seed, scale):
    Z = normal(seed, (N, O), dtype, scale)
    rng = np.random.default_rng(seed + 1)
    if output == "softmax":
        Y = rng.dirichlet(np.ones(O), N).astype(dtype)
    elif output == "sigmoid":
        Y = rng.integers(0, 2, (N, O)).astype(dtype)
    else:
        Y = normal(seed + 1, (N, O), dtype)
    loss, A, dZ = ops.output_loss_delta(Z, Y, output)
    loss_ref, A_ref, dZ_ref = ref.output_loss_delta(Z, Y, output)
    assert np.isfinite(loss)
    assert_close(np.float64(loss), np.float64(loss_ref), rtol=1e-5 if dtype == np.float32 else
                 1e-10, what="loss")
    assert_close(A, A_ref, what="A")
    assert_close(dZ, dZ_ref, what="dZ")


# -- optimizer steps, in place --------------------------------------------------------------

@examples(400)
@given(shape=st.lists(dims, min_size=1, max_size=2).map(tuple), dtype=float_dtypes, seed=seeds,
       step=st.sampled_from(["sgd", "nesterov", "adam", "l2", "clip"]),
       lr=st.sampled_from([0.0, 1e-3, 0.1, 1.0]), momentum=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
       t=st.integers(1, 10**6))
def test_optimizer_steps_match_the_reference(shape, dtype, seed, step, lr, momentum, t):
    arrays = [normal(seed + i, shape, dtype) for i in range(4)]
    for k in (ops, ref):
        p, a, b, g = (x.copy() for x in arrays)
        if k is ops:
            mine = (p, a, b, g)
        else:
            theirs = (p, a, b, g)
        if step == "sgd":
            k.sgd_momentum_step(p, a, g, lr, momentum)
        elif step == "nesterov":
            k.nesterov_step(p, a, g, lr, momentum)
        elif step == "adam":
            b[...] = np.abs(b)  # the second moment is non-negative
            k.adam_step(p, a, b, g, t, lr)
        elif step == "l2":
            k.add_l2(g, p, 0.1 + momentum, 7)
        else:
            norms = k.clip_by_global_norm([p, g], 0.5 + lr)
            assert np.isfinite(norms)
    for x, y in zip(mine, theirs):
        assert_close(x, y, what=step)


# -- shuffling: the same order on both backends ---------------------------------------------

@examples(300)
@given(n=st.one_of(st.integers(0, 3), st.integers(0, 5000)), seed=st.integers(0, 2**64 - 1),
       epoch=st.integers(0, 2**64 - 1))
def test_shuffle_order_is_the_reference_permutation(n, seed, epoch):
    order = ops.shuffle_order(n, seed, epoch)
    np.testing.assert_array_equal(order, ref.shuffle_order(n, seed, epoch))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


# -- sizes too large to exist ---------------------------------------------------------------

# Each dimension alone is one NumPy can describe (a zero-size (m, 0) array needs m·itemsize to
# fit), but any product of two needs more bytes than an index can count, so no test can succeed
# in allocating it on a machine that overcommits memory.
huge = st.integers(2**40, 2**58)


@examples(200)
@given(m=huge, n=huge, dtype=float_dtypes, trans=st.booleans(),
       kind=st.sampled_from(["gemm", "shuffle", "broadcast", "mlp"]))
def test_impossible_sizes_fail_cleanly(m, n, dtype, trans, kind):
    """A result too large to allocate is a MemoryError (or a ValueError for a size beyond the
    engine's range), raised before any work: never a crash, a hang or an attempt to fill it."""
    if kind == "gemm":  # an (m x 0) times (0 x n) product has an m x n result
        A = np.empty((0, m) if trans else (m, 0), dtype)
        with pytest.raises(MemoryError):
            ops.gemm(A, np.empty((0, n), dtype), trans)
    elif kind == "shuffle":
        with pytest.raises(MemoryError):
            ops.shuffle_order(m, 1, 2)
    elif kind == "broadcast":  # a huge view of one element: stride 0 is not C-contiguous
        Z = np.broadcast_to(np.ones(1, dtype), (m,))
        with pytest.raises(ValueError, match="C-contiguous"):
            ops.activation_forward(Z, "tanh")
    else:
        sizes = [3, m >> 16, n >> 16, 2]  # 2**24 to 2**42 units: too many weights, or too wide
        with pytest.raises((MemoryError, ValueError)):
            dp.MLP(sizes, dtype=dtype)
