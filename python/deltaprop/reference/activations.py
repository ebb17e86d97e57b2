"""Hidden-layer activations (csrc/activations.hpp): each forward f(z) beside its derivative.

A derivative uses a = f(z) where an identity gives it from a, as the engine does, z otherwise:
tanh' = 1 - a², sigmoid' = a(1 - a), ReLU' = the unit step of z, whose value at 0 is a
convention: ``grad_at_zero`` = 0 (PyTorch, scikit-learn), 0.5 or 1.

``activation`` is a name or a :class:`deltaprop.activations.Activation` (the table of names,
parameters and conventions is in that module's docstring). Learned parameters (prelu's slope,
swish's β, acon's p1, p2, β) come in ``params``, a dict of arrays: per unit, shape (O,), or per
layer, shape (1,); ``params=None`` means their initial values (:func:`init_activation_params`).
Arrays keep their dtype: float32 in, float32 out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from .._typing import ActivationArg, ActivationParams, FloatArray
from ..activations import (
    ACON_P1_INIT,
    SELU_ALPHA,
    SELU_LAMBDA,
    Activation,
    resolve,
)
from ..activations import resolve_with_grad_at_zero as _spec
from ..validation import check_dtype

# -- the classic pairs, forward beside derivative(z, a, grad_at_zero); the table below uses them --


def relu(z: FloatArray) -> FloatArray:
    return np.maximum(z, 0)


def relu_derivative(z: FloatArray, a: FloatArray | None, grad_at_zero: float = 0.0) -> FloatArray:
    """The unit step: 1 for z > 0, 0 for z < 0, ``grad_at_zero`` at z == 0."""
    step = (z > 0).astype(z.dtype)
    step[z == 0] = grad_at_zero
    return step


def sigmoid(z: FloatArray) -> FloatArray:
    """1 / (1 + e^-z), never exponentiating a large positive number."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype)


def sigmoid_derivative(z: FloatArray | None, a: FloatArray, grad_at_zero: float = 0.0,
                       ) -> FloatArray:
    return a * (1 - a)  # at most 0.25: sigmoid's vanishing factor


def tanh(z: FloatArray) -> FloatArray:
    return np.tanh(z)


def tanh_derivative(z: FloatArray | None, a: FloatArray, grad_at_zero: float = 0.0) -> FloatArray:
    return 1 - a * a


# -- numerically stable building blocks -----------------------------------------------------------


