"""The model: ``deltaprop.MLP``, a multilayer perceptron whose parameters are NumPy arrays it
owns and whose loops run in the C++ engine (or, with ``backend="numpy"``, the reference)."""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from . import _core, reference
from ._typing import ActivationParams, ActivationsArg, FloatArray, PathArg, Rows
from .activations import Activation, resolve_with_grad_at_zero
from .init import init_network
from .reference.health import HEALTH_ROWS
from .schedules import Schedule
from .validation import (
    check_dtype,
    check_int,
    check_matrix,
    check_name,
    check_real,
    check_sample_weight,
    check_targets,
    dropout_rates,
    per_layer,
    residual_flags,
    rows_of,
)

BACKENDS = ("cpp", "numpy")
MAX_LAYER_SIZE = 2**40  # the engine's limit on one size (it also counts the parameters)
MAX_THREADS = 1024      # the engine's limit (it never runs more threads than processors)
# Larger parameter sets cannot be allocated anywhere; saying so beats NumPy's "array is too big".
MAX_PARAMETER_BYTES = 2**48


def _check_loss(loss: str, output: str) -> str:
    """A loss of the output's (reference.LOSSES), the message naming the output it needs."""
    if isinstance(loss, str) and loss not in reference.LOSSES[output]:
        others = [o for o, losses in reference.LOSSES.items() if loss in losses]
        if others:
            raise ValueError(f"loss {loss!r} goes with output {others[0]!r}; output {output!r} "
                             f"takes {', '.join(map(repr, reference.LOSSES[output]))}")
    return check_name(loss, "loss", reference.LOSSES[output])


def _is_default(value: object, default: object) -> bool:
    """A constructor option at its default (a NumPy scalar equal to it included)."""
    return value is default or (isinstance(value, (numbers.Real, str)) and value == default)


def _improved(history: History) -> bool:
    """Whether the last epoch's validation loss is the lowest so far (patience's rule; a NaN
    loss never is)."""
    last = history.val_loss[-1]
    if history.best_epoch is None:
        return not np.isnan(last)
    return last < history.val_loss[history.best_epoch - 1]


@dataclass
class History:
    """What ``fit`` returns: per epoch, the mean training loss and the seconds it took; with
    ``validation_data``, the held-out loss and score; with ``patience``, ``best_epoch``,
    counted from 1 (its loss is ``val_loss[best_epoch - 1]``)."""

    loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # the learning rate each epoch ran at
    # with validation_data: the held-out rows' mean loss and score after each epoch
    val_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    # with patience: the epoch (1-based) whose weights the model ends with
    best_epoch: int | None = None
    # with record_health: the model's health_ for this fit
    health: dict[str, npt.NDArray[np.float64]] | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:  # a summary: the lists run to an entry per epoch
        if not self.loss:
            return "History(epochs=0)"
        held_out = (f", val_loss {self.val_loss[0]:.6g} → {self.val_loss[-1]:.6g}"
                    if self.val_loss else "")
        best = f", best epoch {self.best_epoch}" if self.best_epoch is not None else ""
        health = ", health recorded" if self.health is not None else ""
        return (f"History(epochs={self.epochs}, loss {self.loss[0]:.6g} → {self.loss[-1]:.6g}"
                f"{held_out}{best}, {sum(self.seconds):.3g} s{health})")


