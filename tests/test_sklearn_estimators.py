"""deltaprop.sklearn's behaviour, each with assertions on the result: the constructor contract,
partial_fit, warm_start, early stopping, sample weights, multilabel and multi-output targets,
sparse input in batches, callbacks that stop training, verbose output, KeyboardInterrupt, the
non-finite guard, float32, threads, pickle, clone, GridSearchCV, Pipeline, progress bar and
loss-curve plot (save/load: test_sklearn_save_load.py)."""

from __future__ import annotations

import contextlib
import inspect
import io
import pickle
import subprocess
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
import sklearn.neural_network as skl  # noqa: E402
from helpers import needs_sklearn_1_7, python
from helpers import small_estimator as small
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.mark.parametrize("ours,theirs", [
    (MLPClassifier, skl.MLPClassifier),
    pytest.param(MLPRegressor, skl.MLPRegressor, marks=needs_sklearn_1_7)])  # (its leading loss)
def test_constructor_extends_sklearns_exactly(ours, theirs):
    mine = list(inspect.signature(ours).parameters.values())
    sk = list(inspect.signature(theirs).parameters.values())
    assert [(p.name, p.kind, p.default) for p in mine[:len(sk)]] == \
           [(p.name, p.kind, p.default) for p in sk]
    assert all(p.kind is p.KEYWORD_ONLY for p in mine[len(sk):])
    assert MLPRegressor((50,)).loss == (50,)  # the leading positional loss, as in 1.9
    with pytest.raises(InvalidParameterError, match="activation"):
        ours(activation="sine").fit([[0.0], [1.0]], [0, 1])


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_validates_as_scikit_learn_s_fit_context_does(wine, method):
    """fit and partial_fit run in scikit-learn's _fit_context: the functions they call do not
    validate their arguments again (validation_fraction=0.0, which the parameter's bounds allow,
    reaches train_test_split as a plain ValueError, scikit-learn's, not InvalidParameterError),
    and skip_parameter_validation skips ours."""
    X, y = wine
    params = dict(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True,
                  validation_fraction=0.0)
    if method == "fit":
        errors = []
        for cls in (skl.MLPClassifier, MLPClassifier):
            with pytest.raises(ValueError) as caught:
                cls(**params).fit(X, y)
            errors.append((type(caught.value), str(caught.value)))
        assert errors[0] == errors[1] and errors[0][0] is ValueError
    bad = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, momentum=2.0)
    with pytest.raises(InvalidParameterError, match="momentum"):
        getattr(bad, method)(X, y, **({"classes": [0, 1, 2]} if method == "partial_fit" else {}))
    with sklearn.config_context(skip_parameter_validation=True):
        getattr(clone(bad), method)(X, y, **({"classes": [0, 1, 2]}
                                             if method == "partial_fit" else {}))


def test_parameter_names_are_each_classs_own():
    # The names are remembered per class (_base._param_names): a subclass with a parameter of
    # its own gets it, and the estimators keep theirs.
    class Wider(MLPClassifier):
        def __init__(self, hidden_layer_sizes=(100,), *, width_factor=2, **kwargs):
            super().__init__(hidden_layer_sizes, **kwargs)
            self.width_factor = width_factor

    assert MLPClassifier().get_params().keys() == \
        {name for name in inspect.signature(MLPClassifier).parameters}
    assert "width_factor" in Wider().get_params()
    assert "width_factor" not in MLPClassifier().get_params()
    assert "loss" in MLPRegressor().get_params() and "loss" not in MLPClassifier().get_params()


def test_partial_fit(wine):
    X, y = wine
    clf = small(MLPClassifier)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for i in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
        assert clf.n_iter_ == 1 and clf.t_ == (i + 1) * len(y)
    assert clf.score(X, y) > 0.5
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="does not support early_stopping"):
        small(MLPClassifier, early_stopping=True).partial_fit(X, y, classes=np.unique(y))


