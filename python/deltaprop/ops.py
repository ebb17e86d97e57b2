"""The engine's kernels on NumPy arrays: ``deltaprop.ops.gemm(A, B, ...)`` and friends.

Each has a NumPy twin of the same name and signature in :mod:`deltaprop.reference`.
All arrays of one call share a dtype, float32 or float64; bad arguments raise TypeError or
ValueError naming the argument. ``n_threads=0`` uses OpenMP's default thread count.

The matrix products run on the best instruction-set path this CPU supports (``get_isa()``);
``set_isa("generic" | "avx2" | "avx512")`` or the ``DELTAPROP_ISA`` environment variable
forces another, so every path can be tested on one machine.
"""

from ._core import ops as _ops

gemm = _ops.gemm
dense_forward = _ops.dense_forward
dense_backward = _ops.dense_backward
delta_propagate = _ops.delta_propagate
activation_forward = _ops.activation_forward
activation_backward = _ops.activation_backward
activation_derivative = _ops.activation_derivative
output_loss_delta = _ops.output_loss_delta
output_forward = _ops.output_forward
sgd_momentum_step = _ops.sgd_momentum_step
nesterov_step = _ops.nesterov_step
adam_step = _ops.adam_step
add_l2 = _ops.add_l2
clip_by_global_norm = _ops.clip_by_global_norm
shuffle_order = _ops.shuffle_order
dropout_stream = _ops.dropout_stream
dropout_mask = _ops.dropout_mask
dropout_forward = _ops.dropout_forward
dropout_backward = _ops.dropout_backward
alpha_dropout_forward = _ops.alpha_dropout_forward
alpha_dropout_backward = _ops.alpha_dropout_backward
alpha_dropout_coefficients = _ops.alpha_dropout_coefficients
get_isa = _ops.get_isa
set_isa = _ops.set_isa
available_isas = _ops.available_isas
gemm_tile = _ops.gemm_tile
fma_peak_gflops = _ops.fma_peak_gflops


def relu_forward(Z, *, n_threads=0, check_finite=True):
    """ReLU(Z) = max(Z, 0)."""
    return activation_forward(Z, "relu", n_threads=n_threads, check_finite=check_finite)


def relu_backward(dA, Z, grad_at_zero=0.0, *, n_threads=0, check_finite=True):
    """dZ = dA · step(Z): the ReLU mask, with ReLU'(0) = grad_at_zero."""
    return activation_backward(dA, Z, "relu", grad_at_zero, n_threads=n_threads,
                               check_finite=check_finite)


def relu_step(Z, grad_at_zero=0.0, *, n_threads=0, check_finite=True):
    """ReLU'(Z), the unit step: 1 where Z > 0, 0 where Z < 0, grad_at_zero where Z == 0."""
    return activation_derivative(Z, "relu", grad_at_zero, n_threads=n_threads,
                                 check_finite=check_finite)


__all__ = [
    "alpha_dropout_backward",
    "alpha_dropout_coefficients",
    "alpha_dropout_forward",
    "dropout_backward",
    "dropout_forward",
    "dropout_mask",
    "dropout_stream",
    "activation_backward",
    "activation_derivative",
    "activation_forward",
    "adam_step",
    "add_l2",
    "available_isas",
    "clip_by_global_norm",
    "delta_propagate",
    "dense_backward",
    "dense_forward",
    "fma_peak_gflops",
    "gemm",
    "gemm_tile",
    "get_isa",
    "nesterov_step",
    "output_forward",
    "output_loss_delta",
    "relu_backward",
    "relu_forward",
    "relu_step",
    "set_isa",
    "sgd_momentum_step",
    "shuffle_order",
]
