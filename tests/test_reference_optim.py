"""Optimizer steps, L2, clipping and learning-rate schedules of the reference: one step and 100
steps against a direct NumPy transcription of each formula, and against scikit-learn's own
optimizers, whose conventions the drop-in must reproduce."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deltaprop import reference as ref

H = np.diag([1.0, 3.0, 0.5, 2.0]) + 0.1  # a quadratic bowl: g(p) = H p − c
C = np.array([1.0, -2.0, 0.5, 3.0])


def gradient(p):
    return H @ p - C


def run(step, n_steps, *state):
    """n_steps of `step(p, *state, g)` on the bowl, from a fixed start; returns p and state."""
    p = np.array([2.0, -1.0, 0.3, 1.5])
    state = [s.copy() for s in state]
    for t in range(1, n_steps + 1):
        step(p, *state, gradient(p), t)
    return p, state


# -- the transcriptions: each formula written out once more, plainly ----------------------------


def sgd_formula(p, v, g, t, lr=0.05, mu=0.9):
    v[:] = mu * v - lr * g
    p[:] = p + v


def nesterov_formula(p, v, g, t, lr=0.05, mu=0.9):
    v_new = mu * v - lr * g
    p[:] = p + (mu * v_new - lr * g)
    v[:] = v_new


def adam_formula(p, m, v, g, t, lr=0.05, b1=0.9, b2=0.999, eps=1e-8):
    m[:] = b1 * m + (1 - b1) * g
    v[:] = b2 * v + (1 - b2) * g**2
    p[:] = p - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)


STEPS = {
    "sgd_momentum": (lambda p, v, g, t: ref.sgd_momentum_step(p, v, g, 0.05, 0.9), sgd_formula, 1),
    "nesterov": (lambda p, v, g, t: ref.nesterov_step(p, v, g, 0.05, 0.9), nesterov_formula, 1),
    "adam": (lambda p, m, v, g, t: ref.adam_step(p, m, v, g, t, 0.05), adam_formula, 2),
}


@pytest.mark.parametrize("n_steps", [1, 100])
@pytest.mark.parametrize("name", list(STEPS))
def test_step_matches_its_formula(name, n_steps):
    ours, formula, n_state = STEPS[name]
    zeros = [np.zeros(4)] * n_state
    p, state = run(ours, n_steps, *zeros)
    p_f, state_f = run(formula, n_steps, *zeros)
    np.testing.assert_allclose(p, p_f, rtol=1e-13, atol=1e-15)
    for s, s_f in zip(state, state_f):
        np.testing.assert_allclose(s, s_f, rtol=1e-13, atol=1e-15)
    if n_steps == 100:  # and each optimizer does descend the bowl
        assert np.linalg.norm(gradient(p)) < 0.1 * np.linalg.norm(gradient(run(ours, 0)[0]))


def test_adam_returns_its_folded_step_size_and_counts_from_one():
    p, m, v, g = np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2)
    lr_t = ref.adam_step(p, m, v, g, 3, 0.1, 0.9, 0.99)
    assert lr_t == pytest.approx(0.1 * math.sqrt(1 - 0.99**3) / (1 - 0.9**3), rel=1e-15)
    with pytest.raises(ValueError, match="from 1"):
        ref.adam_step(p, m, v, g, 0, 0.1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_steps_keep_the_arrays_dtype(dtype):
    p, s1, s2, g = (np.ones(3, dtype=dtype) for _ in range(4))
    ref.nesterov_step(p, s1, g, 0.1, 0.9)
    ref.adam_step(p, s1, s2, g, 1, 0.1)
    assert p.dtype == s1.dtype == s2.dtype == dtype


# -- against scikit-learn's optimizers (float64: its Adam step size is a float64 scalar) --------


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_and_nesterov_are_scikit_learns(nesterov):
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    p_sk = [np.array([2.0, -1.0, 0.3, 1.5])]
    sk = opt.SGDOptimizer(p_sk, learning_rate_init=0.05, momentum=0.9, nesterov=nesterov)
    p, v = p_sk[0].copy(), np.zeros(4)
    step = ref.nesterov_step if nesterov else ref.sgd_momentum_step
    for _ in range(100):
        g = gradient(p)
        sk.update_params(p_sk, [gradient(p_sk[0])])
        step(p, v, g, 0.05, 0.9)
    np.testing.assert_array_equal(p, p_sk[0])


def test_adam_is_scikit_learns():
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    p_sk = [np.array([2.0, -1.0, 0.3, 1.5])]
    sk = opt.AdamOptimizer(p_sk, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    p, m, v = p_sk[0].copy(), np.zeros(4), np.zeros(4)
    for t in range(1, 101):
        sk.update_params(p_sk, [gradient(p_sk[0])])
        lr_t = ref.adam_step(p, m, v, gradient(p), t, 0.01, 0.8, 0.99, 1e-7)
        assert lr_t == sk.learning_rate
    np.testing.assert_array_equal(p, p_sk[0])


# -- L2 and clipping ------------------------------------------------------------------------------


def test_add_l2_is_the_gradient_of_l2_penalty(rng):
    coefs = [rng.standard_normal((3, 2)), rng.standard_normal((2, 4))]
    alpha, n = 0.3, 7
    assert ref.l2_penalty(coefs, alpha, n) == pytest.approx(
        0.5 * alpha * sum((W**2).sum() for W in coefs) / n, rel=1e-14)
    h = 1e-6
    for W in coefs:
        g = np.zeros_like(W)
        ref.add_l2(g, W, alpha, n)
        fd = np.zeros_like(W)
        for i in np.ndindex(W.shape):
            saved = W[i]
            W[i] = saved + h
            up = ref.l2_penalty(coefs, alpha, n)
            W[i] = saved - h
            down = ref.l2_penalty(coefs, alpha, n)
            W[i] = saved
            fd[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-7)


def test_add_l2_is_scikit_learns_gradient(rng):
    A, delta = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    W = rng.standard_normal((3, 2))
    alpha, sw_sum = 0.1, 5.5
    g = A.T @ delta / sw_sum  # our gradient of the (weighted) mean loss
    ref.add_l2(g, W, alpha, sw_sum)
    np.testing.assert_allclose(g, (A.T @ delta + alpha * W) / sw_sum, rtol=1e-13)


def test_clip_by_global_norm_caps_the_length_and_keeps_the_direction(rng):
    grads = [rng.standard_normal((3, 4)) * 10, rng.standard_normal(4) * 10]
    before = [g.copy() for g in grads]
    norm = math.sqrt(sum((g**2).sum() for g in before))
    scale = ref.clip_by_global_norm(grads, 1.5)
    assert scale == pytest.approx(1.5 / norm, rel=1e-14)
    assert math.sqrt(sum((g**2).sum() for g in grads)) == pytest.approx(1.5, rel=1e-14)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * (1.5 / norm), rtol=1e-14)


@pytest.mark.parametrize("size", [1e150, 1e200, 1e300])
def test_clip_by_global_norm_survives_squares_past_the_float_range(rng, size):
    """Exploding gradients are what clipping is for: past a norm of ~1e154 the squares overflow,
    and a scale of max_norm / inf = 0 would zero every gradient instead of capping it."""
    grads = [rng.standard_normal((3, 4)) * size, rng.standard_normal(4) * size]
    norm = math.hypot(*np.concatenate([g.ravel() for g in grads]))  # hypot never overflows
    before = [g.copy() for g in grads]
    assert ref.clip_by_global_norm(grads, 2.0) == pytest.approx(2.0 / norm, rel=1e-14)
    assert math.hypot(*np.concatenate([g.ravel() for g in grads])) == pytest.approx(2.0, rel=1e-14)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * (2.0 / norm), rtol=1e-14)


def test_clip_by_global_norm_leaves_small_gradients_alone(rng):
    grads = [rng.standard_normal(5).astype(np.float32) * 0.1, np.zeros((2, 2), np.float32)]
    before = [g.copy() for g in grads]
    assert ref.clip_by_global_norm(grads, 10.0) == 1.0
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    assert ref.clip_by_global_norm([np.zeros(3)], 1.0) == 1.0
    with pytest.raises(ValueError, match="max_norm"):
        ref.clip_by_global_norm(grads, 0.0)


# -- learning-rate schedules ----------------------------------------------------------------------


def test_schedules_over_100_epochs_match_their_formulas():
    lr0, epochs = 0.1, np.arange(100)
    np.testing.assert_allclose([ref.invscaling_lr(lr0, 50 * e, 0.25) for e in epochs],
                               lr0 / (50.0 * epochs + 1) ** 0.25, rtol=1e-15)
    np.testing.assert_allclose([ref.step_lr(lr0, e, 30, 0.5) for e in epochs],
                               lr0 * 0.5 ** np.floor(epochs / 30), rtol=1e-15)
    np.testing.assert_allclose([ref.cosine_lr(lr0, e, 80, 0.001) for e in epochs],
                               0.001 + 0.5 * (lr0 - 0.001)
                               * (1 + np.cos(np.pi * np.minimum(epochs, 80) / 80)), rtol=1e-14)


def test_schedule_landmarks():
    assert ref.invscaling_lr(0.1, 0) == 0.1
    assert ref.invscaling_lr(0.1, 40, 1e10) == 0.0  # 41^1e10 is past the float range: no error
    assert ref.step_lr(0.1, 9, 10) == 0.1 and ref.step_lr(0.1, 10, 10) == pytest.approx(0.01)
    assert ref.cosine_lr(0.1, 0, 10) == 0.1
    assert ref.cosine_lr(0.1, 5, 10) == pytest.approx(0.05)
    assert ref.cosine_lr(0.1, 10, 10, 0.01) == pytest.approx(0.01)
    assert ref.cosine_lr(0.1, 25, 10, 0.01) == pytest.approx(0.01)
    assert set(ref.SCHEDULES) == {"constant", "invscaling", "adaptive", "step", "cosine"}
    with pytest.raises(ValueError, match="step_size"):
        ref.step_lr(0.1, 3, 0)
    with pytest.raises(ValueError, match="n_epochs"):
        ref.cosine_lr(0.1, 3, 0)


def test_invscaling_is_scikit_learns():
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    sk = opt.SGDOptimizer([np.zeros(1)], learning_rate_init=0.2, lr_schedule="invscaling",
                          power_t=0.3)
    for t_seen in [0, 1, 200, 12345]:
        sk.iteration_ends(t_seen)
        assert ref.invscaling_lr(0.2, t_seen, 0.3) == sk.learning_rate


def test_adaptive_follows_scikit_learns_plateau_rule():
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    sk = opt.SGDOptimizer([np.zeros(1)], learning_rate_init=1e-4, lr_schedule="adaptive")
    lr, count, n_iter_no_change = 1e-4, 0, 2
    # The loop's bookkeeping (sklearn's _fit_stochastic): bad epochs counted, then a decision
    for _ in range(40):
        count += 1
        sk_count = count
        new_lr, count, stop = ref.adaptive_lr(lr, count, n_iter_no_change)
        if sk_count > n_iter_no_change:
            sk_stop = sk.trigger_stopping("", False)
            assert stop == sk_stop
            assert new_lr == sk.learning_rate
            assert count == (sk_count if sk_stop else 0)
        else:
            assert (new_lr, count, stop) == (lr, sk_count, False)
        lr = new_lr
        if stop:
            break
    assert stop and lr <= 1e-6  # 1e-4 / 5^3 = 8e-7: three divisions, then stop
