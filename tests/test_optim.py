"""The engine's optimizer kernels against the reference's (reference/optim.py, whose formulas are
tested there against direct transcriptions): one step and a hundred, both dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import DTYPES, assert_close

import deltaprop as dp
from deltaprop import reference as ref


def state(rng, dtype, shape=(50, 40), n=4):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 100])
def test_nesterov(rng, dtype, steps):
    p, v, g, _ = state(rng, dtype)
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(steps):
        dp.ops.nesterov_step(p, v, g, 0.01, 0.9)
        ref.nesterov_step(p_ref, v_ref, g, 0.01, 0.9)
    assert_close(v, v_ref)
    assert_close(p, p_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 100])
def test_adam(rng, dtype, steps):
    p, m, v, g = state(rng, dtype)
    v = np.abs(v)  # a second moment
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    for t in range(1, steps + 1):
        g_t = g * dtype(np.sin(t))
        lr_t = dp.ops.adam_step(p, m, v, g_t, t, 0.001)
        assert lr_t == pytest.approx(ref.adam_step(p_ref, m_ref, v_ref, g_t, t, 0.001), rel=1e-15)
    assert_close(m, m_ref)
    assert_close(v, v_ref)
    assert_close(p, p_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_l2(rng, dtype):
    g, W, _, _ = state(rng, dtype)
    g_ref = g.copy()
    dp.ops.add_l2(g, W, 0.3, 32)
    ref.add_l2(g_ref, W, 0.3, 32)
    assert_close(g, g_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [1e-3, 10.0, 1e6])
@pytest.mark.parametrize("size", [1.0, 1e200])  # 1e200: squares past the float64 range
def test_clip_by_global_norm(rng, dtype, max_norm, size):
    if dtype == np.float32 and size > 1:
        size = 1e30  # float32 squares are summed in double: no overflow to rescue
    grads = [g * dtype(size) for g in state(rng, dtype, (30, 20), 3)
             + [rng.standard_normal(7).astype(dtype)]]
    copies = [g.copy() for g in grads]
    scale = dp.ops.clip_by_global_norm(grads, max_norm)
    assert scale == pytest.approx(ref.clip_by_global_norm(copies, max_norm), rel=1e-12)
    for g, c in zip(grads, copies):
        assert_close(g, c)
    norm = math.hypot(*np.concatenate([g.ravel() for g in grads]).astype(np.float64))
    assert norm <= max_norm * (1 + 1e-5) or scale == 1.0
    assert norm >= max_norm * (1 - 1e-5) or size == 1.0  # capped, not zeroed


# Past kParallelMinElements (2**18) the steps split the array into one contiguous range per
# thread, each range a vectorised loop with a scalar tail; an odd length puts a tail in both.
# Elementwise, so any split must give bitwise the reference's values.
STEPS = {
    "sgd_momentum": lambda m, p, s1, s2, g, **kw: m.sgd_momentum_step(p, s1, g, 0.01, 0.9, **kw),
    "nesterov": lambda m, p, s1, s2, g, **kw: m.nesterov_step(p, s1, g, 0.01, 0.9, **kw),
    "adam": lambda m, p, s1, s2, g, **kw: m.adam_step(p, s1, s2, g, 3, 0.001, **kw),
    "add_l2": lambda m, p, s1, s2, g, **kw: m.add_l2(g, p, 0.3, 32, **kw),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step", sorted(STEPS))
def test_steps_split_over_threads_match_reference_exactly(rng, dtype, step):
    p, s1, s2, g = state(rng, dtype, (2**18 + 2**10 + 7,))
    s2 = np.abs(s2)
    expected = [a.copy() for a in (p, s1, s2, g)]
    STEPS[step](ref, *expected)
    for n_threads in (1, 2):
        got = [a.copy() for a in (p, s1, s2, g)]
        STEPS[step](dp.ops, *got, n_threads=n_threads)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
