"""The engine's kernels on NumPy arrays: ``deltaprop.ops.gemm(A, B, ...)`` and friends.

Each kernel has a NumPy twin of the same name and signature in :mod:`deltaprop.reference`
(the instruction-set functions ``get_isa``, ``set_isa``, ``available_isas``, ``gemm_tile`` and
``fma_peak_gflops`` are about this engine and have none).
All arrays of one call share a dtype, float32 or float64; bad arguments raise TypeError or
ValueError naming the argument. ``n_threads=0`` uses OpenMP's default thread count.

The matrix products run on the best instruction-set path this CPU supports (``get_isa()``);
``set_isa("generic" | "avx2" | "avx512")`` or the ``DELTAPROP_ISA`` environment variable
forces another, so every path can be tested on one machine (a path the CPU cannot run is a
ValueError from set_isa; from the variable, a RuntimeWarning at import and the best path).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt

from ._core import ops as _ops
from ._typing import ActivationArg
from .activations import resolve_with_grad_at_zero
from .reference.activations import _fan_out as _reference_units
from .reference.activations import _params as _reference_params

gemm = _ops.gemm
dense_forward = _ops.dense_forward
dense_backward = _ops.dense_backward
delta_propagate = _ops.delta_propagate
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


def _say_if_the_isa_variable_is_not_followed() -> None:
    """DELTAPROP_ISA chooses a path this CPU and build can run; any other value falls back to
    the best path (an import must not fail over an environment variable), which a user who
    set it to compare paths must hear of."""
    wanted = os.environ.get("DELTAPROP_ISA", "")  # (set but empty: as unset)
    if wanted and wanted != get_isa():
        warnings.warn(f"DELTAPROP_ISA={wanted!r} names no path this CPU runs (it runs "
                      f"{', '.join(available_isas())}); using {get_isa()!r}", RuntimeWarning,
                      stacklevel=2)


_say_if_the_isa_variable_is_not_followed()

_F = TypeVar("_F", np.float32, np.float64)  # the one dtype of a call's arrays, as in _core.pyi
_LearnedParams = Mapping[str, npt.ArrayLike]  # {name: values}, checked by the reference's rules


# -- activations: the parameter-free ones go straight to C++; prelu, acon and a learnable swish
# take their parameters (a dict of arrays, or None for the initial values) through
# learned_activation, after the reference's own resolution of names, shapes and dtypes.


def _learned(activation: ActivationArg, grad_at_zero: float, params: _LearnedParams | None,
             Z: npt.NDArray[_F]) -> list[npt.NDArray[_F]] | None:
    """[arrays in param_names order] for an activation that learns parameters, else None (and
    then ``params`` must be empty, as in the reference)."""
    spec = resolve_with_grad_at_zero(activation, grad_at_zero)
    if not spec.param_names:
        if params:
            raise ValueError(f"params: activation {spec.name!r} has no learned parameters, "
                             f"got {sorted(params)}")
        return None
    if not isinstance(Z, np.ndarray):
        raise TypeError(f"Z must be a numpy.ndarray, got {type(Z).__name__}")
    resolved = _reference_params(spec, params, _reference_units(Z, spec), Z.dtype)
    # the reference's _params returns them in Z's dtype
    return [cast("npt.NDArray[_F]", resolved[name]) for name in spec.param_names]


def activation_forward(Z: npt.NDArray[_F], activation: ActivationArg = "relu",
                       params: _LearnedParams | None = None, *, n_threads: int = 0,
                       check_finite: bool = True) -> npt.NDArray[_F]:
    """A = f(Z), elementwise; ``params`` the learned parameters of prelu, acon or a learnable
    swish (None: their initial values)."""
    learned = _learned(activation, 0.0, params, Z)
    if learned is None:
        return _ops.activation_forward(Z, activation, n_threads=n_threads,
                                       check_finite=check_finite)
    return _ops.learned_activation("forward", Z, None, activation, learned, n_threads=n_threads,
                                   check_finite=check_finite)


def activation_derivative(Z: npt.NDArray[_F], activation: ActivationArg = "relu",
                          grad_at_zero: float = 0.0, params: _LearnedParams | None = None, *,
                          n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]:
    """f'(Z), elementwise (for ReLU the unit step, with ReLU'(0) = grad_at_zero)."""
    learned = _learned(activation, grad_at_zero, params, Z)
    if learned is None:
        return _ops.activation_derivative(Z, activation, grad_at_zero, n_threads=n_threads,
                                          check_finite=check_finite)
    return _ops.learned_activation("derivative", Z, None, activation, learned,
                                   n_threads=n_threads, check_finite=check_finite)


def activation_backward(dA: npt.NDArray[_F], Z: npt.NDArray[_F], activation: ActivationArg = "relu",
                        grad_at_zero: float = 0.0, params: _LearnedParams | None = None, *,
                        n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]:
    """dZ = dA * f'(Z), elementwise."""
    learned = _learned(activation, grad_at_zero, params, Z)
    if learned is None:
        return _ops.activation_backward(dA, Z, activation, grad_at_zero, n_threads=n_threads,
                                        check_finite=check_finite)
    return _ops.learned_activation("backward", Z, dA, activation, learned, n_threads=n_threads,
                                   check_finite=check_finite)


def activation_param_gradients(dA: npt.NDArray[_F], Z: npt.NDArray[_F], activation: ActivationArg,
                               params: _LearnedParams | None = None, *, n_threads: int = 0,
                               check_finite: bool = True) -> dict[str, npt.NDArray[_F]]:
    """{name: ∂C/∂θ} for each learned parameter, given dA = ∂C/∂A: per unit, or one total for a
    learnable swish's β; {} for activations that learn nothing."""
    learned = _learned(activation, 0.0, params, Z)
    if learned is None:
        return {}
    return _ops.learned_activation("param_gradients", Z, dA, activation, learned,
                                   n_threads=n_threads, check_finite=check_finite)


def relu_forward(Z: npt.NDArray[_F], *, n_threads: int = 0,
                 check_finite: bool = True) -> npt.NDArray[_F]:
    """ReLU(Z) = max(Z, 0)."""
    return activation_forward(Z, "relu", n_threads=n_threads, check_finite=check_finite)


def relu_backward(dA: npt.NDArray[_F], Z: npt.NDArray[_F], grad_at_zero: float = 0.0, *,
                  n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]:
    """dZ = dA · step(Z): the ReLU mask, with ReLU'(0) = grad_at_zero."""
    return activation_backward(dA, Z, "relu", grad_at_zero, n_threads=n_threads,
                               check_finite=check_finite)


def relu_step(Z: npt.NDArray[_F], grad_at_zero: float = 0.0, *, n_threads: int = 0,
              check_finite: bool = True) -> npt.NDArray[_F]:

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
    "activation_param_gradients",
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
