"""fit(record_health=True): the gradient health gathered inside the C++ epoch loop, against the
reference twin, and the facts it must show."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import DTYPES, assert_close
from test_model import problem

import deltaprop as dp
from deltaprop.diagnostics import HealthWarning
from deltaprop.model import HEALTH_ROWS

NETS = {
    "plain": dict(sizes=[12, 16, 16, 4], activation=["relu", "sigmoid"]),
    "residual": dict(sizes=[12, 16, 16, 16, 4], activation=["tanh", "swish", "elu"],
                     residual=[False, True, True]),
    "dropout": dict(sizes=[12, 16, 16, 16, 4], activation=["relu", "mish", "selu"],
                    residual=[False, False, True], dropout=0.3),
    "learned": dict(sizes=[12, 16, 16, 16, 4],
                    activation=["prelu", dp.Activation("swish", learnable=True), "acon"],
                    residual=[False, True, False]),
}


def recorded(backend, name, dtype, optimizer="sgd", **fit):
    net_args = dict(NETS[name])
    net = dp.MLP(net_args.pop("sizes"), **net_args, dtype=dtype, seed=1, backend=backend)
    X, Y = problem(np.random.default_rng(0), "softmax", n=300)
    net.fit(X, Y, epochs=3, batch_size=16, lr=0.05, momentum=0.9, optimizer=optimizer,
            record_health=True, **fit)
    return net


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_recorded_health_matches_reference(name, dtype, optimizer):
    cpp = recorded("cpp", name, dtype, optimizer)
    ref = recorded("numpy", name, dtype, optimizer)
    L = len(cpp.coefs_)
    for row in HEALTH_ROWS:
        got, want = cpp.health_[row], ref.health_[row]
        assert got.shape == (3, L)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert_close(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-4, what=row)
    assert np.isnan(cpp.health_["dead_fraction"][:, -1]).all()  # the output layer has no f'
    assert (cpp.health_["grad_norm"] > 0).all()


# Without health, the L2 decay is folded into the optimizer's pass over each weight array
# (csrc/optim.hpp, decay_and_step); with it, it is a pass of its own before the step. Both must
# give the same bits, and the same loss.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_recording_health_does_not_change_the_trained_weights(dtype, optimizer, alpha):
    X, Y = problem(np.random.default_rng(0), "softmax", n=200)
    nets = [dp.MLP([12, 20, 20, 4], seed=2, dtype=dtype) for _ in range(2)]
    histories = [net.fit(X, Y, epochs=3, batch_size=8, lr=0.05, momentum=0.9, optimizer=optimizer,
                         alpha=alpha, record_health=record)
                 for net, record in zip(nets, [False, True])]
    for a, b in zip(nets[0].coefs_ + nets[0].intercepts_, nets[1].coefs_ + nets[1].intercepts_):
        np.testing.assert_array_equal(a, b)
    assert histories[0].loss == histories[1].loss


def test_a_large_negative_bias_shows_as_dead_units():
    X, Y = problem(np.random.default_rng(0), "softmax", n=200)
    net = dp.MLP([12, 32, 32, 4], "relu", bias_init=[-10.0, -10.0, 0.0])
    with pytest.warns(HealthWarning, match="layers 0, 1: up to 100% of the units are dead"):
        net.fit(X, Y, epochs=2, lr=0.01, record_health=True)
    assert (net.health_["dead_fraction"][:, :2] > 0.9).all()
    assert (net.health_["zero_fraction"][:, :2] > 0.9).all()
    healthy = dp.MLP([12, 32, 32, 4], "relu")
    healthy.fit(X, Y, epochs=2, lr=0.01, record_health=True)
    assert (healthy.health_["dead_fraction"][:, :2] < 0.2).all()
    assert (abs(healthy.health_["zero_fraction"][:, :2] - 0.5) < 0.2).all()  # He init: ~half


def test_saturated_sigmoid_units_are_counted():
    """Seed 003's "network paralysis": a large input pins sigmoid units at 1, where their
    derivative (at most 1/4) all but vanishes; fit warns about the layer."""
    X, Y = problem(np.random.default_rng(0), "softmax", n=200)
    net = dp.MLP([12, 16, 4], "sigmoid", seed=3)
    net.intercepts_[0][:12] = 15.0  # f' near e^-15: tiny, yet not 0 in float64
    with pytest.warns(HealthWarning, match="layer 0: up to 75% of the units are saturated"):
        net.fit(X, Y, epochs=1, lr=0.0, record_health=True)
    assert net.health_["saturated_fraction"][0, 0] == 12 / 16
    assert net.health_["dead_fraction"][0, 0] == 0  # a tiny derivative is not a zero one


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_leaky_slope_of_one_percent_is_not_saturated_in_either_dtype(backend, dtype):
    """leaky_relu's slope 0.01 is 1% of its largest derivative, not below it: in float32 too,
    where the slope rounds to 0.0099999998 and read against a double 0.01 counted six units
    pinned left as saturated, with a false "network paralysis" warning. A slope of 0.005 is
    below 1% in both."""
    X, Y = problem(np.random.default_rng(0), "softmax", n=100)
    for slope, saturated in [(0.01, 0.0), (0.005, 0.75)]:
        net = dp.MLP([12, 8, 4], dp.Activation("leaky_relu", alpha=slope), dtype=dtype,
                     backend=backend, seed=0)
        net.intercepts_[0][:6] = -50.0  # six of eight units left of 0 for every sample
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HealthWarning)
            net.fit(X, Y, epochs=1, lr=0.0, record_health=True)
        assert net.health_["saturated_fraction"][0, 0] == saturated, slope
        assert bool(caught) == (saturated > 0.5), [str(w.message) for w in caught]


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_the_recorded_gradient_norm_is_taken_before_clipping(backend):
    """clip_norm scales the step's gradient, not dC/dW: the record shows the gradient itself
    (an exploding one too), where it showed the clipped one, never above clip_norm."""
    X, Y = problem(np.random.default_rng(0), "softmax", n=64)
    net = dp.MLP([12, 16, 16, 4], seed=0, backend=backend)
    expected = [np.linalg.norm(dW) for dW in net.loss_and_gradients(X, Y)[1]]
    net.fit(X, Y, epochs=1, batch_size=64, lr=0.0, clip_norm=1e-3, record_health=True)
    np.testing.assert_allclose(net.health_["grad_norm"][0], expected, rtol=1e-12)
    assert (net.health_["grad_norm"][0] > 1e-2).all()


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_all_zero_weights_that_move_have_an_infinite_update_ratio(backend):
    """||dW|| / ||W|| from W = 0 (a symmetric start) is infinite, not the 0 of no step; the
    layer below, which the zero weights pass no gradient, takes no step: 0."""
    X, Y = problem(np.random.default_rng(0), "softmax", n=64)
    net = dp.MLP([12, 16, 4], seed=0, backend=backend)
    net.coefs_[1][:] = 0.0
    health = dp.diagnostics.gradient_health(net, X, Y, lr=0.1, warn=False)
    assert health["grad_norm"][1] > 0 and health["update_ratio"][1] == np.inf
    assert health["grad_norm"][0] == 0 and health["update_ratio"][0] == 0


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_a_full_batch_record_is_gradient_health_of_the_weights_it_started_from(backend):
    """One plain SGD step on all rows: the record's update ratio is ||lr dC/dW|| over the
    weights before the step, as gradient_health gives it (it was over those after: off by
    about the ratio itself), and all-zero weights that move read inf (they read 1)."""
    X, Y = problem(np.random.default_rng(0), "softmax", n=64)
    net = dp.MLP([12, 16, 4], seed=0, backend=backend)
    net.coefs_[1][:] = 0.0
    expected = dp.diagnostics.gradient_health(net, X, Y, lr=0.5, warn=False)
    with pytest.warns(HealthWarning, match="vanished"):  # (no gradient through W = 0)
        net.fit(X, Y, epochs=1, batch_size=64, lr=0.5, momentum=0.0, optimizer="sgd",
                record_health=True)
    np.testing.assert_allclose(net.health_["update_ratio"][0], expected["update_ratio"],
                               rtol=1e-12)
    assert net.health_["update_ratio"][0, 1] == np.inf


def test_health_array_is_checked():
    net = dp.MLP([3, 4, 2])
    X, Y = np.ones((5, 3)), np.eye(2)[[0, 1, 0, 1, 0]]
    params = net._params()
    state = [np.zeros_like(p) for p in params]
    for bad, exc in [(np.empty((6, 3)), ValueError), (np.empty((6, 2), np.float32), TypeError),
                     (np.empty((6, 2))[:, ::1].T.copy().T, ValueError), ([0.0] * 12, TypeError)]:
        with pytest.raises(exc, match="health"):
            net._engine.train_epoch(params, state, None, X, Y, batch_size=2, lr=0.1, health=bad)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "swish", "silu", "mish", "selu", "elu",
                                  "softplus"])
def test_derivative_max_is_the_largest_derivative(name):
    from deltaprop.reference.health import derivative_max

    z = np.linspace(-30, 30, 600001)
    f = dp.Activation(name)
    assert np.abs(dp.reference.activation_derivative(z, f)).max() == pytest.approx(
        derivative_max(f), rel=1e-6)
