"""Save and load of the fitted estimators without pickle: the round trip, the file's checks
(a file is data: every value is checked before it is used), a loaded estimator training on
exactly as a pickled one does, and the file read by deltaprop.MLP.load without scikit-learn."""

from __future__ import annotations

import json
import os
import pickle
import subprocess

import numpy as np
import pytest

pytest.importorskip("sklearn")

from helpers import python  # noqa: E402
from helpers import small_estimator as small
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("cls,target", [(MLPClassifier, "labels"), (MLPRegressor, "values")])
def test_save_load_round_trip(wine, cls, target, tmp_path):
    X, y = wine
    y = np.array(["a", "b", "c"])[y] if target == "labels" else y.astype(float)
    est = small(cls, early_stopping=True, activation=dp.Activation("leaky_relu", alpha=0.1))
    est.fit(X.astype(np.float32), y)
    path = tmp_path / "model.dp"
    est.save(path)
    back = cls.load(path)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.get_params() == {**est.get_params()}
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "loss_curve_",
                 "validation_scores_", "best_validation_score_", "n_features_in_"):
        assert getattr(back, name) == getattr(est, name)
    if target == "labels":
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    other = MLPRegressor if cls is MLPClassifier else MLPClassifier
    with pytest.raises(ValueError, match=f"not a {other.__name__}"):
        other.load(path)


def test_save_takes_numpy_parameter_values(wine, tmp_path):
    """What a grid search over NumPy arrays sets (NumPy scalars), and array-like dropout and
    residual, are saved as their values: a NumPy integer random_state stays a seed."""
    X, y = wine
    est = MLPClassifier(hidden_layer_sizes=np.array([8, 8]), max_iter=np.int64(5),
                        alpha=np.float32(1e-3), random_state=np.int64(3), early_stopping=np.True_,
                        dropout=np.array([0.1, 0.0]), residual=np.array([False, True])).fit(X, y)
    path = tmp_path / "model.dp"
    est.save(path)
    back = MLPClassifier.load(path)
    assert back.random_state == 3 and back.max_iter == 5 and back.early_stopping is True
    assert back.dropout == [0.1, 0.0] and back.residual == [False, True]
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(clone(back).fit(X, y).coefs_[0], clone(est).fit(X, y).coefs_[0])


def _saved_with_header_edit(est, path, edit, edit_arrays=None):
    """``est`` saved to ``path``, then its file's JSON header changed by ``edit(header)`` (and
    its arrays by ``edit_arrays(arrays)``)."""
    est.save(path)
    with np.load(path) as archive:
        contents = dict(archive)
    header = json.loads(str(contents["header"]))
    edit(header)
    if edit_arrays is not None:
        edit_arrays(contents)
    contents["header"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **contents)
    return path


@pytest.mark.parametrize(("edit", "words"), [
    (lambda c: c.update(values=[0, 1, 2, 3]), "its 4 classes do not fit its 3 outputs"),
    (lambda c: c.update(values=[0, 1]), "its 2 classes do not fit its 3 outputs"),
    (lambda c: c.update(values=[0, 0, 1]), "its 3 classes do not fit"),
    (lambda c: c.update(dtype="bogus"), "bad classes: TypeError"),
    (lambda c: c.pop("y_type"), "bad classes: KeyError"),
    # 1.2 GB a class, from a file of a few kB
    (lambda c: c.update(dtype="<U300000000"), "bad classes: ValueError: dtype <U300000000 does"),
    (lambda c: c.update(dtype="<M8[ns]"), "bad classes: ValueError: classes of dtype datetime64"),
    # labels cut short: 'ab' read as 'a', predicted silently
    (lambda c: c.update(values=["ab", "cd", "ef"], dtype="<U1"),
     "bad classes: ValueError: dtype <U1 does not"),
    (lambda c: c.update(values=[300, 301, 302], dtype="|i1"), "bad classes: OverflowError"),
    # read as [0, 1, 2] and [1, 1, 2] by an integer dtype's cast
    (lambda c: c.update(values=[0.4, 1.9, 2], dtype="|u1"), "bad classes: ValueError: .*integers"),
    (lambda c: c.update(values=[True, 1, 2], dtype="|u1"), "bad classes: ValueError: .*integers"),
    # LabelBinarizer would sort them: the outputs would mean other classes to MLP.load's reader
    (lambda c: c.update(values=[2, 0, 1]), "its classes are not sorted"),
])
def test_load_checks_the_classes_against_the_output_layer(wine, tmp_path, edit, words):
    X, y = wine
    path = _saved_with_header_edit(small(MLPClassifier).fit(X, y), tmp_path / "model.dp",
                                   lambda header: edit(header["sklearn"]["classes"]))
    with pytest.raises(ValueError, match=f"not a readable deltaprop model file: {words}"):
        MLPClassifier.load(path)


