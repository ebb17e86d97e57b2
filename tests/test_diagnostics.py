"""dp.diagnostics.gradient_health: the numbers against direct computations, and the facts the
seeds state about depth, dying units and residual paths, each asserted."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from helpers import assert_close, python
from sklearn.datasets import load_digits

import deltaprop as dp
from deltaprop import reference as ref
from deltaprop.diagnostics import HealthWarning, check_health, gradient_health


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_health_agrees_with_a_direct_computation(digits, backend):
    X, y = digits[0][:300], digits[1][:300]
    net = dp.MLP([64, 32, 16, 10], ["relu", "tanh"], backend=backend, seed=3)
    health = gradient_health(net, X, y, lr=0.1)
    _, dcoefs, _, _ = net.loss_and_gradients(X, y)
    assert_close(health["grad_norm"], [np.linalg.norm(g) for g in dcoefs])
    assert_close(health["update_ratio"],
                 [0.1 * np.linalg.norm(g) / np.linalg.norm(W) for g, W in zip(dcoefs, net.coefs_)])
    Zs, As = ref.mlp_forward(net._params(), X, ref.NetSpec.build(net.layer_sizes, net._specs))
    Y = np.eye(10)[y]
    assert health["delta_norm"][-1] == pytest.approx(
        np.linalg.norm((ref.output_forward(Zs[-1]) - Y) / len(X)), rel=1e-10)
    assert health["zero_fraction"][0] == pytest.approx(np.mean(As[0] == 0))
    assert health["dead_fraction"][0] == pytest.approx(np.mean((As[0] == 0).all(axis=0)))
    assert health["grad_norm_ratio"][-1] == 1.0
    assert np.isnan(health["dead_fraction"][-1])  # the output layer has no activation of its own


DERIVATIVES = {  # f'(z) from the layer's output a, written out here, apart from the library
    "sigmoid": lambda z, a: a * (1 - a), "tanh": lambda z, a: 1 - a**2,
    "relu": lambda z, a: (z > 0).astype(float)}
FORWARD = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
           "relu": lambda z: np.maximum(z, 0)}


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_hidden_deltas_and_saturation_agree_with_backprop_written_out(digits, backend):
    """Δ_L = (softmax(Z_L) − Y)/n, Δ_{l−1} = (Δ_l W_lᵀ) ⊙ f′(Z_{l−1}), in plain NumPy; a unit
    is saturated when |f′| < 1% of f′'s largest value (sigmoid: ¼) on every sample."""
    X, y = digits[0][:200], digits[1][:200]
    activations = ["sigmoid", "tanh", "relu"]
    net = dp.MLP([64, 16, 12, 8, 10], activations, backend=backend, seed=5, n_threads=1)
    net.intercepts_[0][:5] = 12.0  # five sigmoid units pinned near 1: f' ≈ e^-12 < 0.0025
    net.intercepts_[1][:3] = -9.0  # three tanh units pinned near -1
    Zs, As, A = [], [], X
    for l, (W, b) in enumerate(zip(net.coefs_, net.intercepts_)):
        Zs.append(A @ W + b)
        A = FORWARD[activations[l]](Zs[-1]) if l < 3 else Zs[-1]
        As.append(A)
    P = np.exp(Zs[-1] - Zs[-1].max(axis=1, keepdims=True))
    deltas = [(P / P.sum(axis=1, keepdims=True) - np.eye(10)[y]) / len(X)]
    for l in (3, 2, 1):
        f_prime = DERIVATIVES[activations[l - 1]](Zs[l - 1], As[l - 1])
        deltas.insert(0, (deltas[0] @ net.coefs_[l].T) * f_prime)
    health = gradient_health(net, X, y, warn=False)
    np.testing.assert_allclose(health["delta_norm"], [np.linalg.norm(d) for d in deltas],
                               rtol=1e-10)
    np.testing.assert_allclose(health["grad_norm"],
                               [np.linalg.norm(a.T @ d) for a, d in zip([X] + As[:-1], deltas)],
                               rtol=1e-10)
    top = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
    saturated = [np.mean((DERIVATIVES[f](Z, A) < 0.01 * top[f]).all(axis=0))
                 for f, Z, A in zip(activations, Zs, As)]
    np.testing.assert_allclose(health["saturated_fraction"][:3], saturated)
    assert health["saturated_fraction"][0] == 5 / 16 and health["saturated_fraction"][1] >= 3 / 12
    assert health["dead_fraction"][0] == health["dead_fraction"][1] == 0  # pinned is not dead


