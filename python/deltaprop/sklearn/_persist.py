"""Save and load fitted estimators without pickle, in MLP.save's file format: an .npz archive of
the parameters and a JSON header. The header also carries the estimator's parameters and fitted
attributes under "sklearn", and the training state as state arrays (the optimizer's), so
``deltaprop.MLP.load(path)`` reads the network in a process without scikit-learn (it predicts
class indices 0..K-1, in the order of the header's classes), and ``MLPClassifier.load(path)``
gives back the whole estimator, as a pickle would."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray, PathArg
from ..activations import Activation
from ..model import MLP
from ..saving import (
    _activation_from_json,
    _activation_to_json,
    _bad,
    check_parameter_arrays,
    mlp_from_file,
    named_parameters,
    read_model_file,
    save_mlp,
    state_arrays,
)
from ._backend import HEALTH_ROWS
from ._optimizer import SETTINGS

# What predict, score and the attributes need (what training on needs besides: _training_state)
_ATTRIBUTES = ("n_features_in_", "n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
               "loss_", "best_loss_", "loss_curve_", "validation_scores_",
               "best_validation_score_", "validation_loss_curve_")


@dataclasses.dataclass(frozen=True)
class _EstimatorNetwork:
    """A fitted estimator's network as save_mlp reads it (saving.SavedNetwork)."""

    layer_sizes: Sequence[int]
    activation: object
    output: str
    loss: str | None
    huber_delta: float
    residual: object
    dropout: object
    alpha_dropout: bool
    dtype: np.dtype[Any]
    seed: int
    grad_at_zero: float
    epochs_trained_: int
    coefs_: Sequence[FloatArray]
    intercepts_: Sequence[FloatArray]
    activation_params_: Sequence[Mapping[str, FloatArray]]


def _class_weight_to_json(class_weight: Any) -> Any:
    """JSON's object keys are strings, a class_weight's are the classes (often ints): each dict
    is kept as its [class, weight] pairs (NumPy values in them are save_mlp's to convert)."""
    if isinstance(class_weight, dict):
        return {"items": [[k, v] for k, v in class_weight.items()]}
    if isinstance(class_weight, list):
        return [_class_weight_to_json(d) for d in class_weight]
    return class_weight


def _class_weight_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value["items"]}
    if isinstance(value, list):
        return [_class_weight_from_json(d) for d in value]
    return value


def _seed(random_state: Any) -> int | None:
    """An integer random_state (a NumPy integer too, as a grid search sets it), else None: a
    RandomState object is not saved."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return None


def _params(est: Any) -> dict[str, Any]:
    """The constructor's parameters for the header (NumPy scalars and arrays among them, a
    grid's values or an array-like dropout, are written as their values by save_mlp)."""
    params: dict[str, Any] = est.get_params(deep=False)
    params.pop("callback")  # code, not data
    params["activation"] = _activation_to_json(params["activation"])
    params["random_state"] = _seed(params["random_state"])
    params["hidden_layer_sizes"] = np.atleast_1d(params["hidden_layer_sizes"]).tolist()
    if "class_weight" in params:
        params["class_weight"] = _class_weight_to_json(params["class_weight"])
    return params


def _checked_attributes(saved: Any, sizes: Sequence[int]) -> dict[str, Any]:
    """The header's fitted attributes: known names only (a header is data, and setting any name
    it holds could replace a method), each of its kind and agreeing with the network's sizes."""
    if not isinstance(saved, dict) or not set(saved) <= set(_ATTRIBUTES):
        raise ValueError(f"attributes must be a dict of some of {', '.join(_ATTRIBUTES)}")

    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def number(value: Any) -> bool:
        return integer(value) or isinstance(value, float)

    exact = {"n_features_in_": sizes[0], "n_layers_": len(sizes), "n_outputs_": sizes[-1]}
    for name, value in saved.items():
        if name in exact:
            ok = integer(value) and value == exact[name]
        elif name in ("n_iter_", "t_"):
            ok = integer(value) and value >= 0
        elif name == "out_activation_":
            ok = value in ("identity", "logistic", "softmax", "exp")
        elif name.endswith(("curve_", "scores_")):
            ok = value is None or isinstance(value, list) and all(map(number, value))
        else:  # loss_, best_loss_, best_validation_score_
            ok = value is None or number(value)
        if not ok:
            raise ValueError(f"{name} cannot be {value!r:.80}")
    return saved


