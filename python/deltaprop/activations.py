"""Hidden-layer activations by name, with their parameters.

    Activation("elu")                          # α = 1
    Activation("leaky_relu", alpha=0.2)
    Activation("relu", grad_at_zero=0.5)       # ReLU'(0): a convention (0, 0.5 or 1)
    Activation("swish", learnable=True)        # β learned per layer, starting at `beta`
    Activation("necro_relu")                   # ReLU forward, slope 0.01 backward for z < 0

A name alone (``"elu"``) means ``Activation("elu")``; :func:`resolve` turns either into an
``Activation``. Parameters are keywords, each meaningful for some names only; giving one to a
name that has no use for it is an error, never silently ignored. Per-name defaults are filled in,
so two specs that compute the same thing compare equal (``Activation("logistic") ==
Activation("sigmoid")``, ``Activation("relu", surrogate_slope=0.01) == Activation("necro_relu")``).

The table. f is the forward, f' the derivative; "A" in the last column means f' follows from
the layer's output A = f(Z) by an identity, so the backward pass need not keep Z; "Z"
means it needs Z. Where such a unit saturates (A near 1 for sigmoid, ±1 for tanh,
−α for elu, −λα for selu) the identity cancels: f' comes out with an absolute error of about
one rounding of A (1e-7 in float32), not a small relative one (elu's α·e^z at z = −17 in
float32: 6e-8 for 4e-8). PyTorch's sigmoid and tanh backward use the same identities. Such a
unit passes almost no gradient either way.

    name        f(z)                              f'                                     from
    identity    z                                 1                                      A
    relu        max(z, 0)                         step; f'(0) = grad_at_zero             A [1]
    leaky_relu  z > 0 ? z : αz       (α = 0.01)   1 or α; f'(0) = α                      A [2]
    prelu       z > 0 ? z : a_j z    (a_j learned per unit, from α = 0.25)               Z [3]
    elu         z > 0 ? z : α(e^z − 1)  (α = 1)   1, or A + α for z ≤ 0                  A
    selu        λ·elu_α(z)       (λ, α fixed)     λ, or A + λα for z ≤ 0                 A
    swish       z·σ(βz)          (β = 1) [4]      σ(βz)·(1 + βz(1 − σ(βz)))              Z
    silu        z·σ(z)           (swish, β = 1 fixed)                                    Z
    mish        z·t, t = tanh(softplus(z))        t + z(1 − t²)σ(z)                      Z
    softplus    log(1 + e^z)                      σ(z) = 1 − e^(−A)                      A
    sigmoid     1 / (1 + e^−z)   (alias logistic) A(1 − A)                               A
    tanh        tanh(z)                           1 − A²                                 A
    abs         |z|                               sign(z); 0 at 0                        Z [5]
    acon        (p1 − p2)·z·σ(β(p1 − p2)z) + p2·z  (p1, p2, β learned per unit)          Z
    necro_relu  max(z, 0)                         1 (z > 0), surrogate_slope (0.01,      Z [6]
                                                  z < 0), grad_at_zero at 0

    [1] from A when grad_at_zero = 0 (A > 0); A is 0 for z = 0 and z < 0 alike, so otherwise Z.
    [2] α ≥ 0, so A has the sign of z.   [3] a learned slope may turn ≤ 0; its gradient needs z.
    [4] learnable=True learns one β per layer, starting at `beta`.   [5] A loses the sign.
    [6] from A only when grad_at_zero = surrogate_slope.

At z = 0 the kinked functions use: relu, necro_relu → grad_at_zero; leaky_relu, prelu → the
negative-side slope; elu → α and selu → λα (their left limits, as PyTorch); abs → 0.

necro_relu is the "ReLU that cannot die": the forward is ReLU, the backward a surrogate
with a leaky slope for z < 0, so a unit whose inputs all fall below 0 still receives gradient.
``surrogate_slope`` on ``relu`` makes it a necro_relu.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np

# SELU's constants, from Klambauer et al. 2017, "Self-Normalizing Neural Networks", eq. 14
# (λ01, α01: the fixed point of mean 0 and variance 1). Seed 003 misprints α; these are the paper's.
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772

# ACON-C's p1 starts at 1 (the slope for z → +∞), p2 at the `alpha` of the spec, 0.25 by default
# (the slope for z → −∞), β at `beta`, 1 by default: at initialisation ACON-C is then a smooth
# PReLU with He et al.'s initial slope 0.25, whose gradient never vanishes for z < 0 (the dying
# ReLU unit cannot happen). The authors' code (Ma et al. 2021, "Activate or Not") draws
# p1, p2 from N(0, 1) instead; a deterministic start keeps the reference reproducible without a
# generator.
ACON_P1_INIT = 1.0


@dataclass(frozen=True)
class _Kind:
    """One row of the table: the keyword parameters the name takes, with their defaults."""

    defaults: dict[str, object]
    learned: tuple[str, ...] = ()  # names of learned parameter arrays; swish's: see `learnable`


_TABLE = {
    "identity": _Kind({}),
    "relu": _Kind({"grad_at_zero": 0.0, "surrogate_slope": None}),
    "leaky_relu": _Kind({"alpha": 0.01}),
    "prelu": _Kind({"alpha": 0.25, "learnable": True}, ("slope",)),
    "elu": _Kind({"alpha": 1.0}),
    "selu": _Kind({}),
    "swish": _Kind({"beta": 1.0, "learnable": False}, ("beta",)),
    "silu": _Kind({}),
    "mish": _Kind({}),
    "softplus": _Kind({}),
    "sigmoid": _Kind({}),
    "tanh": _Kind({}),
    "abs": _Kind({}),
    "acon": _Kind({"alpha": 0.25, "beta": 1.0, "learnable": True}, ("p1", "p2", "beta")),
    "necro_relu": _Kind({"grad_at_zero": 0.0, "surrogate_slope": 0.01}),
}

NAMES = tuple(_TABLE)
ALIASES = {"logistic": "sigmoid"}
_PARAMETERS = ("alpha", "grad_at_zero", "beta", "learnable", "surrogate_slope")


def _real(value: object, name: str, low: float, high: float = np.inf,
          low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not np.isfinite(value) or bad_low or value > high:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    return value


def _check(name: str, given: dict[str, object]) -> dict[str, object]:
    """The full set of parameter values for `name`: defaults filled in, each value validated."""
    kind = _TABLE[name]
    for param in _PARAMETERS:
        value = given[param]
        unused = value is None or (param == "grad_at_zero" and value == 0.0) or (
            param == "learnable" and value is False)
        if param not in kind.defaults and not unused:
            takes = ", ".join(kind.defaults) or "no parameters"
            raise ValueError(f"activation {name!r} takes no {param} (it takes {takes}), "
                             f"got {param}={value!r}")
    values: dict[str, object] = {p: None for p in _PARAMETERS}
    values["grad_at_zero"], values["learnable"] = 0.0, False
    for param, default in kind.defaults.items():
        values[param] = default if given[param] is None else given[param]
    if values["alpha"] is not None:
        low = {"leaky_relu": 0.0, "elu": 0.0}.get(name, -np.inf)
        values["alpha"] = _real(values["alpha"], "alpha", low, low_open=name == "elu")
    values["grad_at_zero"] = _real(values["grad_at_zero"], "grad_at_zero", 0.0, 1.0)
    if values["beta"] is not None:
        values["beta"] = _real(values["beta"], "beta", -np.inf)
    if values["surrogate_slope"] is not None:
        values["surrogate_slope"] = _real(values["surrogate_slope"], "surrogate_slope", 0.0)
    learnable = values["learnable"]
    if not isinstance(learnable, (bool, np.bool_)):
        raise TypeError(f"learnable must be a bool, got {type(learnable).__name__}")
    if kind.defaults.get("learnable") is True and not learnable:
        fixed = "leaky_relu" if name == "prelu" else "swish"
        raise ValueError(f"activation {name!r} always learns its parameters; learnable=False "
                         f"is not available (a fixed-parameter relative is {fixed!r})")
    values["learnable"] = bool(learnable)
    return values


@dataclass(frozen=True, init=False)
class Activation:
    """An activation and its parameters; see the module docstring for the table.

    Parameters (keywords; each applies to the names listed, and is an error elsewhere)
    ----------
    name : str
        One of :data:`NAMES` or an alias (``"logistic"``).
    alpha : float
        leaky_relu's slope for z < 0 (default 0.01, ≥ 0); prelu's initial slope (0.25); elu's
        α (1.0, > 0); acon's initial p2 (0.25). SELU's α is the paper's constant, not a parameter.
    grad_at_zero : float
        relu's and necro_relu's derivative at exactly 0, in [0, 1]: 0 (PyTorch, scikit-learn),
        0.5 or 1 are the conventions in use.
    beta : float
        swish's β (default 1.0; the initial value when learned); acon's initial β (1.0).
    learnable : bool
        swish: learn β (one per layer) when True. prelu and acon always learn theirs.
    surrogate_slope : float
        necro_relu's backward slope for z < 0 (default 0.01, ≥ 0). Given to relu, it makes the
        spec a necro_relu.
    """

    name: str
    alpha: float | None
    grad_at_zero: float
    beta: float | None
    learnable: bool
    surrogate_slope: float | None

    def __init__(self, name: str, *, alpha: float | None = None, grad_at_zero: float = 0.0,
                 beta: float | None = None, learnable: bool | None = None,
                 surrogate_slope: float | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"activation name must be a str, got {type(name).__name__}")
        name = ALIASES.get(name, name)
        if name not in _TABLE:
            known = ", ".join(repr(n) for n in NAMES + tuple(ALIASES))
            raise ValueError(f"unknown activation {name!r}; expected one of {known}")
        if name == "relu" and surrogate_slope is not None:
            name = "necro_relu"  # relu with a surrogate backward is exactly necro_relu
        given: dict[str, object] = {"alpha": alpha, "grad_at_zero": grad_at_zero, "beta": beta,
                 "learnable": learnable, "surrogate_slope": surrogate_slope}
        object.__setattr__(self, "name", name)
        for param, value in _check(name, given).items():
            object.__setattr__(self, param, value)

    @property
    def param_names(self) -> tuple[str, ...]:
        """The learned parameter arrays this activation owns, e.g. ``("slope",)`` for prelu."""
        return _TABLE[self.name].learned if self.learnable else ()

    @property
    def derivative_needs_z(self) -> bool:
        """Whether f' needs Z; when False it follows from the output A = f(Z) alone."""
        if self.name == "relu":
            return self.grad_at_zero != 0.0
        if self.name == "necro_relu":
            return self.grad_at_zero != self.surrogate_slope
        return self.name in ("prelu", "swish", "silu", "mish", "abs", "acon")