class MLP:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, inputs first and outputs last: ``[64, 128, 64, 10]`` is two hidden
        layers between 64 features and 10 outputs.
    activation : str, deltaprop.Activation, or a list of them
        The hidden layers' activation: "relu", "leaky_relu", "elu", "selu", "softplus", "swish",
        "silu", "mish", "abs", "necro_relu", "sigmoid" (alias "logistic"), "tanh", "identity", or
        an ``Activation("leaky_relu", alpha=0.2)`` with its parameters; a list gives one per
        hidden layer. Activations with learned parameters (prelu, acon, ``Activation("swish",
        learnable=True)``) keep them in ``activation_params_``, trained with the weights.
    output : {"softmax", "sigmoid", "identity", "exp"}
        The output function and its loss: softmax + cross-entropy, sigmoid + binary
        cross-entropy, identity + ½ squared error, exp + Poisson (counts and rates: the half
        Poisson deviance, 0 for an exact prediction).
    loss : str or None
        The loss, where an output has more than one (deltaprop.reference.LOSSES): identity
        takes "squared_error" (the default), "absolute_error" or "huber" (with
        ``huber_delta``, the residual where it turns from squared to absolute).
    residual : bool or list of bool
        Residual blocks (the cure for depth): hidden layer l computes
        ``A_l = A_{l-1} + f(A_{l-1} W_l + b_l)``, so the gradient reaches the layers below
        through the identity path whatever f' does. True makes every hidden layer whose input
        is as wide as its output a residual block; a list chooses per hidden layer (and each
        chosen layer must be square).
    dropout : float or list of float
        The fraction of each hidden layer's units dropped in training (0: none), one rate for
        all hidden layers or one per layer. Kept units are scaled by 1/(1 − rate), so
        prediction uses the network as it is. In a residual block only the branch f(Z) is
        dropped, never the identity path. Masks are drawn from (seed, epoch, batch, layer):
        a run is reproducible and independent of the thread count.
    alpha_dropout : bool
        AlphaDropout instead (Klambauer et al. 2017, SELU's partner): dropped units take SELU's
        saturation value and an affine map keeps mean 0 and variance 1.
    dtype : {"float64", "float32"}
        float64 is the validation dtype, float32 the fast one.
    seed : int
        Seeds the initial weights and the shuffling of every epoch.
    backend : {"cpp", "numpy"}
        The C++/OpenMP engine, or the NumPy reference.
    n_threads : int or None
        OpenMP threads; None uses OpenMP's default (OMP_NUM_THREADS, or all cores).
    grad_at_zero : float
        ReLU'(0), a convention: 0 (the default, as PyTorch and scikit-learn), 0.5 or 1.
    init : str or None
        The initial weights' scheme (deltaprop.init.INIT_SCHEMES): he_uniform, he_normal,
        lecun_normal, glorot_uniform, glorot_normal, or "sklearn" (scikit-learn's exact draws
        for ``random_state=seed``). None: He for the ReLU family, LeCun normal for SELU, Glorot
        otherwise; the output layer Glorot.
    bias_init : float or None
        A constant for every bias (a small positive one keeps ReLU units alive at the
        start); None: zeros (with "sklearn", its uniform draws).
    """

    def __init__(self, layer_sizes: Sequence[int], activation: ActivationsArg = "relu",
                 output: str = "softmax", *, loss: str | None = None, huber_delta: float = 1.0,
                 residual: bool | list[bool] | tuple[bool, ...] = False,
                 dropout: float | Sequence[float] = 0.0, alpha_dropout: bool = False,
                 dtype: npt.DTypeLike = "float64", seed: int = 0, backend: str = "cpp",
                 n_threads: int | None = None, grad_at_zero: float = 0.0,
                 init: str | None | Sequence[str | None] = None,
                 bias_init: float | None | Sequence[float | None] = None) -> None:
        # a sequence of entries, each checked below (np.ndim would trip over a ragged list)
        sizes = (list(layer_sizes) if isinstance(layer_sizes, (list, tuple, np.ndarray))
                 and np.asarray(layer_sizes, dtype=object).ndim >= 1 else None)
        if not sizes or len(sizes) < 2:
            raise ValueError(f"layer_sizes must list at least 2 sizes (inputs, outputs), "
                             f"got {layer_sizes!r}")
        self.layer_sizes = [check_int(s, f"layer_sizes[{i}]", 1, MAX_LAYER_SIZE)
                            for i, s in enumerate(sizes)]
        self.activation = activation
        self.output = check_name(output, "output", reference.OUTPUTS)
        if self.output == "softmax" and self.layer_sizes[-1] == 1:
            raise ValueError("a softmax output of 1 unit is the constant 1, with nothing to "
                             "learn: use output='sigmoid' for one yes/no output, or a softmax "
                             "of 2 units for two classes")
        self.loss = None if loss is None else _check_loss(loss, self.output)
        self.huber_delta = check_real(huber_delta, "huber_delta", np.finfo(np.float64).tiny)
        self.dtype = check_dtype(dtype)
        self.seed = check_int(seed, "seed", 0, 2**64 - 1)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.grad_at_zero = check_real(grad_at_zero, "grad_at_zero", 0.0, 1.0)
        n_hidden = len(self.layer_sizes) - 2
        # activation and grad_at_zero as one spec per hidden layer, which both engines receive
        one = not isinstance(activation, (list, tuple))
        # resolved (so checked) even when there is no hidden layer to use it
        specs = [resolve_with_grad_at_zero(a, self.grad_at_zero)
                 for a in (activation if isinstance(activation, (list, tuple)) else [activation])]
        self._specs: list[Activation] = per_layer(specs[0] if one else specs, n_hidden,
                                                  "activation")
        self.residual = residual
        self._residual = residual_flags(residual, self.layer_sizes)
        self.dropout = dropout
        self._dropout = dropout_rates(dropout, n_hidden)
        if not isinstance(alpha_dropout, (bool, np.bool_)):
            raise TypeError(f"alpha_dropout must be a bool, got {type(alpha_dropout).__name__}")
        self.alpha_dropout = bool(alpha_dropout)
        self._n_threads = (0 if n_threads is None
                           else check_int(n_threads, "n_threads", 1, MAX_THREADS))
        sizes = self.layer_sizes
        n_bytes = sum((i + 1) * o for i, o in zip(sizes, sizes[1:])) * self.dtype.itemsize
        if n_bytes > MAX_PARAMETER_BYTES:
            raise MemoryError(f"layer_sizes {sizes} need {n_bytes:.3g} bytes of parameters")
        self._engine = self._make_engine()
        self.init, self.bias_init = init, bias_init
        # "sklearn" draws from RandomState(seed), as its random_state; the others from a Generator
        rng = self.seed if init == "sklearn" else np.random.default_rng(self.seed)
        self.coefs_, self.intercepts_ = init_network(
            self.layer_sizes, self._specs, rng, self.dtype, scheme=init, bias_init=bias_init,
            residual=None if init == "sklearn" else self._residual)
        # prelu's slopes, swish's β, acon's p1, p2, β: one dict per hidden layer ({} for the rest)
        self.activation_params_ = [reference.init_activation_params(f, n, self.dtype)
                                   for f, n in zip(self._specs, self.layer_sizes[1:])]
        self.epochs_trained_ = 0  # counts epochs across fit calls: epoch e shuffles with (seed, e)

    # -- engine -------------------------------------------------------------------------
    def _make_engine(self) -> _core._Engine[Any] | reference.Engine:
        if self.backend == "numpy":
            engine_type = reference.Engine
        else:
            engine_type = getattr(_core, f"Engine_{self.dtype.name}")
        return engine_type(self.layer_sizes, self._specs, self.output, self.loss,
                           residual=self._residual, huber_delta=self.huber_delta,
                           dropout=self._dropout, alpha_dropout=self.alpha_dropout,
                           n_threads=self._n_threads)

    def _params(self) -> list[FloatArray]:
        """The engine's flat parameter list: per layer W_l, b_l (the arrays themselves)."""
        return [array for _, array in self._named_params()]

    def _named_params(self) -> list[tuple[str, FloatArray]]:
        """_params with each array's attribute name, e.g. ("coefs_[0]", W_0)."""
        L = len(self.layer_sizes) - 1
        for name in ("coefs_", "intercepts_"):
            arrays = getattr(self, name)
            if not isinstance(arrays, list) or len(arrays) != L:
                got = (f"{len(arrays)} arrays" if isinstance(arrays, list)
                       else type(arrays).__name__)
                raise ValueError(f"{name} must be a list of {L} arrays (one per layer), got {got}")
        params: list[tuple[str, FloatArray]] = []
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            params += [(f"coefs_[{l}]", W), (f"intercepts_[{l}]", b)]
            if l < len(self._specs) and self._specs[l].param_names:
                names, learned = self._specs[l].param_names, self.activation_params_[l]
                if not isinstance(learned, dict) or set(learned) != set(names):
                    raise ValueError(f"activation_params_[{l}] must be a dict with keys "
                                     f"{list(names)}, got {learned!r:.200}")
                params += [(f"activation_params_[{l}][{name!r}]", learned[name]) for name in names]
        return params

    def _params_after_callback(self, trained: list[FloatArray]) -> list[FloatArray]:
        """The parameter arrays again: one that a callback replaced (``net.coefs_[0] = W * s``)
        is trained from the next epoch on, with the optimizer's state it had, if it has the
        shape and dtype of the one it replaced (the engine checks the rest of it)."""
        params = self._named_params()
        for (name, array), old in zip(params, trained):
            if array is not old and (getattr(array, "shape", None) != old.shape
                                     or getattr(array, "dtype", None) != old.dtype):
                got = (f"shape {array.shape}, dtype {array.dtype}" if isinstance(array, np.ndarray)
                       else type(array).__name__)
                raise ValueError(f"{name} was replaced during fit by {got}; training goes on "
                                 f"only with an array of the same shape {old.shape} and dtype "
                                 f"{old.dtype}")
        return [array for _, array in params]

    @property
    def n_threads(self) -> int | None:
        return self._n_threads or None

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        n = 0 if value is None else check_int(value, "n_threads", 1, MAX_THREADS)
        self._engine.n_threads = n
        self._n_threads = n

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_engine"]  # rebuilt on unpickling; parameters are plain arrays
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._engine = self._make_engine()

    # -- inference ----------------------------------------------------------------------
    def _inputs(self, X: npt.ArrayLike, name: str = "X") -> Rows:
        return check_matrix(X, name, self.dtype, self.layer_sizes[0])

    def _targets(self, Y: npt.ArrayLike, n_rows: int, name: str = "Y") -> FloatArray:
        return check_targets(Y, name, self.dtype, n_rows, self.layer_sizes[-1], self.output)

    def forward(self, X: npt.ArrayLike) -> FloatArray:
        """The output activations (softmax probabilities, sigmoid probabilities or values)."""
        return self._engine.forward(self._params(), self._inputs(X))

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """Class labels (softmax), 0/1 labels (sigmoid) or values (identity, exp); one output
        gives a 1-D result."""
        A = self.forward(X)
        if self.output == "softmax":
            labels: npt.NDArray[np.intp] = A.argmax(axis=1)
            return labels
        if self.output == "sigmoid":
            A = (A > 0.5).astype(np.int64)
        return A[:, 0] if A.shape[1] == 1 else A

    # -- training -----------------------------------------------------------------------
    def evaluate(self, X: npt.ArrayLike, Y: npt.ArrayLike,
                 sample_weight: npt.ArrayLike | None = None) -> float:
        """The mean loss over the rows of X (weighted as ``fit`` weighs them), the value ``fit``
        reports for its epochs but without the L2 term: held-out data's loss."""
        return self._evaluate(*self._checked_rows(X, Y, sample_weight))[0]

    def score(self, X: npt.ArrayLike, Y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> float:
        """Accuracy (softmax; sigmoid: every output of a row right) or R² (identity, exp: the
        mean over the outputs), as scikit-learn's classifiers and regressors score."""
        return self._evaluate(*self._checked_rows(X, Y, sample_weight))[1]

    def _checked_rows(self, X: npt.ArrayLike, Y: npt.ArrayLike,
                      sample_weight: npt.ArrayLike | None,
                      suffix: str = "",
                      ) -> tuple[Rows, FloatArray, npt.NDArray[np.float64] | None]:
        """The rows, targets and weights checked, named in messages with ``suffix`` ("_val")."""
        inputs = self._inputs(X, f"X{suffix}")
        n_rows = rows_of(inputs)
        return (inputs, self._targets(Y, n_rows, f"Y{suffix}"),
                check_sample_weight(sample_weight, n_rows, f"sample_weight{suffix}", f"X{suffix}"))

    def _evaluate(self, inputs: Rows, Y: FloatArray, sample_weight: npt.NDArray[np.float64] | None,
                  ) -> tuple[float, float]:
        """(loss, score) of rows already checked."""
        loss, outputs = self._engine.evaluate(self._params(), inputs, Y, sample_weight)
        return float(loss), float(self._engine.score(outputs, Y, sample_weight))

    def loss_and_gradients(self, X: npt.ArrayLike, Y: npt.ArrayLike,
                           sample_weight: npt.ArrayLike | None = None,
                           ) -> tuple[float, list[FloatArray], list[FloatArray],
                                      list[ActivationParams]]:
        """(loss, dcoefs, dintercepts, dactivation_params): the mean loss over the rows of X
        (weighted by ``sample_weight``: Σ s_n ℓ_n / Σ s_n) and its gradients, shaped like
        ``coefs_``, ``intercepts_`` and ``activation_params_`` (one dict per hidden layer,
        empty for activations that learn nothing)."""
        inputs, Y, sample_weight = self._checked_rows(X, Y, sample_weight)
        params = self._params()
        grads = [np.empty_like(p) for p in params]
        loss = self._engine.loss_and_gradients(params, inputs, Y, grads, sample_weight)
        dcoefs: list[FloatArray] = []
        dintercepts: list[FloatArray] = []
        dlearned: list[ActivationParams] = []
        flat = iter(grads)
        for l in range(len(self.coefs_)):
            dcoefs.append(next(flat))
            dintercepts.append(next(flat))
            if l < len(self._specs):
                dlearned.append({name: next(flat) for name in self._specs[l].param_names})
        return loss, dcoefs, dintercepts, dlearned

    def fit(self, X: npt.ArrayLike, Y: npt.ArrayLike, epochs: int = 10, batch_size: int = 32,
            lr: float = 0.01, momentum: float = 0.0, shuffle: bool = True, *,
            sample_weight: npt.ArrayLike | None = None, optimizer: str = "sgd",
            beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
            alpha: float = 0.0, clip_norm: float | None = None, lr_schedule: str = "constant",
            schedule_options: dict[str, Any] | None = None,
            callback: Callable[[History], bool | None] | None = None,
            record_health: bool = False, verbose: bool = False,
            validation_data: tuple[Any, ...] | None = None,
            patience: int | None = None) -> History:
        """Minibatch training; parameters are updated in place.

        Y : for a softmax output, class labels 0..K-1 or rows of probabilities (each row
            non-negative, summing to 1: soft labels); 0/1 or [0, 1] values for sigmoid; values
            for identity; non-negative counts or rates for exp.
        optimizer : "sgd" (with ``momentum`` in scikit-learn's convention: v ← μv − lr·g;
            p ← p + v), "nesterov" (scikit-learn's form), or "adam" (scikit-learn's form:
            ``beta_1``, ``beta_2``, ``epsilon``; its step counts batches trained). Every call
            starts the optimizer's state (velocities, Adam's moments and step) at zero and the
            schedule at its first epoch; the weights carry over.
        sample_weight : per-row weights (scikit-learn 1.7+'s objective): a batch's loss is
            Σ s_n ℓ_n / Σ s_n, and its L2 term is divided by Σ s_n instead of its rows; a batch
            whose weights are all zero is skipped, taking no step, as if its rows were absent.
        alpha : L2 penalty ½·alpha·Σ‖W‖² per batch, divided by the batch's rows (scikit-learn's).
        clip_norm : clip the gradients to this global norm before each step (None: no clipping),
            the remedy for exploding gradients.
        lr_schedule : "constant", "invscaling", "step", "cosine" or "adaptive" (see
            deltaprop.schedules.Schedule), with ``schedule_options`` a dict of its settings
            (power_t, step_size, gamma, lr_min, tol, n_iter_no_change). "adaptive" may end
            training before ``epochs``.

        record_health : gather each epoch's gradient health inside the engine's loop (see
            deltaprop.diagnostics) into ``health_``: a dict of (epochs × layers) arrays,
            grad_norm, delta_norm, update_ratio (means over every 16th batch, from the first:
            minibatch gradients, whose noise makes them larger than the whole data's that
            ``gradient_health`` measures), zero_fraction, dead_fraction and saturated_fraction
            (over every sample). A fit without it removes ``health_``, which would describe
            other weights.

        validation_data : (X_val, Y_val) or (X_val, Y_val, sample_weight_val): held-out rows
            whose loss and score (see :meth:`evaluate`, :meth:`score`) are recorded after each
            epoch in ``history.val_loss`` and ``history.val_score``.
        patience : with ``validation_data``, early stopping: training stops after this many
            epochs in a row without a lower validation loss, and the model ends with the
            weights of the epoch that had the lowest (``history.best_epoch``, counted from 1).

        ``batch_size=1`` is online training, ``batch_size=len(X)`` full-batch training. Each
        epoch runs in the engine without the GIL; between epochs, ``callback(history)`` is
        called and may return True to stop. It may also change the parameters, in place or by
        replacing an array with one of the same shape and dtype, which the next epoch trains.
        """
        inputs, Y, sample_weight = self._checked_rows(X, Y, sample_weight)
        n_rows = rows_of(inputs)
        held_out = self._validation_data(validation_data)
        if patience is not None:
            patience = check_int(patience, "patience")
            if held_out is None:
                raise ValueError("patience stops training on the validation loss: give "
                                 "validation_data=(X_val, Y_val) too")
        epochs = check_int(epochs, "epochs", minimum=0)
        batch_size = check_int(batch_size, "batch_size")
        lr = check_real(lr, "lr", 0.0)
        momentum = check_real(momentum, "momentum", 0.0, 1.0)
        optimizer = check_name(optimizer, "optimizer", ("sgd", "nesterov", "adam"))
        settings: dict[str, Any] = dict(optimizer=optimizer,  # train_epoch's keywords
                        beta_1=check_real(beta_1, "beta_1", 0.0, np.nextafter(1.0, 0.0)),
                        beta_2=check_real(beta_2, "beta_2", 0.0, np.nextafter(1.0, 0.0)),
                        epsilon=check_real(epsilon, "epsilon", np.finfo(np.float64).tiny),
                        alpha=check_real(alpha, "alpha", 0.0),
                        clip_norm=0.0 if clip_norm is None else check_real(
                            clip_norm, "clip_norm", np.finfo(np.float64).tiny))
        params = self._params()
        state1 = [np.zeros_like(p) for p in params]  # velocity, or Adam's first moment
        state2 = [np.zeros_like(p) for p in params] if optimizer == "adam" else None
        step = 0  # Adam's t: the steps taken (a batch whose weights are all zero takes none)
        schedule = Schedule.from_options(lr_schedule, lr, schedule_options, epochs=epochs,
                                         n_samples=n_rows)
        last_good = [np.empty_like(p) for p in params]  # the state to fall back on, reused
        best = [np.empty_like(p) for p in params] if patience is not None else None
        history = History()
        health = np.empty((len(HEALTH_ROWS), len(self.coefs_))) if record_health else None
        if record_health:
            self.health_ = {name: np.empty((0, len(self.coefs_))) for name in HEALTH_ROWS}
            history.health = self.health_
        else:  # a record of an earlier fit would describe other weights than these
            self.__dict__.pop("health_", None)
        for epoch in range(epochs):
            epoch_lr = schedule.lr(epoch)
            for saved, p in zip(last_good, params):
                np.copyto(saved, p)
            start = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                loss, step = self._engine.train_epoch(
                    params, state1, state2, inputs, Y, sample_weight, batch_size=batch_size,
                    lr=epoch_lr, momentum=momentum, shuffle=bool(shuffle), seed=self.seed,
                    epoch=self.epochs_trained_, step=step, health=health, **settings)
            elapsed = time.perf_counter() - start
            bad_layer = self._first_nonfinite_layer()
            if not np.isfinite(loss) or bad_layer is not None:
                kept = "from before that epoch"
                if best is not None and history.best_epoch is not None:
                    last_good, kept = best, f"of its best epoch ({history.best_epoch}, patience)"
                for saved, p in zip(last_good, params):
                    np.copyto(p, saved)
                where = "" if bad_layer is None else f", first in layer {bad_layer}"
                scale = "inputs" if self.output in ("softmax", "sigmoid") else "inputs or targets"
                error = FloatingPointError(
                    f"training diverged at epoch {history.epochs + 1}: the loss or the weights "
                    f"became NaN or infinite (loss {loss}{where}); the model keeps its weights "
                    f"{kept}, and the error's .history the epochs before it. "
                    f"Lower the learning rate (lr={lr}), scale the {scale}, or clip the "
                    f"gradients (clip_norm).")
                error.history = history  # type: ignore[attr-defined]
                raise error
            self.epochs_trained_ += 1
            if health is not None:  # that is, if record_health
                for name, row in zip(HEALTH_ROWS, health):
                    self.health_[name] = np.vstack([self.health_[name], row])
            history.loss.append(loss)
            history.seconds.append(elapsed)
            history.lr.append(epoch_lr)
            held_out_line = ""
            if held_out is not None:
                with np.errstate(over="ignore", invalid="ignore"):  # (as training's, above)
                    val_loss, val_score = self._evaluate(*held_out)
                history.val_loss.append(val_loss)
                history.val_score.append(val_score)
                held_out_line = f"  val_loss {val_loss:.6f}  val_score {val_score:.4f}"
            if verbose:
                print(f"epoch {history.epochs:4d}  loss {loss:.6f}{held_out_line}  "
                      f"{elapsed * 1e3:8.2f} ms")
            if best is not None and _improved(history):
                history.best_epoch = history.epochs
                for saved, p in zip(best, params):
                    np.copyto(saved, p)
            waited = history.epochs - (history.best_epoch or 0)  # epochs since the best
            if (schedule.end_of_epoch(loss) or (callback is not None and callback(history))
                    or (patience is not None and waited >= patience)):
                break
            if callback is not None:
                params = self._params_after_callback(params)
        if best is not None and history.best_epoch is not None:
            # (the arrays a stopping callback left: checked as the next epoch would check them)
            current = self._params_after_callback(params) if callback is not None else params
            for p, saved in zip(current, best):
                np.copyto(p, saved)
        if record_health and history.epochs:
            from .diagnostics import HealthWarning, check_health

            for problem in check_health(self.health_, self._specs):
                warnings.warn(problem, HealthWarning, stacklevel=2)
        return history

    def _validation_data(self, data: tuple[Any, ...] | None,
                         ) -> tuple[Rows, FloatArray, npt.NDArray[np.float64] | None] | None:
        """fit's validation_data, checked once: (inputs, targets, sample_weight) or None."""
        if data is None:
            return None
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, Y_val) or (X_val, Y_val, "
                            "sample_weight_val)")
        X, Y, *weight = data
        return self._checked_rows(X, Y, weight[0] if weight else None, "_val")

    def _first_nonfinite_layer(self) -> int | None:
        """The first layer holding a NaN or infinite parameter, or None."""
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            learned = self.activation_params_[l].values() if l < len(self._specs) else ()
            if not all(np.isfinite(p).all() for p in (W, b, *learned)):
                return l
        return None

    # -- persistence --------------------------------------------------------------------
    def save(self, path: PathArg) -> None:
        """Writes the model (architecture, options and parameters, bit for bit) to ``path``."""
        from .saving import save_mlp

        save_mlp(self, path)

    @classmethod
    def load(cls, path: PathArg, *, backend: str = "cpp",
             n_threads: int | None = None) -> MLP:

        """Reads a model written by :meth:`save`."""
        from .saving import load_mlp

        return load_mlp(cls, path, backend=backend, n_threads=n_threads)

    def __repr__(self) -> str:
        # the options that change what the network computes or how it starts, where not default
        options = [("loss", self.loss, None), ("huber_delta", self.huber_delta, 1.0),
                   ("residual", self.residual, False), ("dropout", self.dropout, 0.0),
                   ("alpha_dropout", self.alpha_dropout, False),
                   ("grad_at_zero", self.grad_at_zero, 0.0), ("init", self.init, None),
                   ("bias_init", self.bias_init, None)]
        given = "".join(f", {name}={value!r}" for name, value, default in options
                        if not _is_default(value, default))
        return (f"MLP({self.layer_sizes}, activation={self.activation!r}, "
                f"output={self.output!r}{given}, dtype={self.dtype.name!r}, seed={self.seed}, "
                f"backend={self.backend!r})")
