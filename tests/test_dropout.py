"""Dropout and AlphaDropout in C++ (csrc/dropout.hpp) against the reference, which
test_reference_dropout.py checks against the mask's written spec and statistics."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, THREADS

import deltaprop as dp
from deltaprop import reference as ref

MAPS = ["dropout_forward", "dropout_backward", "alpha_dropout_forward", "alpha_dropout_backward"]
SHAPES = [(0,), (1,), (7,), (3, 5), (64, 333), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_masks_are_the_reference_masks_bit_for_bit(shape, rate):
    for counters in [(0, 0, 0, 0), (7, 3, 11, 2), (2**64 - 1, 2**63, 5, 1)]:
        got = dp.ops.dropout_mask(shape, rate, *counters)
        assert got.dtype == bool and got.shape == shape
        np.testing.assert_array_equal(got, ref.dropout_mask(shape, rate, *counters))
        assert dp.ops.dropout_stream(*counters) == ref.dropout_stream(*counters)


@pytest.mark.parametrize("op", MAPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES)
def test_maps_are_the_reference_maps_bit_for_bit(rng, op, dtype, threads, shape):
    A = rng.standard_normal(shape).astype(dtype)
    mask = ref.dropout_mask(shape, 0.3, 1, 2, 3, 4)
    got = getattr(dp.ops, op)(A, mask, 0.3, n_threads=threads)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, getattr(ref, op)(A, mask, 0.3))


def test_large_masks_are_the_same_for_any_thread_count():
    shape = (1000, 600)  # above the parallel threshold
    one, two = (dp.ops.dropout_mask(shape, 0.5, 9, 8, 7, 6, n_threads=t) for t in (1, 2))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, ref.dropout_mask(shape, 0.5, 9, 8, 7, 6))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_kept_fraction_is_within_statistical_bounds(rate):
    n = 10**6
    kept = dp.ops.dropout_mask((n,), rate, 5, 0, 0, 0).mean()
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(kept - (1 - rate)) < 5 * sigma


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_mean_0_and_variance_1(rate):
    x = np.random.default_rng(1).standard_normal(10**6)
    mask = dp.ops.dropout_mask(x.shape, rate, 3, 1, 4, 1)
    y = dp.ops.alpha_dropout_forward(x, mask, rate)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01
    np.testing.assert_array_equal(dp.ops.alpha_dropout_coefficients(rate),
                                  ref.alpha_dropout_coefficients(rate))