@pytest.mark.parametrize(("first", "then"), [
    (dict(), dict(early_stopping=True)),
    (dict(early_stopping=True), dict()),
    (dict(solver="lbfgs"), dict(solver="adam")),
    (dict(solver="lbfgs"), dict(solver="sgd", early_stopping=True)),
], ids=["early stopping switched on", "switched off", "lbfgs to adam", "lbfgs to sgd, early stop"])
def test_a_warm_start_may_switch_the_stopping_rule(wine, first, then):
    """A warm start after set_params(early_stopping=...) or from lbfgs to a stochastic solver
    starts that rule afresh from the fitted weights (scikit-learn 1.9 fails on a None or a
    missing attribute there), and continues the loss curve."""
    X, y = wine
    est = small(MLPClassifier, warm_start=True, **first).fit(X, y)
    trained = [W.copy() for W in est.coefs_]
    curve = len(getattr(est, "loss_curve_", []))
    est.set_params(**{"early_stopping": False, "solver": "adam", **then}).fit(X, y)
    assert est.n_iter_ == 10 and len(est.loss_curve_) == curve + 10
    assert not np.array_equal(est.coefs_[0], trained[0])  # it trained on from there
    if est.early_stopping:
        assert est.best_loss_ is None and len(est.validation_scores_) == 10
        assert est.best_validation_score_ == max(est.validation_scores_)
    else:
        assert est.best_loss_ == min(est.loss_curve_[curve:]) and est.validation_scores_ is None
    assert est.score(X, y) > 0.5


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
@pytest.mark.parametrize(("first", "then"), [(np.float32, np.float64), (np.float64, np.float32)])
def test_a_continued_fit_keeps_its_dtype_whatever_the_data(wine, how, first, then):
    """The first fit's data sets the parameters' dtype; data of the other float dtype later is
    converted to it (as scikit-learn's in-place updates keep it), not refused."""
    X, y = wine
    est = small(MLPClassifier, warm_start=how == "warm_start")
    est.fit(X.astype(first), y)
    before = [W.copy() for W in est.coefs_]
    if how == "warm_start":
        est.fit(X.astype(then), y)
    else:
        est.partial_fit(X.astype(then), y)
    assert all(W.dtype == first for W in est.coefs_ + est.intercepts_)
    assert not np.array_equal(est.coefs_[0], before[0])
    assert est.predict_proba(X.astype(then)).dtype == np.float64  # promoted, as scikit-learn's
    assert est.score(X, y) > 0.5


def test_warm_start_continues(wine):
    X, y = wine
    warm = small(MLPClassifier, warm_start=True).fit(X, y)
    first = [W.copy() for W in warm.coefs_]
    warm.fit(X, y)
    once_more = small(MLPClassifier, max_iter=20).fit(X, y)
    assert not np.array_equal(warm.coefs_[0], first[0])
    assert warm.score(X, y) >= small(MLPClassifier).fit(X, y).score(X, y)
    assert once_more.n_iter_ == 20 and warm.n_iter_ == 10
    with pytest.raises(ValueError, match="same classes"):
        warm.fit(X[y < 2], y[y < 2])
    # a warm start continues the fitted network: one asking for other layers is refused (where
    # scikit-learn 1.9 keeps training the old ones, or fails inside NumPy), as is partial_fit
    refusals = [(dict(hidden_layer_sizes=(16,)), r"layer sizes are \[13, 8, 3\]; .*\[13, 16, 3\]"),
                (dict(activation="prelu"), r"activations learn \[\[\]\]; .*\[\['slope'\]\]")]
    for change, words in refusals:
        with pytest.raises(ValueError, match="warm_start=True continues the fitted network, "
                                             "but its " + words):
            warm.set_params(**change).fit(X, y)
        warm.set_params(hidden_layer_sizes=(8,), activation="relu")
    warm.set_params(activation="tanh").fit(X, y)  # same parameters, another function: allowed
    streamed = small(MLPClassifier).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="partial_fit continues the fitted network"):
        streamed.set_params(hidden_layer_sizes=(4,)).partial_fit(X, y)


