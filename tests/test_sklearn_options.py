"""deltaprop's options on the scikit-learn estimators beyond scikit-learn's own: residual blocks,
dropout and AlphaDropout, one activation per hidden layer. Each must train, be reproducible from
random_state on any thread count, survive save/load into a plain dp.MLP, and be refused clearly
where it cannot apply."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as skl
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import deltaprop as dp
from deltaprop.sklearn import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at small max_iter
        return est.fit(X, y, **kw)


def test_residual_blocks_train_and_load_into_a_plain_mlp(digits, tmp_path):
    X_train, X_test, y_train, y_test = digits
    # 64 inputs, three hidden layers of 64: all three are residual blocks
    est = fit(MLPClassifier((64, 64, 64), residual=True, init="he_uniform", max_iter=30,
                            random_state=0), X_train, y_train)
    assert est.score(X_test, y_test) > 0.93
    plain = fit(MLPClassifier((64, 64, 64), init="he_uniform", max_iter=30, random_state=0),
                X_train, y_train)
    assert not np.allclose(est.predict_proba(X_test), plain.predict_proba(X_test))
    est.save(tmp_path / "residual.npz")
    net = dp.MLP.load(tmp_path / "residual.npz")
    assert net._residual == [True, True, True]
    np.testing.assert_allclose(net.forward(X_test), est.predict_proba(X_test), rtol=1e-12)
    again = MLPClassifier.load(tmp_path / "residual.npz")
    np.testing.assert_array_equal(again.predict_proba(X_test), est.predict_proba(X_test))


def test_residual_list_chooses_layers_and_bad_ones_are_named(digits):
    X_train, _, y_train, _ = digits
    est = fit(MLPClassifier((32, 32), residual=[False, True], max_iter=3, random_state=0),
              X_train, y_train)
    assert est._network(np.float64).layer_sizes == [64, 32, 32, 10]
    for residual, error, words in [
        (True, ValueError, "no hidden layer"),            # 64 -> 32 -> 16: none is square
        ([True, False], ValueError, "residual"),          # 64 -> 32 is not square
        ([True], ValueError, "residual must be one value or a list of 2"),
        (["yes", False], TypeError, "residual"),
    ]:
        with pytest.raises(error, match=words):
            fit(MLPClassifier((32, 16), residual=residual, max_iter=2), X_train, y_train)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_dropout_is_reproducible_on_any_thread_count_and_in_either_loop(digits, solver):
    X_train, X_test, y_train, y_test = digits
    kw = dict(hidden_layer_sizes=(64,), solver=solver, dropout=0.2, max_iter=12,
              random_state=3, learning_rate_init=0.05 if solver == "sgd" else 0.01)
    runs = [fit(MLPClassifier(n_threads=t, callback=c, **kw), X_train, y_train)
            for t, c in [(1, None), (2, None), (1, lambda est: False)]]
    for other in runs[1:]:  # threads, and the per-epoch Python loop, change nothing
        for a, b in zip(runs[0].coefs_, other.coefs_):
            np.testing.assert_array_equal(a, b)
    without = fit(MLPClassifier(**{**kw, "dropout": 0.0}), X_train, y_train)
    assert not np.allclose(runs[0].coefs_[0], without.coefs_[0])
    assert runs[0].score(X_test, y_test) > 0.9
    assert runs[0]._epochs_trained == 12
    proba = runs[0].predict_proba(X_test)  # prediction keeps every unit: deterministic
    np.testing.assert_array_equal(proba, runs[0].predict_proba(X_test))


def test_dropout_epochs_count_across_warm_starts_and_partial_fit(digits):
    X_train, _, y_train, _ = digits
    est = fit(MLPClassifier((32,), dropout=0.3, warm_start=True, max_iter=4, random_state=0),
              X_train, y_train)
    fit(est, X_train, y_train)
    assert est._epochs_trained == 8  # the second fit drew new masks, not the first fit's again
    once = MLPClassifier((32,), dropout=0.3, random_state=0)
    for _ in range(3):
        once.partial_fit(X_train, y_train, classes=np.arange(10))
    assert once._epochs_trained == 3


def test_dropout_per_layer_sparse_input_and_regression(digits):
    X_train, _, y_train, _ = digits
    kw = dict(hidden_layer_sizes=(32, 16), dropout=[0.1, 0.3], max_iter=5, random_state=0)
    dense = fit(MLPRegressor(**kw), X_train, y_train.astype(float))
    # sparse X's batches draw the dense fit's masks: the same fit, to rounding
    sparse = fit(MLPRegressor(**kw), sp.csr_matrix(X_train), y_train.astype(float))
    assert all(np.isfinite(W).all() for W in dense.coefs_ + sparse.coefs_)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-12)
    undropped = fit(MLPRegressor(**{**kw, "dropout": 0.0}), X_train, y_train.astype(float))
    assert not np.allclose(undropped.coefs_[0], dense.coefs_[0])  # (the masks did something)


def test_alpha_dropout_with_selu_trains(digits):
    X_train, X_test, y_train, y_test = digits
    est = fit(MLPClassifier((64, 64), activation="selu", init="lecun_normal", dropout=0.05,
                            alpha_dropout=True, max_iter=20, random_state=0), X_train, y_train)
    assert est.score(X_test, y_test) > 0.9


@pytest.mark.parametrize(("params", "error", "words"), [
    (dict(solver="lbfgs", dropout=0.2), ValueError, "dropout needs a stochastic solver"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=[0.1, 0.2]), ValueError, "dropout must be one value or a list of 1"),
    (dict(alpha_dropout="yes"), ValueError, "alpha_dropout"),
])
def test_bad_dropout_settings_are_refused_at_fit(digits, params, error, words):
    X_train, _, y_train, _ = digits
    with pytest.raises(error, match=words):
        MLPClassifier((16,), max_iter=2, **params).fit(X_train[:50], y_train[:50])


def test_one_activation_per_hidden_layer(digits, tmp_path):
    """A list gives each hidden layer its own activation, in order (scikit-learn #10097): the
    probabilities are those of tanh then ReLU computed by hand from the fitted weights, and a
    list of one name repeated trains exactly as that name alone."""
    X_train, X_test, y_train, _ = digits
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=10, random_state=0, n_threads=1)
    est = fit(MLPClassifier(activation=["tanh", "relu"], **kw), X_train, y_train)
    (W0, W1, W2), (b0, b1, b2) = est.coefs_, est.intercepts_
    Z = np.maximum(np.tanh(X_test @ W0 + b0) @ W1 + b1, 0.0) @ W2 + b2
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X_test), P / P.sum(axis=1, keepdims=True),
                               rtol=1e-10, atol=1e-13)
    repeated = fit(MLPClassifier(activation=["tanh", "tanh"], **kw), X_train, y_train)
    single = fit(MLPClassifier(activation="tanh", **kw), X_train, y_train)
    for a, b in zip(repeated.coefs_, single.coefs_):
        np.testing.assert_array_equal(a, b)
    # saved with its list, and read back by the estimator and by a plain MLP
    est.save(tmp_path / "mixed.dp")
    assert MLPClassifier.load(tmp_path / "mixed.dp").activation == ["tanh", "relu"]
    np.testing.assert_allclose(dp.MLP.load(tmp_path / "mixed.dp").forward(X_test),
                               est.predict_proba(X_test), rtol=1e-12)
    mixed = (dp.Activation("leaky_relu", alpha=0.2), "logistic")
    assert fit(MLPClassifier(activation=mixed, **kw), X_train, y_train).n_iter_ == 10


@pytest.mark.parametrize(("activation", "words"), [
    (["relu"], "1 activations for 2 hidden layers"),
    (["relu", "nope"], r"activation\[1\] must be one of"),
    (["relu", "softmax"], r"activation\[1\] must be one of"),
])
def test_bad_activation_lists_are_refused_at_fit(digits, activation, words):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=words):
        MLPClassifier((16, 8), activation=activation, max_iter=2).fit(X_train, y_train)


def test_bias_init_sets_the_initial_biases_and_keeps_sklearns_weights(digits):
    """bias_init replaces the initial biases only: with init='sklearn' the weights are still
    scikit-learn's draws for the seed. (Without early stopping, _best_coefs and
    _best_intercepts hold the initial parameters, in both libraries.)"""
    X_train, _, y_train, _ = digits
    ours = fit(MLPClassifier((16, 8), bias_init=0.01, random_state=0, max_iter=1),
               X_train, y_train)
    theirs = fit(skl.MLPClassifier((16, 8), random_state=0, max_iter=1), X_train, y_train)
    for a, b in zip(ours._best_coefs, theirs._best_coefs):
        np.testing.assert_array_equal(a, b)
    assert all((b == 0.01).all() for b in ours._best_intercepts)
    per_layer = fit(MLPClassifier((16, 8), bias_init=[0.1, None, 0.0], init="he_normal",
                                  random_state=0, max_iter=1), X_train, y_train)
    assert [float(b[0]) for b in per_layer._best_intercepts] == [0.1, 0.0, 0.0]
    with pytest.raises(ValueError, match="bias_init must be one value or a list of 3"):
        MLPClassifier((16, 8), bias_init=[0.1], max_iter=1).fit(X_train, y_train)
