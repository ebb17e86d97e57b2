"""The lbfgs solver as scikit-learn runs it: scipy's L-BFGS-B drives, the engine computes the
loss and gradient over the whole data set at each point scipy asks for
(sklearn/neural_network/_multilayer_perceptron.py, _fit_lbfgs). Parameters keep the data's
dtype (scikit-learn's own lbfgs hands float32 data float64 weights back; here float32 stays
float32)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from .._typing import FloatArray


def _pack(arrays: Sequence[FloatArray]) -> npt.NDArray[np.float64]:
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64, copy=False)


def fit_lbfgs(est: Any, X: Any, y: FloatArray,
              sample_weight: npt.NDArray[np.float64] | None) -> None:
    """est: the estimator (a BaseMLP); X dense or CSR."""
    shapes = [W.shape for W in est.coefs_] + [b.shape for b in est.intercepts_]
    bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    L = len(est.coefs_)
    dtype = X.dtype
    net = est._network(dtype)

    def unpack(packed: npt.NDArray[np.float64]) -> tuple[list[FloatArray], list[FloatArray]]:
        arrays = [np.ascontiguousarray(packed[bounds[i]:bounds[i + 1]].reshape(s), dtype=dtype)
                  for i, s in enumerate(shapes)]
        return arrays[:L], arrays[L:]

    def loss_grad(packed: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coefs, intercepts = unpack(packed)
        loss, dcoefs, dintercepts = net.loss_and_gradients(coefs, intercepts, X, y,
                                                           sample_weight, est.alpha)
        return loss, _pack(dcoefs + dintercepts)

    result = scipy.optimize.minimize(
        loss_grad, _pack(est.coefs_ + est.intercepts_), method="L-BFGS-B", jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = result.fun
    est.coefs_, est.intercepts_ = unpack(result.x)
