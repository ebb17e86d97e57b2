"""The estimators' epoch shuffles (sklearn/_backend.py: shuffle, EpochShuffles; C++:
csrc/legacy_shuffle.hpp) against scikit-learn's own per-epoch call, sklearn.utils.shuffle: the
same orders and the generator left in the same state, for any row count, start order, position
in MT19937's 624-word block and split of the epochs between engine calls (the engine's own loop
is test_train_epochs'); other bit generators through NumPy, a chunk drawn ahead and cut short
included; bad state refused."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils import shuffle as sklearn_shuffle

from deltaprop import _core
from deltaprop.sklearn import _backend
from deltaprop.sklearn._backend import EpochShuffles, shuffle


@pytest.fixture(params=["in place", "copied"])
def mt19937_path(request, monkeypatch):
    """Each test twice: MT19937's words drawn where NumPy keeps them (views checked against
    MT19937.state), and on a copy written back at close (where that check would fail)."""
    if request.param == "copied":
        monkeypatch.setattr(_backend, "_mt19937_views_match", False)
    return request.param


def per_epoch(sample_idx, random_state, epochs):
    """scikit-learn's loop: one sklearn.utils.shuffle per epoch."""
    orders = []
    for _ in range(epochs):
        sample_idx = sklearn_shuffle(sample_idx, random_state=random_state)
        orders.append(sample_idx)
    return np.array(orders, dtype=np.int64).reshape(epochs, len(sample_idx))


def same_state(a, b):
    sa, sb = a.get_state(legacy=False), b.get_state(legacy=False)
    return (sa["bit_generator"] == sb["bit_generator"]
            and all(np.array_equal(sa["state"][k], sb["state"][k]) for k in sa["state"])
            and sa["has_gauss"] == sb["has_gauss"] and sa["gauss"] == sb["gauss"])


def drawn_in_chunks(start, random_state, chunks, kept=None):
    """Orders drawn chunk by chunk, the last cut to `kept` epochs, then closed: NumPy's draws
    ahead of a chunk, or for MT19937 one engine_state per chunk, an epoch at a time on it with
    the engine's kernel (legacy_shuffled_orders of one epoch: the engine's legacy_shuffle)."""
    shuffles = EpochShuffles(start, random_state)
    if not shuffles.in_engine:
        orders = [shuffles.draw(c) for c in chunks]
        if kept is not None:
            shuffles.keep(kept)
            orders[-1] = orders[-1][:kept]
    else:
        assert kept is None, "the engine draws no epoch ahead"
        orders = []
        for chunk in chunks:
            with shuffles.engine_state() as (key, pos, order):
                for _ in range(chunk):
                    drawn, pos[0] = _core.legacy_shuffled_orders(key, int(pos[0]), order, 1)
                    order[:] = drawn[0]
                    orders.append(drawn)
    shuffles.close()
    return np.concatenate(orders or [np.empty((0, len(start)), np.int64)]), shuffles.sample_idx


@pytest.mark.parametrize("n", [1, 2, 3, 8, 133, 331, 1797, 70_000])
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("burn", [0, 5, 620])  # draws before: pos mid-block, near its end
def test_orders_and_final_state_are_scikit_learns(n, seed, burn, mt19937_path):
    mine, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
    for rs in (mine, theirs):
        rs.randint(0, 2**31, size=burn)
        rs.standard_normal()  # a cached Gaussian, which the shuffles must leave alone
    start = np.random.default_rng(seed).permutation(n)
    chunks = [1, 3] if n > 10_000 else [2, 4, 8]
    got, last = drawn_in_chunks(start, mine, chunks)
    want = per_epoch(start, theirs, sum(chunks))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(last, want[-1])
    assert got.dtype == np.int64
    assert same_state(mine, theirs)
    assert mine.random_sample() == theirs.random_sample()  # and they go on alike


@pytest.mark.parametrize("kept", [0, 1, 4])
def test_a_chunk_cut_short_leaves_only_its_kept_draws(kept):
    def make():
        return np.random.RandomState(np.random.PCG64(5))

    mine, theirs = make(), make()
    assert not EpochShuffles(np.arange(40), mine).in_engine
    got, last = drawn_in_chunks(np.arange(40), mine, [3, 5], kept=kept)
    want = per_epoch(np.arange(40), theirs, 3 + kept)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(last, want[-1])
    assert same_state(mine, theirs)
    assert mine.random_sample() == theirs.random_sample()


