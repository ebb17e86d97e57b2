"""Activations that learn parameters of their own (prelu's slopes, acon's p1, p2 and β, a
learnable swish's β) in the scikit-learn estimators: kept in ``activation_params_`` beside
coefs_ and intercepts_, as deltaprop.MLP keeps them, and trained by every solver. Checked
against the NumPy reference (the whole-data gradients), against deltaprop.MLP's own training
(the same steps), and through early stopping, save/load and pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")


import deltaprop as dp  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LEARNED = [pytest.param("prelu", id="prelu"), pytest.param("acon", id="acon"),
           pytest.param(dp.Activation("swish", learnable=True), id="swish-learnable")]


def reference_twin(est, activation):
    """A NumPy-reference deltaprop.MLP holding the estimator's parameters."""
    sizes = [est.coefs_[0].shape[0]] + [W.shape[1] for W in est.coefs_]
    net = dp.MLP(sizes, activation, output="softmax", backend="numpy")
    net.coefs_ = [W.copy() for W in est.coefs_]
    net.intercepts_ = [b.copy() for b in est.intercepts_]
    net.activation_params_ = [{k: p.copy() for k, p in d.items()}
                              for d in est.activation_params_]
    return net


@pytest.mark.parametrize("activation", LEARNED)
def test_whole_data_gradients_match_the_numpy_reference(wine, activation):
    X, y = wine
    est = MLPClassifier((8, 6), activation=activation, max_iter=5, random_state=0,
                        learning_rate_init=0.01, n_threads=1).fit(X, y)
    initial = dp.MLP([13, 8, 6, 3], activation).activation_params_
    for trained, start in zip(est.activation_params_, initial):  # they moved in training
        assert set(trained) == set(start)
        assert all(not np.array_equal(trained[k], start[k]) for k in start)
    Y = est._label_binarizer.transform(y).astype(np.float64)
    loss, dcoefs, dintercepts, dlearned = est._network(np.float64).loss_and_gradients(
        est.coefs_, est.intercepts_, X, Y, learned=est.activation_params_)
    ref_loss, ref_dcoefs, ref_dintercepts, ref_dlearned = (
        reference_twin(est, activation).loss_and_gradients(X, y))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for a, b in zip(dcoefs + dintercepts, ref_dcoefs + ref_dintercepts):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    for a, b in zip(dlearned, ref_dlearned):
        assert set(a) == set(b)
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-10, atol=1e-14)
    # and the estimator predicts as the reference does
    np.testing.assert_allclose(est.predict_proba(X), reference_twin(est, activation).forward(X),
                               rtol=1e-10)


@pytest.mark.parametrize("activation", LEARNED)
def test_adam_trains_them_as_deltaprop_mlp_does(wine, activation):
    """Same initial weights (scikit-learn's draws for the seed), batches in stored order, Adam
    in scikit-learn's form: the estimator and deltaprop.MLP take the same steps."""
    X, y = wine
    est = MLPClassifier((8, 6), activation=activation, solver="adam", alpha=0.0, batch_size=32,
                        shuffle=False, max_iter=4, tol=0.0, learning_rate_init=0.01,
                        random_state=0, n_threads=1).fit(X, y)
    net = dp.MLP([13, 8, 6, 3], activation, init="sklearn", seed=0, n_threads=1)
    net.fit(X, y, epochs=4, batch_size=32, lr=0.01, optimizer="adam", shuffle=False)
    for a, b in zip(est.coefs_ + est.intercepts_, net.coefs_ + net.intercepts_):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(est.activation_params_, net.activation_params_):
        for name in b:
            np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("activation", LEARNED)
