"""The estimators' two epoch loops give one result. With nothing to run between epochs (no
callback, progress bar or health record; early stopping's held-out rows are scored in the
engine, verbose lines printed after chunks of epochs), a fit runs its epochs inside the engine:
all in one call, the engine drawing each epoch's shuffle from MT19937 as it starts, or, with
another bit generator, in chunks whose orders Python draws ahead; with any of those, one engine
call per epoch. A callback that never stops training forces the second, so every fitted
attribute, the warnings and the random state left behind must be identical either way."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.preprocessing import StandardScaler

from deltaprop.sklearn import MLPClassifier, MLPRegressor, _backend

ATTRIBUTES = ["n_iter_", "t_", "loss_", "best_loss_", "_no_improvement_count",
              "best_validation_score_", "validation_scores_", "validation_loss_curve_"]


def wine(dtype=np.float64):
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(dtype), y


@pytest.fixture(autouse=True)
def engine_calls(monkeypatch):
    """Counts the fits' calls of Network.train_epochs (a spy: the real method runs)."""
    calls = []
    real = _backend.Network.train_epochs

    def spy(self, *args, **kwargs):
        calls.append(len(args[7]))  # the epochs asked for
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_backend.Network, "train_epochs", spy)
    return calls


def generator_state(random_state):
    """The bit generator's state as one array: MT19937's words and position, PCG64's two
    128-bit integers."""
    state = random_state.get_state(legacy=False)["state"]
    if "key" in state:
        return np.append(state["key"], state["pos"])
    return np.array([state["state"], state["inc"]], dtype=object)


def fit_both(make, X, y, bits=np.random.MT19937, **fit):
    """(engine loop, Python loop): each estimator with its random state (a RandomState over
    ``bits``) and caught warnings."""
    runs = []
    for callback in (None, lambda est: False):
        state = np.random.RandomState(bits(7))
        est = make(random_state=state, callback=callback)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y, **fit)
        runs.append((est, generator_state(state), [str(w.message) for w in caught]))
    return runs


def assert_same_fit(engine_run, python_run):
    (a, state_a, warned_a), (b, state_b, warned_b) = engine_run, python_run
    for name in ATTRIBUTES:  # (NaN equal to NaN: a diverged fit's loss)
        np.testing.assert_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_equal(a.loss_curve_, b.loss_curve_)
    if hasattr(a, "_optimizer") or hasattr(b, "_optimizer"):  # (none after divergence)
        assert a._optimizer.learning_rate == b._optimizer.learning_rate
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(state_a, state_b)  # the shuffles drawn ahead were put back
    assert warned_a == warned_b


CLASSIFIERS = {
    "adam, stops on tol": dict(max_iter=300),
    "adam, max_iter": dict(max_iter=30),
    "sgd invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                           max_iter=60),
    "sgd adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=2,
                         max_iter=80),
    "sgd constant, no shuffle": dict(solver="sgd", shuffle=False, momentum=0.5,
                                     nesterovs_momentum=False, max_iter=40),
    "adam, L2, clipping, small batches": dict(alpha=0.1, clip_norm=1.0, batch_size=16,
                                              max_iter=25),
    "never stops on tol": dict(n_iter_no_change=np.inf, max_iter=20),
}


@pytest.mark.parametrize("bits", [np.random.MT19937, np.random.PCG64])
@pytest.mark.parametrize("config", CLASSIFIERS.values(), ids=CLASSIFIERS.keys())
def test_classifier_fits_alike_either_way(config, bits, engine_calls):
    X, y = wine()
    runs = fit_both(lambda **kw: MLPClassifier(hidden_layer_sizes=(12,), **config, **kw), X, y,
                    bits=bits)
    assert_same_fit(*runs)
    # MT19937 (or no shuffling): every epoch asked of one call; PCG64: a first chunk of 8
    in_engine = bits is np.random.MT19937 or config.get("shuffle") is False
    assert engine_calls and engine_calls[0] == min(8 if not in_engine else 10**9,
                                                   config["max_iter"])


@pytest.mark.parametrize("bits", [np.random.MT19937, np.random.PCG64])
def test_the_engine_loop_stops_mid_call_like_the_python_loop(bits, engine_calls):
    X, y = wine()
    # tol stops it inside an engine call, and (PCG64) at an epoch that is not a chunk boundary
    # (chunks: 8, 16, 32, ...), with orders drawn ahead that must be taken back
    runs = fit_both(lambda **kw: MLPClassifier(hidden_layer_sizes=(12,), max_iter=300,
                                               tol=1e-2, **kw), X, y, bits=bits)
    assert runs[0][0].n_iter_ not in (8, 24, 56, 120, 248)
    assert runs[0][0].n_iter_ < 300
    assert_same_fit(*runs)
    if bits is np.random.MT19937:
        assert engine_calls[0] == 300