def test_units_dead_by_construction_are_counted(digits):
    """A hand-made network: inputs are ≥ 0, so units with only negative weights and bias output
    0 for every sample (dead), and units with only positive ones never do."""
    X, y = digits[0][:100], digits[1][:100]
    net = dp.MLP([64, 10, 8, 10], "relu", seed=0, n_threads=1)
    net.coefs_[0][:] = 0.05
    net.coefs_[0][:, :7] = -0.05  # 7 of 10 dead in layer 0
    net.intercepts_[0][:] = 0.1
    net.intercepts_[0][:7] = -0.1
    net.coefs_[1][:] = 0.1
    net.intercepts_[1][:] = [-1.0] * 2 + [0.5] * 6  # layer 1 sees ≥ 0 inputs: 2 of 8 dead
    net.coefs_[1][:, :2] = -0.1
    with pytest.warns(HealthWarning, match=r"^layer 0: up to 70% of the units are dead"):
        health = gradient_health(net, X, y)
    np.testing.assert_array_equal(health["dead_fraction"][:2], [0.7, 0.25])
    np.testing.assert_array_equal(health["zero_fraction"][:2], [0.7, 0.25])


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_both_backends_report_the_same_health(digits, alpha):
    X, y = digits[0][:200], digits[1][:200]
    nets = [dp.MLP([64, 24, 24, 10], ["prelu", "sigmoid"], residual=[False, True], seed=1,
                   backend=b) for b in ("cpp", "numpy")]
    a, b = (gradient_health(net, X, y, alpha=alpha, warn=False) for net in nets)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-10, equal_nan=True, err_msg=name)
    if alpha:  # the L2 term is in: ||dW + (alpha / n) W||
        loss_grads = nets[0].loss_and_gradients(X, y)[1]
        expected = [np.linalg.norm(dW + alpha / len(X) * W)
                    for dW, W in zip(loss_grads, nets[0].coefs_)]
        np.testing.assert_allclose(a["grad_norm"], expected, rtol=1e-12)


def first_to_last(activation, depth, X, y, **kwargs):
    net = dp.MLP([64] + [32] * depth + [10], activation, seed=0, **kwargs)
    return gradient_health(net, X, y, warn=False)["grad_norm_ratio"][0]


def test_sigmoid_loses_the_gradient_with_depth_where_relu_keeps_it(digits):
    """Seed 001: sigmoid's derivative is at most 1/4 per layer; ReLU's is 0 or 1 (with He init
    keeping the weights' product near 1)."""
    X, y = digits[0][:500], digits[1][:500]
    sigmoid, relu = first_to_last("sigmoid", 20, X, y), first_to_last("relu", 20, X, y)
    assert sigmoid * 100 < relu
    assert sigmoid < 1e-6 < relu
    with pytest.warns(HealthWarning, match=r"layers 0, 1, .*: the gradient vanished"):
        gradient_health(dp.MLP([64] + [32] * 20 + [10], "sigmoid", seed=0), X, y)


def test_residual_blocks_keep_the_first_layer_gradient_within_10x_at_depth_32(digits):
    X, y = digits[0][:500], digits[1][:500]
    ratio = first_to_last("relu", 32, X, y, residual=True)
    assert 0.1 < ratio < 10


