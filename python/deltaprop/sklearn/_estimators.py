"""MLPClassifier and MLPRegressor: scikit-learn 1.9's estimators of the same names, trained by
deltaprop's engine. Changing the import is the whole migration: the constructor's parameters,
their order, defaults and positional/keyword split, the fitted attributes and the training rules
are scikit-learn's; deltaprop's own options follow them as keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._typing import FloatArray
from ..activations import Activation
from ._base import BaseMLP
from ._labels import class_indices, class_row_weights, decode, encode, fit_binarizer
from ._persist import PersistMixin
from ._plot import PlotMixin

_COMMON_DOC = """
    Parameters
    ----------
    The parameters of scikit-learn's estimator, with the same meaning and defaults
    (https://scikit-learn.org/stable/modules/generated/sklearn.neural_network.{name}.html),
    with these differences:

    activation : str, deltaprop.Activation, or a list of them, default='relu'
        scikit-learn's 'identity', 'logistic', 'tanh', 'relu', and deltaprop's 'leaky_relu',
        'elu', 'selu', 'softplus', 'swish', 'silu', 'mish', 'abs', 'necro_relu', 'sigmoid',
        'prelu', 'acon', or an ``Activation`` with parameters
        (``Activation("leaky_relu", alpha=0.2)``, ``Activation("swish", learnable=True)``); a
        list gives one per hidden layer (``activation=["relu", "tanh"]``). The parameters that
        prelu, acon and a learnable swish learn (slopes; p1, p2, β; β) train with the weights,
        by every solver, without the L2 term, and are kept in ``activation_params_``, one dict
        per hidden layer ({{}} for the rest), as deltaprop.MLP keeps them.

    deltaprop's own (keyword-only, after scikit-learn's):

    n_threads : int or None, default=None
        OpenMP threads of the engine (None: OMP_NUM_THREADS, else all cores). A small
        network's batch (largest product under ~4M multiply-adds, at least 64 rows) runs as two
        halves, one per thread; a larger one splits each product. Results are bitwise
        identical for any thread count.
    clip_norm : float or None, default=None
        Clip the gradients of each step to this global norm (stochastic solvers).
    dropout : float or list of float, default=0.0
        The fraction of each hidden layer's units dropped in training, one rate for all hidden
        layers or one per layer (stochastic solvers; L-BFGS needs one deterministic objective).
        Kept units are scaled by 1/(1 - rate), so prediction uses the network as it is. Masks
        are drawn from a seed taken from ``random_state`` and the epoch, so a fit with an int
        ``random_state`` is reproducible, on any thread count.
    alpha_dropout : bool, default=False
        AlphaDropout instead of dropout (SELU's partner: with activation='selu' and
        init='lecun_normal' it keeps activations at mean 0 and variance 1).
    residual : bool or list of bool, default=False
        Residual blocks: hidden layer l computes A_l = A_(l-1) + f(A_(l-1) W_l + b_l), so the
        gradient reaches lower layers through the identity whatever f' does. True makes every
        hidden layer as wide as its input a block; a list chooses per hidden layer. With an
        init other than 'sklearn', the blocks' weights start scaled down by their number.
    init : str, default='sklearn'
        The initial weights: 'sklearn' (scikit-learn's exact draws for ``random_state``),
        'he_uniform', 'he_normal', 'lecun_normal', 'glorot_uniform', 'glorot_normal'.
    bias_init : float, list of float or None, default=None
        The initial biases: None (the scheme's: scikit-learn's draws, zeros for the others),
        one constant for every layer, or a list with one per layer (None: the scheme's). A
        small positive value such as 0.01 starts every ReLU unit alive (the seeds' remedy for
        dying ReLU); with 'sklearn' the bias draws still happen, so the weights stay
        scikit-learn's.
    callback : callable or None, default=None
        ``callback(estimator)`` after each epoch (each iteration of lbfgs, with coefs_,
        n_iter_ and loss_ as of that iteration); returning True stops training.
    progress : bool, default=False
        Show a tqdm progress bar over the epochs or L-BFGS iterations (needs tqdm).
    record_health : bool, default=False
        Record the gradient health (dense X) into ``health_``: per layer, grad_norm,
        delta_norm, update_ratio, zero_fraction, dead_fraction and saturated_fraction, arrays
        of epochs x layers (deltaprop.diagnostics), gathered inside the engine's loop by the
        stochastic solvers; lbfgs records one pass over all rows after each of its iterations
        (its update_ratio for a plain step of learning_rate_init);
        a fit whose last epoch shows a vanished or broken gradient, or a layer of dead or
        saturated units, warns (deltaprop.diagnostics.HealthWarning) with what to change.

    scikit-learn 1.9's callbacks (``est.set_callbacks(ScoringMonitor(...))``) see the fit as a
    task and each epoch as a subtask; an epoch's ``on_fit_task_end`` returning True stops it.
    ``save(path)`` / ``load(path)`` keep a fitted estimator without pickle, in MLP.save's format,
    with what training on needs (the optimizer's state, the stopping rule's; see ``load``).

    Beyond scikit-learn's attributes: ``activation_params_``, the learned activations'
    parameters (one dict per hidden layer, {{}} where nothing learns); ``health_`` with
    ``record_health=True``; and with the stochastic solvers and ``early_stopping=True``,
    ``validation_loss_curve_``: the validation set's loss per epoch (the data term, without the
    L2 penalty; None with a stochastic solver without it; absent with lbfgs, as
    ``validation_scores_`` is).
"""


class MLPClassifier(ClassifierMixin, PersistMixin, PlotMixin, BaseMLP):  # type: ignore[misc]
    # (ignore: scikit-learn ships no type information, so its mixins are Any to mypy)
    __doc__ = ("Multi-layer perceptron classifier, a drop-in for "
               "sklearn.neural_network.MLPClassifier.\n" + _COMMON_DOC.format(name="MLPClassifier")
               + """
    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes (what scikit-learn #9113 asked for), as scikit-learn's other
        classifiers take them: {class: weight} (classes left out weigh 1), 'balanced'
        (n_samples / (n_classes * the class's count)), or for multilabel y one dict per label
        column, keyed 0 and 1. Each row's weight is its class's times its ``sample_weight``,
        in the loss, the gradients and, with early stopping, the validation score. In
        partial_fit, 'balanced' weighs the classes of the rows of that call (so one call over
        the whole data is one epoch of fit's weighting).
""")

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str | Activation | Sequence[str | Activation] = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: float = 10, max_fun: int = 15000,
                 class_weight: dict[Any, float] | list[dict[Any, float]] | str | None = None,
                 n_threads: int | None = None, clip_norm: float | None = None,
                 dropout: float | Sequence[float] = 0.0, alpha_dropout: bool = False,
                 residual: bool | Sequence[bool] = False, init: str = "sklearn",
                 bias_init: float | Sequence[float | None] | None = None,
                 callback: Callable[[Any], object] | None = None, progress: bool = False,
                 record_health: bool = False) -> None:
        self._store_parameters(locals())

    _parameter_constraints: dict[str, list[Any]] = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    loss = "log_loss"  # scikit-learn's classifier has no loss parameter, only this value

    def _validate_input(self, X: Any, y: Any, incremental: bool,
                        reset: bool) -> tuple[Any, FloatArray, npt.NDArray[np.float64] | None]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = fit_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        elif self.warm_start:
            classes = unique_labels(y)
            if set(classes) != set(self.classes_):
                raise ValueError(
                    f"warm_start can only be used where `y` has the same classes as in "
                    f"the previous call to fit. Previously got {self.classes_}, `y` has "
                    f"{classes}")
        elif class_indices(self._label_binarizer, y) is None:  # (else: every label is known)
            classes = unique_labels(y)
            if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        weights = class_row_weights(self.class_weight, self._label_binarizer, y)
        return X, encode(self._label_binarizer, y, X.dtype), weights

    def _decode_targets(self, y: Any) -> Any:
        return decode(self._label_binarizer, y)

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Class labels for the rows of X."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> npt.NDArray[Any]:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return decode(self._label_binarizer, y_pred)

    # (ignore: scikit-learn's available_if is untyped)
    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (every class y may hold) on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self

    def predict_log_proba(self, X: Any) -> FloatArray:
        """Log of :meth:`predict_proba`."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: Any) -> FloatArray:
        """Class probabilities, shape (n_samples, n_classes): float32 for float32 X through float32
        weights, else float64 (as scikit-learn promotes X @ coefs_)."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, PersistMixin, PlotMixin, BaseMLP):  # type: ignore[misc]
    # (ignore: scikit-learn ships no type information, so its mixins are Any to mypy)
    __doc__ = ("Multi-layer perceptron regressor, a drop-in for "
               "sklearn.neural_network.MLPRegressor.\n" + _COMMON_DOC.format(name="MLPRegressor")
               + """
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, default='squared_error'
        scikit-learn's two, and deltaprop's robust losses (what scikit-learn #14571 asked
        for): 'absolute_error', |y - ŷ|, and 'huber', ½(y - ŷ)² where |y - ŷ| ≤ huber_delta,
        else huber_delta·(|y - ŷ| - huber_delta/2). scikit-learn's squared error averages its
        value (not its gradient) over the outputs; these two sum over the outputs, value and
        gradient alike, so ``loss_`` and ``loss_curve_`` of one output are the mean absolute
        error (or Huber loss) of the rows, plus the L2 term.
    huber_delta : float, default=1.0
        Where the Huber loss turns from squared to absolute (loss='huber' only).

    Unlike scikit-learn 1.9, ``partial_fit`` does not exist for ``solver='lbfgs'`` (there a
    missing call parenthesis makes it run a full L-BFGS fit); as for the classifier, it is
    available for the stochastic solvers only.
""")

    _parameter_constraints: dict[str, list[Any]] = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, loss: str = "squared_error",
                 hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str | Activation | Sequence[str | Activation] = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: float = 10, max_fun: int = 15000,
                 huber_delta: float = 1.0, n_threads: int | None = None,
                 clip_norm: float | None = None,
                 dropout: float | Sequence[float] = 0.0, alpha_dropout: bool = False,
                 residual: bool | Sequence[bool] = False, init: str = "sklearn",
                 bias_init: float | Sequence[float | None] | None = None,
                 callback: Callable[[Any], object] | None = None, progress: bool = False,
                 record_health: bool = False) -> None:
        self._store_parameters(locals())

    def _engine_loss(self) -> tuple[str | None, float]:
        if self.loss in ("absolute_error", "huber"):
            return self.loss, float(self.huber_delta)
        return None, 1.0  # squared_error, and poisson: the identity and exp outputs' own

    def _validate_input(self, X: Any, y: Any, incremental: bool,
                        reset: bool) -> tuple[Any, FloatArray, None]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "the poisson loss.")
        return X, y, None

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Predicted values: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> npt.NDArray[Any]:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    # (ignore: scikit-learn's available_if is untyped)
    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y)."""
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self