def _differences(est: Any, net: MLP) -> list[str]:
    """What of the network the file's header describes (``net``, as deltaprop.MLP.load builds
    it) the estimator's own parameters describe otherwise."""
    sizes = net.layer_sizes
    residual, dropout = est._blocks(sizes)
    loss, huber_delta = est._engine_loss()
    theirs = {"hidden_layer_sizes": np.atleast_1d(est.hidden_layer_sizes).tolist(),
              "activation": est._hidden_activations(len(sizes) - 2),
              "output": est._output_kind(), "loss": loss, "huber_delta": huber_delta,
              "residual": residual, "dropout": dropout, "alpha_dropout": bool(est.alpha_dropout)}
    ours = {"hidden_layer_sizes": sizes[1:-1], "activation": net._specs, "output": net.output,
            "loss": net.loss, "huber_delta": net.huber_delta, "residual": net._residual,
            "dropout": net._dropout, "alpha_dropout": net.alpha_dropout}
    return [name for name in ours if ours[name] != theirs[name]]


def _dropout_state(saved: Any) -> tuple[int, int]:
    """(_dropout_seed, _epochs_trained), which further training's dropout masks are drawn from;
    (0, 0), what an estimator without them uses, for files saved before they were."""
    if saved is None:
        return 0, 0
    seed, epochs = saved
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seed, epochs)) or not (
            0 <= seed < 2**31 and epochs >= 0):
        raise ValueError(f"dropout_state must be [seed < 2**31, epochs], got {saved!r:.80}")
    return seed, epochs


def _optimizer_arrays(optimizer: Any) -> dict[str, FloatArray]:
    """An optimizer's arrays by their names in the file: the velocities or Adam's moments."""
    if optimizer is None:
        return {}
    state = optimizer.state
    return {f"optimizer_state{moment}_{i}": a
            for moment, arrays in (("1", state.state1), ("2", state.state2))
            for i, a in enumerate(arrays or [])}


def _best_arrays(est: Any) -> dict[str, FloatArray]:
    """The early-stopping rule's best parameters by their names in the file."""
    best = named_parameters(est._best_coefs, est._best_intercepts, est._best_activation_params)
    return {f"best_{name}": a for name, a in best.items()}


def _best_kept(est: Any) -> str:
    """How the early-stopping rule's best parameters, which a warm start with early stopping
    restores unless it finds better, stand to the trained ones: "trained" when they are those
    very arrays (a finished early-stopping fit restored them, and a warm start trains them on,
    as scikit-learn's does); "copy" when equal, or of no use (the rule kept is the training
    loss's: a fit with early stopping starts afresh); else "saved", which the file holds (an
    L-BFGS warm start trained the weights after an early-stopping fit)."""
    if not hasattr(est, "_best_coefs") or getattr(est, "best_validation_score_", None) is None:
        return "copy"
    if (est._best_coefs is est.coefs_ and est._best_intercepts is est.intercepts_
            and est._best_activation_params is est._learned()):
        return "trained"
    best = named_parameters(est._best_coefs, est._best_intercepts, est._best_activation_params)
    trained = named_parameters(est.coefs_, est.intercepts_, est._learned())
    equal = best.keys() == trained.keys() and all(
        np.array_equal(a, trained[name]) for name, a in best.items())
    return "copy" if equal else "saved"


def _training_state(est: Any) -> tuple[dict[str, Any], dict[str, FloatArray]]:
    """What training on needs beyond the parameters, as a pickle keeps it: the stopping rule's
    count of epochs without improvement and its best parameters, and the optimizer that
    partial_fit continues (the parameters it was made from, its decayed rate, its step count;
    its arrays). The header's part, and the arrays by name."""
    optimizer = getattr(est, "_optimizer", None)
    arrays = _optimizer_arrays(optimizer)
    if not all(np.isfinite(a).all() for a in arrays.values()):
        optimizer, arrays = None, {}  # (NaN moments, which load refuses: training on makes one)
    best = _best_kept(est)
    saved: dict[str, Any] = {"no_improvement_count": getattr(est, "_no_improvement_count", 0),
                             "best": best}
    if optimizer is not None:
        saved["optimizer"] = {"made_from": optimizer.made_from(),
                              "learning_rate": optimizer.learning_rate, "t": optimizer.state.t}
    if best == "saved":
        arrays.update(_best_arrays(est))
    return saved, arrays


