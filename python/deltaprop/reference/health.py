"""Gradient health gathered during training (csrc/health.hpp), the readable twin.

Per layer l (the output layer last): grad_norm ‖∂C/∂W_l‖, delta_norm ‖dZ_l‖ and update_ratio
‖ΔW_l‖/‖W_l‖, W_l before the step (inf for a step from all-zero weights), averaged over every
HEALTH_NORM_STRIDE-th batch of the epoch (the first always); zero_fraction (activations f(Z)
exactly 0), dead_fraction (units whose activation was 0 for every sample of the epoch) and
saturated_fraction (units whose |f'| stayed below 1% of f's largest derivative, that 1% in the
network's dtype: a float32 leaky slope of 0.01 is 1%, not below), over every sample. The output
layer's three fractions are NaN: its function belongs to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import FloatArray
from ..activations import SELU_ALPHA, SELU_LAMBDA, Activation
from .activations import _given, activation_derivative, activation_forward
from .mlp import Layer, NetSpec, Trace, mlp_loss_and_gradients
from .optim import add_l2, global_norm

HEALTH_ROWS = ("grad_norm", "delta_norm", "update_ratio", "zero_fraction", "dead_fraction",
               "saturated_fraction")
HEALTH_NORM_STRIDE = 16


def derivative_max(f: Activation) -> float:
    """sup |f'|: "saturated" is below 1% of it. Learned slopes: 1."""
    if f.name in ("leaky_relu", "elu"):
        return max(1.0, _given(f.alpha))
    if f.name == "necro_relu":
        return max(1.0, _given(f.surrogate_slope))
    # swish/silu: σ(u)(1 + u(1 − σ(u))) peaks at u = 2.40 whatever β scales u by; mish at 1.19
    return {"sigmoid": 0.25, "selu": SELU_LAMBDA * SELU_ALPHA, "swish": 1.0998393,
            "silu": 1.0998393, "mish": 1.0884982}.get(f.name, 1.0)


def samples_norms(index: int) -> bool:
    """Whether batch ``index`` of an epoch is one whose norms are taken."""
    return index % HEALTH_NORM_STRIDE == 0


def _norm(a: npt.ArrayLike) -> float:
    return global_norm([a])


class HealthAccumulator:
    def __init__(self, spec: NetSpec) -> None:
        self.spec = spec
        L = spec.layers
        self.grad, self.delta, self.update = np.zeros(L), np.zeros(L), np.zeros(L)
        self.zeros, self.elements = np.zeros(L), np.zeros(L)
        self.top = [np.zeros(n) for n in spec.sizes[1:-1]]  # per unit: the largest |f'| seen
        self.live = [np.zeros(n) for n in spec.sizes[1:-1]]  # ... and the largest |f(z)|
        self.batches = 0
        self.dtype: np.dtype[Any] = np.dtype(np.float64)  # the network's (from its batches)

    def add_batch(self, trace: Trace, weight_grads: Sequence[FloatArray], layers: Sequence[Layer],
                  norms: bool) -> None:
        """One batch: ``trace`` from mlp_loss_and_gradients, the weight gradients, and the
        unpacked parameters (for learned activations)."""
        self.dtype = weight_grads[0].dtype
        for l in range(self.spec.layers):
            if norms:
                self.grad[l] += _norm(weight_grads[l])
                self.delta[l] += _norm(trace["dZ"][l])
            if l < self.spec.layers - 1:
                f, P, Z = self.spec.hidden[l].f, layers[l][2] or None, trace["Z"][l]
                d = np.abs(activation_derivative(Z, f, params=P))
                A = activation_forward(Z, f, P)
                self.top[l] = np.maximum(self.top[l], d.max(axis=0))
                self.live[l] = np.maximum(self.live[l], np.abs(A).max(axis=0))
                self.zeros[l] += np.count_nonzero(A == 0)
                self.elements[l] += Z.size
        self.batches += norms

    def add_update(self, l: int, step: npt.ArrayLike, W: FloatArray) -> None:
        w, size = _norm(W), _norm(step)
        self.update[l] += size / w if w > 0 else np.inf if size > 0 else 0.0

    def write(self, out: npt.NDArray[np.float64]) -> None:
        b = max(self.batches, 1)
        out[0], out[1], out[2] = self.grad / b, self.delta / b, self.update / b
        out[3:, :] = np.nan
        for l, top in enumerate(self.top):
            out[3, l] = self.zeros[l] / self.elements[l] if self.elements[l] else np.nan
            out[4, l] = np.mean(self.live[l] == 0) if top.size else 0.0
            threshold = float(self.dtype.type(0.01 * derivative_max(self.spec.hidden[l].f)))
            out[5, l] = np.mean(top < threshold) if top.size else 0.0


def health(params: Sequence[FloatArray], X: FloatArray, Y: FloatArray, spec: NetSpec,
           sample_weight: npt.ArrayLike | None = None,
           lr: float = 0.01, alpha: float = 0.0) -> npt.NDArray[np.float64]:
    """The health of one step on all of X (the twin of the engine's Engine.health): a
    (6, layers) array in HEALTH_ROWS order, with the update ratio of a plain SGD step of
    learning rate ``lr``, the gradient that of the objective with L2 penalty ``alpha`` (divided
    by the rows' weight, as training divides it)."""
    trace: Trace = {}
    _, grads = mlp_loss_and_gradients(params, X, Y, spec, sample_weight, trace=trace)
    weights = spec.weight_indices()
    if alpha > 0:
        total = len(X) if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
        for a in weights:
            add_l2(grads[a], params[a], alpha, total)
    record = HealthAccumulator(spec)
    record.add_batch(trace, [grads[a] for a in weights], spec.unpack(params), True)
    for l, a in enumerate(weights):
        record.add_update(l, lr * grads[a].astype(np.float64), params[a])
    out = np.empty((len(HEALTH_ROWS), spec.layers))
    record.write(out)
    return out