@pytest.mark.parametrize(("edit", "words"), [
    (lambda a: a.update(predict=0), "attributes must be a dict of some of n_features_in_"),
    (lambda a: a.update(_keep_best=1), "attributes must be a dict"),
    (lambda a: a.clear() or a.update(items=[1, 2]), "attributes must be a dict"),
    (lambda a: a.update(out_activation_="bogus"), "out_activation_ cannot be 'bogus'"),
    (lambda a: a.pop("out_activation_"), "AttributeError"),
    (lambda a: a.update(n_features_in_=12), "n_features_in_ cannot be 12"),
    (lambda a: a.update(n_outputs_=3.0), "n_outputs_ cannot be 3.0"),
    (lambda a: a.update(n_iter_=-1), "n_iter_ cannot be -1"),
    (lambda a: a.update(loss_curve_=["x"]), "loss_curve_ cannot be"),
    (lambda a: a.update(loss_=True), "loss_ cannot be True"),
])
def test_load_checks_the_fitted_attributes(wine, tmp_path, edit, words):
    """The header's attributes are data: only the fitted attributes save writes, each of its
    kind and agreeing with the network (setting any name a file holds could replace a method,
    and a bogus out_activation_ failed only at predict)."""
    X, y = wine
    path = _saved_with_header_edit(small(MLPClassifier).fit(X, y), tmp_path / "model.dp",
                                   lambda header: edit(header["sklearn"]["attributes"]))
    refused = f"not a readable deltaprop model file: .*{words}"
    with pytest.raises(ValueError, match=refused):
        MLPClassifier.load(path)


def _set(*keys_and_value):
    """An edit setting header[k1][k2]... to the value."""
    *keys, last, value = keys_and_value

    def edit(header):
        for key in keys:
            header = header[key]
        header[last] = value
    return edit


@pytest.mark.parametrize(("edit", "words"), [
    (_set("activation", "tanh"), "parameters differ in activation"),
    (_set("sklearn", "params", "activation", "logistic"), "parameters differ in activation"),
    (_set("sklearn", "params", "hidden_layer_sizes", [50, 50]),
     "parameters differ in hidden_layer_sizes"),
    (_set("sklearn", "params", "dropout", 0.5), "parameters differ in dropout"),
    (_set("sklearn", "attributes", "out_activation_", "logistic"), "parameters differ in output"),
    (_set("sklearn", "feature_names_in_", ["a", "b"]), "feature_names_in_ must be 13 names"),
    (_set("sklearn", "dropout_state", [-1, 3]), "dropout_state must be"),
])
def test_load_refuses_a_file_that_disagrees_with_itself(wine, tmp_path, edit, words):
    """The network is written twice, for deltaprop.MLP.load (the header's own entries) and for
    the estimator (its parameters): where they differ the two readers would predict
    differently (an edited activation agreed on 45 of 60 rows)."""
    X, y = wine
    path = _saved_with_header_edit(small(MLPClassifier).fit(X, y), tmp_path / "model.dp", edit)
    with pytest.raises(ValueError, match=f"not a readable deltaprop model file: .*{words}"):
        MLPClassifier.load(path)


