"""Whole-data passes (the engine's loss_and_gradients, forward, evaluate: L-BFGS's objective,
predictions, early stopping's held-out rows) run in row blocks of at most 2048 rows, whose
activations stay in cache: over several blocks, weighted or not, with a block of no weight,
they match the NumPy reference's one pass over all rows, and agree with each other to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, assert_close

from deltaprop import _core, reference

SIZES = [6, 16, 4]


def problem(rng, dtype, n):
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]
    params = [rng.standard_normal(s).astype(dtype) * 0.5
              for shape in zip(SIZES[:-1], SIZES[1:]) for s in (shape, shape[1:])]
    return X, Y, params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weights", [None, "uniform", "a block of none"])
@pytest.mark.parametrize("n", [2048, 2049, 7000])
def test_whole_data_gradients_match_the_reference_over_row_blocks(rng, dtype, weights, n):
    X, Y, params = problem(rng, dtype, n)
    w = None if weights is None else rng.uniform(0.1, 2, n)
    if weights == "a block of none":
        w[: n // 2] = 0  # the first block (of 1, 2 or 4: at most 2048 rows each) weighs nothing
    core = getattr(_core, f"Engine_{np.dtype(dtype).name}")(SIZES, "relu", "softmax")
    grads = [np.full_like(p, np.nan) for p in params]
    loss = core.loss_and_gradients(params, X, Y, grads, w)
    ref_loss, ref_grads = reference.mlp_loss_and_gradients(
        params, X, Y, reference.NetSpec.build(SIZES, "relu", "softmax"), w)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert loss == pytest.approx(ref_loss, rel=rtol)
    for g, r in zip(grads, ref_grads):
        assert_close(g, r, rtol)
    # the same blocks give evaluate the same loss, to the bit, and forward the same outputs
    evaluated, outputs = core.evaluate(params, X, Y, w)
    assert evaluated == loss
    np.testing.assert_array_equal(outputs, core.forward(params, X))
