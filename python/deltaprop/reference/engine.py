"""The reference twin of the C++ ``Engine_float32``/``Engine_float64``: the same constructor
and methods, so ``deltaprop.MLP(backend="numpy")`` swaps one for the other."""

from __future__ import annotations

import numpy as np

from ..activations import resolve_with_grad_at_zero
from .loss import OUTPUTS, output_forward
from .mlp import mlp_forward, mlp_loss_and_gradients
from .train import train_epoch


class Engine:
    def __init__(self, layer_sizes, activation="relu", grad_at_zero=0.0, output="softmax",
                 n_threads=0):
        resolve_with_grad_at_zero(activation, grad_at_zero)  # rejects what the engine would
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; expected one of "
                             f"{', '.join(map(repr, OUTPUTS))}")
        self.layer_sizes = list(layer_sizes)
        self.activation, self.grad_at_zero, self.output = activation, grad_at_zero, output
        self.n_threads = n_threads

    def forward(self, coefs, intercepts, X):
        Zs, _ = mlp_forward(coefs, intercepts, X, self.activation)
        return output_forward(Zs[-1], self.output)

    def loss_and_gradients(self, coefs, intercepts, X, Y, dcoefs, dintercepts):
        loss, dW, db = mlp_loss_and_gradients(coefs, intercepts, X, Y, self.activation,
                                              self.grad_at_zero, self.output)
        for out, g in zip(dcoefs + dintercepts, dW + db):
            np.copyto(out, g)
        return loss

    def train_epoch(self, coefs, intercepts, vcoefs, vintercepts, X, Y, batch_size, lr,
                    momentum, shuffle, seed, epoch, **optimizer):
        return train_epoch(coefs, intercepts, vcoefs, vintercepts, X, Y, batch_size, lr,
                           momentum, shuffle, seed, epoch, self.activation, self.grad_at_zero,
                           self.output, **optimizer)
