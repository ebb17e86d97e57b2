"""Every call the scikit-learn estimators make into deltaprop's engine, behind one narrow
interface, so the estimators stay free of engine details:

    net = make_network(layer_sizes, activation, output, dtype, n_threads)
    net.forward(coefs, intercepts, X)                           -> output activations
    net.loss_and_gradients(coefs, intercepts, X, Y, sample_weight, alpha)
                                            -> (loss, dcoefs, dintercepts, dactivation_params)
    net.objective(params, grads, X, Y, sample_weight, alpha)
                                  -> the loss, the gradients written to the caller's arrays
    state = new_optimizer_state(net.params(coefs, intercepts), optimizer)
    net.train_epoch(coefs, intercepts, state, X, Y, sample_weight, order, settings)
                                                                -> the epoch's mean loss
    net.train_epochs(coefs, intercepts, state, X, Y, sample_weight, orders, lrs, settings,
                     plateau)                                   -> many epochs in one call

Each method also takes ``learned``: the learned activations' parameters (prelu's slopes, a
learnable swish's β, acon's p1, p2, β), one dict per hidden layer as deltaprop.MLP keeps them
in ``activation_params_``; None when no activation learns.

Everything computes scikit-learn's objective (sklearn/neural_network/_multilayer_perceptron.py,
1.9, ``_backprop``):

    loss = Σ_n w_n ℓ_n + ½ α Σ‖W‖² / S,    w_n = s_n / S,  S = Σ s_n  (s_n = 1 without weights)

The engine computes it directly: sample weights, the exp output with the Poisson loss, and
scikit-learn's squared error, whose *value* averages over the outputs while its *gradient*
(``delta = a − y``) does not (``loss_mean_over_outputs``), its log losses, whose *values* clip
each probability to [eps, 1 − eps] of the dtype while their gradients do not
(``loss_clip_probabilities``: the loss curve, tol's stopping and L-BFGS-B's line search see
scikit-learn's values even where a prediction saturates), and its half Poisson deviance.
X may be a dense array or a scipy sparse matrix, which the engine reads as CSR rows where they
lie (its first layer multiplies the stored entries only: csrc/sparse.hpp); nothing densifies it.

scikit-learn's stochastic solvers shuffle once per epoch (``sklearn.utils.shuffle``: a
``RandomState.shuffle`` of ``arange(n)``, then indexing). ``shuffle`` does the same without the
per-call argument checks; ``EpochShuffles`` hands a fit's MT19937 state to the engine, which
draws each epoch's order as it starts (NumPy's legacy shuffle in C++, csrc/legacy_shuffle.hpp),
with exactly the per-epoch calls' orders and final state; other bit generators' orders are
drawn here, a chunk of epochs at a time. (On a few hundred rows NumPy's shuffle took about 4 µs
an epoch, C++'s 1.1; reading or writing the state through MT19937.state takes 25 µs.)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .. import _core, reference
from .._typing import ActivationsArg, FloatArray, Rows
from ..activations import resolve
from ..reference.activations import init_activation_params  # as deltaprop.MLP starts them
from ..reference.health import HEALTH_ROWS  # the rows of the engine's health record
from ..validation import csr_parts

__all__ = ["HEALTH_ROWS", "EpochSettings", "HeldOut", "Network", "OptimizerState",
           "first_random_state", "init_activation_params", "make_network", "new_optimizer_state",
           "shuffle", "EpochShuffles"]

Learned = Sequence[Mapping[str, FloatArray]]  # one dict of arrays per hidden layer

@dataclass
class OptimizerState:
    """The optimizer's arrays, shaped like the parameters: ``state1`` the velocity (sgd,
    nesterov) or Adam's first moment, ``state2`` Adam's second moment; ``t`` counts Adam's steps
    so far (one per batch; a batch whose sample weights are all zero takes none)."""

    kind: str
    state1: list[FloatArray]
    state2: list[FloatArray] | None
    t: int = 0


@dataclass
class EpochSettings:
    """One epoch's optimizer settings (``lr`` is this epoch's learning rate)."""

    batch_size: int
    lr: float
    momentum: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    alpha: float = 0.0
    clip_norm: float = 0.0  # 0: no clipping
    seed: int = 0   # dropout masks are drawn from (seed, epoch, batch, layer)
    epoch: int = 0  # the epoch's index (a call of several epochs: the first one's)


def new_optimizer_state(params: Sequence[FloatArray], kind: str) -> OptimizerState:
    """Zeroed state for optimizer ``kind`` ("sgd", "nesterov" or "adam"), shaped like the
    engine's ``params`` (Network.params)."""
    state2 = [np.zeros_like(p) for p in params] if kind == "adam" else None
    return OptimizerState(kind, [np.zeros_like(p) for p in params], state2)


