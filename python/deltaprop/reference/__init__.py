"""The NumPy reference: the same forward, backward and training step as the C++ engine,
written to be read. Each module mirrors one file of ``csrc/`` with the same function names and
argument order, so a test calls ``deltaprop.ops.X(...)`` and ``deltaprop.reference.X(...)`` alike.
It is the oracle every kernel is tested against, and is itself tested against finite differences.
"""

from .activations import (
    ACTIVATIONS,
    activation_backward,
    activation_derivative,
    activation_forward,
    relu_backward,
    relu_forward,
    relu_step,
)
from .dense import delta_propagate, dense_backward, dense_forward
from .engine import Engine
from .gemm import gemm
from .loss import OUTPUTS, output_forward, output_loss_delta
from .mlp import mlp_forward, mlp_loss_and_gradients
from .optim import sgd_momentum_step
from .train import shuffle_order, train_epoch

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Engine",
    "activation_backward",
    "activation_derivative",
    "activation_forward",
    "delta_propagate",
    "dense_backward",
    "dense_forward",
    "gemm",
    "mlp_forward",
    "mlp_loss_and_gradients",
    "output_forward",
    "output_loss_delta",
    "relu_backward",
    "relu_forward",
    "relu_step",
    "sgd_momentum_step",
    "shuffle_order",
    "train_epoch",
]
