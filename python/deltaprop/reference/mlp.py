"""The network (csrc/mlp.hpp): L dense layers, hidden layer l with its own activation f_l and,
optionally, a residual block around it; the last layer's Z feeds the fused output + loss.

    Z_l = A_{l-1} W_l + b_l,   A_l = D_l(f_l(Z_l))  [+ A_{l-1} in a residual block]   (A_{-1} = X)

D_l is dropout (or AlphaDropout) in training and the identity otherwise: it drops units of the
branch, so a residual block's identity path is never dropped. Backward, with G_l = ∂C/∂A_l:

    dZ_l = D_l'(G_l) ⊙ f_l'(Z_l),   ∂C/∂W_l = A_{l-1}ᵀ dZ_l,   ∂C/∂b_l = Σ_rows dZ_l,
    G_{l-1} = dZ_l W_lᵀ [+ G_l in a residual block: the skip passes the gradient unchanged]

Parameters are one flat list, per layer W_l (fan_in × fan_out), b_l, then the learned
parameters of hidden layer l's activation (prelu's slope, swish's β, acon's p1, p2, β) in
``Activation.param_names`` order; :meth:`NetSpec.unpack` splits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import ActivationArg, ActivationParams, BoolArray, FloatArray
from ..activations import Activation, resolve
from ..validation import per_layer
from .activations import activation_backward, activation_forward, activation_param_gradients
from .dense import dense_backward, dense_forward
from .dropout import (
    alpha_dropout_backward,
    alpha_dropout_forward,
    dropout_backward,
    dropout_forward,
    dropout_mask,
)
from .loss import LOSSES, output_loss_delta

# One layer's parameters from the flat list: W_l, b_l and its activation's learned ones by name.
Layer = tuple[FloatArray, FloatArray, ActivationParams]
# What mlp_loss_and_gradients records per layer for the health statistics: "Z" and "dZ".
Trace = dict[str, list[Any]]
# (seed, epoch, batch): the counters of one training batch's dropout masks
DropoutKey = tuple[int, int, int]


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer: its activation, whether it is a residual block, and the dropout rate
    of its branch f(Z) in training (AlphaDropout, SELU's partner, when ``alpha_dropout``)."""

    f: Activation
    residual: bool = False
    dropout: float = 0.0
    alpha_dropout: bool = False