def make_network(layer_sizes: Sequence[int], activation: ActivationsArg, output: str,
                 dtype: npt.DTypeLike, n_threads: int | None = None, *,
                 residual: list[bool] | None = None, dropout: list[float] | None = None,
                 alpha_dropout: bool = False, loss: str | None = None,
                 huber_delta: float = 1.0) -> Network:
    """A network of these sizes; ``output`` is "softmax", "sigmoid", "identity" or "exp";
    ``residual`` and ``dropout`` one flag and one rate per hidden layer (None: none);
    ``loss`` the identity output's "absolute_error" or "huber" (with ``huber_delta``) in place
    of scikit-learn's squared error (None: the output's own loss)."""
    return Network(layer_sizes, activation, output, np.dtype(dtype), n_threads, residual,
                   dropout, alpha_dropout, loss, huber_delta)


@dataclass
class HeldOut:
    """Early stopping's held-out rows (X, encoded Y, weights or None) for
    Network.train_epochs, the parameters its best epoch is copied to (coefs, intercepts,
    learned: arrays apart from the trained ones) and, after the call, each epoch's loss and
    score of those rows."""
    X: Any  # dense or sparse
    Y: FloatArray
    sample_weight: npt.NDArray[np.float64] | None
    best: tuple[list[FloatArray], list[FloatArray], Learned | None]
    one_class: bool = False  # a classifier of one class: every row is right (Network.score)
    losses: npt.NDArray[np.float64] | None = None
    scores: npt.NDArray[np.float64] | None = None