def test_the_process_s_own_generator_is_shuffled_a_lock_at_a_time():
    """random_state=None: its shuffles are NumPy's, each under the generator's lock as
    scikit-learn takes it, not the engine's with the lock held through a call (that stalled
    np.random in other threads for a whole fit, and hung a child forked meanwhile); the same
    orders, and the generator left where scikit-learn leaves it."""
    shared = np.random.mtrand._rand
    assert not EpochShuffles(np.arange(10), shared).in_engine
    start, before = np.arange(133), shared.get_state()
    ours, _ = drawn_in_chunks(start, shared, [2, 3])
    after = shared.get_state(legacy=False)
    shared.set_state(before)
    theirs = per_epoch(start, shared, 5)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(after["state"]["key"], shared.get_state(legacy=False)["state"]["key"])
    # a chunk cut short is not undrawn: other threads may have drawn from it since (set back,
    # it handed their numbers out again)
    shuffles = EpochShuffles(start, shared)
    orders = shuffles.draw(5)
    drawn = shared.get_state(legacy=False)["state"]["pos"]
    shuffles.keep(2)
    assert shared.get_state(legacy=False)["state"]["pos"] == drawn
    assert np.array_equal(shuffles.sample_idx, orders[1])


def test_single_shuffle_and_zero_epochs():
    mine, theirs = np.random.RandomState(3), np.random.RandomState(3)
    idx = np.arange(50)
    np.testing.assert_array_equal(shuffle(idx, mine), sklearn_shuffle(idx, random_state=theirs))
    assert same_state(mine, theirs)
    got, last = drawn_in_chunks(idx, mine, [0])
    assert got.shape == (0, 50)
    np.testing.assert_array_equal(last, idx)
    assert same_state(mine, theirs)


def test_the_state_views_are_numpys_own_words():
    rs = np.random.RandomState(11)
    rs.random_sample(15)  # two words each
    key, pos = _core.mt19937_state_views(rs._bit_generator)
    state = rs.get_state(legacy=False)["state"]
    np.testing.assert_array_equal(key, state["key"])
    assert pos.dtype == np.int32 and pos[0] == state["pos"] == 30
    rs.random_sample(3)  # NumPy's draws move the views too
    assert pos[0] == 36
    pos[0] = 624  # and writes through them are NumPy's state: regenerate on the next draw
    key[:] = np.random.RandomState(3).get_state(legacy=False)["state"]["key"]
    other = np.random.RandomState(3)
    other.set_state(("MT19937", other.get_state()[1], 624))
    assert rs.randint(0, 2**31) == other.randint(0, 2**31)
    assert _backend._mt19937_state_views(rs) is not None
    pcg = np.random.RandomState(np.random.PCG64(1))
    assert _backend._mt19937_state_views(pcg) is None
    with pytest.raises(AttributeError):
        _core.mt19937_state_views(object())
    with pytest.raises(TypeError, match="BitGenerator capsule"):
        _core.mt19937_state_views(type("Fake", (), {"capsule": object()})())


def test_bad_state_is_refused():
    key = np.random.RandomState(0).get_state(legacy=False)["state"]["key"].copy()
    start = np.arange(5, dtype=np.int64)
    with pytest.raises(TypeError, match="key must have dtype uint32"):
        _core.legacy_shuffled_orders(key.astype(np.int64), 0, start, 1)
    with pytest.raises(ValueError, match="key must have shape"):
        _core.legacy_shuffled_orders(key[:600].copy(), 0, start, 1)
    with pytest.raises(ValueError, match="read-only"):
        frozen = key.copy()
        frozen.flags.writeable = False
        _core.legacy_shuffled_orders(frozen, 0, start, 1)
    with pytest.raises(ValueError, match="pos must be in"):
        _core.legacy_shuffled_orders(key, 625, start, 1)
    with pytest.raises(TypeError, match="start must have dtype int64"):
        _core.legacy_shuffled_orders(key, 0, start.astype(np.int32), 1)
    with pytest.raises(ValueError, match="start must have shape"):
        _core.legacy_shuffled_orders(key, 0, start.reshape(5, 1), 1)
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        _core.legacy_shuffled_orders(key, 0, start, -1)
    with pytest.raises(TypeError, match="key must be a numpy.ndarray"):
        _core.legacy_shuffled_orders(list(key), 0, start, 1)
    with pytest.raises(ValueError, match="must not share memory"):
        _core.legacy_shuffled_orders(key, 0, key.view(np.int64), 1)