def test_a_refused_continuation_leaves_the_estimator_as_it_was(wine, diabetes, tmp_path):
    """A warm start or partial_fit that is refused changes nothing: before, partial_fit with
    early_stopping=True reset the stopping rule before refusing (so the next call started it
    afresh), and a warm start on 2-column y set n_outputs_ = 2 before refusing, which save then
    wrote into a file load refused."""
    X, y = wine
    est = small(MLPClassifier, max_iter=5, tol=1.0).fit(X, y)
    kept = dict(best_loss_=est.best_loss_, count=est._no_improvement_count,
                best=est._best_coefs[0].copy())
    with pytest.raises(ValueError, match="early_stopping"):
        est.set_params(early_stopping=True).partial_fit(X, y)
    assert (est.best_loss_, est._no_improvement_count) == (kept["best_loss_"], kept["count"])
    assert est.validation_scores_ is None
    np.testing.assert_array_equal(est._best_coefs[0], kept["best"])
    est.set_params(early_stopping=False).partial_fit(X, y)
    assert est._no_improvement_count == kept["count"] + 1  # the rule went on (tol=1)

    X, y = diabetes
    reg = small(MLPRegressor, warm_start=True, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="continues the fitted network"):
        reg.fit(X, np.c_[y, y])
    assert reg.n_outputs_ == 1
    reg.save(tmp_path / "reg.dp")
    assert MLPRegressor.load(tmp_path / "reg.dp").n_outputs_ == 1
    # another output function is another network (scikit-learn keeps the old one, so its
    # reported loss no longer matches the gradient it steps along)
    with pytest.raises(ValueError, match="output is 'identity'; loss='poisson' asks for 'exp'"):
        reg.set_params(loss="poisson").fit(X, np.abs(y))
    reg.set_params(loss="huber").fit(X, y)  # the same output, another loss: allowed


def test_an_early_stopping_fit_that_diverges_says_so(diabetes):
    """It stops at the epoch that diverged with the best epoch's weights, which are finite, so
    the non-finite-weights guard does not raise: it warned nothing at all."""
    X, y = diabetes
    reg = small(MLPRegressor, solver="sgd", learning_rate_init=1e6, early_stopping=True,
                max_iter=20)
    with pytest.warns(ConvergenceWarning, match="diverged: after"):
        reg.fit(X, y * 1e6)
    assert all(np.isfinite(W).all() for W in reg.coefs_)
    pytest.importorskip("matplotlib").use("Agg")
    ax = reg.plot_loss_curve()  # its diverged epoch has a training loss, no validation score
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [
        len(reg.loss_curve_), len(reg.validation_loss_curve_)]


def test_early_stopping_restores_the_best_weights(wine):
    X, y = wine
    clf = small(MLPClassifier, early_stopping=True, max_iter=100, n_iter_no_change=3,
                learning_rate_init=0.05).fit(X, y)
    assert clf.best_loss_ is None and clf.n_iter_ < 100
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    best = int(np.argmax(clf.validation_scores_))
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert all(v > 0 for v in clf.validation_loss_curve_)
    assert small(MLPClassifier).fit(X, y).validation_loss_curve_ is None
    with pytest.raises(ValueError, match="validation set is too small"):
        small(MLPClassifier, early_stopping=True).fit(X[::20], y[::20])  # 9 rows: 1 held out


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sample_weight(wine, solver):
    X, y = wine
    ones = small(MLPClassifier, solver=solver).fit(X, y, sample_weight=np.ones(len(y)))
    none = small(MLPClassifier, solver=solver).fit(X, y)
    for a, b in zip(ones.coefs_, none.coefs_):
        np.testing.assert_array_equal(a, b)
    # with one full batch, an integer weight is a repeated row
    w = np.random.default_rng(0).integers(0, 3, len(y))
    weighted = small(MLPClassifier, solver=solver, batch_size=len(y)).fit(X, y, sample_weight=w)
    repeated = small(MLPClassifier, solver=solver, batch_size=int(w.sum())).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w))
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_multilabel_and_multioutput(diabetes):
    X, Y = make_multilabel_classification(n_samples=120, n_classes=5, random_state=0)
    clf = small(MLPClassifier).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 5
    assert clf.predict(X).shape == Y.shape and clf.predict_proba(X).shape == Y.shape
    Xr, yr = diabetes
    reg = small(MLPRegressor).fit(Xr, np.c_[yr, 2 * yr])
    assert reg.predict(Xr).shape == (len(yr), 2) and reg.n_outputs_ == 2
    assert small(MLPRegressor).fit(Xr, yr).predict(Xr).shape == (len(yr),)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_sparse_input_fits_as_dense_input_does(wine, fmt, solver):
    """The engine multiplies sparse X's stored entries (tests/test_sparse_input.py): the dense
    fit, to rounding."""
    X, y = wine
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = small(MLPClassifier, solver=solver, batch_size=32).fit(X, y)
    sparse = small(MLPClassifier, solver=solver, batch_size=32).fit(sp.csr_matrix(X).asformat(fmt),
                                                                    y)
    assert sparse.n_iter_ == dense.n_iter_
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.loss_, dense.loss_, rtol=1e-10)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X).asformat(fmt)),
                               dense.predict_proba(X), atol=1e-12)


