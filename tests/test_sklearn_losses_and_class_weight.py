"""What scikit-learn's MLP users asked for and were refused, on the drop-ins: the regressor's
robust losses (loss='absolute_error' and 'huber', scikit-learn #14571) and the classifier's
class_weight (#9113). Each is checked against its definition: the loss the fit reports against
the loss computed from its predictions, class weights against the sample weights they stand
for, and the robust losses against outliers on real data."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    make_multilabel_classification,
)
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, (y - y.mean()) / y.std(),
                                                        random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def huber(r, delta):
    size = np.abs(r)
    return np.where(size <= delta, 0.5 * r * r, delta * (size - 0.5 * delta))


def l2_term(est, n):
    return 0.5 * est.alpha * sum(float((W.astype(np.float64) ** 2).sum()) for W in est.coefs_) / n


# -- the regressor's robust losses ----------------------------------------------------------------
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_lbfgs_reports_the_loss_of_its_predictions(diabetes, loss, outputs):
    """L-BFGS's loss_ is the objective at the weights it returns: here the rows' mean of the
    per-output losses summed over the outputs, plus the L2 term."""
    X, _, y, _ = diabetes
    Y = y if outputs == 1 else np.c_[y, 0.5 * y + 0.1]
    est = MLPRegressor(loss, (8,), solver="lbfgs", alpha=0.1, huber_delta=0.5, max_iter=30,
                       random_state=0, n_threads=1).fit(X, Y)
    r = (est.predict(X) - Y).reshape(len(X), -1)
    per_row = np.abs(r) if loss == "absolute_error" else huber(r, 0.5)
    assert est.loss_ == pytest.approx(per_row.sum(axis=1).mean() + l2_term(est, len(X)),
                                      rel=1e-10)


def test_huber_with_a_large_delta_trains_as_squared_error(diabetes):
    """Below its delta the Huber loss is ½ r², scikit-learn's squared error of one output:
    the same gradients, so the same fit."""
    X, _, y, _ = diabetes
    kw = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, n_threads=1)
    squared = MLPRegressor("squared_error", **kw).fit(X, y)
    wide = MLPRegressor("huber", huber_delta=1e6, **kw).fit(X, y)
    narrow = MLPRegressor("huber", huber_delta=0.1, **kw).fit(X, y)
    for a, b in zip(squared.coefs_, wide.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(squared.loss_curve_, wide.loss_curve_, rtol=1e-12)
    assert not np.allclose(squared.coefs_[0], narrow.coefs_[0])


def test_robust_losses_shrug_off_outliers(diabetes):
    """A tenth of the training targets pushed 10 standard deviations up: the squared error
    follows them (worse than predicting the mean on clean test rows), the absolute and Huber
    losses do not."""
    X, X_test, y, y_test = diabetes
    y = y.copy()
    y[np.random.default_rng(0).choice(len(y), len(y) // 10, replace=False)] += 10.0
    kw = dict(hidden_layer_sizes=(8,), alpha=1.0, learning_rate_init=0.01, max_iter=500,
              random_state=0, n_threads=1)
    scores = {loss: MLPRegressor(loss, **kw).fit(X, y).score(X_test, y_test)
              for loss in ("squared_error", "absolute_error", "huber")}
    assert scores["squared_error"] < 0
    assert scores["absolute_error"] > 0.1 and scores["huber"] > 0.1, scores


def test_robust_losses_save_into_a_plain_mlp(diabetes, tmp_path):
    X, _, y, _ = diabetes
    est = MLPRegressor("huber", (8,), huber_delta=0.3, max_iter=5, random_state=0).fit(X, y)
    est.save(tmp_path / "huber.dp")
    back = MLPRegressor.load(tmp_path / "huber.dp")
    assert (back.loss, back.huber_delta) == ("huber", 0.3)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    net = dp.MLP.load(tmp_path / "huber.dp")
    assert (net.loss, net.huber_delta) == ("huber", 0.3)
    np.testing.assert_array_equal(net.forward(X).ravel(), est.predict(X))


@pytest.mark.parametrize("params", [dict(loss="hinge"), dict(loss="huber", huber_delta=0.0),
                                    dict(huber_delta=-1.0)])
def test_bad_regression_losses_are_refused_at_fit(diabetes, params):
    X, _, y, _ = diabetes
    with pytest.raises(InvalidParameterError):
        MLPRegressor(**params).fit(X, y)


# -- the classifier's class weights ---------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_is_the_sample_weight_of_each_rows_class(wine, solver):
    X, y = wine
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=10, random_state=0,
              learning_rate_init=0.01)
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    by_class = MLPClassifier(class_weight=weights, **kw).fit(X, y)
    by_row = MLPClassifier(**kw).fit(X, y, sample_weight=np.array([weights[c] for c in y]))
    for a, b in zip(by_class.coefs_, by_row.coefs_):
        np.testing.assert_array_equal(a, b)
    # 'balanced' is scikit-learn's compute_sample_weight, and multiplies sample_weight
    s = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y, sample_weight=s)
    by_row = MLPClassifier(**kw).fit(X, y, sample_weight=s * compute_sample_weight("balanced", y))
    for a, b in zip(balanced.coefs_, by_row.coefs_):
        np.testing.assert_array_equal(a, b)


def test_class_weight_moves_the_decisions_toward_the_heavy_class():
    """breast_cancer with its malignant class (0) cut to a fifth: the heavier that class weighs,
    the more probability of it the held-out malignant rows get (0.74, 0.85, 0.89 here)."""
    X, y = load_breast_cancer(return_X_y=True)
    keep = (y == 1) | (np.arange(len(y)) % 5 == 0)
    X_train, X_test, y_train, y_test = train_test_split(X[keep], y[keep], random_state=0,
                                                        stratify=y[keep])
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    kw = dict(hidden_layer_sizes=(4,), max_iter=30, random_state=0, n_threads=1)
    probability = {}
    for name, weight in (("none", None), ("balanced", "balanced"), ("heavy", {0: 20, 1: 1})):
        est = MLPClassifier(class_weight=weight, **kw).fit(X_train, y_train)
        probability[name] = est.predict_proba(X_test[y_test == 0])[:, 0].mean()
    assert probability["none"] < probability["balanced"] < probability["heavy"], probability


def test_class_weight_in_partial_fit_early_stopping_and_multilabel(wine):
    X, y = wine
    kw = dict(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.01)
    # partial_fit: a dict weighs each call's rows; 'balanced' balances each call's rows, so one
    # call over the whole data is one epoch of fit
    for weight in ({0: 2.0, 1: 1.0, 2: 1.0}, "balanced"):
        stream = MLPClassifier(class_weight=weight, shuffle=False, **kw).partial_fit(
            X, y, classes=[0, 1, 2])
        epoch = MLPClassifier(class_weight=weight, shuffle=False, max_iter=1, **kw).fit(X, y)
        for a, b in zip(stream.coefs_, epoch.coefs_):
            np.testing.assert_array_equal(a, b)
    # early stopping scores the held-out rows with their class weights
    est = MLPClassifier(class_weight="balanced", early_stopping=True, max_iter=20, **kw)
    assert len(est.fit(X, y).validation_scores_) == est.n_iter_
    # multilabel: one dict per label column, keyed 0 and 1 (compute_sample_weight's rule)
    Xm, Ym = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    per_column = [{0: 1.0, 1: 2.0}, {0: 1.0, 1: 1.0}, {0: 3.0, 1: 1.0}]
    by_class = MLPClassifier(class_weight=per_column, max_iter=5, **kw).fit(Xm, Ym)
    by_row = MLPClassifier(max_iter=5, **kw).fit(
        Xm, Ym, sample_weight=compute_sample_weight(per_column, Ym))
    np.testing.assert_array_equal(by_class.coefs_[0], by_row.coefs_[0])


@pytest.mark.parametrize("weight,error,words", [
    ({0: 1.0, 7: 2.0}, ValueError, "not in class_weight"),
    ({0: -1.0, 1: 1.0, 2: 1.0}, ValueError, "non-negative"),
    ({0: np.nan, 1: 1.0, 2: 1.0}, ValueError, "finite"),
    ([{0: 1.0}], ValueError, "multilabel"),
    ("equal", InvalidParameterError, "class_weight"),
])
def test_bad_class_weights_are_refused_clearly(wine, weight, error, words):
    X, y = wine
    with pytest.raises(error, match=words):
        MLPClassifier((4,), class_weight=weight, max_iter=2).fit(X, y)


def test_class_weight_survives_save_and_load(wine, tmp_path):
    """JSON keys are strings; integer classes must come back as integers."""
    X, y = wine
    est = MLPClassifier((4,), class_weight={0: 1.0, 1: 2.5, 2: 1.0}, max_iter=3,
                        random_state=0).fit(X, y)
    est.save(tmp_path / "wine.dp")
    back = MLPClassifier.load(tmp_path / "wine.dp")
    assert back.class_weight == {0: 1.0, 1: 2.5, 2: 1.0}
    assert all(type(k) is int for k in back.class_weight)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    refit = back.fit(X, y)  # the loaded parameters fit again, to the same result
    for a, b in zip(refit.coefs_, est.fit(X, y).coefs_):
        np.testing.assert_array_equal(a, b)
