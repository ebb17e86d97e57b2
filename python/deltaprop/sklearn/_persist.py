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


def _label_binarizer(path: PathArg, saved: Any, n_outputs: int) -> Any:
    """The classifier's LabelBinarizer, fitted again from the header's classes, which must
    match the output layer: a unit per class, or a single unit for two (binary, not multilabel)."""
    from sklearn.preprocessing import LabelBinarizer

    try:
        classes = np.asarray(saved["values"], dtype=np.dtype(saved["dtype"]))
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
            sk["classes"] = {"values": est.classes_.tolist(), "dtype": est.classes_.dtype.str,
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
            for name, value in sk["attributes"].items():
                setattr(est, name, value)
            sizes, dtype = header["layer_sizes"], np.dtype(header["dtype"])
            hidden = est._hidden_activations(len(sizes) - 2)
            expected: dict[str, npt.NDArray[Any]] = dense_layer_arrays(sizes, dtype)
        except (KeyError, TypeError, ValueError, MemoryError) as error:
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