def test_wide_sparse_input_is_never_densified():
    """A TF-IDF-like matrix of 400 000 columns, 40 values a row: densified, one batch of 200 of
    its rows would take 640 MB. Its fits grow the process by what the network needs."""
    script = """
import resource
import numpy as np, scipy.sparse as sp
from deltaprop.sklearn import MLPClassifier
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
rng = np.random.default_rng(0)
X = sp.csr_matrix((rng.random(40_000), rng.integers(0, 400_000, 40_000),
                   np.arange(0, 40_001, 40)), shape=(1000, 400_000))
y = np.arange(1000) % 2
start = peak()
MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y).predict_proba(X)
MLPClassifier((4,), early_stopping=True, max_iter=2, random_state=0).fit(X, y)
stochastic = peak()
MLPClassifier((4,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
print(stochastic - start, peak() - stochastic)
"""
    done = subprocess.run(python("-W", "ignore", "-c", script), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    stochastic, lbfgs = map(int, done.stdout.split())
    # W_0 is 12.8 MB: the stochastic fits hold a few copies (parameters, gradients, Adam's
    # moments, the best epoch's), L-BFGS-B twenty (its ten correction pairs); measured 64, 241
    assert stochastic < 200 and lbfgs < 450, f"peak memory grew by {stochastic}, {lbfgs} MB"


def test_sparse_early_stopping_scores_its_held_out_rows_as_dense_does(wine):
    """Sparse held-out rows, some of no weight, are scored by the engine as dense ones are: the
    same scores and losses."""
    X, y = wine
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    weights = np.random.default_rng(0).uniform(0.5, 2, len(y))
    weights[:140] = 0
    fits = []
    for data in (X, sp.csr_matrix(X)):
        est = small(MLPClassifier, early_stopping=True, validation_fraction=0.2, max_iter=40,
                    n_iter_no_change=40)
        fits.append(est.fit(data, y, sample_weight=weights))
    dense, sparse = fits
    assert sparse.n_iter_ == dense.n_iter_ == 40
    np.testing.assert_allclose(sparse.validation_scores_, dense.validation_scores_, rtol=1e-12)
    np.testing.assert_allclose(sparse.validation_loss_curve_, dense.validation_loss_curve_,
                               rtol=1e-10)
    assert 0.5 < max(dense.validation_scores_) <= 1


def test_held_out_rows_of_no_weight_are_refused_before_training(wine):
    X, y = wine
    est = small(MLPClassifier, early_stopping=True, validation_fraction=0.1, random_state=0)
    weights = np.zeros(len(y))
    weights[0] = 1.0  # one weighted row (the split leaves it for training)
    with pytest.raises(ValueError, match="validation rows' sample weights sum to zero"):
        est.fit(X, y, sample_weight=weights)
    assert not hasattr(est, "n_iter_") or est.n_iter_ == 0


def test_callback_stops_training(wine):
    X, y = wine
    seen = []

    def stop_after_three(est):
        seen.append(len(est.loss_curve_))
        return est.n_iter_ == 3

    clf = small(MLPClassifier, max_iter=50, callback=stop_after_three).fit(X, y)
    assert seen == [1, 2, 3] and clf.n_iter_ == 3 and len(clf.loss_curve_) == 3


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_lbfgs_fits_in_threads_leave_the_blas_limit_as_they_found_it(wine):
    """L-BFGS runs with one BLAS thread, and threadpoolctl's limit is the process's: two fits
    overlapping in threads, the second to start ending last, left BLAS at one thread for good
    (each put back what it found, the second a 1)."""
    before = _blas_threads()
    if max(before, default=1) < 2:
        pytest.skip("BLAS runs on one thread here")
    X, y = wine
    first_in, second_in, first_done = (threading.Event() for _ in range(3))

    def first(est):
        first_in.set()
        second_in.wait(30)  # both inside their fits
        return False

    def second(est):
        second_in.set()
        first_done.wait(30)  # this one ends last
        return False

    fitted = []

    def fit(callback):
        fitted.append(small(MLPClassifier, solver="lbfgs", max_iter=3, callback=callback).fit(X, y))

    threads = [threading.Thread(target=fit, args=(callback,)) for callback in (first, second)]
    threads[0].start()
    assert first_in.wait(30)
    threads[1].start()
    threads[0].join(60)
    first_done.set()
    threads[1].join(60)
    assert len(fitted) == 2 and _blas_threads() == before


def test_callback_stops_lbfgs(wine):
    """Each L-BFGS iteration is an epoch to the callback, which sees that iteration's
    parameters and loss; stopping after three is the fit of max_iter=3 (without its
    ConvergenceWarning)."""
    X, y = wine
    seen = []

    def stop_after_three(est):
        seen.append((est.n_iter_, est.loss_, est.score(X, y)))
        return est.n_iter_ == 3

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning for a stop the callback asked
        clf = small(MLPClassifier, solver="lbfgs", max_iter=50, callback=stop_after_three)
        clf.fit(X, y)
    three = small(MLPClassifier, solver="lbfgs", max_iter=3).fit(X, y)
    assert [n for n, _, _ in seen] == [1, 2, 3] and clf.n_iter_ == 3
    assert seen[0][1] > seen[1][1] > seen[2][1] == clf.loss_ == three.loss_
    assert seen[-1][2] == clf.score(X, y)
    for a, b in zip(clf.coefs_, three.coefs_):
        np.testing.assert_array_equal(a, b)


def capture(est, X, y):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        est.fit(X, y)
    return out.getvalue()


@pytest.mark.parametrize("params", [dict(), dict(early_stopping=True, n_iter_no_change=2),
                                    dict(solver="sgd", learning_rate="adaptive", tol=0.5,
                                         n_iter_no_change=1)])
def test_verbose_output_is_sklearns(wine, params):
    X, y = wine
    params = dict(hidden_layer_sizes=(6,), max_iter=8, random_state=0, verbose=True, **params)
    ours = capture(MLPClassifier(**params), X, y)
    assert ours.startswith("Iteration 1, loss = ")
    assert ours == capture(skl.MLPClassifier(**params), X, y)


def test_verbose_lbfgs_prints_each_iteration(wine):
    """scikit-learn 1.9's lbfgs prints nothing with scipy >= 1.15 (which dropped iprint); ours
    prints its per-epoch line per L-BFGS iteration, the last one the fit's loss_."""
    X, y = wine
    clf = small(MLPClassifier, solver="lbfgs", max_iter=6, verbose=True)
    lines = capture(clf, X, y).splitlines()
    assert [line.split(",")[0] for line in lines] == [f"Iteration {i}" for i in range(1, 7)]
    assert lines[-1] == f"Iteration 6, loss = {clf.loss_:.8f}"


def test_keyboard_interrupt_becomes_a_warning(wine):
    X, y = wine

    def interrupt(est):
        if est.n_iter_ == 2:
            raise KeyboardInterrupt

    clf = small(MLPClassifier, callback=interrupt)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        clf.fit(X, y)
    assert clf.n_iter_ == 2 and clf.predict(X).shape == y.shape
    # lbfgs too (scikit-learn's lets it through): the model of its last whole iteration
    clf = small(MLPClassifier, solver="lbfgs", callback=interrupt)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        clf.fit(X, y)
    two = small(MLPClassifier, solver="lbfgs", max_iter=2).fit(X, y)
    assert clf.n_iter_ == 2 and clf.loss_ == two.loss_
    for a, b in zip(clf.coefs_, two.coefs_):
        np.testing.assert_array_equal(a, b)


def test_non_finite_weights_raise(diabetes):
    X, y = diabetes
    reg = small(MLPRegressor, solver="sgd", learning_rate_init=1e6, max_iter=50)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            reg.fit(X * 1e3, y * 1e3)


@needs_sklearn_1_7
def test_where_sklearns_objective_is_undefined_we_skip_or_refuse(wine, diabetes):
    """The departures the README lists: scikit-learn divides by a minibatch's weight sum, which
    all-zero weights make 0 (it raises ZeroDivisionError) and negative weights can make 0 or
    negative (it trains on); and it trains Poisson on negative targets (NaN losses)."""
    X, y = wine
    w = np.ones(len(y))
    w[:50] = 0  # the first batch unshuffled
    with pytest.raises(ZeroDivisionError):
        small(skl.MLPClassifier, shuffle=False, batch_size=50).fit(X, y, sample_weight=w)
    skipped = small(MLPClassifier, shuffle=False, batch_size=50).fit(X, y, sample_weight=w)
    without = small(MLPClassifier, shuffle=False, batch_size=50).fit(X[50:], y[50:])
    for a, b in zip(skipped.coefs_, without.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    signs = np.where(np.arange(len(y)) % 5, 1.0, -1.0)
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        small(MLPClassifier).fit(X, y, sample_weight=signs)
    Xd, yd = diabetes  # standardised: about half negative
    with pytest.raises(ValueError, match="y are negative which is not allowed for the poisson"):
        small(MLPRegressor, loss="poisson").fit(Xd, yd)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_float32_stays_float32(wine, solver):
    X, y = wine
    clf = small(MLPClassifier, solver=solver).fit(X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for W in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32


def test_a_predict_in_another_dtype_keeps_the_model_s_own_engine(wine):
    """The engine is cached per dtype: a float64 predict on a float32 model replaced the float32
    engine, whose lock a fit in another thread holds, so float32 predicts after it could read
    the weights mid-step."""
    X, y = wine
    est = small(MLPClassifier).fit(X.astype(np.float32), y)
    engine = est._network(np.float32)
    est.predict(X)
    assert est._network(np.float32) is engine


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_float32_model_predicts_float64_data_in_float64(wine, cls):
    """As scikit-learn's X @ coefs_ promotes: float64 rows through float32 weights are computed
    in float64, not rounded to float32 first (a finite 1e39 is no overflow)."""
    X, y = wine
    est = small(cls).fit(X.astype(np.float32), y)
    X_big = X.copy()
    X_big[0, 0] = 1e39  # finite in float64, inf in float32
    predict = est.predict_proba if cls is MLPClassifier else est.predict
    assert predict(X.astype(np.float32)).dtype == np.float32
    for rows in (X, X_big, sp.csr_matrix(X)):
        out = predict(rows)
        assert out.dtype == np.float64
        dense = rows.toarray() if sp.issparse(rows) else rows
        hidden = np.maximum(dense @ est.coefs_[0].astype(np.float64) + est.intercepts_[0], 0)
        z = hidden @ est.coefs_[1].astype(np.float64) + est.intercepts_[1]
        if cls is MLPClassifier:  # wine: three classes, softmax
            z = np.exp(z - z.max(axis=1, keepdims=True))
            z /= z.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(out.reshape(z.shape), z, rtol=1e-12, atol=1e-300)


def test_threads_give_bitwise_equal_results(wine):
    X, y = wine
    one = small(MLPClassifier, n_threads=1, hidden_layer_sizes=(64, 64)).fit(X, y)
    two = small(MLPClassifier, n_threads=2, hidden_layer_sizes=(64, 64)).fit(X, y)
    for a, b in zip(one.coefs_, two.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", dp.Activation("leaky_relu",
                                                                             alpha=0.2)])
def test_new_activations_train(wine, activation):
    X, y = wine
    assert small(MLPClassifier, activation=activation, max_iter=30).fit(X, y).score(X, y) > 0.9


def test_pickle_clone_pipeline_gridsearch(wine):
    X, y = wine
    clf = small(MLPClassifier).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "coefs_")
    search = GridSearchCV(make_pipeline(StandardScaler(), small(MLPClassifier)),
                          {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.5 and search.predict(X).shape == y.shape


@pytest.mark.parametrize("solver,unit", [("adam", "epoch"), ("lbfgs", "iteration")])
def test_progress_bar(wine, solver, unit):
    pytest.importorskip("tqdm")
    X, y = wine
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        clf = small(MLPClassifier, solver=solver, progress=True, max_iter=5).fit(X, y)
    assert clf.n_iter_ == 5 and "MLPClassifier" in err.getvalue()
    assert f"{unit}/s" in err.getvalue()  # (the bar, in its unit)


def test_plot_loss_curve(wine):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = wine
    clf = small(MLPClassifier, early_stopping=True).fit(X, y)
    ax = clf.plot_loss_curve()
    assert [line.get_label() for line in ax.get_lines()] == ["training loss", "validation loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), clf.loss_curve_)
    with pytest.raises(AttributeError, match="no loss curve"):
        small(MLPClassifier, solver="lbfgs").fit(X, y).plot_loss_curve()


class StopAtThirdEpoch:
    """A scikit-learn 1.9 FitCallback (SLEP023): stops the fit at the end of its third epoch."""

    def setup(self, estimator, context):
        self.events = []

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.events.append(("begin", context.task_name))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, y=None):
        self.events.append(("end", context.task_name))
        if context.task_name == "epoch":
            self.scores.append(fitted_estimator.score(self.X, y))
            return len(self.scores) == 3
        return False

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sklearn_callbacks_see_each_epoch_and_can_stop(wine, solver):
    pytest.importorskip("sklearn.callback")
    X, y = wine
    callback = StopAtThirdEpoch()
    callback.X, callback.scores = X, []
    clf = small(MLPClassifier, solver=solver, max_iter=50).set_callbacks(callback)
    clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(callback.scores) == 3
    assert callback.scores[-1] == clf.score(X, y)  # the epoch's fitted_estimator is the model
    assert callback.events[0] == ("begin", "fit") and callback.events[-1] == ("teardown", "fit")
    assert callback.events.count(("end", "epoch")) == 3


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sklearn_scoring_monitor(wine, solver):
    callback = pytest.importorskip("sklearn.callback")
    X, y = wine
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver=solver, max_iter=4).set_callbacks(monitor)
    clf.fit(X, y)
    rows = vars(monitor.get_logs())["data"]
    epochs = [r for r in rows if r["task_name"] == "epoch"]
    assert len(epochs) == 4 and epochs[-1]["accuracy"] == clf.score(X, y)


def test_the_fit_s_callbacks_get_the_fit_s_sample_weight_not_class_weights(wine):
    """As LogisticRegression hands them: each epoch is scored with the objective's row weights
    (class_weight's in), the whole fit with the caller's sample_weight (none here), so its
    logged score is est.score's (it was a balanced-weighted accuracy)."""
    callback = pytest.importorskip("sklearn.callback")
    X, y = wine
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, max_iter=3, class_weight="balanced").set_callbacks(monitor)
    clf.fit(X, y)
    rows = vars(monitor.get_logs())["data"]
    fit = [r for r in rows if r["task_name"] == "fit"][-1]
    last_epoch = [r for r in rows if r["task_name"] == "epoch"][-1]
    assert fit["accuracy"] == clf.score(X, y)
    from sklearn.utils.class_weight import compute_sample_weight

    weights = compute_sample_weight("balanced", y)
    assert last_epoch["accuracy"] == pytest.approx(clf.score(X, y, sample_weight=weights))