def test_a_negative_bias_kills_relu_units_and_necro_or_leaky_relu_revive_them(digits):
    """Seed 002 and seed 003: a unit whose inputs all fall below zero outputs 0 and receives no
    gradient, so plain ReLU never comes back; necro_relu's surrogate slope and leaky_relu's
    negative slope let it. A leaky unit is never exactly zero, so it is counted as switched
    off (z ≤ 0 for every sample) rather than dead; for ReLU the two are the same."""
    from deltaprop.examples.vanishing import units_off

    X, y = digits
    results = {}
    for activation in ("relu", "necro_relu", "leaky_relu"):
        net = dp.MLP([64, 64, 64, 10], activation, bias_init=[-1.5, -1.5, 0.0], seed=0,
                     n_threads=1)
        before = gradient_health(net, X, y, warn=False)["dead_fraction"]
        off_before = units_off(net, X, activation)
        with warnings.catch_warnings():  # dead layers warn; tested elsewhere
            warnings.simplefilter("ignore", HealthWarning)
            net.fit(X, y, epochs=20, lr=0.1, momentum=0.9, record_health=True)
        results[activation] = (before, net.health_["dead_fraction"][-1], off_before,
                               units_off(net, X, activation), (net.predict(X) == y).mean())
    before, after, off_before, off_after, accuracy = results["relu"]
    assert before[1] > 0.9 and after[1] > 0.9 and accuracy < 0.2  # dead, and it stays dead
    np.testing.assert_array_equal(off_before, before[:2])
    before, after, off_before, off_after, accuracy = results["necro_relu"]
    assert before[1] > 0.9 and after[1] < 0.5 and accuracy > 0.9  # revived, and it learned
    before, after, off_before, off_after, accuracy = results["leaky_relu"]
    assert before[1] == 0  # a leaky unit is never exactly zero ...
    assert off_before[1] > 0.9 and off_after[1] < 0.5 and accuracy > 0.8  # ... but was off


def test_check_health_names_the_layer_and_reads_the_last_epoch():
    record = {"grad_norm": np.array([[1.0, 1.0, 1.0], [1e-9, 1.0, 1.0]]),
              "delta_norm": np.ones((2, 3)), "update_ratio": np.ones((2, 3)),
              "zero_fraction": np.zeros((2, 3)), "saturated_fraction": np.zeros((2, 3)),
              "dead_fraction": np.array([[0.0, 0.9, np.nan], [0.0, 0.1, np.nan]])}
    problems = check_health(record)
    assert problems == [problems[0]] and problems[0].startswith("layer 0: the gradient vanished")
    record["grad_norm"][-1, 1] = np.nan
    assert check_health(record)[0].startswith("layer 1: the gradient norm is NaN or inf")
    record["dead_fraction"][-1] = [0.8, 0.6, np.nan]
    assert check_health(record)[-1].startswith("layers 0, 1: up to 80% of the units are dead")
    # dead ReLU units are saturated too: only the saturated units that are not dead count
    record["saturated_fraction"][-1] = [0.8, 0.9, np.nan]
    assert "saturated" not in check_health(record)[-1]
    record["dead_fraction"][-1] = [0.0, 0.0, np.nan]
    assert check_health(record)[-1].startswith("layers 0, 1: up to 90% of the units are "
                                               "saturated")


def test_an_infinite_last_layer_gradient_is_broken_and_vanishes_nothing():
    """Against an inf last-layer norm every finite one had a ratio of 0: "vanished", with the
    advice for vanishing, for a gradient of 7e19."""
    record = {"grad_norm": np.array([7e19, 3e19, np.inf]), "delta_norm": np.ones(3),
              "update_ratio": np.ones(3), "zero_fraction": np.zeros(3),
              "saturated_fraction": np.zeros(3), "dead_fraction": np.array([0.0, 0.0, np.nan])}
    assert check_health(record) == [check_health(record)[0]]
    assert check_health(record)[0].startswith("layer 2: the gradient norm is NaN or inf")
    assert np.isnan(dp.diagnostics.with_ratios(record)["grad_norm_ratio"]).all()