def _count(value: Any) -> bool:
    """Whether a saved count (of epochs, of Adam's steps) is one: an int the engine's int64
    counters can go on from."""
    return type(value) is int and 0 <= value < 2**62


def _optimizer_from_header(est: Any, saved: Any) -> Any:
    """The optimizer _training_state saved, made afresh for the loaded parameters (None if
    there was none). Each setting is checked as the estimator's parameter of its name is (and
    is a number where that is one: scikit-learn's checks take True for 1.0)."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    kept = saved.get("optimizer")
    if kept is None:
        return None
    made_from, learning_rate, t = dict(kept["made_from"]), kept["learning_rate"], kept["t"]
    solver = made_from.get("solver")
    if solver not in SETTINGS or set(made_from) != {"solver", *SETTINGS[solver]}:
        raise ValueError(f"the optimizer's made_from cannot be {made_from!r:.200}")
    settings = {name: made_from[name] for name in SETTINGS[solver]}
    validate_parameter_constraints({name: est._parameter_constraints[name] for name in settings},
                                   settings, caller_name=type(est).__name__)
    numbers = [name for name in settings if name not in ("learning_rate", "nesterovs_momentum")]
    if any(isinstance(settings[name], bool) for name in numbers):
        raise ValueError(f"the optimizer's {', '.join(numbers)} must be numbers")
    # the rate the schedules left: never above where they start (Adam's steps do not use it)
    highest = settings["learning_rate_init"] if solver == "sgd" else math.inf
    if not (type(learning_rate) is float and 0 <= learning_rate <= highest):
        raise ValueError(f"the optimizer's learning_rate cannot be {learning_rate!r:.80}")
    if not _count(t):
        raise ValueError(f"the optimizer's t cannot be {t!r:.80}")
    optimizer = est._new_optimizer(est._network(est.coefs_[0].dtype), made_from)
    optimizer.learning_rate, optimizer.state.t = learning_rate, t
    return optimizer


def _restore_training_state(path: PathArg, est: Any, saved: Any,
                            arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Gives the loaded estimator (its parameters set) the training state save wrote, each
    array checked against the parameter it is the state of. A file from before it was saved
    gives a count of 0, the loaded parameters as the best, and no optimizer (partial_fit makes
    a fresh one)."""
    if saved is None:
        saved = {"no_improvement_count": 0, "best": "copy"}
    try:
        count, best = saved["no_improvement_count"], saved["best"]
        if not _count(count):
            raise ValueError(f"no_improvement_count cannot be {count!r:.80}")
        if best not in ("trained", "copy", "saved"):
            raise ValueError(f"best cannot be {best!r:.80}")
        optimizer = _optimizer_from_header(est, saved)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _bad(path, f"bad training state: {type(error).__name__}: {error}") from error
    est._no_improvement_count = count
    if best == "trained":
        est._best_coefs, est._best_intercepts, est._best_activation_params = (
            est.coefs_, est.intercepts_, est.activation_params_)
    else:
        est._keep_best()  # (copies: "saved" fills them from the file below)
    expected = _optimizer_arrays(optimizer)
    if best == "saved":
        expected.update(_best_arrays(est))
    if set(arrays) != set(expected):
        raise _bad(path, f"its state arrays should be {sorted(expected)!r:.200}, "
                         f"got {sorted(arrays)!r:.200}")
    check_parameter_arrays(path, arrays, expected)  # their shapes, dtypes, finite values
    if any((arrays[name] < 0).any() for name in expected if name.startswith("optimizer_state2")):
        raise _bad(path, "Adam's second moments cannot be negative")  # (a NaN square root)
    for name, like in expected.items():
        np.copyto(like, arrays[name])
    if optimizer is not None:
        est._optimizer = optimizer


def _health_arrays(est: Any) -> dict[str, FloatArray]:
    """health_ (record_health's per-epoch, per-layer record, which partial_fit goes on with) by
    the names of its arrays in the file."""
    health = getattr(est, "health_", None)
    return {} if health is None else {f"health_{row}": health[row] for row in HEALTH_ROWS}


