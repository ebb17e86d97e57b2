"""The NumPy reference: the same forward, backward and training step as the C++ engine,
written to be read. Each module mirrors one file of ``csrc/`` with the same function names and
argument order, so a test calls ``deltaprop.ops.X(...)`` and ``deltaprop.reference.X(...)`` alike.
It is the oracle every kernel is tested against, and is itself tested against finite differences.
"""

from .activations import (
    ACTIVATIONS,
    ALL_ACTIVATIONS,
    activation_backward,
    activation_derivative,
    activation_derivative_from_output,
    activation_forward,
    activation_param_gradients,
    init_activation_params,
    relu_backward,
    relu_forward,
    relu_step,
)
from .dense import delta_propagate, dense_backward, dense_forward
from .dropout import (
    alpha_dropout_backward,
    alpha_dropout_coefficients,
    alpha_dropout_forward,
    dropout_backward,
    dropout_forward,
    dropout_mask,
    dropout_stream,
)
from .engine import Engine
from .gemm import gemm
from .loss import LOSSES, OUTPUTS, output_forward, output_loss_delta
from .mlp import LayerSpec, NetSpec, mlp_forward, mlp_loss_and_gradients
from .optim import (
    SCHEDULES,
    adam_step,
    adaptive_lr,
    add_l2,
    clip_by_global_norm,
    cosine_lr,
    invscaling_lr,
    l2_penalty,
    nesterov_step,
    sgd_momentum_step,
    step_lr,
)
from .stopping import HeldOut, Plateau, evaluate_rows, score_outputs
from .train import shuffle_order, train_epoch, train_epochs

__all__ = [
    "ACTIVATIONS",
    "ALL_ACTIVATIONS",
    "LOSSES",
    "OUTPUTS",
    "SCHEDULES",
    "Engine",
    "HeldOut",
    "activation_backward",
    "activation_derivative",
    "activation_derivative_from_output",
    "activation_forward",
    "activation_param_gradients",
    "adam_step",
    "adaptive_lr",
    "add_l2",
    "alpha_dropout_backward",
    "alpha_dropout_coefficients",
    "alpha_dropout_forward",
    "clip_by_global_norm",
    "cosine_lr",
    "delta_propagate",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "dropout_mask",
    "dropout_stream",
    "evaluate_rows",
    "gemm",
    "init_activation_params",
    "invscaling_lr",
    "l2_penalty",
    "LayerSpec",
    "NetSpec",
    "Plateau",
    "mlp_forward",
    "mlp_loss_and_gradients",
    "nesterov_step",
    "output_forward",
    "output_loss_delta",
    "relu_backward",
    "relu_forward",
    "relu_step",
    "score_outputs",
    "sgd_momentum_step",
    "shuffle_order",
    "step_lr",
    "train_epoch",
    "train_epochs",
]