def test_save_refuses_labels_a_file_could_not_tell_apart(tmp_path):
    """'a' and 'a\\0' are two labels of an object y, but one in the fixed-width strings
    scikit-learn's label encoding makes of them (they drop trailing NULs): classes_ holds 'a'
    twice, which load would refuse."""
    X = np.arange(12.0).reshape(6, 2)
    est = small(MLPClassifier).fit(X, np.array(["a", "a\0", "b"] * 2, dtype=object))
    assert est.classes_.tolist() == ["a", "a", "b"]
    path = tmp_path / "model.dp"
    with pytest.raises(ValueError, match="classes_ holds equal labels"):
        est.save(path)
    assert not path.exists()


def test_saved_file_loads_without_sklearn(wine, tmp_path):
    X, y = wine
    clf = small(MLPClassifier).fit(X, y)
    path, data = tmp_path / "wine.dp", tmp_path / "X.npy"
    clf.save(path)
    np.save(data, X)
    script = ("import sys; sys.modules['sklearn'] = None; sys.modules['scipy'] = None\n"
              "import numpy as np, deltaprop as dp\n"
              f"net = dp.MLP.load({str(path)!r})\n"
              f"np.save({str(tmp_path / 'p.npy')!r}, net.forward(np.load({str(data)!r})))\n")
    subprocess.run(python("-c", script), check=True, env={**os.environ})
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), clf.predict_proba(X), atol=1e-12)


# Each continues from a state a fresh estimator would not have: Adam's moments and step, with
# early stopping's count of epochs without improvement and its best epoch (the restored
# weights themselves, which a warm start trains on, as scikit-learn's does); a learned
# activation's moments; momentum's velocities and the adaptive schedule's decayed rate (and the
# gradient-health record, which partial_fit goes on with); plain
# momentum with invscaling and dropout masks (their seed and epoch count), in float32; a best
# epoch older than the weights (L-BFGS trained them after early stopping), which the file holds;
# L-BFGS, whose warm start keeps nothing but the weights and the curve.
CONTINUATIONS = {
    "adam, early stopping": ([{"early_stopping": True, "n_iter_no_change": 2, "tol": 0.05}],
                             {}),
    "adam, prelu": ([{"activation": "prelu"}], "partial_fit"),
    "adam, prelu, warm start": ([{"activation": "prelu"}], {"max_iter": 3}),
    "sgd, adaptive, health": ([{"solver": "sgd", "learning_rate": "adaptive",
                                "n_iter_no_change": 1, "tol": 0.05, "record_health": True}],
                              "partial_fit"),
    "sgd, adaptive, warm start": ([{"solver": "sgd", "learning_rate": "adaptive",
                                    "n_iter_no_change": 1, "tol": 0.05}], {}),
    "momentum, invscaling, dropout, float32": ([{
        "solver": "sgd", "learning_rate": "invscaling", "nesterovs_momentum": False,
        "dropout": 0.3}], "partial_fit"),
    "an older best epoch": ([{"early_stopping": True}, {"solver": "lbfgs", "warm_start": True}],
                            {"solver": "adam", "n_iter_no_change": 1, "tol": 0.5}),
    "lbfgs": ([{"solver": "lbfgs"}], {}),
}