def test_float32_sample_weights_and_warm_start_fit_alike():
    X, y = wine(np.float32)
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    make = lambda **kw: MLPClassifier(hidden_layer_sizes=(10,), max_iter=15,  # noqa: E731
                                      warm_start=True, **kw)
    runs = fit_both(make, X, y, sample_weight=weights)
    assert_same_fit(*runs)
    for est, *_ in runs:  # a second fit continues from the first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_weight=weights)
    assert runs[0][0].n_iter_ == 15 and runs[0][0].t_ == 30 * len(y)
    assert_same_fit((runs[0][0], runs[0][1], []), (runs[1][0], runs[1][1], []))


REGRESSORS = {
    "squared error": dict(),
    "poisson": dict(loss="poisson"),
    "poisson, stops on tol": dict(loss="poisson", max_iter=400, tol=1e-3),
    "poisson, early stopping": dict(loss="poisson", early_stopping=True),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("config", REGRESSORS.values(), ids=REGRESSORS.keys())
def test_regressor_fits_alike_either_way(config, weighted, engine_calls):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    # the Poisson loss's counts (scaled down: its loss then plateaus within the test's epochs)
    y = y / 50 if config.get("loss") == "poisson" else (y - y.mean()) / y.std()
    fit = {"sample_weight": np.random.default_rng(1).uniform(0.2, 2.0, len(y))} if weighted else {}
    settings = {"hidden_layer_sizes": (16,), "max_iter": 40, **config}
    runs = fit_both(lambda **kw: MLPRegressor(**settings, **kw), X, y, **fit)
    assert_same_fit(*runs)
    assert engine_calls[0] == runs[0][0].max_iter  # the first fit ran every epoch in one call
    if "tol" in config:
        assert runs[0][0].n_iter_ < config["max_iter"]


def test_a_diverging_fit_fails_alike_either_way():
    X, y = wine()
    errors = []
    for callback in (None, lambda est: False):
        est = MLPClassifier(solver="sgd", learning_rate_init=1e6, momentum=0.0, max_iter=50,
                            random_state=0, callback=callback)
        with pytest.raises(ValueError, match="non-finite parameter weights") as error:
            est.fit(X * 1e30, y)
        errors.append((str(error.value), est.n_iter_, len(est.loss_curve_)))
    assert errors[0] == errors[1]


def test_a_diverging_early_stopping_fit_ends_alike_either_way(engine_calls):
    """The epoch that diverged is not scored (the loop stops before its held-out rows), and
    early stopping restores the best epoch's finite weights."""
    X, y = wine()
    runs = fit_both(lambda **kw: MLPClassifier(solver="sgd", learning_rate_init=1e6,
                                               momentum=0.0, max_iter=50, early_stopping=True,
                                               **kw), X * 1e30, y)
    assert_same_fit(*runs)
    est = runs[0][0]
    assert engine_calls == [50]
    assert len(est.validation_scores_) == est.n_iter_ - 1 < 49
    assert not np.isfinite(est.loss_curve_[-1])
    assert all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)


EARLY_STOPPING = {
    "adam": dict(max_iter=200),
    "adam, weighted rows": dict(max_iter=200, weighted=True),
    "sgd adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                         tol=0.05, n_iter_no_change=2, max_iter=80),
    "never stops": dict(n_iter_no_change=np.inf, max_iter=30),
}


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("config", EARLY_STOPPING.values(), ids=EARLY_STOPPING.keys())
def test_early_stopping_fits_alike_either_way(kind, config, engine_calls):
    config = dict(config)
    if kind == "MLPClassifier":
        X, y = wine()
        make = MLPClassifier
    else:
        X, y = load_diabetes(return_X_y=True)
        X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
        make = MLPRegressor
    fit = {}
    if config.pop("weighted", False):
        fit["sample_weight"] = np.random.default_rng(1).uniform(0.1, 3.0, len(y))
    runs = fit_both(lambda **kw: make(hidden_layer_sizes=(12,), early_stopping=True,
                                      **config, **kw), X, y, **fit)
    assert_same_fit(*runs)
    est = runs[0][0]
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert engine_calls[0] == config["max_iter"]  # the engine ran the early-stopping epochs
    if np.isfinite(config.get("n_iter_no_change", 10)):
        assert est.n_iter_ < config["max_iter"]  # stopped by the held-out rows