@pytest.mark.parametrize("activation,lr,sane_lr", [("sigmoid", 20.0, 2.0), ("tanh", 2.0, 0.1)])
def test_a_learning_rate_too_large_shows_as_network_paralysis(digits, activation, lr, sane_lr):
    """Seed 003's "network paralysis": steps too large push sigmoid and tanh units to their flat
    ends, where f' is ~0 for every sample and the weights stop moving; the record shows it and
    fit warns. The same network at a sane rate learns and is not saturated."""
    X, y = digits
    net = dp.MLP([64, 32, 32, 10], activation, seed=0)
    with pytest.warns(dp.diagnostics.HealthWarning, match="units are saturated"):
        net.fit(X, y, epochs=5, lr=lr, record_health=True)
    assert net.health_["saturated_fraction"][-1, :2].max() > 0.5
    assert (net.predict(X) == y).mean() < 0.3
    sane = dp.MLP([64, 32, 32, 10], activation, seed=0)
    sane.fit(X, y, epochs=5, lr=sane_lr, record_health=True)
    assert (sane.health_["saturated_fraction"][-1, :2] < 0.1).all()
    assert (sane.predict(X) == y).mean() > 0.8


def test_the_divergence_guard_names_the_epoch(digits):
    X, y = digits
    net = dp.MLP([64, 32, 1], "relu", "identity", seed=0)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+: .*inputs or targets") \
            as error:
        net.fit(X, y * 1e3, epochs=5, lr=10.0)
    assert net._first_nonfinite_layer() is None  # the weights from before that epoch
    net.predict(X)
    # the epochs that finished are the error's, not lost with the History fit never returned
    history = error.value.history
    assert len(history.loss) == history.epochs == len(history.lr)
    assert int(re.search(r"epoch (\d+)", str(error.value))[1]) == history.epochs + 1


def test_the_divergence_guard_names_the_first_non_finite_layer(digits):
    X, y = digits
    net = dp.MLP([64, 32, 32, 1], "relu", "identity", seed=0)
    net.intercepts_[1][:] = 1e305  # finite, but the first update overflows it
    with pytest.raises(FloatingPointError, match=r"at epoch 1: .*first in layer \d"):
        net.fit(X, y, epochs=1, lr=1e10, shuffle=False)
    assert (net.intercepts_[1] == 1e305).all()


def test_plots_draw_a_health_record_and_a_profile(digits):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = digits[0][:300], digits[1][:300]
    net = dp.MLP([64, 16, 16, 10], "tanh", seed=0)
    history = net.fit(X, y, epochs=3, lr=0.05, record_health=True)
    fig = dp.plot.health(history)
    norms, dead, saturated = fig.axes
    assert len(norms.get_lines()) == 3 and len(dead.get_lines()) == 2  # 2 hidden, 3 layers
    assert norms.get_yscale() == "log"
    fig = dp.plot.gradient_profile(net, X, y)
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()] == [3, 3]
    with pytest.raises(ValueError, match="record_health"):
        dp.plot.health(dp.History())
    history = net.fit(X, y, epochs=4, lr=0.05, lr_schedule="step",
                      schedule_options={"step_size": 2, "gamma": 0.5})
    # a History with an epoch that has no validation loss (it diverged) is drawn too
    dp.plot.loss_curve(dp.History(loss=[1.0, 0.5, 0.4], val_loss=[1.1, 0.6], lr=[0.1] * 3))
    fig = dp.plot.loss_curve(history, log=True)
    loss, rate = fig.axes
    np.testing.assert_array_equal(loss.get_lines()[0].get_ydata(), history.loss)
    np.testing.assert_array_equal(rate.get_lines()[0].get_ydata(), history.lr)
    assert loss.get_yscale() == "log"
    assert all(float(t).is_integer() for t in loss.get_xticks())  # epochs, not 2.5


