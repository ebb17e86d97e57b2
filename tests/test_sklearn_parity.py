"""deltaprop.sklearn against scikit-learn itself: the same initial weights for a random_state,
the same training (full-batch and shuffled minibatch, every solver and schedule, early
stopping, partial_fit, warm_start, sample weights, multilabel) to float64 rounding, and the same
test scores on the four bundled data sets."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import sklearn.neural_network as skl  # noqa: E402
from helpers import needs_sklearn_1_7  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_multilabel_classification,
)
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import deltaprop.sklearn as dps  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RTOL = 1e-9  # float64 training runs: the same arithmetic in another order


def scaled(loader, n=None):
    """Standardised features (and, for diabetes, targets), the first n rows."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if loader is load_diabetes:
        y = (y - y.mean()) / y.std()
    return (X[:n], y[:n]) if n else (X, y)


def pair(kind, **params):
    """The scikit-learn estimator and ours, built with the same parameters."""
    return getattr(skl, kind)(**params), getattr(dps, kind)(**params)


def assert_params_close(ours, theirs, rtol=RTOL):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("activation", ["relu", "logistic"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initial_weights_are_sklearns_exactly(kind, activation, dtype):
    X, y = scaled(load_wine)
    theirs, ours = pair(kind, hidden_layer_sizes=(7, 5), activation=activation, max_iter=1,
                        random_state=42)
    theirs.fit(X.astype(dtype), y)
    ours.fit(X.astype(dtype), y)
    # _best_coefs holds the initial weights when early stopping is off (in both libraries)
    for a, b in zip(ours._best_coefs + ours._best_intercepts,
                    theirs._best_coefs + theirs._best_intercepts):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)


FULL_BATCH = [
    dict(solver="sgd", learning_rate_init=0.1),
    dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False, alpha=0.01),
    dict(solver="sgd", learning_rate_init=0.1, momentum=0.0),
    dict(solver="adam", learning_rate_init=0.01, alpha=0.001),
    dict(solver="adam", activation="tanh"),
]


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("params", FULL_BATCH)
def test_twenty_full_batch_epochs_match(kind, params):
    X, y = scaled(load_breast_cancer if kind == "MLPClassifier" else load_diabetes, 300)
    theirs, ours = pair(kind, hidden_layer_sizes=(16, 8), batch_size=300, max_iter=20,
                        tol=0.0, random_state=0, **params)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert_params_close(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL)


@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, tol=1e-2,
         n_iter_no_change=2),
    dict(solver="adam", tol=1e-2, n_iter_no_change=3),
])
def test_shuffled_minibatches_and_schedules_match(params):
    """The per-epoch shuffle is drawn from the same RandomState, so even minibatch runs and
    the stopping rules agree."""
    X, y = scaled(load_digits, 600)
    theirs, ours = pair("MLPClassifier", hidden_layer_sizes=(20,), batch_size=64, max_iter=40,
                        random_state=3, **params)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=RTOL)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate,
                                                          rel=RTOL)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-8)
    assert_params_close(ours, theirs, 1e-8)


@pytest.mark.parametrize("kind", ["MLPClassifier", "binary MLPClassifier", "MLPRegressor"])
def test_early_stopping_matches(kind):
    """scikit-learn stratifies the held-out rows of a one-output classifier (binary) only."""
    loader = {"MLPClassifier": load_wine, "binary MLPClassifier": load_breast_cancer,
              "MLPRegressor": load_diabetes}[kind]
    X, y = scaled(loader)
    kind = kind.split()[-1]
    theirs, ours = pair(kind, hidden_layer_sizes=(10,), early_stopping=True, max_iter=150,
                        learning_rate_init=0.01, n_iter_no_change=5, random_state=1)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 150
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-8)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-8)
    assert_params_close(ours, theirs, 1e-8)  # both restored the best epoch's weights
    assert len(ours.validation_loss_curve_) == ours.n_iter_


@pytest.mark.parametrize("loop", ["engine", "python"])
@pytest.mark.parametrize("random_state", [0, 2])
def test_early_stopping_with_one_class_matches(loop, random_state):
    """A classifier of one class predicts it whatever its output, so scikit-learn's held-out
    accuracy is 1 every epoch: the first epoch's weights are kept. deltaprop read its sigmoid
    output against the all-0 targets, and stopped elsewhere (random_state=2: 34 epochs, not
    22). ``loop``: the engine's epoch loop, or (a callback between epochs) Python's."""
    X, _ = scaled(load_iris)
    y = np.zeros(len(X), dtype=int)
    theirs, ours = pair("MLPClassifier", hidden_layer_sizes=(5,), early_stopping=True,
                        max_iter=50, n_iter_no_change=20, random_state=random_state)
    if loop == "python":
        ours.set_params(callback=lambda est: None)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 22  # 1, then 21 without improvement
    assert ours.validation_scores_ == theirs.validation_scores_ == [1.0] * 22
    assert_params_close(ours, theirs, 1e-8)  # both restored the first epoch's weights


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("loader", [load_breast_cancer, load_digits],
                         ids=["breast_cancer", "digits"])
def test_unscaled_data_saturating_the_outputs_matches(solver, loader):
    """Raw features (breast_cancer's reach 4 000) drive logits far past saturation, where the
    loss scikit-learn reports clips each probability to [eps, 1 − eps] and takes the logistic's
    from the rounded p: the same values give the same stopping and line searches."""
    X, y = loader(return_X_y=True)
    params = dict(solver=solver, max_iter=25, random_state=0, hidden_layer_sizes=(20,),
                  learning_rate_init=0.5 if solver == "sgd" else 0.01)
    theirs, ours = pair("MLPClassifier", **params)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    if solver == "lbfgs":
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    else:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-8)
    assert_params_close(ours, theirs, 1e-6)


