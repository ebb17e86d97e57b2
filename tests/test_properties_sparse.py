"""Property-based tests (Hypothesis) of sparse X in the engine: any CSR structure scipy allows
(empty rows, unsorted and repeated columns, int32 or int64 indices, values stored past the last
row's end) gives the NumPy reference's outputs, loss and gradients; one entry of indptr or
indices set to any integer is either still a valid matrix, with the reference's results, or a
ValueError naming the part, never a read outside the weights."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import RTOL, assert_close
from hypothesis import given
from hypothesis import strategies as st
from properties import examples, float_dtypes, normal, seeds

from deltaprop import _core, reference


@st.composite
def csr_matrices(draw, dtype):
    """(data, indices, indptr, n_columns) of up to 12 rows of up to 10 columns."""
    d = draw(st.integers(1, 10))
    rows = draw(st.lists(st.lists(st.integers(0, d - 1), max_size=2 * d), min_size=1,
                         max_size=12))
    index = draw(st.sampled_from([np.int32, np.int64]))
    spare = draw(st.integers(0, 3))  # stored values past indptr[-1], which scipy ignores
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(index)
    indices = np.array([c for r in rows for c in r] + [0] * spare, dtype=index)
    data = normal(draw(seeds), len(indices), dtype)
    return data, indices, indptr, d


def valid(X) -> bool:
    """scipy's check_format rules, which the engine applies."""
    data, indices, indptr, d = X
    stored = int(indptr[-1])
    rising = bool(np.all(np.diff(indptr.astype(np.int64)) >= 0))  # (an int32 diff can wrap)
    return (int(indptr[0]) == 0 and rising and stored <= len(data)
            and bool(np.all((indices[:stored] >= 0) & (indices[:stored] < d))))


def check_against_reference(X, dtype, hidden, seed):
    sizes = [X[3], hidden, 3]
    core = getattr(_core, f"Engine_{np.dtype(dtype).name}")(sizes, "tanh", "softmax")
    ref = reference.Engine(sizes, "tanh", "softmax")
    params = [normal(seed + i, s, dtype, 0.5)
              for i, s in enumerate([(sizes[0], hidden), (hidden,), (hidden, 3), (3,)])]
    n = len(X[2]) - 1
    Y = np.eye(3, dtype=dtype)[np.arange(n) % 3]
    assert_close(core.forward(params, X), ref.forward(params, X))
    grads, ref_grads = [np.empty_like(p) for p in params], [np.empty_like(p) for p in params]
    assert_close(core.loss_and_gradients(params, X, Y, grads),
                 ref.loss_and_gradients(params, X, Y, ref_grads), RTOL[np.dtype(dtype)])
    for g, r in zip(grads, ref_grads):
        assert_close(g, r)


@examples(300)
@given(data=st.data(), dtype=float_dtypes, hidden=st.integers(1, 9), seed=seeds)
def test_any_csr_matrix_gives_the_references_results(data, dtype, hidden, seed):
    X = data.draw(csr_matrices(dtype))
    check_against_reference(X, dtype, hidden, seed)


@examples(300)
@given(data=st.data(), dtype=float_dtypes, part=st.sampled_from(["indptr", "indices"]),
       value=st.one_of(st.integers(-3, 40), st.integers(-2**31, 2**31 - 1)), seed=seeds)
def test_a_corrupted_index_is_refused_or_still_a_valid_matrix(data, dtype, part, value, seed):
    X = data.draw(csr_matrices(dtype))
    array = (X[2] if part == "indptr" else X[1]).copy()
    if len(array) == 0:
        return
    array[data.draw(st.integers(0, len(array) - 1))] = value
    X = (X[0], array, X[2], X[3]) if part == "indices" else (X[0], X[1], array, X[3])
    if valid(X):
        check_against_reference(X, dtype, 4, seed)
        return
    core = getattr(_core, f"Engine_{np.dtype(dtype).name}")([X[3], 4, 3], "tanh", "softmax")
    params = [np.zeros(s, dtype) for s in [(X[3], 4), (4,), (4, 3), (3,)]]
    with pytest.raises(ValueError, match=f"X (indptr|indices|holds column)|{part}"):
        core.forward(params, X)
