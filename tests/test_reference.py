"""The oracle checks itself: the NumPy reference against central finite differences, and both
backends against the seeds' worked examples (design.md section 1)."""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import reference as ref

OUTPUTS = ["identity", "sigmoid", "softmax"]


def make_problem(rng, sizes, output):
    X = rng.standard_normal((9, sizes[0]))
    if output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 9)]
    elif output == "sigmoid":
        Y = rng.integers(0, 2, (9, sizes[-1])).astype(float)
    else:
        Y = rng.standard_normal((9, sizes[-1]))
    coefs = [rng.standard_normal((i, o)) * np.sqrt(2 / i) for i, o in zip(sizes, sizes[1:])]
    intercepts = [rng.standard_normal(o) * 0.1 for o in sizes[1:]]
    return X, Y, coefs, intercepts


def finite_difference_gradients(loss_of, params, h=1e-6):
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            saved = p[i]
            p[i] = saved + h
            up = loss_of()
            p[i] = saved - h
            down = loss_of()
            p[i] = saved
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def check_gradients_by_finite_differences(sizes, output, rng, dropout_key=None, **net):
    X, Y, coefs, intercepts = make_problem(rng, sizes, output)
    spec = ref.NetSpec.build(sizes, output=output, **net)
    params = []
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        # learned activation parameters away from their initial values, so none is special
        f = spec.hidden[l].f if l < len(spec.hidden) else "identity"
        initial = ref.init_activation_params(f, b.size)
        params += [W, b] + [rng.uniform(0.5, 1.5, v.shape) for v in initial.values()]

    def loss_of():
        return ref.mlp_loss_and_gradients(params, X, Y, spec, dropout_key=dropout_key)[0]

    _, grads = ref.mlp_loss_and_gradients(params, X, Y, spec, dropout_key=dropout_key)
    expected = finite_difference_gradients(loss_of, params)
    for a, (got, want) in enumerate(zip(grads, expected)):
        rel = np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)
        assert rel < 1e-6, f"params[{a}]: relative error {rel:.2e}"


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
def test_reference_gradients_match_finite_differences(rng, output, activation):
    check_gradients_by_finite_differences([5, 7, 6, 4, 3], output, rng,  # three hidden layers
                                          activations=activation)


@pytest.mark.parametrize("net", [
    dict(activations=["relu", "tanh", "elu"]),
    dict(activations="tanh", residual=[False, True, True]),
    dict(activations=["sigmoid", "relu", "softplus"], residual=[False, False, True]),
    dict(activations=["relu", "selu", "tanh"], residual=[False, True, False]),
    dict(activations=["prelu", dp.Activation("swish", learnable=True), "acon"],
         residual=[False, True, False]),
], ids=["per-layer", "residual", "residual-top", "residual-middle", "learned"])
def test_per_layer_and_residual_gradients_match_finite_differences(rng, net):
    check_gradients_by_finite_differences([5, 6, 6, 6, 3], "softmax", rng, **net)


@pytest.mark.parametrize("alpha_dropout", [False, True])
def test_dropout_gradients_match_finite_differences(rng, alpha_dropout):
    """With its masks fixed by (seed, epoch, batch), a training step is a differentiable
    function of the parameters like any other."""
    check_gradients_by_finite_differences(
        [5, 6, 6, 6, 3], "softmax", rng, dropout_key=(7, 2, 5), activations="selu",
        residual=[False, True, False], dropout=[0.3, 0.5, 0.2], alpha_dropout=alpha_dropout)


