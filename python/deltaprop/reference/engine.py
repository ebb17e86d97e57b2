"""The reference twin of the C++ ``Engine_float32``/``Engine_float64``: the same constructor
and methods, so ``deltaprop.MLP(backend="numpy")`` swaps one for the other."""

from __future__ import annotations

import numpy as np

from .health import health
from .loss import output_forward
from .mlp import NetSpec, mlp_forward, mlp_loss_and_gradients
from .train import train_epoch, train_epochs


class Engine:
    def __init__(self, layer_sizes, activations="relu", output="softmax", loss=None, *,
                 residual=None, huber_delta=1.0, dropout=None, alpha_dropout=False, n_threads=0):
        self.spec = NetSpec.build(layer_sizes, activations, output, loss, residual, huber_delta,
                                  dropout, alpha_dropout)
        self.layer_sizes = list(self.spec.sizes)
        self.n_threads = n_threads

    def forward(self, params, X):
        Zs, _ = mlp_forward(params, X, self.spec)
        return output_forward(Zs[-1], self.spec.output)

    def loss_and_gradients(self, params, X, Y, grads, sample_weight=None):
        loss, computed = mlp_loss_and_gradients(params, X, Y, self.spec, sample_weight)
        for out, g in zip(grads, computed):
            np.copyto(out, g)
        return loss

    def train_epoch(self, params, state1, state2, X, Y, sample_weight=None, **settings):
        return train_epoch(params, state1, state2, X, Y, self.spec, sample_weight, **settings)

    def train_epochs(self, params, state1, state2, X, Y, sample_weight=None, **settings):
        return train_epochs(params, state1, state2, X, Y, self.spec, sample_weight, **settings)

    def health(self, params, X, Y, sample_weight=None, lr=0.01):
        return health(params, X, Y, self.spec, sample_weight, lr)
