"""Sparse X in the engine: a CSR matrix's parts (data, indices, indptr, n_columns) feed the first
layer (csrc/sparse.hpp), which multiplies the stored entries only, or, for a matrix with enough
of its entries stored (a tenth or a quarter, by the first layer's width; at most 4 096
columns), densifies a batch or block at a time and multiplies it densely. Both ways, every
call that takes X gives what the NumPy reference gives on the same rows densified, the dense
engine's results to rounding, the same bits on any thread count; a malformed matrix is a clear
error, never a read outside the weights."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, RTOL, assert_close

from deltaprop import _core, reference

SIZES = [40, 16, 3]
SPARSE, DENSIFIED = 0.05, 0.3  # densities either side of densified_min_density


def engines(dtype, activation="relu", **kw):
    name = np.dtype(dtype).name
    make = getattr(_core, f"Engine_{name}")
    return make(SIZES, activation, "softmax", **kw), reference.Engine(SIZES, activation, "softmax",
                                                                       **kw)


def csr(rng, dtype, n, d=SIZES[0], index=np.int32, density=SPARSE):
    """A CSR matrix's parts with what scipy allows and a kernel could trip on: empty rows,
    unsorted columns in a row, a column stored twice (its values summed)."""
    rows = []
    for r in range(n):
        k = 0 if r % 7 == 3 else rng.binomial(d, density)
        cols = list(rng.choice(d, size=k, replace=False))
        if r % 5 == 1 and cols:
            cols.append(cols[0])  # stored twice
        rows.append(cols)
    indptr = np.cumsum([0] + [len(c) for c in rows]).astype(index)
    indices = np.array([c for cols in rows for c in cols], dtype=index)
    data = rng.standard_normal(len(indices)).astype(dtype)
    return data, indices, indptr, d


def params_for(rng, dtype, sizes=SIZES, learned=()):
    params = []
    for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        params += [(rng.standard_normal((i, o)) * 0.4).astype(dtype),
                   (rng.standard_normal(o) * 0.1).astype(dtype)]
        if l < len(sizes) - 2:
            params += [np.full(o, value, dtype=dtype) for value in learned]
    return params


def labels(rng, dtype, n):
    return np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", [SPARSE, DENSIFIED])
@pytest.mark.parametrize("index", [np.int32, np.int64])
@pytest.mark.parametrize(("activation", "learned"),
                         [("relu", ()), ("tanh", ()), ("prelu", (0.25,))])
def test_sparse_x_gives_the_references_loss_gradients_and_outputs(rng, dtype, density, index,
                                                                   activation, learned):
    X = csr(rng, dtype, 300, index=index, density=density)
    Y = labels(rng, dtype, 300)
    w = rng.uniform(0.2, 2, 300)
    params = params_for(rng, dtype, learned=learned)
    core, ref = engines(dtype, activation)
    dense = reference.engine.dense_rows(X)
    tol = RTOL[np.dtype(dtype)]
    for weights in (None, w):
        grads = [np.full_like(p, np.nan) for p in params]
        ref_grads = [np.empty_like(p) for p in params]
        loss = core.loss_and_gradients(params, X, Y, grads, weights)
        assert_close(loss, ref.loss_and_gradients(params, X, Y, ref_grads, weights), tol, "loss")
        for g, r in zip(grads, ref_grads):
            assert_close(g, r, what="gradient")
        dense_grads = [np.empty_like(p) for p in params]
        assert_close(loss, core.loss_and_gradients(params, dense, Y, dense_grads, weights), tol)
        for g, r in zip(grads, dense_grads):
            assert_close(g, r, what="gradient against the dense engine")
    assert_close(core.forward(params, X), ref.forward(params, X), what="forward")
    loss, outputs = core.evaluate(params, X, Y, w)
    ref_loss, ref_outputs = ref.evaluate(params, X, Y, w)
    assert_close(loss, ref_loss, tol)
    assert_close(outputs, ref_outputs)
    # (NaN where a health row is undefined: the output layer has no units to die)
    np.testing.assert_allclose(core.health(params, X, Y), ref.health(params, X, Y), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("density", [SPARSE, DENSIFIED])
def test_a_residual_first_layer_adds_the_sparse_rows(rng, density):
    sizes = [16, 16, 3]
    core = _core.Engine_float64(sizes, "relu", "softmax", residual=[True])
    ref = reference.Engine(sizes, "relu", "softmax", residual=[True])
    X = csr(rng, np.float64, 50, d=16, density=density)
    params = params_for(rng, np.float64, sizes)
    assert_close(core.forward(params, X), ref.forward(params, X))
    grads, ref_grads = [np.empty_like(p) for p in params], [np.empty_like(p) for p in params]
    Y = labels(rng, np.float64, 50)
    assert_close(core.loss_and_gradients(params, X, Y, grads),
                 ref.loss_and_gradients(params, X, Y, ref_grads))
    for g, r in zip(grads, ref_grads):
        assert_close(g, r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", [SPARSE, DENSIFIED])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sparse_epochs_train_as_the_reference_does(rng, dtype, density, optimizer):
    """Shuffled batches read their rows where they lie, dropout masks as the dense fit's; several
    epochs in one call, with early stopping's held-out rows sparse too."""
    n = 230
    X, X_held = csr(rng, dtype, n, density=density), csr(rng, dtype, 60, density=density)
    Y, Y_held = labels(rng, dtype, n), labels(rng, dtype, 60)
    core, ref = engines(dtype, dropout=0.2)
    settings = dict(batch_size=50, lr=0.05, optimizer=optimizer, seed=3, alpha=1e-3)
    runs = []
    for engine in (core, ref):
        params = params_for(np.random.default_rng(1), dtype)
        state1 = [np.zeros_like(p) for p in params]
        state2 = [np.zeros_like(p) for p in params] if optimizer == "adam" else None
        order = np.random.default_rng(2).permutation(n).astype(np.int64)
        loss, step = engine.train_epoch(params, state1, state2, X, Y, order=order, **settings)
        best = [np.empty_like(p) for p in params]
        losses, held_losses, scores = np.empty(3), np.empty(3), np.empty(3)
        epochs = engine.train_epochs(
            params, state1, state2, X, Y, orders=np.stack([order] * 3), lrs=np.full(3, 0.05),
            losses=losses, step=step, epoch=1,
            held_out=(X_held, Y_held, None, best, held_losses, scores, False),
            **{k: v for k, v in settings.items() if k != "lr"})
        runs.append((loss, step, epochs[:2], params, losses, held_losses, scores))
    (loss, step, epochs, params, *curves), (ref_loss, ref_step, ref_epochs, ref_params,
                                            *ref_curves) = runs
    assert (step, epochs) == (ref_step, ref_epochs) == (5, (3, "done"))
    assert_close(loss, ref_loss, RTOL[np.dtype(dtype)])
    for p, r in zip(params, ref_params):
        assert_close(p, r, rtol=1e-9 if dtype == np.float64 else 1e-4)
    for c, r in zip(curves, ref_curves):
        assert_close(c, r, rtol=1e-9 if dtype == np.float64 else 1e-4)