def softplus(z: FloatArray) -> FloatArray:
    """log(1 + e^z) without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def tanh_softplus(z: FloatArray) -> FloatArray:
    """tanh(softplus(z)) without overflow: with n = e^z(e^z + 2) it is n / (n + 2); for z > 0,
    dividing through by e^2z, (1 + 2u) / (1 + 2u + 2u²) with u = e^-z."""
    e = np.exp(np.minimum(z, 0))  # used where z <= 0
    u = np.exp(-np.maximum(z, 0))  # used where z > 0
    n = e * (e + 2)
    out: FloatArray = np.where(z > 0, (1 + 2 * u) / (1 + 2 * u + 2 * u * u), n / (n + 2))
    return out


def _elu(z: FloatArray, alpha: float) -> FloatArray:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


# -- the whole table: each kind's forward, derivative from Z, derivative from A (None when A is
# not enough), and the partial derivatives ∂f/∂θ of its learned parameters. `s` is the Activation,
# `P` the parameter arrays (already in Z's dtype), broadcast over the last axis.


def _given(value: float | None) -> float:
    """A parameter that the activation's name always has (Activation fills in its default),
    which its spec types as optional because other names lack it."""
    assert value is not None
    return value


def _leaky(z: FloatArray, slope: float | FloatArray) -> FloatArray:
    return np.where(z > 0, z, slope * z)


def _leaky_derivative(z: FloatArray, slope: float | FloatArray) -> FloatArray:
    # f'(0) = the negative-side slope, as PyTorch
    return np.where(z > 0, 1, slope).astype(z.dtype)


def _step(z: FloatArray, below: float, at_zero: float) -> FloatArray:
    # 1 above 0, `below` below, `at_zero` at ±0
    d = np.where(z > 0, 1, below).astype(z.dtype)
    d[z == 0] = at_zero
    return d


def _swish_beta(s: Activation, P: ActivationParams) -> float | FloatArray:
    return P["beta"] if s.learnable else _given(s.beta)


def _swish_derivative(z: FloatArray, beta: float | FloatArray) -> FloatArray:
    sig = sigmoid(beta * z)
    return sig * (1 + beta * z * (1 - sig))


def _acon_parts(z: FloatArray, P: ActivationParams) -> tuple[FloatArray, FloatArray]:
    d = P["p1"] - P["p2"]
    sig = sigmoid(P["beta"] * d * z)
    return d, sig


def _acon_forward(z: FloatArray, s: Activation, P: ActivationParams) -> FloatArray:
    d, sig = _acon_parts(z, P)
    return d * z * sig + P["p2"] * z


def _acon_derivative(z: FloatArray, s: Activation, P: ActivationParams) -> FloatArray:
    # Ma et al. 2021, eq. for ACON-C: d/dz = d·σ(βdz)·(1 + βdz(1 − σ(βdz))) + p2, with d = p1 − p2
    d, sig = _acon_parts(z, P)
    return d * sig * (1 + P["beta"] * d * z * (1 - sig)) + P["p2"]


def _acon_partials(z: FloatArray, s: Activation, P: ActivationParams) -> ActivationParams:
    d, sig = _acon_parts(z, P)
    dp1 = z * sig * (1 + P["beta"] * d * z * (1 - sig))
    return {"p1": dp1, "p2": z - dp1, "beta": (d * z) ** 2 * sig * (1 - sig)}


def _mish_derivative(z: FloatArray, s: Activation, P: ActivationParams) -> FloatArray:
    t = tanh_softplus(z)
    return t + z * (1 - t * t) * sigmoid(z)


# f(z), f'(z) or f'(a), given the spec and the learned parameters
_Elementwise = Callable[[FloatArray, Activation, ActivationParams], FloatArray]
_Partials = Callable[[FloatArray, Activation, ActivationParams], ActivationParams]


class _Row(TypedDict):
    forward: _Elementwise
    from_z: _Elementwise
    from_a: _Elementwise | None
    partials: _Partials | None


def _row(forward: _Elementwise, from_z: _Elementwise, from_a: _Elementwise | None = None,
         partials: _Partials | None = None) -> _Row:
    return {"forward": forward, "from_z": from_z, "from_a": from_a, "partials": partials}


ALL_ACTIVATIONS: dict[str, _Row] = {
    "identity": _row(lambda z, s, P: z.copy(), lambda z, s, P: np.ones_like(z),
                     lambda a, s, P: np.ones_like(a)),
    "relu": _row(lambda z, s, P: relu(z), lambda z, s, P: _step(z, 0, s.grad_at_zero),
                 lambda a, s, P: (a > 0).astype(a.dtype)),
    "leaky_relu": _row(lambda z, s, P: _leaky(z, _given(s.alpha)),
                       lambda z, s, P: _leaky_derivative(z, _given(s.alpha)),
                       lambda a, s, P: _leaky_derivative(a, _given(s.alpha))),
    "prelu": _row(lambda z, s, P: _leaky(z, P["slope"]),
                  lambda z, s, P: _leaky_derivative(z, P["slope"]),
                  partials=lambda z, s, P: {"slope": np.minimum(z, 0)}),
    "elu": _row(lambda z, s, P: _elu(z, _given(s.alpha)),
                lambda z, s, P: np.where(z > 0, 1, _given(s.alpha) * np.exp(np.minimum(z, 0))),
                lambda a, s, P: np.where(a > 0, 1, a + _given(s.alpha))),  # A + α for z ≤ 0
    "selu": _row(lambda z, s, P: SELU_LAMBDA * _elu(z, SELU_ALPHA),
                 lambda z, s, P: np.where(z > 0, SELU_LAMBDA,
                                          SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(z, 0))),
                 lambda a, s, P: np.where(a > 0, SELU_LAMBDA, a + SELU_LAMBDA * SELU_ALPHA)),
    "swish": _row(lambda z, s, P: z * sigmoid(_swish_beta(s, P) * z),
                  lambda z, s, P: _swish_derivative(z, _swish_beta(s, P)),
                  partials=lambda z, s, P: {"beta": z * z * sigmoid_derivative(
                      None, sigmoid(P["beta"] * z))}),
    "silu": _row(lambda z, s, P: z * sigmoid(z), lambda z, s, P: _swish_derivative(z, 1)),
    "mish": _row(lambda z, s, P: z * tanh_softplus(z), _mish_derivative),
    "softplus": _row(lambda z, s, P: softplus(z), lambda z, s, P: sigmoid(z),
                     lambda a, s, P: -np.expm1(-a)),  # σ(z) = 1 − e^−A, accurate for tiny A
    "sigmoid": _row(lambda z, s, P: sigmoid(z), lambda z, s, P: sigmoid_derivative(z, sigmoid(z)),
                    lambda a, s, P: sigmoid_derivative(None, a)),
    "tanh": _row(lambda z, s, P: np.tanh(z), lambda z, s, P: tanh_derivative(z, np.tanh(z)),
                 lambda a, s, P: tanh_derivative(None, a)),
    "abs": _row(lambda z, s, P: np.abs(z), lambda z, s, P: np.sign(z)),
    "acon": _row(_acon_forward, _acon_derivative, partials=_acon_partials),
    "necro_relu": _row(lambda z, s, P: relu(z),
                       lambda z, s, P: _step(z, _given(s.surrogate_slope), s.grad_at_zero),
                       lambda a, s, P: np.where(a > 0, 1,
                                                _given(s.surrogate_slope)).astype(a.dtype)),
}

# The names the engine and MLP train today: those whose activation learns no parameters (prelu
# and acon always do; swish only when asked to), and the alias logistic.
ACTIVATIONS = tuple(name for name in ALL_ACTIVATIONS if not Activation(name).param_names) + (
    "logistic",)


# -- arguments ------------------------------------------------------------------------------------


def _param_shape(spec: Activation, param: str, fan_out: int) -> tuple[int]:
    return (1,) if spec.name == "swish" else (fan_out,)  # swish learns one β per layer


def _params(spec: Activation, params: Mapping[str, npt.ArrayLike] | None, fan_out: int,
            dtype: npt.DTypeLike) -> ActivationParams:
    """The learned parameters as arrays of `dtype`, checked against the activation's list."""
    names = spec.param_names
    if not names:
        if params:
            raise ValueError(f"params: activation {spec.name!r} has no learned parameters, "
                             f"got {sorted(params)}")
        return {}
    if params is None:
        return init_activation_params(spec, fan_out, dtype)
    if not isinstance(params, dict) or set(params) != set(names):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with keys {list(names)} for activation "
                         f"{spec.name!r}, got {got}")
    out: ActivationParams = {}
    for name in names:
        value = np.asarray(params[name])
        shape = _param_shape(spec, name, fan_out)
        if value.shape != shape or value.dtype.kind not in "biuf":
            raise ValueError(f"params[{name!r}] must be a real array of shape {shape}, got "
                             f"shape {value.shape} and dtype {value.dtype}")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range: inf, named below
            out[name] = value.astype(dtype, copy=False)
        if not np.isfinite(out[name]).all():
            raise ValueError(f"params[{name!r}] contains NaN or inf")
    return out