@functools.cache  # only valid names are kept (a bad one raises, uncached)
def _named(name: str) -> Activation:
    return Activation(name)


def resolve(spec: object, name: str = "activation") -> Activation:
    """``spec`` as an :class:`Activation`: a name becomes ``Activation(name)`` (one frozen
    instance per name: checking a name's parameters took microseconds on every call)."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return _named(spec)
    raise TypeError(f"{name} must be a str or a deltaprop Activation, got {type(spec).__name__}")


def resolve_with_grad_at_zero(activation: object,
                              grad_at_zero: float = 0.0) -> Activation:
    """The Activation for a name or spec, with the positional ``grad_at_zero`` folded in.

    With a name, grad_at_zero applies to relu and necro_relu and, as in the engine, is checked
    (in [0, 1]) but ignored for other names. With an Activation, the spec's own grad_at_zero is
    used; a different non-zero grad_at_zero argument is a conflict."""
    if isinstance(activation, str):
        spec = resolve(activation)
        if spec.name in ("relu", "necro_relu"):
            return Activation(spec.name, grad_at_zero=grad_at_zero,
                              surrogate_slope=spec.surrogate_slope)
        Activation("relu", grad_at_zero=grad_at_zero)  # the same range check as the engine
        return spec
    spec = resolve(activation)
    if grad_at_zero != 0.0 and grad_at_zero != spec.grad_at_zero:
        raise ValueError(f"grad_at_zero={grad_at_zero!r} conflicts with the activation's own "
                         f"grad_at_zero={spec.grad_at_zero!r}; set it on the Activation only")
    return spec


__all__ = ["ACON_P1_INIT", "ALIASES", "Activation", "NAMES", "SELU_ALPHA", "SELU_LAMBDA",
           "resolve", "resolve_with_grad_at_zero"]
