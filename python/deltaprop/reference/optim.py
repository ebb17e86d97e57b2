"""Parameter updates (csrc/optim.hpp)."""

from __future__ import annotations


def sgd_momentum_step(p, v, g, lr, momentum=0.0, *, n_threads=0, check_finite=True):
    """SGD with momentum, in place, in scikit-learn's convention (the learning rate inside the
    velocity; sklearn/neural_network/_stochastic_optimizers.py):

        v ← momentum · v − lr · g
        p ← p + v
    """
    v[...] = momentum * v - lr * g
    p += v
