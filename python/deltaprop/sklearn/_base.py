"""What MLPClassifier and MLPRegressor share: parameters, initialisation, the solvers' loops and
the forward pass, following scikit-learn 1.9's BaseMultilayerPerceptron rule for rule
(sklearn/neural_network/_multilayer_perceptron.py) with the arithmetic in deltaprop's engine.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from .._typing import FloatArray
from ..activations import ALIASES, NAMES, Activation, resolve
from ..diagnostics import HealthWarning, check_health
from ..init import INIT_SCHEMES, init_network
from ..validation import dropout_rates, residual_flags
from . import _backend, _lbfgs
from ._hooks import CallbackSupportMixin, EpochHooks
from ._optimizer import AdamOptimizer, SGDOptimizer, new_optimizer

_STOCHASTIC_SOLVERS = ["sgd", "adam"]
# The dtypes X keeps through validate_data(dtype=(np.float64, np.float32)) (native byte order).
_NATIVE_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))
# Row orders drawn ahead for a chunk of epochs run in one engine call: at most this many
# entries (8 MiB of int64).
ORDER_ENTRIES = 1 << 20
# Epochs per engine call when the engine draws the shuffles: only its learning rates and losses
# are arrays of this length.
EPOCHS_PER_CALL = 1 << 16

# With verbose output or a progress bar, the engine runs chunks of epochs that take about this
# long (s), their lines printed and the bar moved after each: none comes later than that.
VERBOSE_LAG = 0.05

# The hidden activations the estimators take: every one of deltaprop's. Those that learn
# parameters of their own (prelu, acon, a learnable swish) keep them in activation_params_, as
# deltaprop.MLP does, beside scikit-learn's coefs_ and intercepts_.
HIDDEN_ACTIVATIONS = tuple(NAMES) + tuple(ALIASES)


# activation_params_: one dict of arrays per hidden layer ({} for activations that learn nothing)
LearnedParams = list[dict[str, FloatArray]]

_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


def _param_names(cls: type) -> tuple[str, ...]:
    """BaseEstimator._get_param_names(cls), remembered per class (two threads racing here
    store the same value)."""
    names = _PARAM_NAMES.get(cls)
    if names is None:
        names = _PARAM_NAMES[cls] = tuple(BaseEstimator._get_param_names.__func__(cls))
    return names


class BaseMLP(CallbackSupportMixin, BaseEstimator):  # type: ignore[misc]
    # (ignore: scikit-learn ships no type information, so its classes are Any to mypy)
    """Shared by the two estimators; not for direct use."""

    _parameter_constraints: dict[str, list[Any]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), Activation, list, tuple],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # deltaprop's own
        "n_threads": [Interval(Integral, 1, 1024, closed="both"), None],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "alpha_dropout": ["boolean"],
        "residual": ["boolean", "array-like"],
        "init": [StrOptions(set(INIT_SCHEMES))],
        "bias_init": [Real, list, tuple, None],
        "callback": [callable, None],
        "progress": ["boolean"],
        "record_health": ["boolean"],
    }

    # Fitted attributes (scikit-learn's), set by fit; typed here for the code that reads them.
    coefs_: list[FloatArray]
    intercepts_: list[FloatArray]
    n_iter_: int
    t_: int
    loss_: float
    loss_curve_: list[float]
    best_loss_: float | None
    validation_loss_curve_: list[float] | None
    validation_scores_: list[float] | None
    best_validation_score_: float | None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """BaseEstimator's, read once per class: it inspects __init__'s signature on every call
        (~40 µs), and a fit calls it through get_params when it validates its parameters."""
        return list(_param_names(cls))

    # -- the network -------------------------------------------------------------------------
    def _store_parameters(self, values: dict[str, Any]) -> None:
        """The body of both estimators' __init__: every constructor argument stored unchanged
        under its own name, as scikit-learn requires (no validation until fit). ``values`` is
        the caller's locals(); the signatures themselves stay explicit, since get_params reads
        them."""
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _regression_output(self) -> str:
        """A regressor's output function for its loss: the exp of Poisson's log link."""
        return "exp" if self.loss == "poisson" else "identity"

    def _output_kind(self) -> str:
        return {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity",
                "exp": "exp"}[self.out_activation_]

    def _hidden_activations(self, n_hidden: int) -> list[Activation]:
        """``activation`` as one Activation per hidden layer: one name or Activation for all,
        or (deltaprop's; scikit-learn #10097) a list with one per hidden layer."""
        activation = self.activation
        if not isinstance(activation, (list, tuple)):
            specs = [resolve(activation)] * n_hidden
        elif len(activation) != n_hidden:
            raise ValueError(f"activation lists {len(activation)} activations for {n_hidden} "
                             f"hidden layers: give one per hidden layer, or one for all")
        else:
            specs = []
            for i, a in enumerate(activation):
                if not (isinstance(a, Activation) or a in HIDDEN_ACTIVATIONS):
                    raise ValueError(f"activation[{i}] must be one of {sorted(HIDDEN_ACTIVATIONS)}"
                                     f" or a deltaprop.Activation, got {a!r}")
                specs.append(resolve(a))
        return specs

    def _engine_loss(self) -> tuple[str | None, float]:
        """(the loss the engine trains in place of the output's own, or None; its Huber
        delta): the regressor's absolute_error and huber."""
        return None, 1.0

    def _blocks(self, sizes: Sequence[int]) -> tuple[list[bool], list[float]]:
        """(residual flags, dropout rates), one per hidden layer of a network of ``sizes``."""
        hidden = len(sizes) - 2
        dropout = self.dropout
        if isinstance(dropout, (list, tuple, np.ndarray)):
            dropout = list(np.asarray(dropout, dtype=np.float64).ravel())
        residual = self.residual
        if isinstance(residual, np.ndarray):
            residual = residual.tolist()
        return residual_flags(residual, sizes), dropout_rates(dropout, hidden)

    def _network(self, dtype: npt.DTypeLike) -> _backend.Network:
        """The engine for the fitted shape, cached per dtype (it is rebuilt after unpickling):
        a float64 predict on a float32 model keeps the float32 engine, whose lock a fit running
        in another thread holds, for the float32 predicts after it."""
        sizes = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
        residual, dropout = self._blocks(sizes)
        loss, huber_delta = self._engine_loss()
        activations = self._hidden_activations(len(sizes) - 2)
        key = (tuple(sizes), tuple(activations), self.out_activation_, np.dtype(dtype).name,
               self.n_threads, tuple(residual), tuple(dropout), bool(self.alpha_dropout), loss,
               huber_delta)
        networks: dict[str, tuple[tuple[Any, ...], _backend.Network]] = (
            self.__dict__.setdefault("_network_cache", {}))
        cached = networks.get(key[3])
        if cached is None or cached[0] != key:
            net = _backend.make_network(sizes, activations, self._output_kind(), dtype,
                                        self.n_threads, residual=residual, dropout=dropout,
                                        alpha_dropout=bool(self.alpha_dropout), loss=loss,
                                        huber_delta=huber_delta)
            if cached is None:  # (threads building at once: all keep the first one stored)
                cached = networks.setdefault(key[3], (key, net))
            else:
                networks[key[3]] = cached = (key, net)
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("_network_cache", None)  # an engine object: rebuilt on demand
        return state

    def _learned(self) -> LearnedParams:
        """activation_params_ ([] on an estimator pickled before the estimators kept it)."""
        learned: LearnedParams = getattr(self, "activation_params_", [])
        if not (isinstance(learned, list) and all(isinstance(d, dict) for d in learned)):
            raise ValueError(f"activation_params_ must be a list of dicts, one per hidden layer, "
                             f"got {learned!r:.200}")
        return learned

    def _parameter_arrays(self) -> list[FloatArray]:
        return self.coefs_ + self.intercepts_ + [p for d in self._learned() for p in d.values()]

    def _params_of_dtype(self, dtype: npt.DTypeLike,
                         ) -> tuple[list[FloatArray], list[FloatArray], LearnedParams]:
        """coefs_, intercepts_ and activation_params_ as C-contiguous arrays of ``dtype`` (the
        engine's input)."""
        cast = [np.ascontiguousarray(p, dtype=dtype) for p in self.coefs_ + self.intercepts_]
        learned = [{name: np.ascontiguousarray(p, dtype=dtype) for name, p in d.items()}
                   for d in self._learned()]
        return cast[:len(self.coefs_)], cast[len(self.coefs_):], learned

    def _parameters_copy(self) -> tuple[list[FloatArray], list[FloatArray], LearnedParams]:
        """Copies of coefs_, intercepts_ and activation_params_."""
        return ([c.copy() for c in self.coefs_], [b.copy() for b in self.intercepts_],
                [{k: p.copy() for k, p in d.items()} for d in self._learned()])

    def _fresh_random_state(self) -> np.random.RandomState:
        """check_random_state(self.random_state), which for an int seed is a new RandomState
        at the seed's first state, every fit and partial_fit call (as in scikit-learn): the one
        this estimator made last time is put back there instead (~35 against ~160 us for a new
        one: a small partial_fit call's largest cost after scikit-learn's input checks)."""
        seed = self.random_state
        if not isinstance(seed, Integral):
            fresh: np.random.RandomState = check_random_state(seed)
            return fresh
        made = getattr(self, "_seeded_random_state", None)
        in_use = made is getattr(self, "_random_state", None)  # the last call used it
        if in_use and isinstance(made, np.random.RandomState):
            made.set_state(_backend.first_random_state(int(seed)))
            return made
        new = np.random.RandomState(int(seed))
        self._seeded_random_state = new
        return new

    def _best_apart(self) -> bool:
        """Whether the best epoch's parameters are arrays apart from the trained ones (and of
        their dtype), which the engine can copy an epoch's parameters to."""
        best = self._best_coefs + self._best_intercepts + [
            a for d in self._best_activation_params for a in d.values()]
        trained = self._parameter_arrays()
        return (len(best) == len(trained) and all(b.dtype == p.dtype for b, p in zip(best, trained))
                and not any(np.may_share_memory(b, p) for b in best for p in trained))

    def _keep_best(self) -> None:
        """These parameters are the best so far (early stopping restores them)."""
        self._best_coefs, self._best_intercepts, self._best_activation_params = (
            self._parameters_copy())

    def _forward_pass_fast(self, X: Any, check_input: bool = True) -> FloatArray:
        if check_input:
            X = self._validate_for_prediction(X)
        # the products' dtype, as scikit-learn's X @ coefs_ promotes it: float64 X through a
        # float32 model is computed (and returned) in float64, not rounded to float32 first
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        if X.dtype != dtype:
            X = X.astype(dtype)
        coefs, intercepts, learned = self._params_of_dtype(dtype)
        return self._network(dtype).forward(coefs, intercepts, X, learned)

    def _validate_for_prediction(self, X: Any) -> Any:
        """validate_data(self, X, reset=False), as scikit-learn's predictions call it. A plain
        2-D float64 or float32 ndarray with rows, the fitted number of columns and finite values
        (its sum finite), for an estimator fitted without feature names, is returned as it is:
        what validate_data returns for it, without its ~50 us of checks (half of a one-row
        predict_proba). Anything else goes through validate_data, for its conversions, errors
        and warnings: with its default dtype='numeric', as there, which refuses strings that
        fit's float dtypes would parse (_forward_pass_fast promotes the rest as X @ coefs_
        does)."""
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _NATIVE_FLOATS
                and X.shape[0] > 0 and X.shape[1] == getattr(self, "n_features_in_", None)
                and not hasattr(self, "feature_names_in_") and np.isfinite(X.sum())):
            return X
        return validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)

    # -- initialisation ----------------------------------------------------------------------
    def _initialize(self, y: FloatArray, layer_units: list[int], dtype: np.dtype[Any]) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = self._regression_output()
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        # scikit-learn's draws (for init="sklearn") from the estimator's RandomState, so the
        # draws that follow (validation split, shuffling) continue the same stream
        rng = (self._random_state if self.init == "sklearn"
               else np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max)))
        residual, dropout = self._blocks(layer_units)
        self.coefs_, self.intercepts_ = init_network(
            layer_units, self.activation, rng, dtype, scheme=self.init, bias_init=self.bias_init,
            residual=None if self.init == "sklearn" else residual)
        # prelu's slopes, a learnable swish's β, acon's p1, p2, β ({} for the rest), as
        # deltaprop.MLP starts them; they train with the weights (without the L2 term)
        hidden = self._hidden_activations(len(layer_units) - 2)
        self.activation_params_ = [_backend.init_activation_params(spec, n, dtype)
                                   for spec, n in zip(hidden, layer_units[1:-1])]
        # Dropout masks come from (seed, epoch): the seed is drawn only when dropout is used, so
        # that the shuffles that follow stay scikit-learn's otherwise.
        self._dropout_seed = (int(self._random_state.randint(np.iinfo(np.int32).max))
                              if any(dropout) else 0)
        self._epochs_trained = 0
        self._keep_best()
        # a new network: an earlier stochastic fit's optimizer is for other parameters (after
        # an L-BFGS fit, scikit-learn's partial_fit continues its momentum; ours starts afresh)
        self.__dict__.pop("_optimizer", None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._start_stopping_rule()

    def _start_stopping_rule(self) -> None:
        """The stochastic solvers' stopping rule as a fit starts it: on the training loss, or
        with early stopping on the held-out rows' score."""
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_loss_curve_ = []
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_loss_curve_ = None
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _continue_stopping_rule(self) -> None:
        """A warm start or partial_fit continues the stopping rule where the last fit left it,
        unless that fit kept another one (set_params switched early_stopping, or the solver from
        lbfgs): then the rule starts afresh, as a fit's, its best epoch the current one, and
        the loss curve continues (scikit-learn 1.9 fails there, on a None or a missing
        attribute)."""
        if self.solver not in _STOCHASTIC_SOLVERS:
            return
        kept = (getattr(self, "best_validation_score_", None) if self.early_stopping
                else getattr(self, "best_loss_", None))
        if kept is None:
            self._start_stopping_rule()
            self._keep_best()
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []

    # -- fit ---------------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False) -> Any:
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        self._hidden_activations(len(hidden_layer_sizes))  # checks them against the layers
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, class_weights = self._validate_input(X, y, incremental, reset=first_pass)
        if not first_pass and X.dtype != self.coefs_[0].dtype:
            # a continued fit keeps its parameters' dtype (scikit-learn's in-place updates do)
            X = X.astype(self.coefs_[0].dtype)
        if sp.issparse(X):
            X = X.tocsr()  # the engine reads CSR rows (once here, not per epoch)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        given_weight = sample_weight  # the caller's, for the callbacks of the whole fit
        if class_weights is not None:  # (the classifier's class_weight: a factor per row)
            sample_weight = (class_weights.astype(X.dtype) if sample_weight is None
                             else sample_weight * class_weights.astype(X.dtype))
        if sample_weight is not None and np.all(sample_weight == 1):
            sample_weight = None  # the same objective, on the engine's unweighted path
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]
        _, dropout = self._blocks(layer_units)  # checks residual and dropout against the sizes
        if any(dropout) and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(f"dropout needs a stochastic solver ('sgd' or 'adam'): "
                             f"solver={self.solver!r} minimises one deterministic objective")
        self._random_state = self._fresh_random_state()
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        else:  # (a refused continuation leaves the fitted attributes as they were)
            self._check_continued(layer_units, incremental)
        y = np.ascontiguousarray(y, dtype=X.dtype)
        hooks = EpochHooks(self, X, y, sample_weight, incremental, given_weight)
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, incremental, hooks)
            else:
                self.n_iter_ = 0
                _lbfgs.fit_lbfgs(self, X, y, sample_weight, hooks)
        finally:
            hooks.fit_end()
        if not all(np.isfinite(w).all() for w in self._parameter_arrays()):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        if self.record_health and len(getattr(self, "health_", {}).get("grad_norm", ())):
            hidden = self._hidden_activations(len(self.coefs_) - 1)
            for problem in check_health(self.health_, hidden):  # as deltaprop.MLP.fit warns
                warnings.warn(problem, HealthWarning, stacklevel=3)
        return self

    def _check_continued(self, layer_units: list[int], incremental: bool) -> None:
        """A warm start or partial_fit continues the fitted network: the parameters must still
        be the ones asked for (scikit-learn 1.9 silently keeps training the old hidden layers
        after set_params(hidden_layer_sizes=...), or fails inside NumPy)."""
        fitted = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
        names = [spec.param_names for spec in self._hidden_activations(len(layer_units) - 2)]
        # (an estimator pickled before activation_params_ existed has none: nothing learned)
        learned = [tuple(d) for d in self._learned()] or [()] * len(names)
        output = self.out_activation_ if is_classifier(self) else self._regression_output()
        if fitted != layer_units:
            what = f"layer sizes are {fitted}; the parameters now ask for {layer_units}"
        elif [set(n) for n in names] != [set(k) for k in learned]:
            what = (f"activations learn {[list(k) for k in learned]}; the parameters now ask "
                    f"for {[list(n) for n in names]}")
        elif output != self.out_activation_:  # (scikit-learn keeps the old output function)
            what = (f"output is {self.out_activation_!r}; loss={self.loss!r} asks for "
                    f"{output!r}")
        else:
            self.n_outputs_ = layer_units[-1]
            return
        how = "partial_fit" if incremental else "warm_start=True"
        raise ValueError(f"{how} continues the fitted network, but its {what}. Start a new "
                         f"network with fit() and warm_start=False, or a fresh estimator")

    def _new_optimizer(self, net: _backend.Network,
                       settings: Mapping[str, Any] | None = None) -> SGDOptimizer | AdamOptimizer:
        """A fresh optimizer for the fitted parameters, made from this estimator's parameters
        or ``settings`` (a saved optimizer's made_from)."""
        params = net.params(self.coefs_, self.intercepts_, self._learned())
        return new_optimizer(params, self.get_params(deep=False) if settings is None else settings)

    def _validation_split(self, X: Any, y: FloatArray,
                          sample_weight: npt.NDArray[np.float64] | None) -> tuple[Any, ...]:
        # scikit-learn stratifies a one-output classifier's encoded y, a column of 0 and 1,
        # which its splitter turns into one string per row (~4 us a row); as a vector it makes
        # the same classes in the same order, so the same split
        stratify = y.ravel() if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X_train, X_val, y_train, y_val = parts[:4]
        sw_train, sw_val = parts[4:] if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        if sw_val is not None and not sw_val.sum() > 0:
            # (scikit-learn fails in its scorer, after the first epoch, dividing by zero)
            raise ValueError("The validation rows' sample weights sum to zero, so they cannot "
                             "be scored: give more rows weight, or change 'random_state' or "
                             "'validation_fraction'.")
        return X_train, X_val, y_train, y_val, sw_train, sw_val

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than "
                          "sample size. It is going to be clipped", stacklevel=3)
        return int(np.clip(self.batch_size, 1, n_samples))

    def _health_record(self, incremental: bool) -> npt.NDArray[np.float64] | None:
        """The engine's (rows x layers) health array for one epoch, or None; starts health_
        (continued by partial_fit). Without record_health it removes health_: a record of
        earlier calls would describe other weights."""
        if not self.record_health:
            self.__dict__.pop("health_", None)
            return None
        layers = len(self.coefs_)
        if not (incremental and hasattr(self, "health_")):
            self.health_ = {name: np.empty((0, layers)) for name in _backend.HEALTH_ROWS}
        return np.empty((len(_backend.HEALTH_ROWS), layers))

    def _append_health(self, epochs: npt.NDArray[np.float64]) -> None:
        """Adds the epochs' gradient health, (epochs x HEALTH_ROWS x layers), to health_."""
        for row, name in enumerate(_backend.HEALTH_ROWS):
            self.health_[name] = np.vstack([self.health_[name], epochs[:, row]])

    def _fit_stochastic(self, X: Any, y: FloatArray,
                        sample_weight: npt.NDArray[np.float64] | None, incremental: bool,
                        hooks: EpochHooks) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        self._continue_stopping_rule()  # (after the refusal: it may start the rule afresh)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer(self._network(X.dtype))
        early_stopping = self.early_stopping
        if early_stopping:
            X, X_val, y, y_val, sample_weight, sw_val = self._validation_split(
                X, y, sample_weight)
            validation = (X_val, y_val, sw_val)
        else:
            validation = None
        n_samples = X.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        batch_size = self._batch_size(n_samples)
        net = self._network(X.dtype)
        clip_norm = 0.0 if self.clip_norm is None else float(self.clip_norm)
        health = self._health_record(incremental)
        # With nothing to run between epochs, many run in one engine call, to the same result
        # (early stopping's held-out rows scored there too, its best epoch kept in arrays of
        # its own: not those a finished early-stopping fit restored, which a warm start trains).
        in_engine = (not incremental and hooks.between_chunks
                     and (self._best_apart() if early_stopping else self.best_loss_ is not None))
        try:
            self.n_iter_ = 0
            if in_engine:
                self._fit_epochs_in_engine(net, X, y, sample_weight, sample_idx, batch_size,
                                           clip_norm, validation, hooks, health is not None)
            for _ in range(0 if in_engine else self.max_iter):
                if self.shuffle:
                    sample_idx = _backend.shuffle(sample_idx, self._random_state)
                settings = self._epoch_settings(batch_size, clip_norm)
                hooks.epoch_begin()
                self.loss_ = np.float64(net.train_epoch(self.coefs_, self.intercepts_,
                                             self._optimizer.state, X, y, sample_weight,
                                             sample_idx if self.shuffle else None, settings,
                                             health=health, learned=self._learned()))
                if health is not None:
                    self._append_health(health[None])
                self.n_iter_ += 1
                self.t_ += n_samples
                self._epochs_trained = settings.epoch + 1
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if not all(np.isfinite(w).all() for w in self._parameter_arrays()):
                    break  # diverged: the guard in _fit reports it
                self._update_no_improvement_count(validation, net)
                self._optimizer.iteration_ends(self.t_)
                stop = hooks.epoch_end()
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._optimizer.trigger_stopping(self._plateau_message(early_stopping),
                                                        self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental or stop:
                    break
                if self.n_iter_ == self.max_iter:
                    self._warn_max_iter()
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early_stopping:
            diverged = not all(np.isfinite(w).all() for w in self._parameter_arrays()) or (
                bool(self.loss_curve_) and not np.isfinite(self.loss_curve_[-1]))
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts
            self.activation_params_ = self._best_activation_params
            if diverged:  # (the guard in _fit finds the restored weights finite)
                del self._optimizer  # its moments are NaN: training on starts a fresh one
                warnings.warn(f"Training diverged: after {self.n_iter_} iterations the loss "
                              f"or the weights were NaN or infinite; the estimator keeps the "
                              f"weights of its best validation score. Lower learning_rate_init "
                              f"or scale the data.", ConvergenceWarning, stacklevel=4)

    def _fit_epochs_in_engine(self, net: _backend.Network, X: Any, y: FloatArray,
                              sample_weight: npt.NDArray[np.float64] | None,
                              sample_idx: npt.NDArray[np.intp], batch_size: int,
                              clip_norm: float, validation: tuple[Any, Any, Any] | None,
                              hooks: EpochHooks, record_health: bool) -> None:
        """The per-epoch loop of _fit_stochastic, for a fit with no callback between epochs,
        its epochs run by the engine: the same shuffles (drawn by the engine as each epoch
        starts, or for other generators than MT19937 ahead of chunks of epochs, from the same
        random state, left as the loop would leave it), learning rates and stopping rule (on
        ``validation``'s held-out rows with early stopping), verbose lines, progress bar and
        health record (``record_health``), so the same result, without Python's cost per
        epoch."""
        shuffles = _backend.EpochShuffles(sample_idx, self._random_state) if self.shuffle else None
        try:
            self._run_epoch_chunks(net, X, y, sample_weight, shuffles, batch_size, clip_norm,
                                   validation, hooks, record_health)
        finally:
            if shuffles is not None:
                shuffles.close()

    def _run_epoch_chunks(self, net: _backend.Network, X: Any, y: FloatArray,
                          sample_weight: npt.NDArray[np.float64] | None,
                          shuffles: _backend.EpochShuffles | None, batch_size: int,
                          clip_norm: float, validation: tuple[Any, Any, Any] | None,
                          hooks: EpochHooks, record_health: bool) -> None:
        n_samples = X.shape[0]
        held_out = None if validation is None else _backend.HeldOut(
            *validation, best=(self._best_coefs, self._best_intercepts,
                               self._best_activation_params), one_class=self._one_class())
        # MT19937's shuffles (every RandomState scikit-learn makes) are drawn by the engine as
        # each epoch starts, so one call runs every epoch; other generators' orders are drawn
        # here ahead of a chunk of epochs, the chunks doubling: few calls for long fits,
        # little drawn ahead for short ones.
        # With verbose output or a progress bar, the chunks start at one epoch and double while
        # a call takes under VERBOSE_LAG / 2 (halving past VERBOSE_LAG), each chunk's lines
        # printed, and the bar moved, after it.
        in_engine = shuffles is None or shuffles.in_engine
        live = bool(self.verbose) or not hooks.idle
        chunk, live_chunk = 8, 1
        while self.n_iter_ < self.max_iter:
            remaining = self.max_iter - self.n_iter_
            epochs = (min(remaining, EPOCHS_PER_CALL) if in_engine
                      else min(chunk, remaining, max(1, ORDER_ENTRIES // n_samples)))
            chunk *= 2
            if live:
                epochs = min(epochs, live_chunk)
            started = time.perf_counter()
            settings = self._epoch_settings(batch_size, clip_norm)
            lrs = self._optimizer.learning_rates(epochs, n_samples, self.t_)
            best = self.best_loss_ if held_out is None else self.best_validation_score_
            assert best is not None  # (best_loss_ is None with early stopping, the other without)
            plateau = (float(self.tol), float(self.n_iter_no_change), best,
                       self._no_improvement_count)
            args = (self.coefs_, self.intercepts_, self._optimizer.state, X, y, sample_weight)
            health = (np.empty((epochs, len(_backend.HEALTH_ROWS), len(self.coefs_)))
                      if record_health else None)
            if shuffles is not None and in_engine:
                with shuffles.engine_state() as state:
                    losses, stop, best, self._no_improvement_count, error = (
                        net.train_epochs(*args, None, lrs, settings, plateau, shuffle_state=state,
                                         learned=self._learned(), held_out=held_out,
                                         health=health))
            else:
                orders = None if shuffles is None else shuffles.draw(epochs)
                losses, stop, best, self._no_improvement_count, error = (
                    net.train_epochs(*args, orders, lrs, settings, plateau,
                                     learned=self._learned(), held_out=held_out, health=health))
            if held_out is None:
                self.best_loss_ = best
            else:
                assert held_out.losses is not None and held_out.scores is not None
                assert self.validation_scores_ is not None
                assert self.validation_loss_curve_ is not None
                self.best_validation_score_ = best
                self.validation_scores_.extend(held_out.scores.tolist())
                self.validation_loss_curve_.extend(held_out.losses.tolist())
            done = len(losses)
            if health is not None:  # (every epoch run, one that diverged too, as the loop does)
                self._append_health(health[:done])
            drawn = done + (error is not None)  # the loop shuffles before an epoch it stops in
            if shuffles is not None and not in_engine and drawn < epochs:
                shuffles.keep(drawn)
            self.n_iter_ += done
            self.t_ += done * n_samples
            self._epochs_trained = settings.epoch + done
            self.loss_curve_.extend(losses)
            if done:
                self.loss_ = losses[-1]
            if live:
                took = time.perf_counter() - started
                if took < VERBOSE_LAG / 2:
                    live_chunk *= 2
                elif took > VERBOSE_LAG:
                    live_chunk = max(1, live_chunk // 2)
            if self.verbose:
                self._print_epochs(losses, None if held_out is None else held_out.scores)
            # the loop moves the schedule, and the bar, after each epoch but one that diverged
            ended = done - (stop == "diverged")
            hooks.epochs_done(ended)
            if ended:
                self._optimizer.iteration_ends(self.t_ - (done - ended) * n_samples)
            if error is not None:
                raise error
            if stop == "diverged":
                return  # the guard in _fit reports it
            if stop == "plateau":
                if self._optimizer.trigger_stopping(self._plateau_message(held_out is not None),
                                                    self.verbose):
                    return
                self._no_improvement_count = 0
            if self.n_iter_ == self.max_iter:
                self._warn_max_iter()

    def _print_epochs(self, losses: npt.NDArray[np.float64],
                      scores: npt.NDArray[np.float64] | None) -> None:
        """scikit-learn's verbose lines for the last len(losses) epochs, as the per-epoch loop
        prints them (no validation score for an epoch that diverged: it has none)."""
        first = self.n_iter_ - len(losses)
        for i, loss in enumerate(losses):
            print(f"Iteration {first + i + 1}, loss = {loss:.8f}")
            if scores is not None and i < len(scores):
                print(f"Validation score: {scores[i]:f}")

    def _epoch_settings(self, batch_size: int, clip_norm: float) -> _backend.EpochSettings:
        """The optimizer's settings for the next epoch(s), with the dropout masks' seed and
        epoch (counted across warm starts and partial_fit)."""
        settings = self._optimizer.settings(batch_size, self.alpha, clip_norm)
        settings.seed = getattr(self, "_dropout_seed", 0)
        settings.epoch = getattr(self, "_epochs_trained", 0)
        return settings

    def _plateau_message(self, early_stopping: bool) -> str:
        what = "Validation score" if early_stopping else "Training loss"
        return (f"{what} did not improve more than tol={self.tol:f} "
                f"for {self.n_iter_no_change} consecutive epochs.")

    def _one_class(self) -> bool:
        """A classifier fitted to a single class, which predicts it whatever its output."""
        return len(getattr(self, "classes_", ())) == 1

    def _warn_max_iter(self) -> None:
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                      f"the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)

    def _update_no_improvement_count(self, validation: tuple[Any, Any, Any] | None,
                                     net: _backend.Network) -> None:
        """scikit-learn's stopping rule after an epoch; ``validation``, with early stopping:
        the held-out rows, their encoded targets and their weights."""
        if validation is not None:
            X_val, y_val, sw_val = validation
            coefs, intercepts, learned = self._params_of_dtype(self.coefs_[0].dtype)
            # the data term of the objective (without the L2 penalty) on the held-out rows, and
            # their score, from one forward pass
            val_loss, outputs = net.evaluate(coefs, intercepts, X_val, y_val, sw_val, learned)
            assert self.validation_loss_curve_ is not None and self.validation_scores_ is not None
            assert self.best_validation_score_ is not None  # all three set with early stopping
            self.validation_loss_curve_.append(val_loss)
            val_score = net.score(outputs, y_val, sw_val, self._one_class())
            self.validation_scores_.append(val_score)
            if self.verbose:
                print(f"Validation score: {self.validation_scores_[-1]:f}")
            if val_score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                self._keep_best()
        else:
            assert self.best_loss_ is not None  # None only with early stopping
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _decode_targets(self, y: Any) -> Any:
        """Targets as the user gave them (class labels for the classifier), from the
        network's encoding: what scikit-learn's callbacks score against."""
        return y

    # scikit-learn's: the parameters validated (unless skip_parameter_validation), the
    # scikit-learn functions fit calls not validating theirs again, and (1.9) the callbacks'
    # context
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model to data matrix X and target(s) y (dense or CSR/CSC sparse X;
        ``sample_weight`` of shape (n_samples,)). Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