@dataclass(frozen=True)
class NetSpec:
    """The network the C++ NetSpec describes: sizes (inputs, hidden..., outputs), one LayerSpec
    per hidden layer, the output function and its loss (None: the output's own; huber_delta
    for "huber"; mean_over_outputs divides each row's loss value, not its gradient, by the
    outputs, as scikit-learn's squared error does, and clip_probabilities clips the log losses'
    probabilities as scikit-learn's do: loss.output_loss_delta)."""

    sizes: tuple[int, ...]
    hidden: tuple[LayerSpec, ...]
    output: str = "softmax"
    loss: str | None = None
    huber_delta: float = 1.0
    mean_over_outputs: bool = False
    clip_probabilities: bool = False

    @classmethod
    def build(cls, layer_sizes: Sequence[int],
              activations: ActivationArg | Sequence[ActivationArg] = "relu",
              output: str = "softmax", loss: str | None = None,
              residual: bool | Sequence[bool] | None = None, huber_delta: float = 1.0,
              dropout: float | Sequence[float] | None = None,
              alpha_dropout: bool = False, mean_over_outputs: bool = False,
              clip_probabilities: bool = False) -> NetSpec:
        """Checks the arguments as the C++ engine does: ``activations``, ``residual`` and
        ``dropout`` (rates in [0, 1)) are one value for every hidden layer or a list of one per
        hidden layer."""
        sizes = tuple(int(s) for s in layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least 2 entries (inputs and outputs), "
                             f"got {len(sizes)}")
        n_hidden = len(sizes) - 2
        fs = per_layer(activations, n_hidden, "activations")
        skips = per_layer(False if residual is None else residual, n_hidden, "residual")
        for l, skip in enumerate(skips):
            if skip and sizes[l] != sizes[l + 1]:
                raise ValueError(f"residual[{l}]: a residual block adds its input to its output, "
                                 f"so hidden layer {l} needs as many inputs as units, got "
                                 f"{sizes[l]} -> {sizes[l + 1]}")
        if output not in LOSSES:
            raise ValueError(f"unknown output {output!r}; expected one of "
                             f"{', '.join(map(repr, LOSSES))}")
        if loss is not None and loss not in LOSSES[output]:
            raise ValueError(f"loss {loss!r} is not available for output {output!r}; expected "
                             f"one of {', '.join(map(repr, LOSSES[output]))}")
        for l, skip in enumerate(skips):
            if not isinstance(skip, (bool, np.bool_)):
                raise TypeError(f"residual[{l}] must be a bool, got {type(skip).__name__}")
        rates = per_layer(0.0 if dropout is None else dropout, n_hidden, "dropout")
        for l, rate in enumerate(rates):
            if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)):
                raise TypeError(f"dropout[{l}] must be a real number, got {type(rate).__name__}")
            if not 0 <= rate < 1:
                raise ValueError(f"dropout[{l}] must be in [0, 1), got {rate}")
        if not isinstance(alpha_dropout, (bool, np.bool_)):
            raise TypeError(f"alpha_dropout must be a bool, got {type(alpha_dropout).__name__}")
        hidden = tuple(LayerSpec(resolve(f), bool(s), float(r), bool(alpha_dropout))
                       for f, s, r in zip(fs, skips, rates))
        for name, flag in (("loss_mean_over_outputs", mean_over_outputs),
                           ("loss_clip_probabilities", clip_probabilities)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        return cls(sizes, hidden, output, loss, huber_delta, bool(mean_over_outputs),
                   bool(clip_probabilities))

    def loss_options(self) -> dict[str, Any]:
        """The keywords of loss.output_loss_delta that this network's loss sets."""
        return dict(loss=self.loss, huber_delta=self.huber_delta,
                    mean_over_outputs=self.mean_over_outputs,
                    clip_probabilities=self.clip_probabilities)

    @property
    def layers(self) -> int:
        return len(self.sizes) - 1

    def residual(self, l: int) -> bool:
        return l < self.layers - 1 and self.hidden[l].residual

    def param_names(self, l: int) -> tuple[str, ...]:
        """The learned activation parameters of layer l (none for the output layer)."""
        return self.hidden[l].f.param_names if l < self.layers - 1 else ()

    def weight_indices(self) -> list[int]:
        """Where each W_l sits in the flat list (L2 decays these only)."""
        indices: list[int] = []
        a = 0
        for l in range(self.layers):
            indices.append(a)
            a += 2 + len(self.param_names(l))
        return indices

    def unpack(self, params: Sequence[FloatArray]) -> list[Layer]:
        """[(W_l, b_l, {name: θ}) per layer] from the flat list."""
        layers: list[Layer] = []
        a = 0
        for l in range(self.layers):
            names = self.param_names(l)
            layers.append((params[a], params[a + 1], dict(zip(names, params[a + 2:]))))
            a += 2 + len(names)
        if a != len(params):
            raise ValueError(f"params has {len(params)} arrays, but the network has {a}")
        return layers


def dropout_masks(spec: NetSpec, rows: int, key: DropoutKey | None) -> dict[int, BoolArray]:
    """The keep-masks of one training batch, {hidden layer: mask} for the layers that drop;
    ``key`` is (seed, epoch, batch) (dropout.py's counters). None outside training."""
    if key is None:
        return {}
    return {l: dropout_mask((rows, spec.sizes[l + 1]), layer.dropout, *key, l)
            for l, layer in enumerate(spec.hidden) if layer.dropout > 0}


def _drop(F: FloatArray, layer: LayerSpec, mask: BoolArray) -> FloatArray:
    forward = alpha_dropout_forward if layer.alpha_dropout else dropout_forward
    return forward(F, mask, layer.dropout)


def _drop_backward(G: FloatArray, layer: LayerSpec, mask: BoolArray) -> FloatArray:
    backward = alpha_dropout_backward if layer.alpha_dropout else dropout_backward
    return backward(G, mask, layer.dropout)


def mlp_forward(params: Sequence[FloatArray], X: FloatArray, spec: NetSpec,
                masks: Mapping[int, BoolArray] | None = None,
                ) -> tuple[list[FloatArray], list[FloatArray]]:
    """(Zs, As), one entry per layer. As[-1] is the output layer's Z: its output function
    belongs to the loss. ``masks`` (from :func:`dropout_masks`) drops units of each hidden
    layer's branch f(Z) before the residual sum, in training only."""
    Zs: list[FloatArray] = []
    As: list[FloatArray] = []
    masks = masks or {}
    inputs = X
    for l, (W, b, P) in enumerate(spec.unpack(params)):
        hidden = l < spec.layers - 1
        Z, A = dense_forward(inputs, W, b, "identity")
        if hidden:
            A = activation_forward(Z, spec.hidden[l].f, P or None)
        if l in masks:
            A = _drop(A, spec.hidden[l], masks[l])
        if spec.residual(l):
            A = A + inputs
        Zs.append(Z)
        As.append(A)
        inputs = A
    return Zs, As


def mlp_loss_and_gradients(params: Sequence[FloatArray], X: FloatArray, Y: FloatArray,
                           spec: NetSpec, sample_weight: npt.ArrayLike | None = None,
                           dropout_key: DropoutKey | None = None, trace: Trace | None = None,
                           ) -> tuple[float, list[FloatArray]]:
    """Forward, loss, backward: (loss, grads), grads a flat list shaped like params. With
    ``sample_weight`` the loss is Σ s_n ℓ_n / Σ s_n (loss.py); with ``dropout_key``
    (seed, epoch, batch) the hidden layers drop units as in training. A dict ``trace`` receives
    the per-layer lists "Z" and "dZ" (what the health statistics read)."""
    layers = spec.unpack(params)
    masks = dropout_masks(spec, X.shape[0], dropout_key)
    Zs, As = mlp_forward(params, X, spec, masks)
    dZs: list[FloatArray | None] = [None] * spec.layers
    if trace is not None:
        trace.update(Z=Zs, dZ=dZs)
    loss, _, dZ = output_loss_delta(Zs[-1], Y, spec.output, sample_weight=sample_weight,
                                    **spec.loss_options())
    grads: list[FloatArray] = []  # built from the last layer down, reversed at the end
    G: FloatArray | None = None  # ∂C/∂A_l of the hidden layer below the one being differentiated

    for l in reversed(range(spec.layers)):
        W, _, _ = layers[l]
        dZs[l] = dZ
        inputs = X if l == 0 else As[l - 1]
        grads.extend(reversed(dense_backward(dZ, inputs)))
        if l == 0:
            break
        G_below = dZ @ W.T
        if spec.residual(l):
            assert G is not None  # the output layer, differentiated first, is never residual
            G_below = G_below + G

        G = G_below
        f, P = spec.hidden[l - 1].f, layers[l - 1][2]
        dF = _drop_backward(G, spec.hidden[l - 1], masks[l - 1]) if l - 1 in masks else G
        dZ = activation_backward(dF, Zs[l - 1], f, params=P or None)
        dP = activation_param_gradients(dF, Zs[l - 1], f, P) if P else {}
        grads.extend(reversed([dP[name] for name in f.param_names]))
    return loss, grads[::-1]
