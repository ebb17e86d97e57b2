"""The network (csrc/mlp.hpp): L dense layers, hidden layer l with its own activation f_l and,
optionally, a residual block around it; the last layer's Z feeds the fused output + loss.

    Z_l = A_{l-1} W_l + b_l,   A_l = f_l(Z_l)  [+ A_{l-1} in a residual block]     (A_{-1} = X)

Backward, with G_l = ∂C/∂A_l:

    dZ_l = G_l ⊙ f_l'(Z_l),   ∂C/∂W_l = A_{l-1}ᵀ dZ_l,   ∂C/∂b_l = Σ_rows dZ_l,
    G_{l-1} = dZ_l W_lᵀ [+ G_l in a residual block: the skip passes the gradient unchanged]

Parameters are one flat list, per layer W_l (fan_in × fan_out) then b_l: ``params[2l]`` is
``coefs_[l]``, ``params[2l + 1]`` is ``intercepts_[l]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import Activation, resolve
from ..validation import per_layer
from .activations import activation_derivative
from .dense import dense_backward, dense_forward
from .loss import LOSSES, output_loss_delta


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer: its activation, and whether it is a residual block."""

    f: Activation
    residual: bool = False


@dataclass(frozen=True)
class NetSpec:
    """The network the C++ NetSpec describes: sizes (inputs, hidden..., outputs), one LayerSpec
    per hidden layer, the output function and its loss."""

    sizes: tuple
    hidden: tuple
    output: str = "softmax"
    loss: str | None = None

    @classmethod
    def build(cls, layer_sizes, activations="relu", output="softmax", loss=None,
              residual=None) -> NetSpec:
        """Checks the arguments as the C++ engine does: ``activations`` and ``residual`` are one
        value for every hidden layer or a list of one per hidden layer."""
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
        hidden = tuple(LayerSpec(resolve(f), bool(s)) for f, s in zip(fs, skips))
        return cls(sizes, hidden, output, loss)

    @property
    def layers(self) -> int:
        return len(self.sizes) - 1

    def residual(self, l) -> bool:
        return l < self.layers - 1 and self.hidden[l].residual


def mlp_forward(params, X, spec: NetSpec):
    """(Zs, As), one entry per layer. As[-1] is the output layer's Z: its output function
    belongs to the loss."""
    Zs, As = [], []
    inputs = X
    for l in range(spec.layers):
        W, b = params[2 * l], params[2 * l + 1]
        hidden = l < spec.layers - 1
        Z, A = dense_forward(inputs, W, b, spec.hidden[l].f if hidden else "identity")
        if spec.residual(l):
            A = A + inputs
        Zs.append(Z)
        As.append(A)
        inputs = A
    return Zs, As


def mlp_loss_and_gradients(params, X, Y, spec: NetSpec):
    """Forward, loss, backward: (loss, grads), grads shaped like params."""
    L = spec.layers
    Zs, As = mlp_forward(params, X, spec)
    loss, _, dZ = output_loss_delta(Zs[-1], Y, spec.output)
    grads = [None] * len(params)
    G = None  # ∂C/∂A_l of the hidden layer below the one being differentiated
    for l in reversed(range(L)):
        inputs = X if l == 0 else As[l - 1]
        grads[2 * l], grads[2 * l + 1] = dense_backward(dZ, inputs)
        if l == 0:
            break
        G_below = dZ @ params[2 * l].T
        if spec.residual(l):
            G_below = G_below + G
        G = G_below
        dZ = G * activation_derivative(Zs[l - 1], spec.hidden[l - 1].f)
    return loss, grads