def _fan_out(Z: FloatArray, spec: Activation | None = None) -> int:
    """The units along Z's last axis, over which learned parameters run (so Z needs one)."""
    if Z.ndim:
        units: int = Z.shape[-1]
        return units

    if spec is not None and spec.param_names:
        raise ValueError(f"Z must have at least 1 dimension for activation {spec.name!r} (its "
                         "parameters are per unit, along the last axis), got shape ()")
    return 1


# -- the public functions (the C++ twins take the same arguments) ---------------------------------


def init_activation_params(activation: ActivationArg, fan_out: int,
                           dtype: npt.DTypeLike = "float64") -> ActivationParams:
    """The learned parameters' initial values: prelu {"slope": α (0.25)}, swish with
    learnable=True {"beta": [β]} (one per layer), acon {"p1": 1, "p2": α (0.25), "beta": β (1)}
    per unit; {} for every other activation."""
    spec, dtype = resolve(activation), check_dtype(dtype)
    initial = {"slope": spec.alpha, "p1": ACON_P1_INIT, "p2": spec.alpha, "beta": spec.beta}
    return {name: np.full(_param_shape(spec, name, fan_out), initial[name], dtype=dtype)
            for name in spec.param_names}


def activation_forward(Z: FloatArray, activation: ActivationArg = "relu",
                       params: ActivationParams | None = None, *, n_threads: int = 0,
                       check_finite: bool = True) -> FloatArray:
    """A = f(Z), elementwise."""
    spec = _spec(activation)
    P = _params(spec, params, _fan_out(Z, spec), Z.dtype)
    return ALL_ACTIVATIONS[spec.name]["forward"](Z, spec, P).astype(Z.dtype, copy=False)