def test_only_the_backend_touches_the_engine():
    """Every call into deltaprop's engine goes through sklearn/_backend.py, so a new engine API
    is one file's port."""
    import pathlib

    import deltaprop.sklearn as package

    folder = pathlib.Path(package.__file__).parent
    for path in folder.glob("*.py"):
        if path.name != "_backend.py":
            text = path.read_text()
            assert "_core" not in text and "reference" not in text, path.name


def test_poisson_save_load(diabetes, tmp_path):
    X, y = diabetes
    reg = small(MLPRegressor, loss="poisson").fit(X, np.exp(y))
    reg.save(tmp_path / "p.dp")
    back = MLPRegressor.load(tmp_path / "p.dp")
    assert back.out_activation_ == "exp"
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    plain = dp.MLP.load(tmp_path / "p.dp")  # a process without scikit-learn can use it too
    assert plain.output == "exp"
    np.testing.assert_allclose(plain.predict(np.asarray(X, np.float64)), reg.predict(X),
                               rtol=1e-12)


def test_record_health_in_the_estimators():
    from sklearn.datasets import load_digits

    from deltaprop.model import HEALTH_ROWS

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", dp.diagnostics.HealthWarning)  # a healthy fit: none
        clf = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=5, random_state=0,
                            record_health=True).fit(X, y)
    assert set(clf.health_) == set(HEALTH_ROWS)
    assert clf.health_["grad_norm"].shape == (5, 3)
    assert (clf.health_["grad_norm"] > 0).all()
    plain = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=5, random_state=0).fit(X, y)
    for a, b in zip(clf.coefs_, plain.coefs_):  # recording changes nothing
        np.testing.assert_array_equal(a, b)
    clf.partial_fit(X, y)
    assert clf.health_["grad_norm"].shape == (6, 3)  # partial_fit continues the record
    sparse = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=5, random_state=0,
                           record_health=True).fit(sp.csr_matrix(X), y)
    for name in HEALTH_ROWS:  # sparse X: the same record, to rounding
        np.testing.assert_allclose(sparse.health_[name][:5], clf.health_[name][:5], rtol=1e-9)
    # steps too large pin tanh units at ±1: the fit says so, as deltaprop.MLP.fit does
    paralysed = MLPClassifier(hidden_layer_sizes=(32, 32), activation="tanh", solver="sgd",
                              learning_rate_init=2.0, momentum=0.0, max_iter=5, random_state=0,
                              record_health=True)
    with pytest.warns(dp.diagnostics.HealthWarning, match="units are saturated"):
        paralysed.fit(X, y)
    assert paralysed.score(X, y) < 0.3
    # lbfgs: one row per iteration, the last one the health of the network it returns, as
    # deltaprop.diagnostics computes it (here on the NumPy reference), the gradient the one
    # lbfgs minimises: with the L2 term, as the stochastic solvers' records have it
    with warnings.catch_warnings():  # (half of its first layer dies: it says so)
        warnings.simplefilter("ignore", dp.diagnostics.HealthWarning)
        lbfgs = MLPClassifier(hidden_layer_sizes=(16, 16), solver="lbfgs", max_iter=15,
                              random_state=0, record_health=True).fit(X, y)
    assert lbfgs.health_["grad_norm"].shape == (lbfgs.n_iter_, 3)
    net = dp.MLP([64, 16, 16, 10], "relu", backend="numpy")
    net.coefs_, net.intercepts_ = lbfgs.coefs_, lbfgs.intercepts_
    expected = dp.diagnostics.gradient_health(net, X, y, lr=lbfgs.learning_rate_init,
                                              alpha=lbfgs.alpha, warn=False)
    for name in HEALTH_ROWS:
        np.testing.assert_allclose(lbfgs.health_[name][-1], expected[name], rtol=1e-9)


