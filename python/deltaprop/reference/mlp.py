"""The network (csrc/mlp.hpp): L dense layers, hidden layers sharing one activation, the last
layer's Z feeding the fused output + loss. Layer l maps sizes[l] -> sizes[l+1];
``coefs[l]`` is W_l (fan_in × fan_out), ``intercepts[l]`` is b_l.
"""

from __future__ import annotations

from .dense import delta_propagate, dense_backward, dense_forward
from .loss import output_loss_delta


def mlp_forward(coefs, intercepts, X, activation="relu"):
    """Returns the lists Zs and As, one entry per layer. As[-1] is the output layer's Z:
    its output function belongs to the loss."""
    Zs, As = [], []
    inputs = X
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        hidden = l < len(coefs) - 1
        Z, A = dense_forward(inputs, W, b, activation if hidden else "identity")
        Zs.append(Z)
        As.append(A)
        inputs = A
    return Zs, As


def mlp_loss_and_gradients(coefs, intercepts, X, Y, activation="relu", grad_at_zero=0.0,
                           output="softmax"):
    """Forward, loss, backward: (loss, dcoefs, dintercepts)."""
    L = len(coefs)
    Zs, As = mlp_forward(coefs, intercepts, X, activation)
    loss, _, dZ = output_loss_delta(Zs[-1], Y, output)
    dcoefs, dintercepts = [None] * L, [None] * L
    for l in reversed(range(L)):
        inputs = X if l == 0 else As[l - 1]
        dcoefs[l], dintercepts[l] = dense_backward(dZ, inputs)
        if l > 0:
            dZ = delta_propagate(dZ, coefs[l], Zs[l - 1], activation, grad_at_zero)
    return loss, dcoefs, dintercepts