def test_early_stopping_restores_the_best_epoch_from_the_engine():
    X, y = wine()
    est = MLPClassifier(hidden_layer_sizes=(12,), early_stopping=True, max_iter=200,
                        learning_rate_init=0.05, random_state=3).fit(X, y)
    best = int(np.argmax(est.validation_scores_))
    assert best < est.n_iter_ - 1  # the last epochs did worse: the restored ones are older
    # refit, stopping right after the best epoch: its weights are the ones restored
    again = MLPClassifier(hidden_layer_sizes=(12,), early_stopping=True, max_iter=best + 1,
                          learning_rate_init=0.05, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again.fit(X, y)
    for p, q in zip(est.coefs_ + est.intercepts_, again.coefs_ + again.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_a_warm_start_after_early_stopping_trains_what_was_restored(engine_calls):
    """A finished early-stopping fit's weights are its best epoch's arrays; a warm start trains
    them in place (scikit-learn does), which the engine's copy of the best epoch must not
    alias: that fit runs in the Python loop, alike with and without a callback."""
    X, y = wine()
    runs = fit_both(lambda **kw: MLPClassifier(hidden_layer_sizes=(12,), early_stopping=True,
                                               warm_start=True, max_iter=20, **kw), X, y)
    for est, *_ in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    assert_same_fit((runs[0][0], runs[0][1], []), (runs[1][0], runs[1][1], []))
    assert engine_calls == [20]  # the first fit without a callback; the warm starts: per epoch


VERBOSE = {
    "adam, max_iter": dict(max_iter=40),
    "sgd adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=2,
                         max_iter=80),
    "early stopping": dict(early_stopping=True, max_iter=200),
}


@pytest.mark.parametrize("config", VERBOSE.values(), ids=VERBOSE.keys())
def test_verbose_output_is_the_same_from_engine_chunks(config, engine_calls, capsys):
    """With verbose=True the engine runs chunks of epochs (one, then doubling while a call
    stays short) and their lines are printed after each: the same lines, in the same order
    (scikit-learn's optimizer messages among them), as the per-epoch loop prints."""
    X, y = wine()
    printed = []

    def make(**kw):
        return MLPClassifier(hidden_layer_sizes=(12,), verbose=True, **config, **kw)

    for callback in (None, lambda est: False):
        est = make(random_state=np.random.RandomState(7), callback=callback)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        printed.append((est, capsys.readouterr().out))
    (a, out_a), (b, out_b) = printed
    assert out_a == out_b
    assert out_a.count("Iteration ") == a.n_iter_ > 2
    assert_same_fit((a, 0, []), (b, 0, []))
    assert engine_calls[:2] == [1, 2]  # the first chunks: one epoch, then two
    assert sum(engine_calls) >= a.n_iter_


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_progress_bar_moves_by_engine_chunks(early_stopping, engine_calls, monkeypatch):
    """progress=True alone runs the epochs in the engine, in chunks of a few ms as with
    verbose output; the bar moves past each chunk's epochs, to the same count, and the fit is
    the per-epoch loop's."""
    pytest.importorskip("tqdm")
    from deltaprop.sklearn import _hooks

    moved = []
    real = _hooks.EpochHooks._show_progress
    monkeypatch.setattr(_hooks.EpochHooks, "_show_progress",
                        lambda self, epochs: (moved.append(epochs), real(self, epochs)))
    X, y = wine()
    runs, counts = [], []
    for callback in (None, lambda est: False):
        est = MLPClassifier(hidden_layer_sizes=(12,), max_iter=60, progress=True,
                            early_stopping=early_stopping, callback=callback,
                            random_state=np.random.RandomState(7))
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            est.fit(X, y)
        runs.append((est, 0, []))
        counts.append(list(moved))
        moved.clear()
    assert_same_fit(*runs)
    assert sum(counts[0]) == sum(counts[1]) == runs[0][0].n_iter_
    assert counts[1] == [1] * runs[0][0].n_iter_  # the per-epoch loop: one at a time
    assert counts[0][:2] == [1, 2] and len(counts[0]) < runs[0][0].n_iter_
    assert engine_calls[:2] == [1, 2]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_health_record_is_the_same_from_the_engine(early_stopping, engine_calls):
    """record_health=True runs the epochs in the engine too, each epoch's gradient health
    written by the same engine call: the same record as the per-epoch loop's."""
    X, y = wine()
    runs = fit_both(lambda **kw: MLPClassifier(hidden_layer_sizes=(12,), max_iter=40,
                                               record_health=True,
                                               early_stopping=early_stopping, **kw), X, y)
    assert_same_fit(*runs)
    a, b = runs[0][0], runs[1][0]
    assert a.health_.keys() == b.health_.keys()
    for name in a.health_:
        assert a.health_[name].shape == (a.n_iter_, 2)
        np.testing.assert_array_equal(a.health_[name], b.health_[name])
    assert np.isfinite(a.health_["grad_norm"]).all() and (a.health_["grad_norm"] > 0).all()
    assert engine_calls[0] == 40
