"""Initial weights, drawn from a seeded NumPy generator in a fixed order (layer by layer, weights
then biases), so a seed gives the same network on every backend and machine."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Union

import numpy as np
import numpy.typing as npt

from ._typing import ActivationArg, ActivationsArg, FloatArray, Rng
from .activations import Activation, resolve
from .reference.activations import _given
from .validation import check_dtype, check_int, check_name, check_real, per_layer

# -- named schemes --------------------------------------------------------------------------------
#
# Each draws a layer's W (fan_in × fan_out) from a zero-mean distribution whose variance keeps the
# signal's scale from layer to layer (Var = 1/3 bound² for uniform, std² for normal):
#
#   he_uniform, he_normal  Var = gain / fan_in, gain = 2 / (1 + a²), a the slope for z < 0
#                          (He et al. 2015, "Delving Deep into Rectifiers", eq. 10 and 15): the
#                          ReLU family, where about half the units are off
#   lecun_normal           Var = 1 / fan_in (LeCun et al. 1998, "Efficient BackProp"): SELU's
#                          partner, with it activations settle at mean 0, variance 1
#                          (Klambauer et al. 2017)
#   glorot_uniform, _normal  Var = 2 / (fan_in + fan_out) (Glorot & Bengio 2010): tanh, sigmoid
#   sklearn                scikit-learn's MLP exactly (_multilayer_perceptron.py, _init_coef, 1.9):
#                          per layer in order W ~ U(−b, b) then b ~ U(−b, b), b = √(6 / (fan_in +
#                          fan_out)), 6 → 2 for a logistic network, from np.random.RandomState
#
# Normal schemes draw from a plain normal, as PyTorch does (Keras truncates at 2σ and rescales).
# Values are drawn in float64 and then cast to the dtype, so a seed gives the same network in
# float32 and float64 up to rounding.

INIT_SCHEMES = ("he_uniform", "he_normal", "lecun_normal", "glorot_uniform", "glorot_normal",
                "sklearn")
_HE_FAMILY = ("relu", "leaky_relu", "prelu", "necro_relu", "elu")  # linear for z > 0


def default_init(activation: ActivationArg) -> str:
    """The scheme for a hidden layer of this activation: He (uniform) for the ReLU family, ELU
    included (it is the identity for z > 0); LeCun normal for SELU; Glorot uniform otherwise."""
    name = resolve(activation).name
    if name in _HE_FAMILY:
        return "he_uniform"
    return "lecun_normal" if name == "selu" else "glorot_uniform"


def _negative_slope(spec: Activation) -> float:
    """a in He's gain 2 / (1 + a²): the forward's slope for z < 0."""
    return _given(spec.alpha) if spec.name in ("leaky_relu", "prelu") else 0.0


_Draws = Union[np.random.Generator, np.random.RandomState]


def _generator(rng: object) -> _Draws:
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if rng is None:
        return np.random.default_rng(rng)
    if not isinstance(rng, bool) and isinstance(rng, numbers.Integral):
        return np.random.default_rng(int(rng))  # the same seed: int() of an Integral is exact
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got "
                    f"{type(rng).__name__}")


def _random_state(rng: object) -> np.random.RandomState:
    """scikit-learn's check_random_state: None → NumPy's global RandomState, an int → a new
    RandomState(seed), a RandomState → itself."""
    if rng is None:
        return np.random.mtrand._rand
    if not isinstance(rng, bool) and isinstance(rng, numbers.Integral):
        return np.random.RandomState(int(rng))  # the same seed: int() of an Integral is exact
    if isinstance(rng, np.random.RandomState):
        return rng
    raise TypeError(f"the 'sklearn' scheme draws from np.random.RandomState, as scikit-learn "
                    f"does: rng must be an int seed, a RandomState or None, got "
                    f"{type(rng).__name__}")


def _draw(rng: _Draws, scheme: str, fan_in: int, fan_out: int,
          gain: float) -> npt.NDArray[np.float64]:
    if scheme == "he_uniform":
        bound = np.sqrt(3.0 * gain / fan_in)
    elif scheme == "glorot_uniform":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
    else:
        std = {"he_normal": np.sqrt(gain / fan_in), "lecun_normal": np.sqrt(1.0 / fan_in),
               "glorot_normal": np.sqrt(2.0 / (fan_in + fan_out))}[scheme]
        return rng.normal(0.0, std, (fan_in, fan_out))
    return rng.uniform(-bound, bound, (fan_in, fan_out))


def init_network(layer_sizes: Sequence[int], activation: ActivationsArg = "relu",
                 rng: Rng = None, dtype: npt.DTypeLike = "float64", *,
                 scheme: str | None | Sequence[str | None] = None,
                 bias_init: float | None | Sequence[float | None] = None,
                 residual: Sequence[bool] | None = None,
                 ) -> tuple[list[FloatArray], list[FloatArray]]:
    """(coefs, intercepts): initial weights and biases for a network of these layer sizes.

    activation : a name or Activation for every hidden layer, or a list of them (one per hidden
        layer); it picks each hidden layer's default scheme and He's gain.
    rng : a numpy Generator, or an int seed or None (a new default_rng); for the "sklearn"
        scheme an int seed, a RandomState or None (as scikit-learn's random_state).
    scheme : None (each hidden layer :func:`default_init` of its activation, the output layer
        glorot_uniform), one of INIT_SCHEMES for every layer, or a list with one per layer.
        "sklearn" applies to the whole network or not at all.
    bias_init : None (zeros; for "sklearn", its uniform draws), a constant for every layer, or a
        list of constants (or None) per layer. Seed 003: a small positive bias such as 0.01
        keeps ReLU units alive at the start. With "sklearn" the bias draws still happen, so the
        weights stay scikit-learn's.
    residual : None, or one bool per hidden layer: the residual blocks. Their weights are drawn
        as their scheme says and then scaled by 1/B, B the number of blocks, so every block
        A + f(AW + b) starts close to the identity (the insight of SkipInit and ReZero, without
        their extra scalar) and B blocks together add about one layer's worth of signal. With
        the scheme's weights unscaled the stream's variance would double per block; GPT-2's
        1/√B contains the variance of a centred f, but ReLU's outputs have a positive mean that
        adds up coherently over the blocks (measured at depth 32: the first block's weight
        gradient 20× below the last one's with 1/√B, within 1.5× with 1/B).
        Not applied to the "sklearn" scheme, which has no residual blocks.
    """
    sizes = [check_int(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)]
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes must list at least 2 sizes, got {layer_sizes!r}")
    dtype = check_dtype(dtype)
    L = len(sizes) - 1
    hidden = [resolve(a) for a in per_layer(activation, L - 1, "activation")]
    schemes = per_layer(scheme, L, "scheme")
    if "sklearn" in schemes and schemes != ["sklearn"] * L:
        raise ValueError("scheme 'sklearn' applies to the whole network; it cannot be mixed "
                         "with other schemes")
    defaults = [default_init(a) for a in hidden] + ["glorot_uniform"]
    schemes = [d if s is None else check_name(s, "scheme", INIT_SCHEMES)
               for s, d in zip(schemes, defaults)]
    biases = [None if b is None else check_real(b, "bias_init", -np.inf)
              for b in per_layer(bias_init, L, "bias_init")]
    sklearn = schemes[0] == "sklearn"
    draw_from = _random_state(rng) if sklearn else _generator(rng)
    if not isinstance(activation, (list, tuple)):
        network_activation = resolve(activation)
    else:
        network_activation = hidden[-1] if hidden else resolve("relu")
    blocks = [False] * (L - 1) if residual is None else per_layer(residual, L - 1, "residual")
    branch_scale = 1.0 / max(1, sum(blocks))
    coefs: list[FloatArray] = []
    intercepts: list[FloatArray] = []

    for l in range(L):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        if sklearn:
            factor = 2.0 if network_activation.name == "sigmoid" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = draw_from.uniform(-bound, bound, (fan_in, fan_out))
            b = draw_from.uniform(-bound, bound, fan_out)
        else:
            a = _negative_slope(hidden[l]) if l < L - 1 else 0.0
            W = _draw(draw_from, schemes[l], fan_in, fan_out, 2.0 / (1.0 + a * a))
            if l < L - 1 and blocks[l]:
                W *= branch_scale
            b = np.zeros(fan_out)
        if biases[l] is not None:
            b = np.full(fan_out, biases[l])
        coefs.append(W.astype(dtype, copy=False))
        intercepts.append(b.astype(dtype, copy=False))
    return coefs, intercepts