@needs_sklearn_1_7
@pytest.mark.parametrize("case", ["X x 1e200", "y x 1e160", "sample_weight 5e-324"])
def test_lbfgs_on_data_past_float_range_matches(case):
    """A first loss past float's range: scipy's first step lands on non-finite weights, where
    scikit-learn's NumPy passes give NaN and scipy stops with the starting weights (n_iter_ 0,
    loss_ NaN, a ConvergenceWarning); deltaprop's engine refused those weights with an
    internal "params[0] (coefs_[0]) contains NaN or inf"."""
    from sklearn.exceptions import ConvergenceWarning

    kind = "MLPClassifier" if case.startswith("X") else "MLPRegressor"
    X, y = scaled(load_breast_cancer if kind == "MLPClassifier" else load_diabetes, 200)
    sample_weight = np.full(len(y), 5e-324) if case.startswith("sample") else None
    X = X * 1e200 if case.startswith("X") else X
    y = y * 1e160 if case.startswith("y") else y
    fitted = []
    for est in pair(kind, solver="lbfgs", hidden_layer_sizes=(8,), max_iter=20, random_state=0):
        with pytest.warns(ConvergenceWarning), np.errstate(all="ignore"):
            fitted.append(est.fit(X, y, sample_weight=sample_weight))
    theirs, ours = fitted
    assert ours.n_iter_ == theirs.n_iter_ == 0
    assert np.isnan(ours.loss_) and np.isnan(theirs.loss_)
    assert_params_close(ours, theirs, 0)


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_lbfgs_matches(kind):
    X, y = scaled(load_breast_cancer if kind == "MLPClassifier" else load_diabetes, 250)
    theirs, ours = pair(kind, solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30,
                        random_state=0)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert not hasattr(ours, "loss_curve_")
    assert_params_close(ours, theirs, 1e-6)  # L-BFGS amplifies rounding over its iterations


def test_partial_fit_and_warm_start_match():
    X, y = scaled(load_digits, 400)
    theirs, ours = pair("MLPClassifier", hidden_layer_sizes=(12,), random_state=0)
    for start in range(0, 400, 100):
        theirs.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
        ours.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_ == 400
    assert_params_close(ours, theirs)
    # each call starts a RandomState at the seed again (ours resets the one it made): the
    # same draws, so the same state left behind
    for a, b in zip(ours._random_state.get_state(), theirs._random_state.get_state()):
        np.testing.assert_array_equal(a, b)
    theirs, ours = pair("MLPRegressor", hidden_layer_sizes=(12,), random_state=0, max_iter=5,
                        warm_start=True)
    Xr, yr = scaled(load_diabetes)
    for _ in range(3):
        theirs.fit(Xr, yr)
        ours.fit(Xr, yr)
    assert_params_close(ours, theirs)


@needs_sklearn_1_7
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sample_weight_matches(solver):
    X, y = scaled(load_wine)
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    theirs, ours = pair("MLPClassifier", solver=solver, hidden_layer_sizes=(8,), max_iter=15,
                        batch_size=50, random_state=0)
    theirs.fit(X, y, sample_weight=w)
    ours.fit(X, y, sample_weight=w)
    assert_params_close(ours, theirs, 1e-8)


def test_multilabel_and_multioutput_match():
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    theirs, ours = pair("MLPClassifier", hidden_layer_sizes=(10,), max_iter=10, random_state=0)
    theirs.fit(X, Y)
    ours.fit(X, Y)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert_params_close(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    Xr, yr = scaled(load_diabetes)
    Yr = np.c_[yr, -yr, yr**2]
    theirs, ours = pair("MLPRegressor", hidden_layer_sizes=(10,), max_iter=10, alpha=0.01,
                        random_state=0)
    theirs.fit(Xr, Yr)
    ours.fit(Xr, Yr)
    # squared error: the loss averaged over the 3 outputs, the gradient not (as scikit-learn)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL)
    assert_params_close(ours, theirs)


@needs_sklearn_1_7
def test_poisson_matches():
    X, y = scaled(load_diabetes)
    theirs, ours = pair("MLPRegressor", loss="poisson", hidden_layer_sizes=(8,), max_iter=10,
                        random_state=0)
    theirs.fit(X, np.exp(y))
    ours.fit(X, np.exp(y))
    assert ours.out_activation_ == "exp"
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL)
    assert_params_close(ours, theirs)


DATASETS = [(load_digits, 0.01), (load_breast_cancer, 0.01), (load_wine, 0.01),
            (load_diabetes, 0.02)]


@pytest.mark.parametrize("loader,bound", DATASETS, ids=lambda v: getattr(v, "__name__", ""))
def test_bundled_data_sets_score_alike(loader, bound):
    X, y = scaled(loader)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    kind = "MLPRegressor" if loader is load_diabetes else "MLPClassifier"
    params = dict(hidden_layer_sizes=(50,), max_iter=60, random_state=0)
    theirs, ours = pair(kind, **params)
    theirs.fit(X_train, y_train)
    ours.fit(X_train, y_train)
    ours_score, their_score = ours.score(X_test, y_test), theirs.score(X_test, y_test)
    assert abs(ours_score - their_score) <= bound
    assert ours_score > (0.3 if kind == "MLPRegressor" else 0.9)
