"""Initial weights (deltaprop.init): each scheme's variance, the defaults per activation, bias
init, reproducibility, scikit-learn's exact scheme, and SELU's self-normalisation with LeCun
init."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deltaprop import reference as ref
from deltaprop.activations import NAMES, Activation
from deltaprop.init import INIT_SCHEMES, default_init, init_network

FAN_IN, FAN_OUT = 400, 300


def one_layer(scheme, activation="relu", seed=0):
    coefs, intercepts = init_network([FAN_IN, FAN_OUT, 2], activation, seed, scheme=scheme)
    return coefs[0], intercepts[0]


@pytest.mark.parametrize("scheme, variance", [
    ("he_uniform", 2 / FAN_IN), ("he_normal", 2 / FAN_IN), ("lecun_normal", 1 / FAN_IN),
    ("glorot_uniform", 2 / (FAN_IN + FAN_OUT)), ("glorot_normal", 2 / (FAN_IN + FAN_OUT)),
    ("sklearn", 2 / (FAN_IN + FAN_OUT)),  # b = √(6/(fan_in + fan_out)), Var = b²/3
])
def test_each_scheme_has_its_variance(scheme, variance):
    W, b = one_layer(scheme)
    assert abs(W.mean()) < 0.02 * np.sqrt(variance)
    assert W.var() == pytest.approx(variance, rel=0.03)
    if "uniform" in scheme or scheme == "sklearn":
        bound = np.sqrt(3 * variance)
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    if scheme == "sklearn":
        assert np.abs(b).max() <= np.sqrt(3 * variance) and b.std() > 0  # biases drawn too
    else:
        np.testing.assert_array_equal(b, 0)


def test_the_schemes_are_these_six():
    assert set(INIT_SCHEMES) == {"he_uniform", "he_normal", "lecun_normal", "glorot_uniform",
                                 "glorot_normal", "sklearn"}


def test_he_gain_follows_the_negative_slope():
    W, _ = one_layer("he_normal", Activation("leaky_relu", alpha=0.5))
    assert W.var() == pytest.approx(2 / (1.25 * FAN_IN), rel=0.03)
    W, _ = one_layer("he_uniform", "prelu")  # slope 0.25 at init
    assert W.var() == pytest.approx(2 / (1.0625 * FAN_IN), rel=0.03)


def test_sklearn_scheme_uses_factor_two_for_logistic():
    W, _ = one_layer("sklearn", "logistic")
    assert np.abs(W).max() <= np.sqrt(2 / (FAN_IN + FAN_OUT))
    assert W.var() == pytest.approx(2 / 3 / (FAN_IN + FAN_OUT), rel=0.03)


def test_default_scheme_per_activation():
    expected = {"relu": "he_uniform", "leaky_relu": "he_uniform", "prelu": "he_uniform",
                "necro_relu": "he_uniform", "elu": "he_uniform", "selu": "lecun_normal"}
    for name in NAMES:
        assert default_init(name) == expected.get(name, "glorot_uniform"), name
    assert default_init(Activation("logistic")) == "glorot_uniform"


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_default_network_draws_he_then_glorot_uniform_in_order(activation, dtype):
    """The default network, draw for draw: He-uniform (bound √(6/fan_in)) for ReLU hidden
    layers, Glorot-uniform (√(6/(fan_in+fan_out))) elsewhere and for the output layer, one draw
    per layer in order from the generator, zero biases."""
    sizes = [6, 9, 4, 3]
    rng = np.random.default_rng(5)
    old = ([], [])
    for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        he = activation == "relu" and l < len(sizes) - 2
        bound = np.sqrt(6.0 / fan_in) if he else np.sqrt(6.0 / (fan_in + fan_out))
        old[0].append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        old[1].append(np.zeros(fan_out, dtype=dtype))
    new = init_network(sizes, activation, np.random.default_rng(5), dtype)
    for a, b in zip(old[0] + old[1], new[0] + new[1]):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)


def test_schemes_and_activations_per_layer_and_constant_biases():
    sizes = [50, 40, 30, 2]
    coefs, intercepts = init_network(sizes, ["relu", "selu"], 3, bias_init=0.01)
    for b in intercepts:
        np.testing.assert_array_equal(b, 0.01)
    # relu layer He-uniform, selu layer LeCun normal (unbounded), output Glorot-uniform
    assert np.abs(coefs[0]).max() <= np.sqrt(6 / 50)
    assert np.abs(coefs[1]).max() > np.sqrt(3 / 40)
    assert np.abs(coefs[2]).max() <= np.sqrt(6 / 32)
    coefs, intercepts = init_network(sizes, "tanh", 3, scheme=["he_normal", None, "lecun_normal"],
                                     bias_init=[0.1, None, -0.2])
    assert [float(b[0]) for b in intercepts] == [0.1, 0.0, -0.2]


def test_seeded_and_reproducible():
    a = init_network([5, 4, 3], "relu", 11, scheme="he_normal")
    b = init_network([5, 4, 3], "relu", np.random.default_rng(11), scheme="he_normal")
    c = init_network([5, 4, 3], "relu", 12, scheme="he_normal")
    for x, y, z in zip(a[0], b[0], c[0]):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)
    s1 = init_network([5, 4, 3], "relu", 11, scheme="sklearn")
    s2 = init_network([5, 4, 3], "relu", np.random.RandomState(11), scheme="sklearn")
    for x, y in zip(s1[0] + s1[1], s2[0] + s2[1]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scheme": "xavier"}, ValueError, "unknown scheme 'xavier'"),
    ({"scheme": ["sklearn", "he_normal"]}, ValueError, "whole network"),
    ({"scheme": ["he_normal"]}, ValueError, "scheme must be one value or a list of 2"),
    ({"scheme": "sklearn", "rng": np.random.default_rng(0)}, TypeError, "RandomState"),
    ({"rng": "seed"}, TypeError, "rng"),
    ({"bias_init": float("inf")}, ValueError, "bias_init"),
    ({"activation": ["relu", "tanh"]}, ValueError, "activation must be one value or a list"),
    ({"activation": "relux"}, ValueError, "unknown activation"),
    ({"dtype": "float16"}, TypeError, "dtype"),
])
def test_bad_arguments_raise_naming_them(kwargs, error, match):
    args = {"activation": "relu", "rng": 0, **kwargs}
    with pytest.raises(error, match=match):
        init_network([4, 3, 2], args.pop("activation"), args.pop("rng"), **args)


# -- scikit-learn's exact initial weights ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_sklearn_scheme_is_scikit_learns_initial_network(rng, estimator, activation, dtype):
    """scikit-learn draws its initial weights first thing in fit; a learning rate of 1e-300
    makes the one SGD epoch change none of them, so coefs_ after fit are the initial ones."""
    neural = pytest.importorskip("sklearn.neural_network")
    from sklearn.exceptions import ConvergenceWarning

    X = rng.standard_normal((40, 6)).astype(dtype)
    y = rng.integers(0, 3, 40) if estimator == "MLPClassifier" else rng.standard_normal((40, 2))
    est = getattr(neural, estimator)(hidden_layer_sizes=(7, 5), activation=activation,
                                     solver="sgd",  # keywords: MLPRegressor's first is loss
                                     learning_rate_init=1e-300, momentum=0.0, alpha=0.0,
                                     max_iter=1, shuffle=False, random_state=1234)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1, on purpose
        est.fit(X, y)
    n_out = 3 if estimator == "MLPClassifier" else 2
    coefs, intercepts = init_network([6, 7, 5, n_out], activation, 1234, dtype, scheme="sklearn")
    assert len(coefs) == len(est.coefs_)
    for ours, theirs in zip(coefs + intercepts, est.coefs_ + est.intercepts_):
        assert ours.dtype == theirs.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)


# -- SELU + LeCun normal: self-normalisation (Klambauer et al. 2017; seed 003) ------------------


@pytest.mark.parametrize("scheme, normalised", [(None, True), ("he_normal", False)])
def test_selu_with_lecun_init_keeps_mean_zero_variance_one_through_32_layers(scheme, normalised):
    sizes = [200] * 33 + [1]  # 32 hidden SELU layers; their default scheme is lecun_normal
    coefs, intercepts = init_network(sizes, "selu", 0, scheme=scheme)
    A = np.random.default_rng(1).standard_normal((1000, 200))
    stats = []
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        A = ref.activation_forward(A @ W + b, "selu")
        stats.append((A.mean(), A.var()))
    means, variances = np.array(stats).T
    ok = (np.abs(means) < 0.1).all() and (np.abs(variances - 1) < 0.15).all()
    assert ok == normalised, (means.round(3), variances.round(3))