class Network:
    def __init__(self, layer_sizes: Sequence[int], activation: ActivationsArg, output: str,
                 dtype: np.dtype[Any], n_threads: int | None,
                 residual: list[bool] | None = None, dropout: list[float] | None = None,
                 alpha_dropout: bool = False, loss: str | None = None,
                 huber_delta: float = 1.0) -> None:
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.activation = ([resolve(a) for a in activation]
                           if isinstance(activation, (list, tuple)) else resolve(activation))
        hidden = (self.activation if isinstance(self.activation, list)
                  else [self.activation] * (len(self.layer_sizes) - 2))
        self._learned_names = [spec.param_names for spec in hidden]
        self.output = output
        self.dtype = dtype
        engine_type = getattr(_core, f"Engine_{dtype.name}")
        # Only scikit-learn's squared error averages its value over the outputs (and not its
        # gradient); deltaprop's absolute and Huber losses sum over them, value and gradient
        # alike, so L-BFGS sees one consistent objective.
        self._engine = engine_type(self.layer_sizes, self.activation, output,
                                   "poisson" if output == "exp" else loss,
                                   residual=residual, dropout=dropout,
                                   alpha_dropout=alpha_dropout, huber_delta=float(huber_delta),
                                   loss_mean_over_outputs=output == "identity" and loss is None,
                                   loss_clip_probabilities=output in ("sigmoid", "softmax"),
                                   n_threads=0 if n_threads is None else int(n_threads))

    @property
    def learned_names(self) -> list[tuple[str, ...]]:
        """Per hidden layer, the names of its activation's learned parameters (often none)."""
        return self._learned_names

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    def params(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
               learned: Learned | None = None) -> list[FloatArray]:
        """The engine's parameter list: per layer W_l, b_l, then the learned parameters of the
        layer's activation in their order (``learned`` checked against the activations)."""
        names = self._learned_names
        if not any(names):
            return [p for W, b in zip(coefs, intercepts) for p in (W, b)]
        if (learned is None or len(learned) != len(names)
                or any(set(d) != set(n) for d, n in zip(learned, names))):
            raise ValueError(f"activation_params_ must hold one dict per hidden layer with the "
                             f"keys {[list(n) for n in names]}")
        params: list[FloatArray] = []
        for l, (W, b) in enumerate(zip(coefs, intercepts)):
            params += [W, b]
            if l < len(names):
                params += [learned[l][name] for name in names[l]]
        return params

    def _input(self, X: Any) -> Rows:
        """X as the engine reads it: a C-contiguous array of the network's dtype, or a sparse
        matrix's CSR parts (data, indices, indptr, n_columns), its entries where they lie."""
        if sp.issparse(X):
            return csr_parts(X, self.dtype)
        return np.ascontiguousarray(X, dtype=self.dtype)

    # -- inference -----------------------------------------------------------------------------
    def forward(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
                X: Any, learned: Learned | None = None) -> FloatArray:
        """Output activations (probabilities, values), row by row: any row's result is
        independent of the others."""
        out: FloatArray = self._engine.forward(self.params(coefs, intercepts, learned),
                                               self._input(X))
        return out

    # -- the whole data set at once (lbfgs, validation loss) -----------------------------------
    def loss_and_gradients(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
                           X: Any, Y: FloatArray,
                           sample_weight: npt.NDArray[np.float64] | None = None,
                           alpha: float = 0.0, learned: Learned | None = None,
                           ) -> tuple[float, list[FloatArray], list[FloatArray],
                                      list[dict[str, FloatArray]]]:
        """scikit-learn's objective over all rows of X and its gradients (fresh arrays): of the
        weights, the biases and the learned activation parameters (a dict per hidden layer)."""
        params = self.params(coefs, intercepts, learned)
        grads = [np.empty_like(p) for p in params]
        loss = self.objective(params, grads, X, Y, sample_weight, alpha)
        return (loss, *self._unflat(grads))

    def objective(self, params: Sequence[FloatArray], grads: Sequence[FloatArray], X: Any,
                  Y: FloatArray, sample_weight: npt.NDArray[np.float64] | None = None,
                  alpha: float = 0.0, weights: Sequence[FloatArray] | None = None,
                  weight_grads: Sequence[FloatArray] | None = None) -> float:
        """loss_and_gradients at the engine's parameter list ``params`` (``Network.params``
        order), its gradients written to ``grads`` (arrays of the same shapes, the caller's).
        The L2 term ½ α Σ‖W‖² / Σ s is taken over ``weights`` and its gradient added to
        ``weight_grads``: by default params' and grads' weight arrays; L-BFGS passes each as
        the one block of its packed vector that holds every layer's weights."""
        loss: float = self._engine.loss_and_gradients(
            params, self._input(X), np.ascontiguousarray(Y, dtype=self.dtype), grads,
            sample_weight)
        if alpha > 0:
            if weights is None or weight_grads is None:
                weights, weight_grads = self._unflat(list(params))[0], self._unflat(list(grads))[0]
            total = float(X.shape[0] if sample_weight is None else np.sum(sample_weight))
            loss += reference.l2_penalty(weights, alpha, total)
            for g, W in zip(weight_grads, weights):
                reference.add_l2(g, W, alpha, total)
        return loss

    def evaluate(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray], X: Any,
                 Y: FloatArray, sample_weight: npt.NDArray[np.float64] | None = None,
                 learned: Learned | None = None) -> tuple[float, FloatArray]:
        """loss_and_gradients' loss (without the L2 term) and forward's output activations,
        from one forward pass: early stopping's view of its held-out rows each epoch."""
        loss: float
        outputs: FloatArray
        loss, outputs = self._engine.evaluate(self.params(coefs, intercepts, learned),
                                              self._input(X),
                                              np.ascontiguousarray(Y, dtype=self.dtype),
                                              sample_weight)
        return loss, outputs

    def score(self, outputs: FloatArray, Y: FloatArray,
              sample_weight: npt.NDArray[np.float64] | None = None,
              one_class: bool = False) -> float:
        """scikit-learn's early-stopping score of rows with these outputs and encoded targets:
        accuracy (softmax, sigmoid outputs; 1 for a classifier of ``one_class``, whose
        predictions are that class whatever the output) or R² (identity, exp), the engine's
        train_epochs computes it alike."""
        score: float = self._engine.score(outputs, np.ascontiguousarray(Y, dtype=self.dtype),
                                          sample_weight, one_class)
        return score

    def _unflat(self, params: list[FloatArray],
                ) -> tuple[list[FloatArray], list[FloatArray], list[dict[str, FloatArray]]]:
        """params' reverse: (coefs, intercepts, learned)."""
        coefs, intercepts, learned = [], [], []
        it = iter(params)
        for l in range(len(self.layer_sizes) - 1):
            coefs.append(next(it))
            intercepts.append(next(it))
            if l < len(self._learned_names):
                learned.append({name: next(it) for name in self._learned_names[l]})
        return coefs, intercepts, learned

    def health(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray], X: Any,
               Y: FloatArray, sample_weight: npt.NDArray[np.float64] | None = None,
               learned: Learned | None = None, lr: float = 0.0,
               alpha: float = 0.0) -> npt.NDArray[np.float64]:
        """The gradient health of one pass over all rows of X: HEALTH_ROWS x layers,
        the update ratio for a plain step of ``lr`` (deltaprop.diagnostics.gradient_health's),
        the gradient with the L2 penalty ``alpha``'s term, as lbfgs minimises it."""
        rows: npt.NDArray[np.float64] = self._engine.health(
            self.params(coefs, intercepts, learned), self._input(X),
            np.ascontiguousarray(Y, dtype=self.dtype), sample_weight, lr, alpha)
        return rows

    # -- one epoch (sgd, adam) -----------------------------------------------------------------
    def train_epoch(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
                    state: OptimizerState, X: Any, Y: FloatArray,
                    sample_weight: npt.NDArray[np.float64] | None,
                    order: npt.NDArray[np.intp] | None, settings: EpochSettings,
                    health: npt.NDArray[np.float64] | None = None,
                    learned: Learned | None = None) -> float:
        """One epoch over the rows ``order`` of X (None: in stored order), in batches of
        ``settings.batch_size``, updating parameters and ``state`` in place. Returns
        scikit-learn's loss_curve_ entry: the batches' losses (each before its step) weighted
        by their rows. ``health`` receives the epoch's gradient health."""
        loss: float
        loss, state.t = self._engine.train_epoch(
            self.params(coefs, intercepts, learned), state.state1, state.state2, self._input(X),
            np.ascontiguousarray(Y, dtype=self.dtype), sample_weight,
            order=None if order is None else np.ascontiguousarray(order, dtype=np.int64),
            batch_size=settings.batch_size, lr=settings.lr, momentum=settings.momentum,
            shuffle=False, seed=settings.seed, epoch=settings.epoch, optimizer=state.kind,
            beta_1=settings.beta_1, beta_2=settings.beta_2,
            epsilon=settings.epsilon, alpha=settings.alpha, clip_norm=settings.clip_norm,
            step=state.t, health=health)
        return loss

    def train_epochs(self, coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
                     state: OptimizerState, X: Any, Y: FloatArray,
                     sample_weight: npt.NDArray[np.float64] | None,
                     orders: npt.NDArray[np.int64] | None, lrs: Sequence[float],
                     settings: EpochSettings, plateau: tuple[float, float, float, int],
                     shuffle_state: tuple[Any, Any, Any] | None = None,
                     learned: Learned | None = None, held_out: HeldOut | None = None,
                     health: npt.NDArray[np.float64] | None = None,
                     ) -> tuple[npt.NDArray[np.float64], str, float, int, BaseException | None]:
        """Up to ``len(lrs)`` epochs in one engine call, for a fit with nothing to do between
        epochs: epoch e reads the rows ``orders[e]`` (None: stored order), or with
        ``shuffle_state`` (EpochShuffles.engine_state) the order the engine draws as the
        epoch starts, at learning rate ``lrs[e]``. ``plateau`` is scikit-learn's stopping
        rule as (tol, n_iter_no_change, best_loss, no_improvement_count); the engine stops
        after an epoch it ends, or one that leaves a weight NaN or inf. With ``held_out``
        (early stopping) the rule is on the held-out rows' score, and plateau's best_loss is
        the best score so far. Returns (the losses of the epochs run, why it stopped:
        "done", "plateau" or "diverged", best_loss or best score, no_improvement_count, the
        exception that interrupted it or None); the held-out rows' losses and scores of the
        epochs run (but one that diverged) go to ``held_out``, and with ``health`` (epochs x
        HEALTH_ROWS x layers) each epoch's gradient health goes there. Adam's ``state.t``
        advances by the steps taken."""
        tol, patience, best, count = plateau
        losses = np.empty(len(lrs))
        engine_held_out = None
        val_losses, val_scores = np.empty(len(lrs)), np.empty(len(lrs))
        if held_out is not None:
            engine_held_out = (self._input(held_out.X),
                               np.ascontiguousarray(held_out.Y, dtype=self.dtype),
                               held_out.sample_weight,
                               self.params(*held_out.best), val_losses, val_scores,
                               held_out.one_class)
        epochs, stop, best, count, state.t, error = self._engine.train_epochs(
            self.params(coefs, intercepts, learned), state.state1, state.state2,
            self._input(X), np.ascontiguousarray(Y, dtype=self.dtype), sample_weight, orders=orders,
            shuffle_state=shuffle_state, lrs=np.asarray(lrs, dtype=np.float64), losses=losses,
            batch_size=settings.batch_size, momentum=settings.momentum, optimizer=state.kind,
            beta_1=settings.beta_1, beta_2=settings.beta_2, epsilon=settings.epsilon,
            alpha=settings.alpha, clip_norm=settings.clip_norm, seed=settings.seed,
            epoch=settings.epoch, step=state.t, tol=tol,
            n_iter_no_change=patience, no_improvement_count=count,
            health=health, **(dict(best_loss=best) if held_out is None
                              else dict(held_out=engine_held_out, best_score=best)))
        if held_out is not None:
            scored = epochs - (stop == "diverged")  # the held-out rows skip an epoch that diverged
            held_out.losses, held_out.scores = val_losses[:scored], val_scores[:scored]
        return losses[:epochs], stop, best, count, error


