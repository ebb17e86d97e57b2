"""Save and load fitted estimators without pickle, in MLP.save's file format: an .npz archive of
the parameters and a JSON header. The header also carries the estimator's parameters and fitted
attributes under "sklearn", so ``deltaprop.MLP.load(path)`` reads the network in a process
without scikit-learn (it predicts class indices 0..K-1, in the order of the header's classes),
and ``MLPClassifier.load(path)`` gives back the whole estimator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray, PathArg
from ..activations import Activation
from ..saving import (
    _activation_from_json,
    _activation_to_json,
    _bad,
    check_parameter_arrays,
    dense_layer_arrays,
    read_model_file,
    save_mlp,
)
from . import _backend

# What predict, score and the attributes need; the optimizer's state is not kept (a warm start
# after loading starts a fresh optimizer, as fit does), nor the stopping rule's patience (it
# starts again, the loaded parameters its best epoch's).
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


# A label's dtype as save writes it: classes of these kinds, and a string width the labels
# need (a wider one, from a wider y, up to this many characters): a header's dtype of
# 300 000 000 characters would otherwise allocate 1.2 GB a class.
_CLASS_KINDS, _CLASS_WIDTH = "biufUO", 1024


def _classes(saved: Any) -> npt.NDArray[Any]:
    dtype, values = np.dtype(saved["dtype"]), saved["values"]
    if dtype.kind not in _CLASS_KINDS or not isinstance(values, list):
        raise ValueError(f"classes of dtype {dtype} are not saved classes")
    if dtype.kind == "U":
        longest = max((len(v) for v in values if isinstance(v, str)), default=0)
        if dtype.itemsize // 4 > max(longest, _CLASS_WIDTH):
            raise ValueError(f"dtype {dtype} is wider than its classes need")
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
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _bad(path, f"bad classes: {type(error).__name__}: {error}") from error
    units = len(binarizer.classes_) if multilabel or len(binarizer.classes_) > 2 else 1
    if classes.ndim != 1 or len(binarizer.classes_) != len(classes) or units != n_outputs:
        raise _bad(path, f"its {len(classes)} classes do not fit its {n_outputs} outputs")
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
        save_mlp(net, path, extra={"sklearn": sk})

    @classmethod
    def load(cls, path: PathArg) -> Any:
        """An estimator saved by :meth:`save`; ready to predict (and to fit again)."""
        header, contents = read_model_file(path)
        sk = header.get("sklearn")
        if not isinstance(sk, dict) or sk.get("estimator") != cls.__name__:
            found = sk.get("estimator") if isinstance(sk, dict) else "a plain deltaprop.MLP"
            raise _bad(path, f"it holds {found}, not a {cls.__name__}")
        try:
            params = dict(sk["params"])
            params["activation"] = _activation_from_json(params["activation"])
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            if "class_weight" in params:
                params["class_weight"] = _class_weight_from_json(params["class_weight"])
            est: Any = cls(**params)  # an estimator (scikit-learn's classes are untyped)
            sizes, dtype = header["layer_sizes"], np.dtype(header["dtype"])
            expected: dict[str, npt.NDArray[Any]] = dense_layer_arrays(sizes, dtype)
            for name, value in _checked_attributes(sk["attributes"], sizes).items():
                setattr(est, name, value)
            if est._output_kind() != header["output"]:
                raise ValueError(f"out_activation_ {est.out_activation_!r} is not the network's "
                                 f"output {header['output']!r}")
            hidden = est._hidden_activations(len(sizes) - 2)
        except (KeyError, TypeError, ValueError, AttributeError, MemoryError) as error:
            raise _bad(path, f"bad header: {type(error).__name__}: {error}") from error
        L = len(sizes) - 1
        # the learned activations' arrays, shaped as a fresh network's
        learned_like = [_backend.init_activation_params(spec, n, dtype)
                        for spec, n in zip(hidden, sizes[1:])]
        for l, like in enumerate(learned_like):
            for name, array in like.items():
                expected[f"activation_params_{l}_{name}"] = array
        check_parameter_arrays(path, contents, expected)
        est.coefs_ = [np.ascontiguousarray(contents[f"coefs_{l}"]) for l in range(L)]
        est.intercepts_ = [np.ascontiguousarray(contents[f"intercepts_{l}"]) for l in range(L)]
        est.activation_params_ = [
            {name: np.ascontiguousarray(contents[f"activation_params_{l}_{name}"]) for name in like}
            for l, like in enumerate(learned_like)]
        if "feature_names_in_" in sk:
            est.feature_names_in_ = np.asarray(sk["feature_names_in_"], dtype=object)
        if "classes" in sk:
            est._label_binarizer = _label_binarizer(path, sk["classes"], n_outputs=sizes[-1])
            est.classes_ = est._label_binarizer.classes_
        est._no_improvement_count = 0
        est._keep_best()
        return est
