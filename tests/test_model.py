"""dp.MLP: the C++ backend against the reference on forward, loss, gradients and whole training
runs; reproducibility; learning real problems; save/load."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import DTYPES, THREADS, assert_close

import deltaprop as dp

OUTPUTS = ["softmax", "sigmoid", "identity"]
# A whole training run compounds rounding differences (summation order inside the products),
# so float32 gets the 1e-4 rather than the single-kernel 1e-5.
TRAIN_RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def problem(rng, output, n=100, d=12, o=4):
    X = rng.standard_normal((n, d))
    if output == "softmax":
        Y = rng.integers(0, o, n)
    elif output == "sigmoid":
        Y = rng.integers(0, 2, (n, o))
    elif output == "exp":
        Y = rng.poisson(1.5, (n, o))
    else:
        Y = rng.standard_normal((n, o))
    return X, Y


def pair(sizes, **kwargs):
    return dp.MLP(sizes, backend="cpp", **kwargs), dp.MLP(sizes, backend="numpy", **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("threads", THREADS)
def test_forward_loss_and_gradients_match_reference(rng, dtype, output, activation, threads):
    X, Y = problem(rng, output)
    cpp, ref = pair([12, 33, 17, 4], activation=activation, output=output, dtype=dtype, seed=3,
                    n_threads=threads)
    assert_close(cpp.forward(X), ref.forward(X), what="forward")
    loss_c, dW_c, db_c, _ = cpp.loss_and_gradients(X, Y)
    loss_r, dW_r, db_r, _ = ref.loss_and_gradients(X, Y)
    assert loss_c == pytest.approx(loss_r, rel=1e-10 if dtype == np.float64 else 1e-5)
    for got, want in zip(dW_c + db_c, dW_r + db_r):
        assert got.dtype == dtype
        assert_close(got, want, what="gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shuffle", [True, False])
def test_fifty_training_steps_match_reference(rng, dtype, output, threads, shuffle):
    X, Y = problem(rng, output, n=97)  # 97 = 9 batches of 10 + one of 7: a ragged last batch
    cpp, ref = pair([12, 40, 20, 4], output=output, dtype=dtype, seed=11, n_threads=threads)
    kwargs = dict(epochs=5, batch_size=10, lr=0.05, momentum=0.9, shuffle=shuffle)
    h_cpp, h_ref = cpp.fit(X, Y, **kwargs), ref.fit(X, Y, **kwargs)  # 5 x 10 = 50 steps
    rtol = TRAIN_RTOL[dtype]
    assert_close(np.array(h_cpp.loss), np.array(h_ref.loss), rtol=rtol, what="loss curve")
    for got, want in zip(cpp.coefs_ + cpp.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_close(got, want, rtol=rtol, what="parameters after training")
    assert h_cpp.loss[-1] < h_cpp.loss[0]  # and it learned something


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_are_bitwise_identical_for_any_thread_count(rng, dtype):
    X, Y = problem(rng, "softmax", n=300, d=100)
    # a batch's first product, 128 x 100 x 400 (5.1M multiply-adds), is past the size from
    # which a training step splits over threads (kStepParallelMinMultiplyAdds, 4.2M)
    nets = [dp.MLP([100, 400, 4], dtype=dtype, seed=5, n_threads=t) for t in (1, 2)]
    histories = [net.fit(X, Y, epochs=3, batch_size=128, lr=0.1, momentum=0.9) for net in nets]
    assert histories[0].loss == histories[1].loss
    for a, b in zip(nets[0].coefs_, nets[1].coefs_):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_run_different_seed_different_run(rng):
    X, Y = problem(rng, "softmax")
    runs = [dp.MLP([12, 16, 4], seed=s).fit(X, Y, epochs=3, lr=0.1).loss for s in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_full_batch_epoch_is_one_gradient_step(rng):
    X, Y = problem(rng, "identity")
    net = dp.MLP([12, 8, 4], output="identity", seed=0)
    loss, dW, db, _ = net.loss_and_gradients(X, Y)
    before = [p.copy() for p in net.coefs_ + net.intercepts_]
    history = net.fit(X, Y, epochs=1, batch_size=len(X), lr=0.3, shuffle=False)
    assert history.loss == [pytest.approx(loss, rel=1e-14)]
    for after, start, g in zip(net.coefs_ + net.intercepts_, before, dW + db):
        assert_close(after, start - 0.3 * g, rtol=1e-14)


def test_online_training_updates_once_per_sample(rng):
    X, Y = problem(rng, "identity", n=5)
    net = dp.MLP([12, 8, 4], output="identity", seed=0)
    manual = dp.MLP([12, 8, 4], output="identity", seed=0)
    net.fit(X, Y, epochs=1, batch_size=1, lr=0.05, shuffle=False)
    for i in range(5):
        _, dW, db, _ = manual.loss_and_gradients(X[i:i + 1], Y[i:i + 1])
        for p, g in zip(manual.coefs_ + manual.intercepts_, dW + db):
            p -= 0.05 * g
    for a, b in zip(net.coefs_ + net.intercepts_, manual.coefs_ + manual.intercepts_):
        assert_close(a, b, rtol=1e-13)


def test_parameters_are_updated_in_place(rng):
    X, Y = problem(rng, "softmax")
    net = dp.MLP([12, 16, 4])
    W0 = net.coefs_[0]
    before = W0.copy()
    net.fit(X, Y, epochs=1)
    assert net.coefs_[0] is W0
    assert not np.array_equal(W0, before)


def test_callback_sees_each_epoch_and_can_stop(rng):
    X, Y = problem(rng, "softmax")
    seen = []

    def stop_after_three(history):
        seen.append(history.epochs)
        return history.epochs == 3

    history = dp.MLP([12, 16, 4]).fit(X, Y, epochs=10, callback=stop_after_three)
    assert seen == [1, 2, 3]
    assert history.epochs == 3 and len(history.seconds) == 3


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_a_byte_swapped_dtype_is_the_native_float(rng, dtype, tmp_path):
    X, Y = problem(rng, "softmax")
    net = dp.MLP([12, 16, 4], dtype=dtype)
    native = np.dtype(dtype).newbyteorder("=")
    assert net.dtype == native and all(W.dtype == native for W in net.coefs_ + net.intercepts_)
    net.fit(X, Y, epochs=1)
    net.save(tmp_path / "net.dp")
    assert dp.MLP.load(tmp_path / "net.dp").dtype == native


def test_arrays_a_callback_replaces_are_the_ones_trained_on(rng):
    """A callback that rebinds a parameter (a max-norm constraint written as
    ``net.coefs_[0] = W * s``) trains as one that scales it in place: the same bits."""
    X, Y = problem(rng, "softmax")

    def fitted(replace):
        net = dp.MLP([12, 16, 4], seed=0, activation="prelu")

        def max_norm(history):
            W = net.coefs_[0]
            scale = min(1.0, 0.5 / np.linalg.norm(W, axis=0).max())
            if replace:
                net.coefs_[0] = W * scale
                net.activation_params_[0] = {"slope": net.activation_params_[0]["slope"] + 0.0}
            else:
                W *= scale
        history = net.fit(X, Y, epochs=6, lr=0.1, momentum=0.9, callback=max_norm)
        return net, history

    (kept, kept_history), (replaced, replaced_history) = fitted(False), fitted(True)
    assert kept_history.loss == replaced_history.loss
    for a, b in zip(kept._params(), replaced._params()):
        np.testing.assert_array_equal(a, b)

    net = dp.MLP([12, 16, 4])

    def wrong_shape(history):
        net.coefs_[0] = np.zeros((12, 3))

    with pytest.raises(ValueError, match=r"coefs_\[0\] was replaced during fit by shape \(12, 3\)"):
        net.fit(X, Y, epochs=3, callback=wrong_shape)


@pytest.mark.parametrize("output, expected_shape", [("softmax", (7,)), ("sigmoid", (7, 4)),
                                                    ("identity", (7, 4))])
def test_predict_shapes_and_values(rng, output, expected_shape):
    net = dp.MLP([12, 16, 4], output=output)
    X = rng.standard_normal((7, 12))
    labels, A = net.predict(X), net.forward(X)
    assert labels.shape == expected_shape
    if output == "softmax":
        np.testing.assert_allclose(A.sum(axis=1), 1.0)
        np.testing.assert_array_equal(labels, A.argmax(axis=1))
    elif output == "sigmoid":
        np.testing.assert_array_equal(labels, A > 0.5)
    assert dp.MLP([12, 16, 1], output="identity").predict(X).shape == (7,)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_xor_is_learned_exactly(backend):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    net = dp.MLP([2, 8, 2], activation="relu", output="softmax", seed=0, backend=backend)
    history = net.fit(X, y, epochs=500, batch_size=4, lr=0.2, momentum=0.9)
    np.testing.assert_array_equal(net.predict(X), y)
    assert history.loss[-1] < 0.05


def test_digits_above_95_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = model_selection.train_test_split(
        X / 16.0, y, test_size=0.25, stratify=y, random_state=0)
    net = dp.MLP([64, 128, 64, 10], activation="relu", output="softmax", dtype="float32",
                 seed=0)
    net.fit(X_train, y_train, epochs=30, batch_size=32, lr=0.05, momentum=0.9)
    accuracy = (net.predict(X_test) == y_test).mean()
    assert accuracy > 0.95, accuracy


@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trips_bit_for_bit(tmp_path, rng, dtype):
    X, Y = problem(rng, "sigmoid")
    net = dp.MLP([12, 16, 4], activation="tanh", output="sigmoid", dtype=dtype, seed=9,
                 grad_at_zero=0.5)
    net.fit(X, Y, epochs=2)
    path = tmp_path / "model.dp"
    net.save(path)
    assert path.exists()  # the name we gave, with no suffix appended
    loaded = dp.MLP.load(path)
    assert (loaded.layer_sizes, loaded.activation, loaded.output, loaded.dtype, loaded.seed,
            loaded.grad_at_zero, loaded.epochs_trained_) == (
            net.layer_sizes, net.activation, net.output, net.dtype, net.seed, net.grad_at_zero,
            net.epochs_trained_)
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, net.coefs_ + net.intercepts_):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    assert_close(dp.MLP.load(path, backend="numpy").forward(X), net.forward(X))
    # training goes on exactly where it stopped
    np.testing.assert_array_equal(loaded.fit(X, Y, epochs=1).loss, net.fit(X, Y, epochs=1).loss)


def test_save_load_takes_numpy_scalar_options(tmp_path, rng):
    """Options the constructor takes as NumPy scalars (a grid over np.linspace gives them) are
    saved as the values they hold."""
    X, Y = problem(rng, "softmax")
    net = dp.MLP([12, 12, 12, 4], dropout=[np.float32(0.25), np.float64(0.1)],
                 residual=np.bool_(True), huber_delta=np.float64(2.0), seed=np.int64(3))
    net.fit(X, Y, epochs=1)
    net.save(tmp_path / "model.dp")
    loaded = dp.MLP.load(tmp_path / "model.dp")
    assert loaded.dropout == [0.25, 0.1] and loaded.residual is True and loaded.seed == 3
    np.testing.assert_array_equal(loaded.fit(X, Y, epochs=1).loss, net.fit(X, Y, epochs=1).loss)


def test_pickle_round_trip(rng):
    X, Y = problem(rng, "softmax")
    net = dp.MLP([12, 16, 4], n_threads=1)
    net.fit(X, Y, epochs=1)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))
    assert clone.n_threads == 1


def test_reprs_tell_models_apart_and_summarise_a_history():
    """Two models that compute different things print differently (a Huber model printed as a
    squared-error one), and a History prints a line, not every epoch's floats."""
    assert repr(dp.MLP([3, 4, 2])) == ("MLP([3, 4, 2], activation='relu', output='softmax', "
                                       "dtype='float64', seed=0, backend='cpp')")
    huber = dp.MLP([3, 4, 4, 1], "tanh", "identity", loss="huber", residual=True, dropout=0.1,
                   seed=7, bias_init=0.01)
    assert repr(huber) == ("MLP([3, 4, 4, 1], activation='tanh', output='identity', "
                           "loss='huber', residual=True, dropout=0.1, bias_init=0.01, "
                           "dtype='float64', seed=7, backend='cpp')")
    plain = dp.MLP([3, 4, 2], dropout=np.float32(0.0), grad_at_zero=np.float64(0.0))
    assert repr(plain) == repr(dp.MLP([3, 4, 2]))  # NumPy scalars at their defaults
    assert repr(dp.History()) == "History(epochs=0)"
    history = dp.History(loss=[2.0, 1.5, 0.25], seconds=[0.5, 0.25, 0.25], lr=[0.1] * 3)
    assert repr(history) == "History(epochs=3, loss 2 → 0.25, 1 s)"


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_evaluate_and_score_are_the_loss_and_scikit_learns_score(rng, backend, output):
    metrics = pytest.importorskip("sklearn.metrics")
    X, Y = problem(rng, output)
    w = rng.uniform(0.5, 2.0, len(X))
    net = dp.MLP([12, 8, 4], "tanh", output, seed=1, backend=backend)
    net.fit(X, Y, epochs=3, lr=0.05)
    for weights in (None, w):
        loss = net.loss_and_gradients(X, Y, sample_weight=weights)[0]
        assert net.evaluate(X, Y, sample_weight=weights) == pytest.approx(loss, rel=1e-12)
        if output in ("identity", "exp"):
            want = metrics.r2_score(Y, net.predict(X), sample_weight=weights)
        else:
            want = metrics.accuracy_score(Y, net.predict(X), sample_weight=weights)
        assert net.score(X, Y, sample_weight=weights) == pytest.approx(want, rel=1e-12)