# -- scikit-learn's shuffles -------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def first_random_state(seed: int) -> tuple[Any, ...]:
    """RandomState(seed)'s state as it starts (its legacy get_state() tuple)."""
    return tuple(np.random.RandomState(seed).get_state(legacy=True))


def shuffle(sample_idx: npt.NDArray[np.intp],
            random_state: np.random.RandomState) -> npt.NDArray[np.intp]:
    """sklearn.utils.shuffle(sample_idx, random_state=random_state)."""
    permutation = np.arange(len(sample_idx))
    random_state.shuffle(permutation)
    return sample_idx[permutation]


_no_lock = contextlib.nullcontext()

# Whether MT19937's words and position lie where _core.mt19937_state_views reads them (NumPy's
# internal layout): checked against MT19937.state the first time, then trusted.
_mt19937_views_match: bool | None = None


def _mt19937_state_views(random_state: np.random.RandomState,
                         ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]] | None:
    """Writable views of ``random_state``'s MT19937 words and position where NumPy keeps them,
    or None (another bit generator, or a NumPy whose layout differs)."""
    global _mt19937_views_match
    bit_generator = getattr(random_state, "_bit_generator", None)
    if type(bit_generator) is not np.random.MT19937 or _mt19937_views_match is False:
        return None
    key, pos = _core.mt19937_state_views(bit_generator)
    if _mt19937_views_match is None:
        state = bit_generator.state["state"]
        _mt19937_views_match = (np.array_equal(key, state["key"])
                                and int(pos[0]) == int(state["pos"]))
    return (key, pos) if _mt19937_views_match else None