@pytest.mark.parametrize(("fits", "then"), CONTINUATIONS.values(), ids=CONTINUATIONS)
def test_a_loaded_estimator_trains_on_as_a_pickled_one(wine, tmp_path, fits, then):
    """The file keeps what a pickle keeps for training on (the optimizer's state, the stopping
    rule's count and best epoch, the dropout masks' seed), so partial_fit or a warm start after
    load runs the very epochs it runs after unpickling: the same parameters bit for bit."""
    X, y = wine
    X = X.astype(np.float32) if "float32" in str(fits) + str(then) else X
    est = small(MLPClassifier, max_iter=6)
    for params in fits:
        est.set_params(**params).fit(X, y)
    path = tmp_path / "model.dp"
    est.save(path)
    pickled, loaded = pickle.loads(pickle.dumps(est)), MLPClassifier.load(path)
    for copy in (pickled, loaded):
        if then == "partial_fit":
            copy.partial_fit(X, y)
            copy.partial_fit(X, y)
        else:
            copy.set_params(warm_start=True, **then).fit(X, y)
    for name in ("n_iter_", "t_", "loss_curve_", "best_loss_", "validation_scores_",
                 "best_validation_score_"):
        assert getattr(loaded, name, None) == getattr(pickled, name, None), name
    if est.record_health:  # the record goes on from the saved epochs
        assert loaded.health_.keys() == pickled.health_.keys()
        for row, values in pickled.health_.items():
            assert len(values) == len(est.health_[row]) + 2
            np.testing.assert_array_equal(loaded.health_[row], values)
    for a, b in zip(pickled._parameter_arrays(), loaded._parameter_arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


def _arrays_set(name, value):
    def edit(arrays):
        arrays[name] = value(arrays[name])
    return edit


@pytest.mark.parametrize(("edit", "edit_arrays", "words"), [
    (_set("sklearn", "training_state", "no_improvement_count", -1), None,
     "bad training state: ValueError: no_improvement_count cannot be -1"),
    (_set("sklearn", "training_state", "best", "bogus"), None, "best cannot be 'bogus'"),
    (lambda h: h["sklearn"].update(training_state=[1, 2]), None, "bad training state"),
    (_set("sklearn", "training_state", "optimizer", "made_from", "solver", "lbfgs"), None,
     "the optimizer's made_from cannot be"),
    (lambda h: h["sklearn"]["training_state"]["optimizer"]["made_from"].pop("beta_2"), None,
     "the optimizer's made_from cannot be"),
    # each value as scikit-learn checks the parameter it was made from
    (_set("sklearn", "training_state", "optimizer", "made_from", "beta_1", 1.5), None,
     "InvalidParameterError: The 'beta_1' parameter"),
    (_set("sklearn", "training_state", "optimizer", "learning_rate", -0.1), None,
     "learning_rate cannot be -0.1"),
    (_set("sklearn", "training_state", "optimizer", "made_from", "epsilon", True), None,
     "must be numbers"),
    (_set("sklearn", "training_state", "optimizer", "t", 2.5), None, "t cannot be 2.5"),
    # counts the engine's int64 counters could not go on from
    (_set("sklearn", "training_state", "optimizer", "t", 2**63 - 1), None, "t cannot be 9223"),
    (_set("sklearn", "training_state", "no_improvement_count", 2**64), None,
     "no_improvement_count cannot be 1844"),
    # the arrays against the parameters they are the state of
    (_set("state_arrays", ["optimizer_state1_0"]), None,
     "it holds arrays the header does not describe"),
    (lambda h: h["sklearn"]["training_state"].update(best="saved"), None,
     "its state arrays should be .*best_coefs_0"),
    (lambda h: None, _arrays_set("optimizer_state1_0", lambda a: a[:, :1].copy()),
     r"optimizer_state1_0 should be float64 \(13, 8\)"),
    (lambda h: None, _arrays_set("optimizer_state1_1", lambda a: a * np.nan),
     "optimizer_state1_1 holds NaN"),
    (lambda h: None, _arrays_set("optimizer_state2_2", lambda a: a - 1),
     "Adam's second moments cannot be negative"),
])
def test_load_checks_the_training_state(wine, tmp_path, edit, edit_arrays, words):
    """The optimizer's values and arrays are data too: a negative step size or second moment
    would train on NaN, a wrong shape would reach the engine."""
    X, y = wine
    path = _saved_with_header_edit(small(MLPClassifier).fit(X, y), tmp_path / "model.dp", edit,
                                   edit_arrays)
    with pytest.raises(ValueError, match=f"not a readable deltaprop model file: .*{words}"):
        MLPClassifier.load(path)


def test_a_file_from_before_the_training_state_loads(wine, tmp_path):
    """Format 2 files have no training state: they load with a fresh optimizer for
    partial_fit, a count of 0, the loaded weights as the best epoch's."""
    X, y = wine
    est = small(MLPClassifier, early_stopping=True).fit(X, y)

    def older(header):
        header.update(version=2)
        del header["state_arrays"], header["sklearn"]["training_state"]

    def without_state(arrays):
        for name in [name for name in arrays if name.startswith("optimizer_")]:
            del arrays[name]
    path = _saved_with_header_edit(est, tmp_path / "model.dp", older, without_state)
    back = MLPClassifier.load(path)
    assert not hasattr(back, "_optimizer") and back._no_improvement_count == 0
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    back.set_params(early_stopping=False).partial_fit(X, y)
    assert back.n_iter_ == 1 and len(back.loss_curve_) == len(est.loss_curve_) + 1


def test_an_sgd_rate_above_its_start_is_refused(wine, tmp_path):
    """No schedule raises the rate past learning_rate_init: 1e300 would train to inf, and the
    non-finite guard would then blame the data."""
    X, y = wine
    path = _saved_with_header_edit(
        small(MLPClassifier, solver="sgd").fit(X, y), tmp_path / "model.dp",
        _set("sklearn", "training_state", "optimizer", "learning_rate", 1e300))
    with pytest.raises(ValueError, match="the optimizer's learning_rate cannot be 1e"):
        MLPClassifier.load(path)


def test_load_checks_the_health_record(wine, tmp_path):
    X, y = wine
    est = small(MLPClassifier, record_health=True).fit(X, y)

    def edit_arrays(arrays):
        arrays["health_grad_norm"] = arrays["health_grad_norm"][:, :1].copy()
    path = _saved_with_header_edit(est, tmp_path / "model.dp", lambda h: None, edit_arrays)
    with pytest.raises(ValueError, match=r"health record must be .* each float64 \(epochs, 2\)"):
        MLPClassifier.load(path)


@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (5,)}, {"activation": "prelu"}])
def test_an_lbfgs_fit_of_a_new_network_leaves_no_optimizer_behind(wine, tmp_path, change):
    """A stochastic fit's optimizer is for its network: after a fresh L-BFGS fit of another
    one, save wrote its arrays (which load refused), and partial_fit failed on their shapes."""
    X, y = wine
    est = small(MLPClassifier).fit(X, y)
    est.set_params(solver="lbfgs", **change).fit(X, y)
    path = tmp_path / "model.dp"
    est.save(path)
    back = MLPClassifier.load(path)
    for model in (est, back):
        model.set_params(solver="adam").partial_fit(X, y)
    np.testing.assert_array_equal(back.coefs_[0], est.coefs_[0])