@pytest.mark.parametrize("output", OUTPUTS)
def test_output_delta_is_the_gradient_of_the_loss(rng, output):
    _, Y, _, _ = make_problem(rng, [2, 4], output)
    Z = rng.standard_normal(Y.shape) * 3
    _, _, dZ = ref.output_loss_delta(Z, Y, output)
    (fd,) = finite_difference_gradients(lambda: ref.output_loss_delta(Z, Y, output)[0], [Z])
    np.testing.assert_allclose(dZ, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("output", OUTPUTS)
def test_loss_values_match_their_textbook_definitions(rng, output):
    _, Y, _, _ = make_problem(rng, [2, 4], output)
    Z = rng.standard_normal(Y.shape)
    loss, A, _ = ref.output_loss_delta(Z, Y, output)
    n = Z.shape[0]
    if output == "identity":
        expected = 0.5 * ((Z - Y) ** 2).sum() / n
    elif output == "sigmoid":
        P = 1 / (1 + np.exp(-Z))
        expected = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum() / n
    else:
        P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
        expected = -(Y * np.log(P)).sum() / n
        np.testing.assert_allclose(A.sum(axis=1), 1.0)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_softmax_loss_is_stable_for_huge_logits(kernels):
    Z = np.array([[1000.0, 0.0, -1000.0], [-5000.0, 5000.0, 0.0]])
    Y = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    loss, A, dZ = kernels.output_loss_delta(Z, Y, "softmax")
    assert np.isfinite(loss) and np.isfinite(A).all() and np.isfinite(dZ).all()
    assert loss == pytest.approx(10000.0 / 2)  # row 2 misses by 10000 nats, row 1 by 0


# -- the seeds' worked examples, on both backends -------------------------------------------


@pytest.mark.parametrize("x, w, y", [(2.0, 0.7, 1.0), (2.0, -0.7, 1.0), (-1.5, 0.4, -0.3)])
def test_seed000_one_relu_neuron(kernels, x, w, y):
    """Seed 000: C = ½(y − ŷ)², ŷ = ReLU(w x) ⇒ ∂C/∂w = (ReLU(w x) − y) · Step(w x) · x."""
    X, W, b = np.array([[x]]), np.array([[w]]), np.zeros(1)
    Z, A = kernels.dense_forward(X, W, b, "relu")
    dZ = kernels.relu_backward(A - y, Z)
    dW, db = kernels.dense_backward(dZ, X)
    relu, step = max(w * x, 0.0), float(w * x > 0)
    assert dW[0, 0] == (relu - y) * step * x
    assert db[0] == (relu - y) * step


@pytest.mark.parametrize("grad_at_zero", [0.0, 0.5, 1.0])
def test_relu_step_at_zero_is_the_chosen_convention(kernels, grad_at_zero):
    Z = np.array([[-2.0, -0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(kernels.relu_step(Z, grad_at_zero),
                                  [[0.0, grad_at_zero, grad_at_zero, 1.0]])
    np.testing.assert_array_equal(kernels.relu_forward(Z), [[0.0, 0.0, 0.0, 3.0]])


@pytest.mark.parametrize("x, w_h, w_o, y", [(1.5, 0.8, 1.2, 0.5), (1.5, 0.8, -1.2, 0.5),
                                            (-1.0, 0.8, 1.2, 2.0), (0.5, 2.0, 0.25, 3.0)])
def test_seed003_two_layer_scalar_network(kernels, x, w_h, w_o, y):
    """Seed 003: E_o = (ŷ − y)·R'(Z_o), E_h = E_o·W_o·R'(Z_h), ∂C/∂W_o = E_o·H, ∂C/∂W_h = E_h·x."""
    X, Wh, Wo, zero = np.array([[x]]), np.array([[w_h]]), np.array([[w_o]]), np.zeros(1)
    Zh, H = kernels.dense_forward(X, Wh, zero, "relu")
    Zo, y_hat = kernels.dense_forward(H, Wo, zero, "relu")
    Eo = kernels.relu_backward(y_hat - y, Zo)
    Eh = kernels.delta_propagate(Eo, Wo, Zh, "relu")
    dWo, _ = kernels.dense_backward(Eo, H)
    dWh, _ = kernels.dense_backward(Eh, X)

    def R(z):
        return max(z, 0.0)

    def dR(z):
        return float(z > 0)

    z_h = x * w_h
    h = R(z_h)
    z_o = h * w_o
    e_o = (R(z_o) - y) * dR(z_o)
    e_h = e_o * w_o * dR(z_h)
    assert Eo[0, 0] == e_o and Eh[0, 0] == e_h
    assert dWo[0, 0] == e_o * h and dWh[0, 0] == e_h * x


def test_reference_and_engine_share_the_activation_and_output_names():
    from deltaprop.activations import ALIASES
    # every engine name is in the reference's table (or an alias of one of its names) ...
    assert set(dp._core.ACTIVATIONS) <= set(dp.reference.ALL_ACTIVATIONS) | set(ALIASES)
    # ... and the names the model accepts are all in the engine
    assert set(dp.reference.ACTIVATIONS) <= set(dp._core.ACTIVATIONS)
    assert set(dp.reference.OUTPUTS) == set(dp._core.OUTPUTS)