class EpochShuffles:
    """scikit-learn's per-epoch shuffles of ``sample_idx`` with ``random_state``, one per epoch,
    leaving ``random_state`` where that many ``shuffle`` calls would (the process's own
    generator: where the shuffles drawn leave it, see keep). ``sample_idx`` is the last order
    drawn.

    With MT19937 (every RandomState scikit-learn makes; ``in_engine``) the engine draws them:
    ``engine_state()`` gives it the generator's own words, in place, under its lock (reading
    and writing them through MT19937.state took 50 us a fit, a tenth of a small fit's fixed
    cost), or, where NumPy keeps them elsewhere, a copy that ``close()`` writes back. With
    another bit generator each shuffle is NumPy's, drawn ahead of a chunk of epochs:
    ``draw(epochs)`` gives the next epochs' orders (row e: the shuffle of row e - 1) and
    ``keep(epochs)`` keeps only the first ``epochs`` of the last draw."""

    def __init__(self, sample_idx: npt.NDArray[np.intp], random_state: np.random.RandomState):
        self.sample_idx: npt.NDArray[Any] = sample_idx
        self._random_state = random_state
        self._lock: Any = _no_lock
        self._state: dict[str, Any] | None = None  # the copy's, written back by close
        self._before_draw: dict[str, Any] | None = None  # NumPy's draws: the state before
        self._drawn_from = sample_idx  # and the order before
        self._orders: npt.NDArray[np.int64] = np.empty((0, len(sample_idx)), dtype=np.int64)
        # The process's own generator (random_state=None) is everyone's: its lock is not held
        # through an engine call (which stalled np.random in every other thread for the whole
        # fit, and left it held in a child forked meanwhile), nor its state ever set back over
        # their draws. Its shuffles are NumPy's, a lock each, as scikit-learn's are; a chunk cut
        # short keeps its unused shuffles drawn (keep), so the fit is scikit-learn's, and only
        # where the generator ends differs.
        self._shared = shared = random_state is np.random.mtrand._rand
        views = (_mt19937_state_views(random_state)
                 if len(sample_idx) < 2**32 and not shared else None)
        if views is not None:
            self._key, self._pos = views
            self._lock = random_state._bit_generator.lock
            self.in_engine = True
            return
        state = random_state.get_state(legacy=False)
        self.in_engine = (state["bit_generator"] == "MT19937" and len(sample_idx) < 2**32
                          and not shared)
        if self.in_engine:
            self._state = state
            self._key = np.array(state["state"]["key"], dtype=np.uint32)
            self._pos = np.array([state["state"]["pos"]], dtype=np.int32)

    @contextlib.contextmanager
    def engine_state(self) -> Iterator[tuple[Any, Any, npt.NDArray[np.int64]]]:
        """(words, position, order) for an engine call that draws each epoch's order as the
        epoch starts, shuffling ``order`` in place (then ``sample_idx``), held under the
        generator's lock: the draws happen exactly as the epochs do, none ahead."""
        assert self.in_engine, "engine_state() needs MT19937"
        order = np.array(self.sample_idx, dtype=np.int64)  # the caller's array stays as it was
        with self._lock:
            yield self._key, self._pos, order
        self.sample_idx = order

    def draw(self, epochs: int) -> npt.NDArray[np.int64]:
        assert not self.in_engine, "MT19937's orders are the engine's to draw"
        self._before_draw = self._random_state.get_state(legacy=False)
        orders = np.empty((epochs, len(self.sample_idx)), dtype=np.int64)
        self._drawn_from, self._orders = self.sample_idx, orders
        for e in range(epochs):
            self.sample_idx = orders[e] = shuffle(self.sample_idx, self._random_state)
        return orders

    def keep(self, epochs: int) -> None:
        """Only the first ``epochs`` of the last draw happen: the rest are undrawn (but for the
        process's own generator, which other threads may have drawn from since)."""
        assert self._before_draw is not None, "keep() follows a draw()"
        if self._shared:
            self.sample_idx = self._orders[epochs - 1] if epochs else self._drawn_from
            return
        self._random_state.set_state(self._before_draw)
        self.sample_idx = self._drawn_from
        self.draw(epochs)

    def close(self) -> None:
        if self._state is not None:
            self._random_state.set_state({**self._state,
                                          "state": {"key": self._key, "pos": int(self._pos[0])}})
