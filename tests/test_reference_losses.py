"""Every output and loss of the reference, with and without sample weights: the value against
its textbook formula, the output delta against central finite differences of the value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deltaprop import reference as ref

COMBOS = [("identity", "squared_error"), ("identity", "absolute_error"), ("identity", "huber"),
          ("sigmoid", "binary_log_loss"), ("softmax", "log_loss"), ("exp", "poisson")]
IDS = [loss for _, loss in COMBOS]
N, O = 7, 3


def make_problem(rng, output, loss):
    Z = rng.standard_normal((N, O)) * 2
    if output == "identity":
        Y = Z + rng.choice([-1, 1], Z.shape) * rng.uniform(0.1, 3, Z.shape)  # |r| not near 0
        Y[np.abs(np.abs(Y - Z) - 1.0) < 0.05] += 0.2  # nor near the Huber corner
    elif output == "sigmoid":
        Y = rng.integers(0, 2, Z.shape).astype(float)
        Y[0] = 0.3  # soft targets are allowed
    elif output == "softmax":
        Y = np.eye(O)[rng.integers(0, O, N)]
        Y[0] = [0.2, 0.5, 0.3]
    else:
        Z *= 0.5
        Y = rng.poisson(2.0, Z.shape).astype(float)
    return Z, Y


def weights(rng, sample_weighted):
    return rng.uniform(0.1, 3.0, N) if sample_weighted else None


def finite_difference(f, Z, h=1e-6):
    g = np.zeros_like(Z)
    for i in np.ndindex(Z.shape):
        up, down = Z.copy(), Z.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g


def textbook(output, loss, Z, Y, huber_delta=1.0):
    """Per-row losses, written the long way."""
    if output == "identity":
        r = Z - Y
        if loss == "squared_error":
            e = 0.5 * r**2
        elif loss == "absolute_error":
            e = np.abs(r)
        else:
            e = np.where(np.abs(r) <= huber_delta, 0.5 * r**2,
                         huber_delta * np.abs(r) - 0.5 * huber_delta**2)
    elif output == "sigmoid":
        P = 1 / (1 + np.exp(-Z))
        e = -(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    elif output == "softmax":
        P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
        e = -Y * np.log(P)
    else:  # the half Poisson deviance y log(y / a) - y + a, y log(y / a) = 0 at y = 0
        A = np.exp(Z)
        e = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / A), 0.0) - Y + A
    return e.sum(axis=1)


@pytest.mark.parametrize("sample_weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("output, loss", COMBOS, ids=IDS)
def test_loss_value_matches_the_textbook(rng, output, loss, sample_weighted):
    Z, Y = make_problem(rng, output, loss)
    s = weights(rng, sample_weighted)
    value, A, _ = ref.output_loss_delta(Z, Y, output, loss=loss, sample_weight=s)
    rows = textbook(output, loss, Z, Y)
    expected = rows.mean() if s is None else (s * rows).sum() / s.sum()
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(A, ref.output_forward(Z, output))


@pytest.mark.parametrize("sample_weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("output, loss", COMBOS, ids=IDS)
def test_delta_is_the_gradient_of_the_loss(rng, output, loss, sample_weighted):
    Z, Y = make_problem(rng, output, loss)
    s = weights(rng, sample_weighted)

    def value(z):
        return ref.output_loss_delta(z, Y, output, loss=loss, sample_weight=s)[0]

    _, _, dZ = ref.output_loss_delta(Z, Y, output, loss=loss, sample_weight=s)
    np.testing.assert_allclose(dZ, finite_difference(value, Z), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("output, loss", COMBOS, ids=IDS)
def test_integer_weights_equal_repeated_rows(rng, output, loss):
    Z, Y = make_problem(rng, output, loss)
    counts = np.array([1, 3, 0, 2, 1, 1, 4])
    value, _, dZ = ref.output_loss_delta(Z, Y, output, loss=loss, sample_weight=counts)
    rows = np.repeat(np.arange(N), counts)
    value_rep, _, dZ_rep = ref.output_loss_delta(Z[rows], Y[rows], output, loss=loss)
    assert value == pytest.approx(value_rep, rel=1e-12)
    summed = np.zeros_like(dZ)
    np.add.at(summed, rows, dZ_rep)  # a weight-3 row carries the gradient of its 3 copies
    np.testing.assert_allclose(dZ, summed, rtol=1e-12, atol=1e-15)
    assert (dZ[2] == 0).all()  # weight 0: no gradient


@pytest.mark.parametrize("output, loss", COMBOS, ids=IDS)
def test_equal_weights_change_nothing(rng, output, loss):
    Z, Y = make_problem(rng, output, loss)
    plain = ref.output_loss_delta(Z, Y, output, loss=loss)
    weighted = ref.output_loss_delta(Z, Y, output, loss=loss, sample_weight=np.full(N, 2.5))
    assert weighted[0] == pytest.approx(plain[0], rel=1e-14)
    np.testing.assert_allclose(weighted[2], plain[2], rtol=1e-14)


@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_the_default_losses_are_the_canonical_ones_unchanged(rng, output):
    Z, Y = make_problem(rng, output, None)
    default = ref.output_loss_delta(Z, Y, output)
    named = ref.output_loss_delta(Z, Y, output, loss=ref.LOSSES[output][0])
    assert default[0] == named[0]
    np.testing.assert_array_equal(default[2], named[2])
    np.testing.assert_array_equal(default[2], (default[1] - Y) * (1 / N))


def test_absolute_error_delta_is_the_sign_and_zero_at_zero():
    Z = np.array([[1.0, 2.0, 3.0]])
    Y = np.array([[0.0, 2.0, 5.0]])
    _, _, dZ = ref.output_loss_delta(Z, Y, "identity", loss="absolute_error")
    np.testing.assert_array_equal(dZ, [[1.0, 0.0, -1.0]])


def test_huber_is_squared_inside_delta_and_linear_outside(rng):
    Z = rng.standard_normal((50, 2)) * 3
    Y = np.zeros_like(Z)
    sq = ref.output_loss_delta(Z, Y, "identity", loss="squared_error")
    wide = ref.output_loss_delta(Z, Y, "identity", loss="huber", huber_delta=100.0)
    assert wide[0] == pytest.approx(sq[0], rel=1e-14)
    np.testing.assert_allclose(wide[2], sq[2], rtol=1e-14)
    delta = 1e-6
    narrow = ref.output_loss_delta(Z, Y, "identity", loss="huber", huber_delta=delta)
    mae = ref.output_loss_delta(Z, Y, "identity", loss="absolute_error")
    assert narrow[0] / delta == pytest.approx(mae[0], rel=1e-5)
    np.testing.assert_allclose(narrow[2] / delta, mae[2], rtol=1e-12)
    textbook_rows = textbook("identity", "huber", Z, Y, huber_delta=2.0)
    value, _, _ = ref.output_loss_delta(Z, Y, "identity", loss="huber", huber_delta=2.0)
    assert value == pytest.approx(textbook_rows.mean(), rel=1e-12)


def test_poisson_is_the_half_deviance_and_differs_from_the_likelihood_by_constants(rng):
    Z = rng.standard_normal((N, O)) * 0.5
    Y = rng.poisson(2.0, Z.shape).astype(float)
    assert (Y == 0).any()  # y log y taken as 0 there
    value, A, dZ = ref.output_loss_delta(Z, Y, "exp", loss="poisson")
    np.testing.assert_allclose(A, np.exp(Z))
    np.testing.assert_allclose(dZ, (np.exp(Z) - Y) / N, rtol=1e-14)
    ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1)), 0.0)
    half_deviance = (ylogy - Y * np.log(A) - Y + A).sum() / N  # scikit-learn's poisson_loss
    assert value == pytest.approx(half_deviance, rel=1e-12)
    log_fact = np.vectorize(lambda y: math.lgamma(y + 1))(Y)
    nll = -(Y * Z - np.exp(Z) - log_fact).sum() / N  # −log Poisson(y; e^z)
    assert value + (log_fact - (ylogy - Y)).sum() / N == pytest.approx(nll, rel=1e-12)
    exact = np.log(np.where(Y > 0, Y, 1.0))  # a perfect prediction of the positive counts
    assert ref.output_loss_delta(exact[Y > 0][:, None], Y[Y > 0][:, None], "exp")[0] == \
        pytest.approx(0.0, abs=1e-14)


def test_exp_output_is_the_exponential(rng):
    Z = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(ref.output_forward(Z, "exp"), np.exp(Z))


@pytest.mark.parametrize("output, loss", COMBOS, ids=IDS)
@pytest.mark.parametrize("sample_weighted", [False, True], ids=["unweighted", "weighted"])
def test_float32_keeps_its_dtype(rng, output, loss, sample_weighted):
    Z, Y = make_problem(rng, output, loss)
    s = weights(rng, sample_weighted)
    v64, A64, d64 = ref.output_loss_delta(Z, Y, output, loss=loss, sample_weight=s)
    v32, A32, d32 = ref.output_loss_delta(Z.astype(np.float32), Y.astype(np.float32), output,
                                          loss=loss, sample_weight=s)
    assert A32.dtype == np.float32 and d32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"output": "identity", "loss": "poisson"}, ValueError, "does not go with output"),
    ({"output": "softmax", "loss": "squared_error"}, ValueError, "does not go with output"),
    ({"output": "relu"}, ValueError, "unknown output 'relu'"),
    ({"output": "identity", "sample_weight": np.ones(N - 1)}, ValueError, "sample_weight"),
    ({"output": "identity", "sample_weight": -np.ones(N)}, ValueError, "non-negative"),
    ({"output": "identity", "sample_weight": np.zeros(N)}, ValueError, "weight.*zero"),
    ({"output": "identity", "sample_weight": np.full(N, np.nan)}, ValueError, "finite"),
    ({"output": "identity", "sample_weight": np.array(["a"] * N)}, TypeError, "sample_weight"),
    ({"output": "identity", "loss": "huber", "huber_delta": 0.0}, ValueError, "huber_delta"),
])
def test_bad_arguments_raise_naming_them(rng, kwargs, error, match):
    Z = rng.standard_normal((N, O))
    with pytest.raises(error, match=match):
        ref.output_loss_delta(Z, np.abs(Z), **kwargs)


def test_poisson_needs_non_negative_targets(rng):
    Z = rng.standard_normal((N, O))
    with pytest.raises(ValueError, match="non-negative"):
        ref.output_loss_delta(Z, Z, "exp", loss="poisson")
