"""The reference twin of the C++ ``Engine_float32``/``Engine_float64``: the same constructor
and methods, so ``deltaprop.MLP(backend="numpy")`` swaps one for the other.

X is dense rows or, as the engine takes a sparse matrix, its CSR parts (data, indices, indptr,
n_columns); the reference densifies those (``dense_rows``): the same sums, the oracle kept
simple."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import ActivationArg, FloatArray, Rows
from .health import health
from .loss import output_forward
from .mlp import NetSpec, mlp_forward, mlp_loss_and_gradients
from .stopping import evaluate_rows, score_outputs
from .train import train_epoch, train_epochs


def dense_rows(X: Rows) -> FloatArray:
    """X's rows as a dense array (a CSR matrix's repeated entries summed, as scipy sums them)."""
    if not isinstance(X, tuple):
        return X
    data, indices, indptr, n_columns = X
    stored = int(indptr[-1])
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    dense = np.zeros((len(indptr) - 1, n_columns), dtype=data.dtype)
    np.add.at(dense, (rows, indices[:stored]), data[:stored])
    return dense


class Engine:
    def __init__(self, layer_sizes: Sequence[int],
                 activations: ActivationArg | Sequence[ActivationArg] = "relu",
                 output: str = "softmax", loss: str | None = None, *,
                 residual: bool | Sequence[bool] | None = None, huber_delta: float = 1.0,
                 loss_mean_over_outputs: bool = False, loss_clip_probabilities: bool = False,
                 dropout: float | Sequence[float] | None = None, alpha_dropout: bool = False,
                 n_threads: int = 0) -> None:
        self.spec = NetSpec.build(layer_sizes, activations, output, loss, residual, huber_delta,
                                  dropout, alpha_dropout, loss_mean_over_outputs,
                                  loss_clip_probabilities)
        self.layer_sizes = list(self.spec.sizes)
        self.n_threads = n_threads

    def forward(self, params: Sequence[FloatArray], X: Rows) -> FloatArray:
        Zs, _ = mlp_forward(params, dense_rows(X), self.spec)
        return output_forward(Zs[-1], self.spec.output)

    def evaluate(self, params: Sequence[FloatArray], X: Rows, Y: FloatArray,
                 sample_weight: npt.ArrayLike | None = None) -> tuple[float, FloatArray]:
        return evaluate_rows(params, dense_rows(X), Y, self.spec, sample_weight)

    def score(self, outputs: FloatArray, Y: FloatArray,
              sample_weight: npt.ArrayLike | None = None, one_class: bool = False) -> float:
        return score_outputs(outputs, Y, sample_weight, self.spec.output, one_class)

    def loss_and_gradients(self, params: Sequence[FloatArray], X: Rows, Y: FloatArray,
                           grads: Sequence[FloatArray],
                           sample_weight: npt.ArrayLike | None = None) -> float:
        loss, computed = mlp_loss_and_gradients(params, dense_rows(X), Y, self.spec,
                                                sample_weight)
        for out, g in zip(grads, computed):
            np.copyto(out, g)
        return loss

    def train_epoch(self, params: Sequence[FloatArray], state1: Sequence[FloatArray],
                    state2: Sequence[FloatArray] | None, X: Rows, Y: FloatArray,
                    sample_weight: npt.NDArray[np.float64] | None = None,
                    **settings: Any) -> tuple[float, int]:
        # settings: train_epoch's keywords (batch_size, lr, ...), passed through as they are
        return train_epoch(params, state1, state2, dense_rows(X), Y, self.spec, sample_weight,
                           **settings)

    def train_epochs(self, params: Sequence[FloatArray], state1: Sequence[FloatArray],
                     state2: Sequence[FloatArray] | None, X: Rows, Y: FloatArray,
                     sample_weight: npt.NDArray[np.float64] | None = None,
                     **settings: Any) -> tuple[int, str, float, int, int, None]:
        # settings: train_epochs's keywords (orders, lrs, losses, batch_size, ...)
        held_out = settings.get("held_out")
        if held_out is not None:
            settings["held_out"] = (dense_rows(held_out[0]), *held_out[1:])
        return train_epochs(params, state1, state2, dense_rows(X), Y, self.spec, sample_weight,
                            **settings)

    def health(self, params: Sequence[FloatArray], X: Rows, Y: FloatArray,
               sample_weight: npt.ArrayLike | None = None,
               lr: float = 0.01, alpha: float = 0.0) -> npt.NDArray[np.float64]:
        return health(params, dense_rows(X), Y, self.spec, sample_weight, lr, alpha)
