"""The engine's ReLU family against the NumPy reference: forward, derivative and backward
elementwise, and fused into the GEMM epilogues (dense forward, delta propagation) on every
instruction-set path, for both dtypes, at points that include the kinks and saturation."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, assert_close

import deltaprop as dp
from deltaprop import reference as ref
from deltaprop.activations import Activation

ENGINE_FAMILY = [
    Activation("identity"), Activation("relu"), Activation("relu", grad_at_zero=0.5),
    Activation("relu", grad_at_zero=1.0), Activation("leaky_relu"),
    Activation("leaky_relu", alpha=0.2), Activation("elu"), Activation("elu", alpha=0.5),
    Activation("selu"), Activation("softplus"), Activation("sigmoid"), Activation("tanh"),
    Activation("abs"), Activation("swish", beta=1.7), Activation("silu"), Activation("mish"),
    Activation("necro_relu"), Activation("necro_relu", surrogate_slope=0.1, grad_at_zero=0.1),
]
IDS = [repr(a).replace("Activation", "").replace(" ", "") for a in ENGINE_FAMILY]


def points(rng, shape, dtype):
    Z = (rng.standard_normal(shape) * 3).astype(dtype)
    Z.flat[::7] = 0  # the kinks
    Z.flat[1:4] = [40, -40, 1e-30]  # saturation, underflow
    return Z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ENGINE_FAMILY, ids=IDS)
def test_elementwise_forward_derivative_backward(rng, dtype, activation):
    Z = points(rng, (40, 33), dtype)
    dA = rng.standard_normal(Z.shape).astype(dtype)
    assert_close(dp.ops.activation_forward(Z, activation), ref.activation_forward(Z, activation),
                 what="forward")
    assert_close(dp.ops.activation_derivative(Z, activation),
                 ref.activation_derivative(Z, activation), what="derivative")
    assert_close(dp.ops.activation_backward(dA, Z, activation),
                 ref.activation_backward(dA, Z, activation), what="backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ENGINE_FAMILY, ids=IDS)
def test_fused_epilogues_on_every_path(isa, rng, dtype, activation):
    n, i, o = 37, 70, 45
    X = rng.standard_normal((n, i)).astype(dtype)
    W = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dZ = rng.standard_normal((n, o)).astype(dtype)
    Z_prev = points(rng, (n, i), dtype)
    Z, A = dp.ops.dense_forward(X, W, b, activation)
    Z_ref = X @ W + b
    assert_close(Z, Z_ref, what="Z")
    assert_close(A, ref.activation_forward(Z_ref, activation), what="A from the epilogue")
    assert_close(dp.ops.delta_propagate(dZ, W, Z_prev, activation),
                 (dZ @ W.T) * ref.activation_derivative(Z_prev, activation),
                 what="delta with the derivative epilogue")


def test_names_resolve_with_their_defaults():
    Z = np.linspace(-3, 3, 13).reshape(1, -1)
    leaky = Activation("leaky_relu", alpha=0.01)
    np.testing.assert_array_equal(dp.ops.activation_forward(Z, "leaky_relu"),
                                  dp.ops.activation_forward(Z, leaky))
    np.testing.assert_array_equal(dp.ops.activation_forward(Z, "silu"),
                                  dp.ops.activation_forward(Z, Activation("swish", beta=1.0)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ENGINE_FAMILY, ids=IDS)
def test_model_training_runs_match_the_reference(rng, dtype, activation):
    X = rng.standard_normal((120, 12))
    y = rng.integers(0, 3, 120)
    nets = [dp.MLP([12, 24, 16, 3], activation, dtype=dtype, seed=4, backend=backend)
            for backend in ("cpp", "numpy")]
    histories = [net.fit(X, y, epochs=3, batch_size=12, lr=0.05, momentum=0.9)  # 30 steps
                 for net in nets]
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(np.array(histories[0].loss), np.array(histories[1].loss), rtol=rtol)
    for a, b in zip(nets[0].coefs_ + nets[0].intercepts_, nets[1].coefs_ + nets[1].intercepts_):
        assert_close(a, b, rtol=rtol)


def test_an_activation_spec_survives_save_and_load(tmp_path, rng):
    X = rng.standard_normal((20, 5))
    net = dp.MLP([5, 8, 2], Activation("leaky_relu", alpha=0.2), seed=1)
    net.fit(X, rng.integers(0, 2, 20), epochs=2)
    net.save(tmp_path / "leaky.dp")
    loaded = dp.MLP.load(tmp_path / "leaky.dp")
    assert loaded.activation == Activation("leaky_relu", alpha=0.2)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


@pytest.mark.parametrize("activation", ["prelu", "acon", Activation("swish", learnable=True)])
def test_fused_ops_refuse_learned_activations_clearly(activation):
    """A fused product has nowhere to take per-unit parameters from."""
    X, W, b = np.ones((3, 4)), np.ones((4, 5)), np.ones(5)
    with pytest.raises(ValueError, match="learns parameters"):
        dp.ops.dense_forward(X, W, b, activation)
    with pytest.raises(ValueError, match="learns parameters"):
        dp.ops.delta_propagate(np.ones((3, 5)), W, X, activation)


def test_selu_networks_start_from_lecun_normal_weights():
    net = dp.MLP([400, 300, 2], "selu", seed=0)
    std = net.coefs_[0].std()
    assert abs(std - np.sqrt(1 / 400)) < 0.05 * np.sqrt(1 / 400)  # LeCun: variance 1 / fan_in