def test_the_study_runs_quickly(tmp_path):
    pytest.importorskip("matplotlib")
    import subprocess

    out = subprocess.run([*python("-m", "deltaprop.examples.vanishing"), "--quick",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert {p.name for p in tmp_path.iterdir()} == {
        "depth_init.png", "depth_trained.png", "accuracy.png", "training.png", "dead_units.png",
        "results.md"}
    table = (tmp_path / "results.md").read_text()
    assert "| sigmoid | 10 |" in table and "| relu + residual | 2 |" in table
    assert "| leaky_relu | -1.00 | 0.1 |" in table  # the dead-unit study, with leaky_relu
    assert "seeds 0–1" in table and "| 0/2 |" in table  # --quick: two seeds, summarised


def test_the_study_summarises_seeds_by_median_and_range_over_those_that_finished():
    from deltaprop.examples.vanishing import spread, summarise

    assert spread([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert spread([1e-4, 1.0]) == (1e-4, 1e-4, 1.0)  # an even count: the lower middle value
    assert spread([np.nan, 2.0]) == (2.0, 2.0, 2.0)  # an undefined value is left out
    assert all(np.isnan(spread([])))
    runs = [dict(diverged=False, accuracy=0.9, trained=np.nan),
            dict(diverged=False, accuracy=0.5, trained=2.0), dict(diverged=True)]
    row = summarise(runs, ("accuracy", "trained"))
    assert (row["seeds"], row["diverged"]) == (3, 1)
    assert row["accuracy"] == (0.5, 0.5, 0.9) and row["trained"] == (2.0, 2.0, 2.0)
    assert (row["accuracy_undefined"], row["trained_undefined"]) == (0, 1)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_gradient_norms_past_the_float_range_of_their_squares(rng, backend):
    """An exploding gradient's norm is what health is for: past ~1e154 the squares overflow,
    and the norm is rescaled (as clip_by_global_norm's) rather than reported as inf."""
    X, Y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    net = dp.MLP([4, 3, 2], activation="identity", output="identity", backend=backend, seed=0)
    net.coefs_[0][...] *= 1e150  # the last layer's weight gradient near 1e300
    _, weight_grads, _, _ = net.loss_and_gradients(X, Y)
    health = gradient_health(net, X, Y, warn=False)
    want = [math.hypot(*g.ravel()) for g in weight_grads]
    assert want[-1] > 1e299
    np.testing.assert_allclose(health["grad_norm"], want, rtol=1e-12)


def test_necro_relu_units_that_are_off_are_not_called_dead(digits):
    """necro_relu's units that are zero for every sample still learn through its leaky backward
    pass: the warning calls them off and does not recommend necro_relu to a necro_relu layer
    (it did, as if they were dead ReLU units)."""
    health = {name: np.zeros((1, 3)) for name in dp.diagnostics.HEALTH_ROWS}
    health["grad_norm"][:] = 1.0
    health["dead_fraction"][0, :2] = 1.0
    problems = dp.diagnostics.check_health(health, ["necro_relu", "relu"])
    assert len(problems) == 2
    # one activation for every hidden layer, as MLP takes it (a str was read letter by letter)
    assert dp.diagnostics.check_health(health, "necro_relu")[0].startswith(
        "layers 0, 1: up to 100% of the units are off")
    assert problems[0].startswith("layer 1: up to 100% of the units are dead")
    assert problems[1].startswith("layer 0: up to 100% of the units are off")
    assert "necro_relu /" not in problems[1] and "leaky_relu" not in problems[1]
    # end to end: a negative bias switches every unit off
    X, y = digits
    net = dp.MLP([64, 32, 32, 10], "necro_relu", seed=0, bias_init=-5.0)
    with pytest.warns(dp.diagnostics.HealthWarning, match="units are off") as record:
        net.fit(X, y, epochs=2, record_health=True)
    assert not any("are dead" in str(w.message) for w in record)


def test_a_fit_without_record_health_removes_the_last_record(digits):
    """health_ describes the weights it was recorded on: a later fit that records nothing
    removes it, rather than leave a plot of another network's epochs."""
    from deltaprop.sklearn import MLPClassifier

    X, y = digits
    net = dp.MLP([64, 16, 10], seed=0)
    net.fit(X, y, epochs=1, record_health=True)
    assert net.health_["grad_norm"].shape == (1, 2)
    net.fit(X, y, epochs=1)
    assert not hasattr(net, "health_")
    est = MLPClassifier((16,), max_iter=2, record_health=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        assert len(est.health_["grad_norm"]) == 2
        est.set_params(record_health=False).partial_fit(X, y)
    assert not hasattr(est, "health_")