def test_lbfgs_optimises_them_with_the_weights(wine, activation):
    """L-BFGS's loss_ is the objective at the parameters it returns, activation parameters
    included; at that point their gradient is small."""
    X, y = wine
    est = MLPClassifier((8,), activation=activation, solver="lbfgs", alpha=0.01, max_iter=200,
                        random_state=0, n_threads=1).fit(X, y)
    ref_loss, _, _, dlearned = reference_twin(est, activation).loss_and_gradients(X, y)
    l2 = 0.5 * 0.01 * sum(float((W ** 2).sum()) for W in est.coefs_) / len(X)
    assert est.loss_ == pytest.approx(ref_loss + l2, rel=1e-9)
    assert max(float(np.abs(g).max()) for g in dlearned[0].values()) < 1e-3
    assert est.score(X, y) == 1.0


def test_early_stopping_restores_the_best_epochs_activation_parameters(wine):
    X, y = wine
    seen = []

    def keep(est):
        seen.append([{k: p.copy() for k, p in d.items()} for d in est.activation_params_])

    est = MLPClassifier((8,), activation="prelu", early_stopping=True, validation_fraction=0.2,
                        learning_rate_init=0.05, n_iter_no_change=3, max_iter=40, random_state=0,
                        callback=keep).fit(X, y)
    best = int(np.argmax(est.validation_scores_))
    assert best < len(seen) - 1  # training went on past the best epoch
    np.testing.assert_array_equal(est.activation_params_[0]["slope"], seen[best][0]["slope"])
    assert not np.array_equal(est.activation_params_[0]["slope"], seen[-1][0]["slope"])


def test_save_load_pickle_and_a_plain_mlp(wine, tmp_path):
    X, y = wine
    for est in (MLPClassifier((8, 6), activation=["acon", "prelu"], max_iter=5,
                              random_state=0).fit(X, y),
                MLPRegressor(hidden_layer_sizes=(8,),
                             activation=dp.Activation("swish", learnable=True), max_iter=5,
                             random_state=0).fit(X, X[:, 0])):
        est.save(tmp_path / "learned.dp")
        back = type(est).load(tmp_path / "learned.dp")
        for a, b in zip(back.activation_params_, est.activation_params_):
            assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in b)
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), est.predict(X))
        plain = dp.MLP.load(tmp_path / "learned.dp")
        out = plain.forward(X)
        expected = (est.predict_proba(X) if isinstance(est, MLPClassifier)
                    else est.predict(X)[:, None])
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_bad_activation_parameters_are_refused_clearly(wine):
    X, y = wine
    est = MLPClassifier((8,), activation="prelu", max_iter=2, random_state=0).fit(X, y)
    slope = est.activation_params_[0]["slope"]
    est.activation_params_ = [{"alpha": slope}]
    with pytest.raises(ValueError, match=r"activation_params_ must hold .* \[\['slope'\]\]"):
        est.predict(X)
    est.activation_params_ = [None]
    with pytest.raises(ValueError, match="activation_params_ must be a list of dicts"):
        est.predict(X)
    # the arrays themselves are checked where they enter the engine
    for bad, error, words in ((np.ones(3), ValueError, r"must have shape \(8,\)"),
                              (np.full(8, np.nan), ValueError, "NaN"),
                              ([0.25] * 8, TypeError, "numpy.ndarray"),
                              (slope.astype(np.float32), TypeError, "dtype float64")):
        est.activation_params_ = [{"slope": bad}]
        est.set_params(warm_start=True)
        with pytest.raises(error, match=r"activation_params_\[0\]\['slope'\].*" + words):
            est.fit(X, y)


def test_an_estimator_pickled_before_activation_params_existed_still_works(wine):
    """Estimators pickled by earlier versions have no activation_params_ (nothing learned)."""
    X, y = wine
    est = MLPClassifier((8,), warm_start=True, max_iter=2, random_state=0).fit(X, y)
    expected = est.predict_proba(X)
    del est.activation_params_, est._best_activation_params
    old = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(old.predict_proba(X), expected)
    old.fit(X, y)  # a warm start
    old.partial_fit(X, y)
    assert old.n_iter_ == 1 and old.predict(X).shape == y.shape
