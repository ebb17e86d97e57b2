"""The epoch loop's optimizers, L2 and gradient clipping: whole training runs of the engine
against the reference, and what each option must do to the weights."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, assert_close

import deltaprop as dp

CONFIGS = [
    dict(optimizer="sgd", momentum=0.9),
    dict(optimizer="nesterov", momentum=0.9),
    dict(optimizer="adam", lr=0.003),
    dict(optimizer="adam", lr=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
    dict(optimizer="sgd", momentum=0.5, alpha=0.3),
    dict(optimizer="adam", lr=0.003, alpha=0.1, clip_norm=0.5),
    dict(optimizer="nesterov", momentum=0.9, clip_norm=0.05),
]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) for c in CONFIGS]


def problem(rng):
    X = rng.standard_normal((110, 10))
    return X, (X[:, :3] @ rng.standard_normal((3, 4))).argmax(axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_training_runs_match_the_reference(rng, dtype, config):
    X, y = problem(rng)
    nets = [dp.MLP([10, 20, 12, 4], dtype=dtype, seed=3, backend=b) for b in ("cpp", "numpy")]
    fit = dict(epochs=3, batch_size=11, lr=0.05) | config  # 30 steps
    histories = [net.fit(X, y, **fit) for net in nets]
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(np.array(histories[0].loss), np.array(histories[1].loss), rtol=rtol)
    for a, b in zip(nets[0].coefs_ + nets[0].intercepts_, nets[1].coefs_ + nets[1].intercepts_):
        assert_close(a, b, rtol=rtol)


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_every_optimizer_learns_the_digits(optimizer):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    net = dp.MLP([64, 64, 10], seed=0, dtype="float32")
    lr = 0.003 if optimizer == "adam" else 0.05
    history = net.fit(X / 16, y, epochs=15, batch_size=32, lr=lr, momentum=0.9,
                      optimizer=optimizer)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert (net.predict(X / 16) == y).mean() > 0.97


def test_l2_shrinks_the_weights_and_is_in_the_loss(rng):
    X, y = problem(rng)
    plain, decayed = (dp.MLP([10, 20, 4], seed=1) for _ in range(2))
    h_plain = plain.fit(X, y, epochs=20, lr=0.05)
    h_decayed = decayed.fit(X, y, epochs=20, lr=0.05, alpha=1.0)
    norm = [sum(float((W ** 2).sum()) for W in net.coefs_) for net in (plain, decayed)]
    assert norm[1] < 0.8 * norm[0]
    assert h_decayed.loss[0] > h_plain.loss[0]  # the penalty is part of the reported loss


def test_clipping_caps_the_step_length(rng):
    X, y = problem(rng)
    X = X * 100  # large inputs, large gradients
    net = dp.MLP([10, 20, 4], seed=1)
    before = [p.copy() for p in net.coefs_ + net.intercepts_]
    net.fit(X, y, epochs=1, batch_size=len(X), lr=0.1, clip_norm=1e-3, shuffle=False)
    step = np.sqrt(sum(float(((p - q) ** 2).sum())
                       for p, q in zip(net.coefs_ + net.intercepts_, before)))
    assert step == pytest.approx(0.1 * 1e-3, rel=1e-9)  # lr x the clipped gradient's norm


def test_bad_optimizer_settings_are_named(rng):
    X, y = problem(rng)
    net = dp.MLP([10, 4])
    for kwargs, exc, name in [({"optimizer": "rmsprop"}, ValueError, "optimizer"),
                              ({"beta_1": 1.0}, ValueError, "beta_1"),
                              ({"epsilon": 0.0}, ValueError, "epsilon"),
                              ({"alpha": -1.0}, ValueError, "alpha"),
                              ({"clip_norm": 0.0}, ValueError, "clip_norm")]:
        with pytest.raises(exc, match=name):
            net.fit(X, y, epochs=1, **kwargs)


@pytest.mark.parametrize("schedule, options, expected", [
    ("constant", {}, [0.1, 0.1, 0.1, 0.1]),
    ("step", {"step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05]),
    ("cosine", {"lr_min": 0.02}, [0.1, 0.1 - 0.08 * (1 - np.cos(np.pi / 4)) / 2, 0.06,
                                  0.02 + 0.04 * (1 + np.cos(3 * np.pi / 4))]),
    ("invscaling", {"power_t": 0.5}, [0.1 / np.sqrt(1 + e * 110) for e in range(4)]),
])
def test_schedules_set_each_epochs_learning_rate(rng, schedule, options, expected):
    X, y = problem(rng)
    history = dp.MLP([10, 8, 4]).fit(X, y, epochs=4, lr=0.1, lr_schedule=schedule,
                                     schedule_options=options)
    np.testing.assert_allclose(history.lr, expected, rtol=1e-12)


def test_adaptive_schedule_divides_by_five_then_stops(rng):
    X, y = problem(rng)
    net = dp.MLP([10, 8, 4])
    # tol so large that no epoch after the first (which improves on an infinite best loss)
    # counts as an improvement: lr / 5 after every second bad epoch, as scikit-learn does
    history = net.fit(X, y, epochs=200, lr=0.01, lr_schedule="adaptive",
                      schedule_options={"tol": 1e9, "n_iter_no_change": 1})
    assert history.lr[:6] == pytest.approx([0.01, 0.01, 0.01, 0.002, 0.002, 0.0004])
    assert history.epochs < 200 and history.lr[-1] <= 1e-6  # it stopped by itself


def test_sklearn_init_reproduces_scikit_learns_initial_weights():
    neural = pytest.importorskip("sklearn.neural_network")
    X = np.random.default_rng(0).standard_normal((30, 6))
    y = np.arange(30) % 3
    sk = neural.MLPClassifier(hidden_layer_sizes=(9,), random_state=42, max_iter=1,
                              learning_rate_init=1e-300)
    with pytest.warns(Warning):  # ConvergenceWarning: one iteration
        sk.fit(X, y)
    net = dp.MLP([6, 9, 3], init="sklearn", seed=42)
    for ours, theirs in zip(net.coefs_ + net.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


def test_bias_init_sets_every_bias():
    net = dp.MLP([5, 7, 3], bias_init=0.01)
    for b in net.intercepts_:
        np.testing.assert_array_equal(b, 0.01)