def test_validation_data_is_scored_after_every_epoch(rng):
    X, y = problem(rng, "softmax")
    X_val, y_val = problem(rng, "softmax", n=40)
    net = dp.MLP([12, 16, 4], seed=0)
    seen = []
    history = net.fit(X, y, epochs=4, lr=0.1, validation_data=(X_val, y_val),
                      callback=lambda h: seen.append((net.evaluate(X_val, y_val),
                                                      net.score(X_val, y_val))))
    assert history.val_loss == [loss for loss, _ in seen]
    assert history.val_score == [score for _, score in seen]
    w = rng.uniform(0.5, 2.0, 40)
    history = net.fit(X, y, epochs=1, validation_data=(X_val, y_val, w))
    assert history.val_loss == [net.evaluate(X_val, y_val, w)] != [net.evaluate(X_val, y_val)]


def test_patience_stops_on_the_validation_loss_and_keeps_the_best_epoch(rng):
    """Early stopping for dp.MLP: an overfitting network (noise labels) stops `patience` epochs
    after its lowest validation loss and ends with that epoch's weights."""
    X, y = rng.standard_normal((60, 12)), rng.integers(0, 4, 60)
    X_val, y_val = rng.standard_normal((60, 12)), rng.integers(0, 4, 60)
    net = dp.MLP([12, 64, 4], seed=0)
    history = net.fit(X, y, epochs=200, lr=0.2, momentum=0.9, validation_data=(X_val, y_val),
                      patience=5)
    best = int(np.argmin(history.val_loss)) + 1
    assert history.best_epoch == best and history.epochs == best + 5 < 200
    assert net.evaluate(X_val, y_val) == min(history.val_loss)
    assert f"best epoch {best}" in repr(history)
    with pytest.raises(ValueError, match="validation_data"):
        net.fit(X, y, epochs=1, patience=3)
    with pytest.raises(TypeError, match="validation_data must be a tuple"):
        net.fit(X, y, epochs=1, validation_data=X_val)
    with pytest.raises(ValueError, match="patience"):
        net.fit(X, y, epochs=1, validation_data=(X_val, y_val), patience=0)
    # the validation arrays are named as such (they were called X, Y and sample_weight)
    for data, words in (((X_val[:, :3], y_val), "X_val has 3 features"),
                        ((X_val, y_val + 4), "Y_val holds label"),
                        ((X_val, y_val, np.zeros(60)), "sample_weight_val sums to zero")):
        with pytest.raises(ValueError, match=words):
            net.fit(X, y, epochs=1, validation_data=data)


def test_patience_keeps_the_best_weights_when_training_diverges(rng):
    """A fit that diverges with patience ends with its best epoch's weights, as a stopped one
    does (it kept the epoch before the divergence, whose validation loss was inf)."""
    X = rng.standard_normal((80, 4))
    y = X @ [1.0, 2.0, 3.0, 4.0]
    X_val = rng.standard_normal((40, 4))
    y_val = X_val @ [1.0, 2.0, 3.0, 4.0]
    for backend in ("cpp", "numpy"):
        net = dp.MLP([4, 8, 1], "tanh", "identity", seed=0, backend=backend)
        with pytest.raises(FloatingPointError, match=r"its best epoch \((\d+), patience\)") \
                as error:
            net.fit(X, y, epochs=3000, lr=1.0, batch_size=80, validation_data=(X_val, y_val),
                    patience=1000)
        history = error.value.history
        assert net.evaluate(X_val, y_val) == min(history.val_loss)
        assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)


def test_a_nan_validation_loss_is_never_the_best():
    history = dp.History(loss=[1.0, 1.0], val_loss=[float("nan")])
    assert not dp.model._improved(history)
    history.val_loss.append(2.0)
    assert dp.model._improved(history)
