"""Initial weights, drawn from a seeded NumPy generator in a fixed order (layer by layer, weights
then biases), so a seed gives the same network on every backend and machine."""

from __future__ import annotations

import numpy as np


def init_params(layer_sizes, activation: str, rng: np.random.Generator, dtype: np.dtype):
    """He-uniform (√(6/fan_in)) for ReLU hidden layers, which keeps the variance of the signal
    from layer to layer when half the units are off; Glorot-uniform (√(6/(fan_in+fan_out)))
    elsewhere and for the output layer. Biases start at 0."""
    coefs, intercepts = [], []
    L = len(layer_sizes) - 1
    for l in range(L):
        fan_in, fan_out = layer_sizes[l], layer_sizes[l + 1]
        if activation == "relu" and l < L - 1:
            bound = np.sqrt(6.0 / fan_in)
        else:
            bound = np.sqrt(6.0 / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(np.zeros(fan_out, dtype=dtype))
    return coefs, intercepts