def test_sparse_results_do_not_depend_on_the_thread_count(rng):
    """A product big enough for two threads (rows split forward, W's columns backward) gives
    the one-thread bits."""
    sizes = [2000, 64, 3]
    X = csr(rng, np.float64, 600, d=2000, density=0.06)
    Y = np.eye(3)[rng.integers(0, 3, 600)]
    params = params_for(rng, np.float64, sizes)
    results = []
    for threads in (1, 2):
        core = _core.Engine_float64(sizes, "relu", "softmax", n_threads=threads)
        grads = [np.empty_like(p) for p in params]
        loss = core.loss_and_gradients(params, X, Y, grads)
        results.append((loss, grads, core.forward(params, X)))
    (loss1, grads1, out1), (loss2, grads2, out2) = results
    assert loss1 == loss2
    for a, b in zip(grads1, grads2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out1, out2)


@pytest.mark.parametrize("threads", [1, 2])
def test_dense_enough_rows_train_as_dense_rows_do(rng, threads):
    """A matrix with 30 % of its entries stored is densified a batch (or row block) at a time:
    without repeated columns, the dense engine's bits, in shuffled batches run as two halves
    on two threads and in whole-data passes over several row blocks."""
    sizes = [64, 100, 10]
    dense = rng.standard_normal((2500, 64)) * (rng.random((2500, 64)) < DENSIFIED)
    rows, cols = np.nonzero(dense)
    X = (dense[rows, cols], cols.astype(np.int32),
         np.searchsorted(rows, np.arange(2501)).astype(np.int32), 64)
    Y = np.eye(10)[rng.integers(0, 10, 2500)]
    params = params_for(rng, np.float64, sizes)
    core = _core.Engine_float64(sizes, "relu", "softmax", n_threads=threads)
    np.testing.assert_array_equal(core.forward(params, X), core.forward(params, dense))
    grads, dense_grads = [np.empty_like(p) for p in params], [np.empty_like(p) for p in params]
    assert (core.loss_and_gradients(params, X, Y, grads)
            == core.loss_and_gradients(params, dense, Y, dense_grads))
    for g, r in zip(grads, dense_grads):
        np.testing.assert_array_equal(g, r)
    trained = []
    for data in (X, dense):
        p = [a.copy() for a in params]
        state = [[np.zeros_like(a) for a in p] for _ in range(2)]
        order = np.random.default_rng(5).permutation(2500).astype(np.int64)
        trained.append((core.train_epoch(p, *state, data, Y, order=order, batch_size=200,
                                         lr=1e-3, optimizer="adam"), p))
    (result, p), (dense_result, dense_p) = trained
    assert result == dense_result
    for a, b in zip(p, dense_p):
        np.testing.assert_array_equal(a, b)