def _restore_health(path: PathArg, est: Any, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Sets health_ from _health_arrays' arrays, if the file holds them: each float64, an
    epoch a row and a layer a column (NaN and inf are values a record holds)."""
    if not arrays:
        return
    names = [f"health_{row}" for row in HEALTH_ROWS]
    epochs = arrays[names[0]].shape[0] if names[0] in arrays and arrays[names[0]].ndim else 0
    shape = (epochs, len(est.coefs_))
    if set(arrays) != set(names) or any(
            a.dtype != np.float64 or a.shape != shape for a in arrays.values()):
        raise _bad(path, f"its health record must be the arrays {', '.join(names)}, each "
                         f"float64 (epochs, {len(est.coefs_)})")
    est.health_ = {row: arrays[f"health_{row}"].copy() for row in HEALTH_ROWS}


def _feature_names(path: PathArg, saved: Any, n_features: int) -> npt.NDArray[Any]:
    if not (isinstance(saved, list) and len(saved) == n_features
            and all(isinstance(name, str) for name in saved)):
        raise _bad(path, f"feature_names_in_ must be {n_features} names, got {saved!r:.80}")
    return np.asarray(saved, dtype=object)


# A label's dtype as save writes it: classes of these kinds, and a string width the labels
# need: a narrower one would cut them short, a wider one (from a wider y) may reach this many
# characters: a header's dtype of 300 000 000 would otherwise allocate 1.2 GB a class.
_CLASS_KINDS, _CLASS_WIDTH = "biufUO", 1024


def _classes(saved: Any) -> npt.NDArray[Any]:
    dtype, values = np.dtype(saved["dtype"]), saved["values"]
    if dtype.kind not in _CLASS_KINDS or not isinstance(values, list):
        raise ValueError(f"classes of dtype {dtype} are not saved classes")
    if dtype.kind in "iu":  # (NumPy < 2 wraps an int past the dtype's range without a word)
        info = np.iinfo(dtype)
        if not all(type(v) is int for v in values):  # save writes ints: not 3.4, True, "3"
            raise ValueError(f"classes {values!r:.80} of dtype {dtype} are not all integers")
        if any(not info.min <= v <= info.max for v in values):
            raise OverflowError(f"classes {values!r:.80} do not fit dtype {dtype}")
    if dtype.kind == "U":
        longest = max((len(v) for v in values if isinstance(v, str)), default=0)
        if not longest <= dtype.itemsize // 4 <= max(longest, _CLASS_WIDTH):
            raise ValueError(f"dtype {dtype} does not fit its classes of up to {longest} "
                             f"characters")
    return np.asarray(values, dtype=dtype)


def _label_binarizer(path: PathArg, saved: Any, n_outputs: int) -> Any:
    """The classifier's LabelBinarizer, fitted again from the header's classes, which must
    match the output layer: a unit per class, or a single unit for two (binary, not multilabel)."""
    from sklearn.preprocessing import LabelBinarizer

    try:
        classes = _classes(saved)
        multilabel = saved["y_type"].startswith("multilabel")
        binarizer = LabelBinarizer()
        binarizer.fit(np.eye(len(classes), dtype=int) if multilabel else classes)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise _bad(path, f"bad classes: {type(error).__name__}: {error}") from error
    units = len(binarizer.classes_) if multilabel or len(binarizer.classes_) > 2 else 1
    if classes.ndim != 1 or len(binarizer.classes_) != len(classes) or units != n_outputs:
        raise _bad(path, f"its {len(classes)} classes do not fit its {n_outputs} outputs")
    if not np.array_equal(binarizer.classes_, classes):  # the outputs' order is the file's
        raise _bad(path, "its classes are not sorted, as classes_ is")
    return binarizer


class PersistMixin:
    def save(self, path: PathArg) -> None:
        """Writes the fitted estimator to ``path`` (no pickle); see :meth:`load`."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        est: Any = self  # a BaseMLP: its attributes come from scikit-learn's untyped classes
        sizes = [est.coefs_[0].shape[0]] + [W.shape[1] for W in est.coefs_]
        activation = (est.activation if isinstance(est.activation, (str, Activation))
                      else est._hidden_activations(len(sizes) - 2))  # a list: checked, resolved
        learned = [sorted(d) for d in est._learned()]
        if learned != [sorted(n) for n in est._network(est.coefs_[0].dtype).learned_names]:
            raise ValueError(f"activation_params_ hold {learned}, another activation's than "
                             f"activation={est.activation!r} (set after fit?): a file could "
                             f"not describe this network. Fit again, or set it back")
        residual, dropout = est._blocks(sizes)
        loss, huber_delta = est._engine_loss()
        net = _EstimatorNetwork(layer_sizes=sizes, dtype=est.coefs_[0].dtype,
                                activation=activation, output=est._output_kind(),
                                seed=_seed(est.random_state) or 0,
                                grad_at_zero=0.0,  # an Activation carries its own
                                epochs_trained_=est.n_iter_,
                                coefs_=est.coefs_, intercepts_=est.intercepts_,
                                loss=loss, huber_delta=huber_delta, residual=residual,
                                dropout=dropout, alpha_dropout=bool(est.alpha_dropout),
                                activation_params_=est._learned())
        sk: dict[str, Any] = {
            "estimator": type(self).__name__, "params": _params(self),
            "attributes": {a: getattr(self, a) for a in _ATTRIBUTES if hasattr(self, a)}}
        if hasattr(self, "feature_names_in_"):
            sk["feature_names_in_"] = est.feature_names_in_.tolist()
        if hasattr(self, "classes_"):
            labels = est.classes_.tolist()
            if len(set(map(repr, labels))) != len(labels):  # load refuses these: never write one
                raise ValueError(f"classes_ holds equal labels ({labels!r:.80}; NumPy's strings "
                                 f"drop trailing NULs), which a file could not tell apart")
            sk["classes"] = {"values": labels, "dtype": est.classes_.dtype.str,
                             "y_type": est._label_binarizer.y_type_}
        # what further training's dropout masks are drawn from (as a pickle keeps them)
        sk["dropout_state"] = [getattr(est, "_dropout_seed", 0), getattr(est, "_epochs_trained", 0)]
        sk["training_state"], state = _training_state(est)
        save_mlp(net, path, extra={"sklearn": sk}, state={**state, **_health_arrays(est)})

    @classmethod
    def load(cls, path: PathArg) -> Any:
        """An estimator saved by :meth:`save`; ready to predict, and to train on
        (warm_start, partial_fit) as the saved one would: the file keeps the optimizer's state
        (the momentum velocities, Adam's moments and step, the adaptive schedule's decayed
        rate), the stopping rule's count and best epoch, and ``health_``, as a pickle does.
        It does not keep ``callback`` (code: set it again), a ``RandomState`` object as
        ``random_state`` (saved as None; an int seed is kept), or the NumPy types of
        parameter values (np.float32(0.1) is saved as the number 0.1)."""
        header, contents = read_model_file(path)
        sk = header.get("sklearn")
        if not isinstance(sk, dict) or sk.get("estimator") != cls.__name__:
            found = sk.get("estimator") if isinstance(sk, dict) else "a plain deltaprop.MLP"
            raise _bad(path, f"it holds {found}, not a {cls.__name__}")
        # the network as deltaprop.MLP.load reads it, its header and arrays checked; the
        # estimator's parameters must describe the same one, or the two readers would differ
        net = mlp_from_file(MLP, path, header, contents, backend="numpy")
        sizes = net.layer_sizes
        try:
            params = dict(sk["params"])
            params["activation"] = _activation_from_json(params["activation"])
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            if "class_weight" in params:
                params["class_weight"] = _class_weight_from_json(params["class_weight"])
            est: Any = cls(**params)  # an estimator (scikit-learn's classes are untyped)
            for name, value in _checked_attributes(sk["attributes"], sizes).items():
                setattr(est, name, value)
            differ = _differences(est, net)
            est._dropout_seed, est._epochs_trained = _dropout_state(sk.get("dropout_state"))
        except (KeyError, TypeError, ValueError, AttributeError, MemoryError) as error:
            raise _bad(path, f"bad header: {type(error).__name__}: {error}") from error
        if differ:
            raise _bad(path, f"the network its header describes and its estimator's parameters "
                             f"differ in {', '.join(differ)}")
        est.coefs_, est.intercepts_ = net.coefs_, net.intercepts_
        est.activation_params_ = net.activation_params_
        if "feature_names_in_" in sk:
            est.feature_names_in_ = _feature_names(path, sk["feature_names_in_"], sizes[0])
        if "classes" in sk:
            est._label_binarizer = _label_binarizer(path, sk["classes"], n_outputs=sizes[-1])
            est.classes_ = est._label_binarizer.classes_
        state = state_arrays(path, header, contents)
        health = {name: a for name, a in state.items() if name.startswith("health_")}
        _restore_training_state(path, est, sk.get("training_state"),
                                {name: a for name, a in state.items() if name not in health})
        _restore_health(path, est, health)
        return est
