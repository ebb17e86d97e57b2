"""Every call the scikit-learn estimators make into deltaprop's engine, behind one narrow
interface, so the estimators stay free of engine details and a new engine API is one file's port:

    net = make_network(layer_sizes, activation, output, dtype, n_threads)
    net.forward(coefs, intercepts, X)                           -> output activations
    net.loss_and_gradients(coefs, intercepts, X, Y, sample_weight, alpha)
                                                                -> (loss, dcoefs, dintercepts)
    state = new_optimizer_state(coefs, intercepts, optimizer)
    net.train_epoch(coefs, intercepts, state, X, Y, sample_weight, order, settings)
                                                                -> the epoch's mean loss

Everything computes scikit-learn's objective (sklearn/neural_network/_multilayer_perceptron.py,
1.9, ``_backprop``):

    loss = Σ_n w_n ℓ_n + ½ α Σ‖W‖² / S,    w_n = s_n / S,  S = Σ s_n  (s_n = 1 without weights)

where ℓ_n sums over outputs, except squared error, whose *value* scikit-learn averages over the
outputs while its *gradient* (``delta = a − y``) does not; we report and differentiate the same.
X may be a dense array or a scipy CSR matrix: sparse rows are densified one batch (or one chunk
of ``CHUNK_ROWS``) at a time, never the whole matrix at once.

Today's engine (deltaprop._core.Engine_float32/64) has no sample weights, no exp output, and sums
squared error over outputs in its loss value. What it lacks is filled in here, and only here:
- the output-averaged squared-error value: divided out exactly (per epoch without L2, per batch
  with it, since each batch's L2 term uses that batch's weights);
- exp output (poisson) and sample weights: the TEMPORARY NumPy path at the end of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .. import _core, reference
from ..activations import resolve

CHUNK_ROWS = 4096  # sparse input is densified this many rows at a time outside training


@dataclass
class OptimizerState:
    """The optimizer's arrays, shaped like the parameters: ``state1`` the velocity (sgd,
    nesterov) or Adam's first moment, ``state2`` Adam's second moment; ``t`` counts Adam's steps
    (batches) so far."""

    kind: str
    state1: list
    state2: list | None
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
    extra: dict = field(default_factory=dict)


def new_optimizer_state(coefs, intercepts, kind) -> OptimizerState:
    """Zeroed state for optimizer ``kind``: "sgd", "nesterov" or "adam"."""
    params = list(coefs) + list(intercepts)
    state2 = [np.zeros_like(p) for p in params] if kind == "adam" else None
    return OptimizerState(kind, [np.zeros_like(p) for p in params], state2)


def make_network(layer_sizes, activation, output, dtype, n_threads=None) -> Network:
    """A network of these sizes; ``output`` is "softmax", "sigmoid", "identity" or "exp"."""
    return Network(layer_sizes, activation, output, np.dtype(dtype), n_threads)


def _split(arrays, n_layers):
    return list(arrays[:n_layers]), list(arrays[n_layers:])


class Network:
    def __init__(self, layer_sizes, activation, output, dtype, n_threads):
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.activation = resolve(activation)
        self.output = output
        self.dtype = dtype
        # exp (poisson) runs the engine with an identity output and takes exp here
        engine_output = "identity" if output == "exp" else output
        engine_type = getattr(_core, f"Engine_{dtype.name}")
        self._engine = engine_type(self.layer_sizes, self.activation, 0.0, engine_output,
                                   0 if n_threads is None else int(n_threads))

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    def _dense(self, X) -> np.ndarray:
        X = X.toarray() if sp.issparse(X) else X
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _output_mean_factor(self) -> float:
        """What divides the engine's squared-error value to give scikit-learn's."""
        return float(self.n_outputs) if self.output == "identity" else 1.0

    # -- inference -----------------------------------------------------------------------------
    def forward(self, coefs, intercepts, X) -> np.ndarray:
        """Output activations (probabilities, values), row by row: any row's result is
        independent of the others."""
        if sp.issparse(X):
            X = X.tocsr()
            A = np.concatenate([self._engine.forward(coefs, intercepts,
                                                     self._dense(X[i:i + CHUNK_ROWS]))
                                for i in range(0, X.shape[0], CHUNK_ROWS)])
        else:
            A = self._engine.forward(coefs, intercepts, self._dense(X))
        return np.exp(A) if self.output == "exp" else A

    # -- the whole data set at once (lbfgs) ----------------------------------------------------
    def loss_and_gradients(self, coefs, intercepts, X, Y, sample_weight=None, alpha=0.0):
        """scikit-learn's objective over all rows of X and its gradients (fresh arrays)."""
        if sample_weight is not None or self.output == "exp":
            return _numpy_loss_and_gradients(self, coefs, intercepts, X, Y, sample_weight, alpha)
        n = X.shape[0]
        dcoefs = [np.zeros_like(W) for W in coefs]
        dintercepts = [np.zeros_like(b) for b in intercepts]
        loss = 0.0
        chunks = range(0, n, CHUNK_ROWS) if sp.issparse(X) else [0]
        gc = [np.empty_like(W) for W in coefs]
        gi = [np.empty_like(b) for b in intercepts]
        for start in chunks:
            stop = min(n, start + CHUNK_ROWS) if sp.issparse(X) else n
            Xc = self._dense(X[start:stop])
            Yc = np.ascontiguousarray(Y[start:stop], dtype=self.dtype)
            share = (stop - start) / n  # the engine's means are over the chunk's rows
            loss += share * self._engine.loss_and_gradients(coefs, intercepts, Xc, Yc, gc, gi)
            for total, g in zip(dcoefs + dintercepts, gc + gi):
                total += g if share == 1.0 else g * g.dtype.type(share)
        loss /= self._output_mean_factor()
        if alpha > 0:
            loss += reference.l2_penalty(coefs, alpha, n)
            for g, W in zip(dcoefs, coefs):
                reference.add_l2(g, W, alpha, n)
        return loss, dcoefs, dintercepts

    # -- one epoch (sgd, adam) -----------------------------------------------------------------
    def train_epoch(self, coefs, intercepts, state, X, Y, sample_weight, order, settings):
        """One epoch over the rows ``order`` of X (None: in stored order), in batches of
        ``settings.batch_size``, updating parameters and ``state`` in place. Returns
        scikit-learn's loss_curve_ entry: the batches' losses (each before its step) weighted
        by their rows."""
        if sample_weight is not None or self.output == "exp":
            return _numpy_train_epoch(self, coefs, intercepts, state, X, Y, sample_weight,
                                      order, settings)
        per_batch_l2 = settings.alpha > 0 and self._output_mean_factor() != 1.0
        if sp.issparse(X) or per_batch_l2:
            return self._train_batches(coefs, intercepts, state, X, Y, order, settings)
        if order is not None:  # the engine reads batches in stored order: gather the epoch's
            X, Y = np.take(X, order, axis=0), np.take(Y, order, axis=0)
        loss = self._engine_epoch(coefs, intercepts, state, self._dense(X),
                                  np.ascontiguousarray(Y, dtype=self.dtype), settings)
        return loss / self._output_mean_factor()

    def _engine_epoch(self, coefs, intercepts, state, X, Y, settings):
        L = len(coefs)
        vcoefs, vintercepts = _split(state.state1, L)
        second = {}
        if state.kind == "adam":
            scoefs, sintercepts = _split(state.state2, L)
            second = dict(scoefs=scoefs, sintercepts=sintercepts)
        steps = -(-X.shape[0] // min(settings.batch_size, X.shape[0]))
        loss = self._engine.train_epoch(
            coefs, intercepts, vcoefs, vintercepts, X, Y, settings.batch_size, settings.lr,
            settings.momentum, False, 0, 0, optimizer=state.kind, beta_1=settings.beta_1,
            beta_2=settings.beta_2, epsilon=settings.epsilon, alpha=settings.alpha,
            clip_norm=settings.clip_norm, step=state.t, **second)
        state.t += steps
        return loss

    def _train_batches(self, coefs, intercepts, state, X, Y, order, settings):
        """One engine call per batch: for sparse X (each batch densified alone) and for the
        output-averaged squared error with L2, whose batch penalty is known only per batch."""
        n = X.shape[0]
        order = np.arange(n) if order is None else order
        factor = self._output_mean_factor()
        if sp.issparse(X):
            X = X.tocsr()
        total = 0.0
        for start in range(0, n, settings.batch_size):
            rows = order[start:start + settings.batch_size]
            Xb = self._dense(X[rows])
            Yb = np.ascontiguousarray(Y[rows], dtype=self.dtype)
            penalty = reference.l2_penalty(coefs, settings.alpha, len(rows))
            loss = self._engine_epoch(coefs, intercepts, state, Xb, Yb, settings)
            total += len(rows) * ((loss - penalty) / factor + penalty)
        return total / n


# -- TEMPORARY: the NumPy path for what today's engine lacks (sample weights, exp output) --------
#
# The new engine takes sample_weight in loss_and_gradients and train_epoch and has the exp output
# with the poisson loss; on the port these two functions and their call sites go away.

def _numpy_loss_and_gradients(net, coefs, intercepts, X, Y, sample_weight, alpha):
    """scikit-learn's ``_backprop`` on the NumPy reference, with weights s (None: ones)."""
    X = net._dense(X)
    Y = np.asarray(Y, dtype=net.dtype)
    n = X.shape[0]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = float(s.sum())
    Zs, As = reference.mlp_forward(coefs, intercepts, X, net.activation)
    z = Zs[-1]
    with np.errstate(over="ignore"):
        A = reference.output_forward(z, net.output)
    if net.output == "exp":  # half Poisson deviance, as scikit-learn's poisson_loss
        from scipy.special import xlogy

        y64, a64 = Y.astype(np.float64), A.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            row = (xlogy(y64, y64 / a64) - y64 + a64).sum(axis=1)
        data = float((s * row).sum() / total)
    else:
        data = reference.output_loss_delta(z, Y, net.output, sample_weight=s)[0]
        data /= net._output_mean_factor()
    loss = data + reference.l2_penalty(coefs, alpha, total)
    dZ = (A - Y) * (s / total).astype(net.dtype)[:, None]
    L = len(coefs)
    dcoefs, dintercepts = [None] * L, [None] * L
    for l in reversed(range(L)):
        dcoefs[l], dintercepts[l] = reference.dense_backward(dZ, X if l == 0 else As[l - 1])
        reference.add_l2(dcoefs[l], coefs[l], alpha, total)
        if l > 0:
            dZ = reference.delta_propagate(dZ, coefs[l], Zs[l - 1], net.activation)
    return loss, dcoefs, dintercepts


def _numpy_train_epoch(net, coefs, intercepts, state, X, Y, sample_weight, order, settings):
    n = X.shape[0]
    order = np.arange(n) if order is None else order
    if sp.issparse(X):
        X = X.tocsr()
    params = list(coefs) + list(intercepts)
    total = 0.0
    for start in range(0, n, settings.batch_size):
        rows = order[start:start + settings.batch_size]
        s = None if sample_weight is None else sample_weight[rows]
        loss, dW, db = _numpy_loss_and_gradients(net, coefs, intercepts, X[rows], Y[rows], s,
                                                 settings.alpha)
        grads = dW + db
        if settings.clip_norm > 0:
            reference.clip_by_global_norm(grads, settings.clip_norm)
        state.t += 1
        for p, g, i in zip(params, grads, range(len(params))):
            if state.kind == "sgd":
                reference.sgd_momentum_step(p, state.state1[i], g, settings.lr, settings.momentum)
            elif state.kind == "nesterov":
                reference.nesterov_step(p, state.state1[i], g, settings.lr, settings.momentum)
            else:
                reference.adam_step(p, state.state1[i], state.state2[i], g, state.t, settings.lr,
                                    settings.beta_1, settings.beta_2, settings.epsilon)
        total += len(rows) * loss
    return total / n
