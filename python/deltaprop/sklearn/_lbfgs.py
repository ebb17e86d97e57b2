"""The lbfgs solver as scikit-learn runs it: scipy's L-BFGS-B drives, the engine computes the
loss and gradient over the whole data set at each point scipy asks for
(sklearn/neural_network/_multilayer_perceptron.py, _fit_lbfgs). Parameters keep the data's
dtype (scikit-learn's own lbfgs hands float32 data float64 weights back; here float32 stays
float32)."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result
from threadpoolctl import threadpool_limits

from .._typing import FloatArray
from ._hooks import EpochHooks

# threadpoolctl's BLAS limit is the process's, not a thread's: L-BFGS fits running at once (in
# threads: a threading joblib backend) share one limit, set by the first to start and put back
# by the last to end. Each putting back what it found left BLAS at one thread for good, or
# lifted the limit in the middle of another fit.
_blas_lock = threading.Lock()
_blas_fits = 0
_blas_limit: threadpool_limits | None = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    global _blas_fits, _blas_limit
    with _blas_lock:
        if _blas_fits == 0:
            _blas_limit = threadpool_limits(limits=1, user_api="blas")
        _blas_fits += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_fits -= 1
            if _blas_fits == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def _pack(arrays: Sequence[FloatArray]) -> npt.NDArray[np.float64]:
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64, copy=False)


def fit_lbfgs(est: Any, X: Any, y: FloatArray, sample_weight: npt.NDArray[np.float64] | None,
              hooks: EpochHooks) -> None:
    """est: the estimator (a BaseMLP); X dense or CSR. The parameters are packed as
    scikit-learn packs them (every layer's weights, then every layer's biases), followed by
    the learned activation parameters, if any. Each L-BFGS iteration is an epoch to ``hooks``
    (the user's callback, scikit-learn's callbacks, the progress bar), which see the
    estimator's parameters, ``n_iter_`` and ``loss_`` as of that iteration and may stop it."""
    dtype = X.dtype
    net = est._network(dtype)
    L = len(est.coefs_)
    learned_names = net.learned_names
    start = est.coefs_ + est.intercepts_ + [d[name] for d, names in zip(est._learned(),
                                                                        learned_names)
                                            for name in names]
    shapes = [p.shape for p in start]
    bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    # the engine's order of the packed arrays: per layer W, b, then its learned parameters
    learned_at = np.cumsum([2 * L] + [len(names) for names in learned_names])
    engine_order = [i for l in range(L) for i in
                    [l, L + l, *(range(learned_at[l], learned_at[l + 1]) if l < len(learned_names)
                                 else [])]]
    n_weights = int(bounds[L])  # scikit-learn packs every layer's weights first: one block
    total = int(bounds[-1])

    def blocks(flat: FloatArray) -> list[FloatArray]:
        """A packed vector's arrays, in its order, as views."""
        return [flat[bounds[i]:bounds[i + 1]].reshape(s) for i, s in enumerate(shapes)]

    def engine_views(flat: FloatArray) -> list[FloatArray]:
        """The engine's parameter list as views of a packed vector (no copies)."""
        arrays = blocks(flat)
        return [arrays[i] for i in engine_order]

    def unpack(packed: npt.NDArray[np.float64],
               ) -> tuple[list[FloatArray], list[FloatArray], list[dict[str, FloatArray]]]:
        arrays = iter([np.ascontiguousarray(b, dtype=dtype) for b in blocks(packed)])
        coefs = [next(arrays) for _ in range(L)]
        intercepts = [next(arrays) for _ in range(L)]
        return coefs, intercepts, [{name: next(arrays) for name in names}
                                   for names in learned_names]

    track = est._health_record(incremental=False) is not None  # (starts health_)
    stopped = False
    last, last_loss = _pack(start), None  # the last iterate and its loss: what a Ctrl-C leaves

    def loss_grad(packed: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        """The objective at scipy's point, read and written through views of packed vectors
        (a fresh gradient each time: scipy keeps the last one it was given)."""
        nonlocal last_loss
        x = np.ascontiguousarray(packed, dtype=dtype)
        if not np.isfinite(x).all():  # a step past float's range (data of huge values): the
            # NaN scikit-learn's NumPy passes compute there, not the engine's refusal
            return np.nan, np.full(total, np.nan)
        g = np.empty(total, dtype=dtype)
        loss = net.objective(engine_views(x), engine_views(g), X, y, sample_weight, est.alpha,
                             weights=[x[:n_weights]], weight_grads=[g[:n_weights]])
        if last_loss is None:  # the first evaluation, at the start
            last_loss = loss
        return loss, g.astype(np.float64, copy=False)

    def after_iteration(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        """The whole data's gradient health at the new point (record_health), the verbose
        line, then the hooks; a stop they ask for ends the minimisation (scipy >= 1.11:
        StopIteration)."""
        nonlocal stopped, last, last_loss
        last, last_loss = np.array(intermediate_result.x), float(intermediate_result.fun)
        est.n_iter_ += 1
        est.loss_ = last_loss
        if est.verbose:  # (scikit-learn's own lbfgs prints nothing with scipy >= 1.15)
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if track:
            coefs, intercepts, learned = unpack(last)
            est._append_health(net.health(coefs, intercepts, X, y, sample_weight, learned,
                                          lr=est.learning_rate_init, alpha=est.alpha)[None])
        if not hooks.idle:
            est.coefs_, est.intercepts_, est.activation_params_ = unpack(last)
            hooks.epoch_begin()
            if hooks.epoch_end():
                stopped = True
                raise StopIteration

    try:
        # L-BFGS-B's own vector sums (dot products over every parameter) run in scipy's BLAS,
        # whose threads would split them differently by thread count: one thread keeps the
        # result independent of it, as the engine's is (BLAS elsewhere in the process too, while
        # the fit runs)
        with _one_blas_thread():
            result = scipy.optimize.minimize(
                loss_grad, _pack(start), method="L-BFGS-B", jac=True, callback=after_iteration,
                options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    except KeyboardInterrupt:
        # as the stochastic solvers do (scikit-learn's lbfgs lets it through): the model of
        # the last whole iteration, and a warning
        warnings.warn("Training interrupted by user.", stacklevel=4)
        est.loss_ = loss_grad(last)[0] if last_loss is None else last_loss  # (None: no pass)
        est.coefs_, est.intercepts_, est.activation_params_ = unpack(last)
        return
    # a stop the hooks asked for is not a failure to converge
    est.n_iter_ = int(result.nit) if stopped else _check_optimize_result("lbfgs", result,
                                                                          est.max_iter)
    est.loss_ = result.fun
    est.coefs_, est.intercepts_, est.activation_params_ = unpack(result.x)
