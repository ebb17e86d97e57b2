"""Engine.train_epochs: many epochs in one call, for callers with nothing to do between epochs
(the scikit-learn estimators' fast path). It must be exactly repeated train_epoch calls with
the given row orders and learning rates, stop by scikit-learn's plateau rule or on divergence,
match the reference twin, and refuse bad orders, rates and outputs clearly."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, assert_close

from deltaprop import _core, reference

SIZES = [6, 9, 3]
SETTINGS = dict(batch_size=8, optimizer="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                alpha=1e-3)


def problem(rng, dtype, n=37):
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params += [rng.standard_normal((fan_in, fan_out)).astype(dtype) * 0.5,
                   np.full(fan_out, 0.1, dtype)]
    return X, Y, params


def engines(dtype):
    return (getattr(_core, f"Engine_{np.dtype(dtype).name}")(SIZES, "relu", "softmax"),
            reference.Engine(SIZES, "relu", "softmax"))


def state(params):
    return [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]


def orders(rng, epochs, n):
    return np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_the_reference_and_stops_on_a_plateau(rng, dtype, weighted):
    X, Y, params = problem(rng, dtype)
    weights = rng.uniform(0, 2, len(X)) if weighted else None
    order = orders(rng, 12, len(X))
    lrs = np.linspace(0.05, 0.01, 12)
    runs = []
    for engine in engines(dtype):
        p = [a.copy() for a in params]
        s1, s2 = state(p)
        losses = np.full(12, -1.0)
        # tol = 1: after the first epoch sets the best loss, no epoch improves on it that much,
        # so the third after it (a count of 3, past patience 2) stops the run
        result = engine.train_epochs(p, s1, s2, X, Y, weights, orders=order, lrs=lrs,
                                     losses=losses, tol=1.0, n_iter_no_change=2,
                                     best_loss=np.inf, no_improvement_count=0, **SETTINGS)
        runs.append((result, losses, p))
    (result, losses, p), (ref_result, ref_losses, ref_p) = runs
    assert result[:2] == ref_result[:2] == (4, "plateau")
    assert result[3] == ref_result[3] == 3 and result[5] is None
    assert result[4] == ref_result[4] == 4 * 5  # Adam's step: 5 batches of 8 rows in 37 a time
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_close(np.array(result[2]), np.array(ref_result[2]), rtol=rtol)
    assert result[2] == losses[:4].min()  # improving, if by less than tol, moves the best
    assert_close(losses[:4], ref_losses[:4], rtol=rtol)
    assert (losses[4:] == -1).all()  # epochs not run leave their entries alone
    for a, b in zip(p, ref_p):
        assert_close(a, b, rtol=rtol if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_is_exactly_repeated_train_epoch_calls(rng, optimizer):
    X, Y, params = problem(rng, np.float64)
    engine = engines(np.float64)[0]
    order = orders(rng, 5, len(X))
    lrs = np.array([0.1, 0.05, 0.05, 0.02, 0.01])
    settings = dict(SETTINGS, optimizer=optimizer, momentum=0.8, seed=4, epoch=7, step=11)
    together = [a.copy() for a in params]
    s1, s2 = state(together)
    losses = np.empty(5)
    health = np.full((5, 6, 2), -1.0)
    result = engine.train_epochs(together, s1, s2, X, Y, orders=order, lrs=lrs, losses=losses,
                                 health=health, **settings)
    assert result[:2] == (5, "done")
    one_by_one = [a.copy() for a in params]
    t1, t2 = state(one_by_one)
    step = 11
    for e in range(5):
        epoch_health = np.empty((6, 2))
        loss, step = engine.train_epoch(one_by_one, t1, t2, X, Y, order=order[e], lr=lrs[e],
                                        shuffle=False, health=epoch_health,
                                        **dict(settings, epoch=7 + e, step=step))
        assert loss == losses[e]
        np.testing.assert_array_equal(health[e], epoch_health)  # each epoch's own health
    assert step == result[4] == 11 + 5 * 5  # 5 batches an epoch
    for a, b in zip(together + s1 + s2, one_by_one + t1 + t2):
        np.testing.assert_array_equal(a, b)


def test_stored_order_without_orders_and_best_loss_carried_in(rng):
    X, Y, params = problem(rng, np.float64)
    engine = engines(np.float64)[0]
    p = [a.copy() for a in params]
    s1, s2 = state(p)
    losses = np.empty(4)
    # a best loss no epoch can beat and a count already at the patience: the first epoch stops
    result = engine.train_epochs(p, s1, s2, X, Y, lrs=np.full(4, 0.01), losses=losses,
                                 tol=0.0, n_iter_no_change=3, best_loss=-1.0,
                                 no_improvement_count=3, **SETTINGS)
    assert result[:4] == (1, "plateau", -1.0, 4)
    q = [a.copy() for a in params]
    r1, r2 = state(q)
    assert engine.train_epoch(q, r1, r2, X, Y, lr=0.01, shuffle=False, **SETTINGS) == (losses[0], 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_batch_of_no_weight_takes_no_step_as_if_its_rows_were_absent(rng, dtype):
    """Adam's t counts the steps taken, across epochs as within one: a batch whose weights are
    all zero is skipped, so training is that of the other rows alone."""
    X, Y, params = problem(rng, dtype, n=40)  # 5 batches of 8 in stored order
    weights = np.ones(40)
    weights[8:16] = 0  # the second batch
    kept = np.r_[0:8, 16:40]
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for engine in engines(dtype):
        runs = []
        for rows, w in ((slice(None), weights), (kept, None)):
            p = [a.copy() for a in params]
            s1, s2 = state(p)
            losses = np.empty(3)
            result = engine.train_epochs(p, s1, s2, X[rows], Y[rows], w, lrs=np.full(3, 0.05),
                                         losses=losses, step=2, **SETTINGS)
            runs.append((result, losses, p + s1 + s2))
        (result, losses, arrays), (result_kept, losses_kept, arrays_kept) = runs
        assert result[4] == result_kept[4] == 2 + 3 * 4  # 4 steps an epoch
        assert_close(losses, losses_kept, rtol=rtol)
        for a, b in zip(arrays, arrays_kept):
            assert_close(a, b, rtol=rtol)


def test_stops_on_the_epoch_that_diverges(rng):
    X, Y, params = problem(rng, np.float64)
    X *= 1e150  # the first step overflows
    engine = engines(np.float64)[0]
    s1, s2 = state(params)
    losses = np.empty(6)
    result = engine.train_epochs(params, s1, s2, X, Y, lrs=np.full(6, 1e10), losses=losses,
                                 batch_size=8, optimizer="sgd")
    assert result[0] == 1 and result[1] == "diverged"
    assert not all(np.isfinite(p).all() for p in params)


def mt_state(seed=3, burn=0):
    """A fresh RandomState's MT19937 words and position (as _core's views give them)."""
    rs = np.random.RandomState(seed)
    rs.random_sample(burn)
    state = rs.get_state(legacy=False)["state"]
    return state["key"].copy(), np.array([state["pos"]], np.int32)


@pytest.mark.parametrize("burn", [0, 311])  # the generator's position mid-block or near its end
def test_shuffles_drawn_by_the_engine_are_the_orders_drawn_ahead(rng, burn):
    # shuffle_state: each epoch's order drawn as it starts (as scikit-learn's loop draws it),
    # the same orders, parameters and final generator state as orders drawn ahead by
    # _core.legacy_shuffled_orders; an epoch that stops the run was drawn, later ones not.
    X, Y, params = problem(rng, np.float64)
    engine = engines(np.float64)[0]
    start = rng.permutation(len(X)).astype(np.int64)
    key, pos = mt_state(burn=burn * 2)
    ahead, ahead_pos = _core.legacy_shuffled_orders(key.copy(), int(pos[0]), start, 9)
    runs = []
    for how in ("ahead", "engine"):
        p = [a.copy() for a in params]
        s1, s2 = state(p)
        losses = np.full(9, -1.0)
        k, q, order = key.copy(), pos.copy(), start.copy()
        given = dict(orders=ahead) if how == "ahead" else dict(shuffle_state=(k, q, order))
        result = engine.train_epochs(p, s1, s2, X, Y, lrs=np.full(9, 0.05), losses=losses,
                                     tol=1.0, n_iter_no_change=2, best_loss=np.inf,
                                     no_improvement_count=0, **given, **SETTINGS)
        runs.append((result, losses, p, k, q, order))
    (result, losses, p, *_), (result_e, losses_e, p_e, k, q, order) = runs
    assert result == result_e and result[1] == "plateau" and result[0] < 9
    np.testing.assert_array_equal(losses, losses_e)
    for a, b in zip(p, p_e):
        np.testing.assert_array_equal(a, b)
    done = result[0]  # the engine drew exactly the epochs it ran
    np.testing.assert_array_equal(order, ahead[done - 1])
    want_key, want_pos = mt_state(burn=burn * 2)
    _, want = _core.legacy_shuffled_orders(want_key, int(want_pos[0]), start, done)
    np.testing.assert_array_equal(k, want_key)
    assert q[0] == want


def call(engine, params, X, Y, **changes):
    s1, s2 = state(params)
    arguments = dict(lrs=np.full(3, 0.01), losses=np.empty(3), **SETTINGS) | changes
    return engine.train_epochs(params, s1, s2, X, Y, **arguments)


@pytest.mark.parametrize(("changes", "error", "words"), [
    (dict(orders=np.zeros((3, 37), np.int32)), TypeError, "orders must have dtype int64"),
    (dict(orders=np.zeros((3, 36), np.int64)), ValueError, "orders"),
    (dict(orders=np.full((3, 37), 37, np.int64)), ValueError, "row index 37"),
    (dict(orders=np.full((3, 37), -1, np.int64)), ValueError, "row index -1"),
    (dict(orders=np.zeros((3, 37), np.int64)[:, ::-1]), ValueError, "contiguous"),
    (dict(orders=[[0] * 37] * 3), TypeError, "numpy.ndarray"),
    (dict(lrs=np.array([0.1, -0.1, 0.1])), ValueError, "lr must be finite"),
    (dict(lrs=np.array([0.1, np.nan, 0.1])), ValueError, "lr must be finite"),
    (dict(lrs=np.zeros(3, np.float32)), TypeError, "lrs must have dtype float64"),
    (dict(losses=np.empty(2)), ValueError, "losses"),
    (dict(losses=np.empty(3, np.float32)), TypeError, "losses must have dtype float64"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(best_loss=np.nan), ValueError, "best_loss"),
    (dict(no_improvement_count=-1), ValueError, "no_improvement_count"),
    (dict(shuffle_state=[*mt_state(), np.arange(37)]), TypeError, "shuffle_state must be a tuple"),
    (dict(shuffle_state=mt_state()), TypeError, "shuffle_state must be a tuple"),
    (dict(shuffle_state=(mt_state()[0].astype(np.int64), mt_state()[1], np.arange(37))),
     TypeError, "shuffle_state key must have dtype uint32"),
    (dict(shuffle_state=(mt_state()[0][:600].copy(), mt_state()[1], np.arange(37))),
     ValueError, "shuffle_state key must have shape"),
    (dict(shuffle_state=(mt_state()[0], np.array([625], np.int32), np.arange(37))),
     ValueError, "shuffle_state pos must be in"),
    (dict(shuffle_state=(mt_state()[0], np.array([0]), np.arange(37))),
     TypeError, "shuffle_state pos must have dtype int32"),
    (dict(shuffle_state=(*mt_state(), np.arange(36))), ValueError, "shuffle_state order"),
    (dict(shuffle_state=(*mt_state(), np.full(37, 37))), ValueError, "row index 37"),
    (dict(shuffle_state=(*mt_state(), np.arange(37, dtype=np.int32))),
     TypeError, "shuffle_state order must have dtype int64"),
    (dict(shuffle_state=(*mt_state(), np.arange(37)),
          orders=np.zeros((3, 37), np.int64)), ValueError, "not both"),
])
def test_bad_arguments_are_named(rng, changes, error, words):
    X, Y, params = problem(rng, np.float64)
    before = [p.copy() for p in params]
    with pytest.raises(error, match=words):
        call(engines(np.float64)[0], params, X, Y, **changes)
    for a, b in zip(params, before):
        np.testing.assert_array_equal(a, b)  # nothing trained


def test_outputs_must_be_writeable_and_apart_from_inputs(rng):
    X, Y, params = problem(rng, np.float64)
    engine = engines(np.float64)[0]
    losses = np.empty(3)
    losses.flags.writeable = False
    with pytest.raises(ValueError, match="losses"):
        call(engine, params, X, Y, losses=losses)
    shared = np.full(3, 0.01)
    with pytest.raises(ValueError, match="losses"):
        call(engine, params, X, Y, lrs=shared, losses=shared)
    with pytest.raises(ValueError, match="contains NaN"):
        call(engine, [p * np.nan for p in params], X, Y)
    key, pos = mt_state()
    frozen = key.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="shuffle_state key"):
        call(engine, params, X, Y, shuffle_state=(frozen, pos, np.arange(37)))
    order = np.arange(37)
    with pytest.raises(ValueError, match="must not share memory"):  # the order over the losses
        call(engine, params, X, Y, shuffle_state=(key, pos, order),
             losses=order.view(np.float64)[:3])