def activation_derivative(Z: FloatArray, activation: ActivationArg = "relu",
                          grad_at_zero: float = 0.0, params: ActivationParams | None = None, *,
                          n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """f'(Z), elementwise: from A = f(Z) where an identity gives it (as the engine does), else
    from Z."""
    spec = _spec(activation, grad_at_zero)
    P = _params(spec, params, _fan_out(Z, spec), Z.dtype)
    row = ALL_ACTIVATIONS[spec.name]
    if spec.derivative_needs_z:
        d = row["from_z"](Z, spec, P)
    else:
        from_a = row["from_a"]
        assert from_a is not None  # derivative_needs_z is False only where the row has one
        d = from_a(row["forward"](Z, spec, P).astype(Z.dtype, copy=False), spec, P)
    return d.astype(Z.dtype, copy=False)


def activation_derivative_from_output(A: FloatArray, activation: ActivationArg = "relu",
                                      grad_at_zero: float = 0.0,
                                      params: ActivationParams | None = None, *,
                                      n_threads: int = 0, check_finite: bool = True,
                                      ) -> FloatArray:
    """f' computed from the output A = f(Z) alone: the engine's path when it keeps only A.
    Raises ValueError for activations whose derivative needs Z (``derivative_needs_z``)."""
    spec = _spec(activation, grad_at_zero)
    if spec.derivative_needs_z:
        raise ValueError(f"activation {spec!r} needs Z for its derivative; A is not enough")
    P = _params(spec, params, _fan_out(A, spec), A.dtype)
    from_a = ALL_ACTIVATIONS[spec.name]["from_a"]
    assert from_a is not None  # derivative_needs_z is False only where the row has one
    return from_a(A, spec, P).astype(A.dtype, copy=False)


def activation_backward(dA: FloatArray, Z: FloatArray, activation: ActivationArg = "relu",
                        grad_at_zero: float = 0.0, params: ActivationParams | None = None, *,
                        n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """dZ = dA * f'(Z), elementwise."""
    return dA * activation_derivative(Z, activation, grad_at_zero, params)


def activation_param_gradients(dA: FloatArray, Z: FloatArray, activation: ActivationArg,
                               params: ActivationParams | None = None, *, n_threads: int = 0,
                               check_finite: bool = True) -> ActivationParams:
    """∂C/∂θ for each learned parameter θ, given dA = ∂C/∂A: Σ over rows of dA ⊙ ∂f/∂θ, per
    unit (shape (O,)), or over every element for swish's per-layer β (shape (1,)).

        prelu: ∂f/∂a = min(z, 0)
        swish: ∂f/∂β = z² σ(βz)(1 − σ(βz))
        acon:  ∂f/∂p1 = zσ(1 + βdz(1 − σ)), ∂f/∂p2 = z − ∂f/∂p1, ∂f/∂β = (dz)² σ(1 − σ),
               with d = p1 − p2, σ = σ(βdz)
    """
    spec = _spec(activation)
    P = _params(spec, params, _fan_out(Z, spec), Z.dtype)
    if not P:
        return {}
    partials_of = ALL_ACTIVATIONS[spec.name]["partials"]
    assert partials_of is not None  # every activation that learns parameters has partials
    partials = partials_of(Z, spec, P)
    grads: ActivationParams = {}
    for name, partial in partials.items():
        g = dA * partial
        g = g.sum(axis=tuple(range(g.ndim - 1)))  # over rows: every axis but the units'
        grads[name] = (g.sum(keepdims=True) if spec.name == "swish" else g).astype(Z.dtype)
    return grads


def relu_forward(Z: FloatArray, *, n_threads: int = 0, check_finite: bool = True) -> FloatArray:
    """ReLU(Z) = max(Z, 0)."""
    return relu(Z)


def relu_backward(dA: FloatArray, Z: FloatArray, grad_at_zero: float = 0.0, *, n_threads: int = 0,
                  check_finite: bool = True) -> FloatArray:
    """dZ = dA · step(Z): the ReLU mask, with ReLU'(0) = grad_at_zero."""
    return dA * relu_derivative(Z, None, grad_at_zero)


def relu_step(Z: FloatArray, grad_at_zero: float = 0.0, *, n_threads: int = 0,
              check_finite: bool = True) -> FloatArray:

    """ReLU'(Z), the unit step: 1 where Z > 0, 0 where Z < 0, grad_at_zero where Z == 0."""
    return relu_derivative(Z, None, grad_at_zero)