def test_predictions_skip_validate_data_only_for_plain_finite_float_arrays(wine, monkeypatch):
    """A 2-D float ndarray of the fitted width with finite values is predicted without
    validate_data's checks; anything else (lists, other dtypes, NaN, another width, no rows)
    goes through it, with scikit-learn's own conversions and errors."""
    from deltaprop.sklearn import _base

    X, y = wine
    clf = small(MLPClassifier).fit(X, y)
    calls = []
    real = _base.validate_data
    monkeypatch.setattr(_base, "validate_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    want = clf.predict_proba(X.tolist())  # a list: validated
    assert calls == [1]
    for plain, rows in [(X, want), (np.asfortranarray(X), want), (X[::2], want[::2]),
                        (X.astype(np.float32), want)]:
        np.testing.assert_allclose(clf.predict_proba(plain), rows, rtol=1e-6)
    assert calls == [1]  # none of the plain arrays was
    np.testing.assert_array_equal(clf.predict(X.astype(np.int64)), clf.predict(np.trunc(X)))
    assert len(calls) == 2  # an integer array was (its float64 copy is what is predicted)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X))
    with pytest.raises(ValueError, match="infinity"):
        clf.predict(np.full_like(X, np.inf))
    with pytest.raises(ValueError, match="13 features"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X[:0])
    with pytest.raises(ValueError, match="2D array"):
        clf.predict(X[0])
    with pytest.raises(ValueError, match="dtype='numeric' is not compatible"):
        clf.predict(X.astype(str))  # fit parses numeric strings, scikit-learn's predict refuses
