"""The drop-ins on pandas input, as scikit-learn's MLP takes it: feature names recorded by fit
(and kept by save/load), the same warning or error when prediction rows name other columns,
mixed and nullable column dtypes, label Series, and a pipeline whose steps pass DataFrames on.
scikit-learn's own DataFrame checks run in test_sklearn_checks.py when pandas is installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import sklearn.neural_network as skl  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from deltaprop.sklearn import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return (X - X.mean()) / X.std(), y


def pair(X, y, **params):
    """Ours and scikit-learn's, fitted alike (the same initial weights and shuffles)."""
    kw = {"hidden_layer_sizes": (8,), "max_iter": 20, "random_state": 0, **params}
    return MLPClassifier(**kw).fit(X, y), skl.MLPClassifier(**kw).fit(X, y)


def outcome(est, X):
    """predict_proba's result, or its error, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = est.predict_proba(X)
        except ValueError as error:
            result = str(error)
    return result, [str(w.message) for w in caught]


def test_feature_names_are_checked_as_scikit_learn_checks_them(wine):
    X, y = wine
    ours, theirs = pair(X, y)
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    assert ours.feature_names_in_.dtype == object and ours.n_features_in_ == 13
    for rows in (X, X.to_numpy(), X[X.columns[::-1]], X.rename(columns=str.upper),
                 X.astype(np.float32)):
        (got, got_warnings), (want, want_warnings) = outcome(ours, rows), outcome(theirs, rows)
        assert got_warnings == want_warnings
        if isinstance(want, str):  # the same error: other names, or the same in another order
            assert got == want
        else:
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, atol=1e-6)
    assert outcome(ours, X.to_numpy())[1] == [
        "X does not have valid feature names, but MLPClassifier was fitted with feature names"]


def test_mixed_and_nullable_columns_and_label_series(wine):
    X, y = wine
    mixed = X.assign(proline=(X["proline"] * 100).round().astype(int),
                     ash=X["ash"].astype("Float64"))
    labels = y.map({0: "a", 1: "b", 2: "c"}).astype("category")
    ours, theirs = pair(mixed, labels)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(mixed), theirs.predict(mixed))
    missing = mixed.copy()
    missing.loc[0, "ash"] = pd.NA
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier(max_iter=5).fit(missing, labels)


def test_pipeline_with_dataframe_output_and_partial_fit(wine):
    X, y = wine
    ours, theirs = (make_pipeline(StandardScaler().set_output(transform="pandas"),
                                  cls(hidden_layer_sizes=(8,), max_iter=50, random_state=0))
                    for cls in (MLPClassifier, skl.MLPClassifier))
    assert ours.fit(X, y).score(X, y) == theirs.fit(X, y).score(X, y)
    np.testing.assert_array_equal(ours[-1].feature_names_in_, X.columns)
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X.iloc[:100], y.iloc[:100], classes=[0, 1, 2])
    est.partial_fit(X.iloc[100:], y.iloc[100:])
    np.testing.assert_array_equal(est.feature_names_in_, X.columns)


def test_save_and_load_keep_the_feature_names(wine, tmp_path):
    X, y = wine
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    est.save(tmp_path / "wine.dp")
    back = MLPClassifier.load(tmp_path / "wine.dp")
    np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    with pytest.raises(ValueError, match="feature names should match"):
        back.predict(X[X.columns[::-1]])
