"""Dropout and AlphaDropout of the reference: the counter-based mask (reproducible, defined bit
for bit so C++ can draw the same), its statistics, and each forward with its backward."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import reference as ref

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64_int(x):
    """splitmix64's output function on a Python int, written independently of reference/train."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & M64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & M64
    return x ^ (x >> 31)


def mask_by_the_spec(shape, rate, seed, epoch, batch, layer):
    """The mask as the module docstring defines it, one element at a time in Python ints."""
    h = mix64_int(seed ^ 0x44524F504F555421)
    for x in (epoch, batch, layer):
        h = mix64_int((h + x * GAMMA) & M64)
    keep = []
    for e in range(int(np.prod(shape))):
        u = mix64_int((h + (e + 1) * GAMMA) & M64)
        keep.append((u >> 11) * 2.0**-53 >= rate)
    return np.array(keep).reshape(shape)


@pytest.mark.parametrize("shape, rate, seed, epoch, batch, layer", [
    ((3, 5), 0.5, 0, 0, 0, 0), ((4, 7), 0.2, 12345, 3, 17, 2),
    ((1, 9), 0.9, 2**64 - 1, 2**40, 2**63, 2**64 - 1), ((6,), 0.3, 7, 1, 0, 1),
])
def test_mask_is_exactly_the_documented_counter_hash(shape, rate, seed, epoch, batch, layer):
    got = ref.dropout_mask(shape, rate, seed, epoch, batch, layer)
    assert got.dtype == bool and got.shape == shape
    np.testing.assert_array_equal(got, mask_by_the_spec(shape, rate, seed, epoch, batch, layer))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_kept_fraction_is_within_statistical_bounds(rate):
    mask = ref.dropout_mask((300, 500), rate, 42, 0, 0, 0)
    sigma = np.sqrt(rate * (1 - rate) / mask.size)
    assert abs(mask.mean() - (1 - rate)) < 5 * sigma
    # and columns are not correlated with rows: each unit is kept about as often
    assert abs(mask.mean(axis=0).std() - np.sqrt(rate * (1 - rate) / 300)) < 0.01


def test_mask_is_reproducible_and_every_counter_matters():
    args = ((64, 32), 0.5, 9, 2, 5, 1)
    base = ref.dropout_mask(*args)
    np.testing.assert_array_equal(base, ref.dropout_mask(*args))
    for i in range(2, 6):  # seed, epoch, batch, layer
        changed = list(args)
        changed[i] += 1
        other = ref.dropout_mask(*changed)
        assert 0.4 < (other == base).mean() < 0.6  # independent masks agree about half the time


def test_rate_zero_keeps_everything_and_bad_counters_raise():
    assert ref.dropout_mask((10, 10), 0.0, 1, 2, 3, 4).all()
    with pytest.raises(ValueError, match="rate"):
        ref.dropout_mask((2, 2), 1.0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        ref.dropout_mask((2, 2), 0.5, -1, 0, 0, 0)
    with pytest.raises(TypeError, match="layer"):
        ref.dropout_mask((2, 2), 0.5, 0, 0, 0, 1.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_scales_the_kept_units_and_its_backward_is_the_same_map(rng, dtype):
    A = rng.standard_normal((50, 40)).astype(dtype)
    dA = rng.standard_normal(A.shape).astype(dtype)
    mask = ref.dropout_mask(A.shape, 0.25, 3, 0, 1, 0)
    out = ref.dropout_forward(A, mask, 0.25)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[~mask], 0)
    np.testing.assert_allclose(out[mask], A[mask] / 0.75, rtol=1e-6)
    # The forward is linear: its backward multiplies by the same diagonal.
    np.testing.assert_array_equal(ref.dropout_backward(dA, mask, 0.25),
                                  ref.dropout_forward(dA, mask, 0.25))
    np.testing.assert_array_equal(ref.dropout_forward(A, np.ones(A.shape, bool), 0.0), A)


def test_dropout_keeps_the_mean_in_expectation():
    A = np.full((400, 500), 2.0)
    out = ref.dropout_forward(A, ref.dropout_mask(A.shape, 0.4, 1, 0, 0, 0), 0.4)
    assert out.mean() == pytest.approx(2.0, abs=0.02)


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2, 0.5])
def test_alpha_dropout_keeps_mean_zero_and_variance_one(rng, rate):
    X = rng.standard_normal((400, 1000))
    mask = ref.dropout_mask(X.shape, rate, 11, 0, 0, 0)
    out = ref.alpha_dropout_forward(X, mask, rate)
    assert abs(out.mean()) < 0.01
    assert abs(out.var() - 1) < 0.02
    assert abs(ref.dropout_forward(X, mask, rate).var() - 1) > 0.04  # plain dropout does not


def test_alpha_dropout_coefficients_match_the_papers_formula():
    for rate in [0.0, 0.1, 0.5]:
        a, b, alpha_p = ref.alpha_dropout_coefficients(rate)
        assert alpha_p == pytest.approx(-1.7580993408473766, rel=1e-15)
        # Klambauer et al. 2017: a = ((1 − p)(1 + p α'²))^−½, b = −a p α' (p the drop rate)
        assert a == pytest.approx(((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5, rel=1e-14)
        assert b == pytest.approx(-a * rate * alpha_p, rel=1e-14, abs=1e-300)
    assert ref.alpha_dropout_coefficients(0.0)[:2] == (1.0, 0.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_dropout_backward_matches_finite_differences(rng, dtype):
    X = rng.standard_normal((20, 30))
    dY = rng.standard_normal(X.shape)
    mask = ref.dropout_mask(X.shape, 0.2, 5, 0, 0, 0)
    h = 1e-3
    fd = (ref.alpha_dropout_forward(X + h, mask, 0.2)
          - ref.alpha_dropout_forward(X - h, mask, 0.2)) / (2 * h) * dY
    got = ref.alpha_dropout_backward(dY.astype(dtype), mask, 0.2)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6)
    out = ref.alpha_dropout_forward(X.astype(dtype), mask, 0.2)
    a, b, alpha_p = ref.alpha_dropout_coefficients(0.2)
    assert out.dtype == dtype
    np.testing.assert_allclose(out[~mask], a * alpha_p + b, rtol=1e-6)