def malformed(rng, how):
    data, indices, indptr, d = csr(rng, np.float64, 20)
    indices, indptr = indices.copy(), indptr.copy()
    if how == "indptr not from 0":
        indptr[0] = 1
    elif how == "indptr falls":
        indptr[5] = indptr[6] + 1
    elif how == "indptr past the data":
        indptr[-1] = len(data) + 3
    elif how == "a column past the last":
        indices[3] = d
    elif how == "a negative column":
        indices[3] = -1
    elif how == "NaN data":
        data = data.copy()
        data[2] = np.nan
    elif how == "indices and indptr of two dtypes":
        indices = indices.astype(np.int64)
    elif how == "float indptr":
        indptr = indptr.astype(np.float64)
    elif how == "fewer indices than data":
        indices = indices[:-1]
    elif how == "other width":
        d = d + 1
    elif how == "no rows":
        indptr = indptr[:1]
    elif how == "float32 data":
        data = data.astype(np.float32)
    elif how == "three parts":
        return data, indices, indptr
    return data, indices, indptr, d


@pytest.mark.parametrize(("how", "error", "words"), [
    ("indptr not from 0", ValueError, "indptr must start at 0"),
    ("indptr falls", ValueError, "must not decrease"),
    ("indptr past the data", ValueError, "past its"),
    ("a column past the last", ValueError, "column index 40"),
    ("a negative column", ValueError, "column index -1"),
    ("NaN data", ValueError, "NaN or inf"),
    ("indices and indptr of two dtypes", TypeError, "indices"),
    ("float indptr", TypeError, "int32 or int64"),
    ("fewer indices than data", ValueError, "indices"),
    ("other width", ValueError, "41 columns, but the network takes 40"),
    ("no rows", ValueError, "no rows"),
    ("float32 data", TypeError, "float64"),
    ("three parts", TypeError, "CSR tuple"),
])
def test_a_malformed_sparse_matrix_is_refused_before_any_row_is_read(rng, how, error, words):
    core, _ = engines(np.float64)
    params = params_for(rng, np.float64)
    X = malformed(rng, how)
    with pytest.raises(error, match=words):
        core.forward(params, X)
    with pytest.raises(error, match=words):
        core.loss_and_gradients(params, X, labels(rng, np.float64, 20),
                                [np.empty_like(p) for p in params])


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_mlp_takes_a_scipy_sparse_matrix_as_it_is(rng, backend, fmt):
    """deltaprop.MLP hands a sparse X to its engine as CSR parts: the dense fit, outputs,
    gradients and health, to rounding; its stored values are checked as dense X is."""
    sp = pytest.importorskip("scipy.sparse")
    import deltaprop as dp

    X = rng.standard_normal((120, SIZES[0]))
    X[rng.random(X.shape) < 0.8] = 0
    y = rng.integers(0, 3, 120)
    S = sp.csr_matrix(X).asformat(fmt)
    dense, sparse = (dp.MLP(SIZES, "tanh", backend=backend, seed=0) for _ in range(2))
    kw = dict(epochs=3, batch_size=32, optimizer="adam", lr=0.01, alpha=1e-3)
    np.testing.assert_allclose(sparse.fit(S, y, **kw).loss, dense.fit(X, y, **kw).loss,
                               rtol=1e-10)
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dense.forward(S), dense.forward(X), rtol=1e-10, atol=1e-15)
    loss, dcoefs, _, _ = dense.loss_and_gradients(S, y)
    ref_loss, ref_dcoefs, _, _ = dense.loss_and_gradients(X, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(dcoefs[0], ref_dcoefs[0], rtol=1e-10, atol=1e-15)
    health = dp.diagnostics.gradient_health(dense, S, y, warn=False)
    ref_health = dp.diagnostics.gradient_health(dense, X, y, warn=False)
    np.testing.assert_allclose(health["grad_norm"], ref_health["grad_norm"], rtol=1e-10)
    bad = S.tocsr(copy=True)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        dense.predict(bad)
    with pytest.raises(ValueError, match="X has 39 features, but the network expects 40"):
        dense.predict(S[:, 1:])
    with pytest.raises(TypeError, match="complex"):
        dense.predict(S.astype(np.complex128))
    short = S.tocsr(copy=True)
    short.indptr = short.indptr[:-5]  # rows the shape claims, but indptr does not hold
    with pytest.raises(ValueError, match=r"indptr has 116 entries, but its shape \(120, 40\)"):
        dense.predict(short)