def test_an_early_stopping_fit_that_diverged_saves_and_trains_on(wine, tmp_path):
    """It keeps its best weights (finite) and drops its optimizer, whose moments are NaN: the
    file is written, and training on starts a fresh optimizer."""
    X, y = wine
    est = small(MLPRegressor, solver="sgd", learning_rate_init=10.0, early_stopping=True,
                max_iter=20)
    with pytest.warns(ConvergenceWarning, match="Training diverged"):
        est.fit(X, y * 1e3)
    path = tmp_path / "model.dp"
    est.save(path)
    back = MLPRegressor.load(path)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    for model in (est, back):
        model.set_params(early_stopping=False, learning_rate_init=1e-3).partial_fit(X, y)
        assert all(np.isfinite(W).all() for W in model.coefs_)


def test_save_refuses_learned_parameters_of_another_activation(wine, tmp_path):
    """set_params(activation=...) after fit: the prelu slopes no longer belong to the network
    the estimator describes, and a file holding them could not be read back."""
    X, y = wine
    est = small(MLPClassifier, activation="prelu").fit(X, y).set_params(activation="logistic")
    with pytest.raises(ValueError, match=r"activation_params_ hold \[\['slope'\]\], another"):
        est.save(tmp_path / "model.dp")


def test_a_file_without_state_arrays_is_version_2(wine, tmp_path):
    """A plain network's file is written as version 2 wrote it, so an earlier deltaprop reads
    it; an estimator's with its optimizer's state is version 3."""
    X, y = wine
    net = dp.MLP([13, 8, 3], "relu", "softmax", seed=0)
    small(MLPClassifier).fit(X, y).save(tmp_path / "est.dp")
    net.save(tmp_path / "net.dp")
    versions = {}
    for name in ("est", "net"):
        with np.load(tmp_path / f"{name}.dp") as archive:
            versions[name] = json.loads(str(archive["header"]))["version"]
    assert versions == {"est": 3, "net": 2}
