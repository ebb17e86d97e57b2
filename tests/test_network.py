"""The network's shape beyond one activation: per-layer activations and residual blocks. The C++
engine against the reference (gradients and whole training runs), and the facts the seeds state
about depth: SELU's self-normalisation and residual paths that keep the gradient alive."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, THREADS, assert_close
from test_model import TRAIN_RTOL, pair, problem

import deltaprop as dp
from deltaprop import reference as ref
from deltaprop.init import init_network

NETWORKS = {
    # every kind of stored operand: A (relu, tanh), Z (swish, abs, relu with ReLU'(0) = 0.5)
    "per-layer": dict(sizes=[12, 16, 16, 9, 4], activation=["relu", "swish", "tanh"]),
    "residual-all": dict(sizes=[12, 16, 16, 16, 4], activation="tanh", residual=True),
    "residual-mixed": dict(sizes=[12, 16, 16, 16, 16, 4],
                           activation=["relu", "abs", "elu",
                                       dp.Activation("relu", grad_at_zero=0.5)],
                           residual=[False, True, False, True]),
    "residual-top": dict(sizes=[12, 12, 9, 9, 4], activation=["sigmoid", "mish", "leaky_relu"],
                         residual=[True, False, True]),
    "learned": dict(sizes=[12, 16, 16, 16, 4],
                    activation=["prelu", dp.Activation("swish", learnable=True, beta=1.5),
                                dp.Activation("acon", alpha=0.1)],
                    residual=[False, True, True]),
}


def make_pair(name, **kwargs):
    net = dict(NETWORKS[name])
    return pair(net.pop("sizes"), **net, **kwargs)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
def test_gradients_match_reference(rng, name, dtype, threads):
    X, Y = problem(rng, "softmax")
    cpp, numpy = make_pair(name, dtype=dtype, seed=4, n_threads=threads)
    assert_close(cpp.forward(X), numpy.forward(X), what="forward")
    for a, b in zip(cpp.activation_params_, numpy.activation_params_):  # away from their start
        for name in a:
            a[name][:] = b[name][:] = rng.uniform(0.2, 1.5, a[name].shape)
    loss_c, dW_c, db_c, dP_c = cpp.loss_and_gradients(X, Y)
    loss_r, dW_r, db_r, dP_r = numpy.loss_and_gradients(X, Y)
    assert loss_c == pytest.approx(loss_r, rel=1e-10 if dtype == np.float64 else 1e-5)
    for got, want in zip(dW_c + db_c, dW_r + db_r):
        assert_close(got, want, what="gradient")
    for got, want in zip(dP_c, dP_r):
        assert got.keys() == want.keys()
        for name in got:
            assert got[name].dtype == dtype
            assert_close(got[name], want[name], what=f"gradient of {name}")


@pytest.mark.parametrize("name", ["per-layer", "residual-mixed", "learned"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_runs_match_reference(rng, name, dtype, optimizer):
    X, Y = problem(rng, "softmax", n=97)
    cpp, numpy = make_pair(name, dtype=dtype, seed=8, n_threads=2)
    kwargs = dict(epochs=4, batch_size=16, lr=0.01, momentum=0.9, optimizer=optimizer, alpha=1e-3)
    h_cpp, h_ref = cpp.fit(X, Y, **kwargs), numpy.fit(X, Y, **kwargs)
    rtol = TRAIN_RTOL[dtype]
    assert_close(np.array(h_cpp.loss), np.array(h_ref.loss), rtol=rtol, what="loss curve")
    for got, want in zip(cpp._params(), numpy._params()):
        assert_close(got, want, rtol=rtol, what="parameters after training")
    assert h_cpp.loss[-1] < h_cpp.loss[0]


def test_a_residual_block_adds_its_input():
    """With zero weights and biases, f(0) = 0 for tanh, so each residual block passes its
    input through unchanged and the network reduces to its first and last layers."""
    net = dp.MLP([3, 4, 4, 4, 2], "tanh", "identity", residual=True)
    for W, b in zip(net.coefs_[1:-1], net.intercepts_[1:-1]):
        W[:] = 0
        b[:] = 0
    plain = dp.MLP([3, 4, 2], "tanh", "identity")
    plain.coefs_ = [net.coefs_[0], net.coefs_[-1]]
    plain.intercepts_ = [net.intercepts_[0], net.intercepts_[-1]]
    X = np.random.default_rng(0).standard_normal((5, 3))
    assert_close(net.forward(X), plain.forward(X))


def test_residual_true_picks_the_square_hidden_layers():
    net = dp.MLP([3, 8, 8, 5, 5, 2], residual=True)
    assert net._residual == [False, True, False, True]


def test_per_layer_options_may_be_arrays_as_the_estimators_take_them():
    """A grid search hands out NumPy arrays: a 1-D array is a list of one per layer, a 0-d one a
    value for all (an array was refused as "dropout[0] must be a real number, got ndarray")."""
    net = dp.MLP([3, 8, 8, 8, 2], residual=np.array([False, True, True]),
                 dropout=np.array([0.1, 0.2, 0.0]))
    assert net._residual == [False, True, True] and net._dropout == [0.1, 0.2, 0.0]
    assert dp.MLP([3, 8, 8, 2], dropout=np.array(0.25))._dropout == [0.25, 0.25]


def gradient_norms(net, X, Y):
    _, dcoefs, _, _ = net.loss_and_gradients(X, Y)
    return [np.linalg.norm(g) for g in dcoefs]


def test_residual_blocks_keep_the_first_layer_gradient_within_10x_of_the_last_at_depth_32():
    """Seed 001: the identity path carries the gradient through depth (issue 4's test): over a
    stack of 32 residual ReLU blocks, the first block's weight gradient stays within 10x of the
    last block's at initialisation. The same depth of plain sigmoid layers loses it entirely."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, 32))
    Y = rng.integers(0, 10, 256)
    sizes = [32] * 33 + [10]
    for seed in range(3):
        residual = dp.MLP(sizes, "relu", residual=True, seed=seed)
        assert all(residual._residual)
        stack = gradient_norms(residual, X, Y)[:-1]  # the 32 blocks, not the output layer
        assert max(stack) / min(stack) < 10, (min(stack), max(stack))
    plain = gradient_norms(dp.MLP(sizes, "sigmoid", seed=0), X, Y)
    assert plain[0] < 1e-12 * plain[-2]  # sigmoid's factor <= 1/4 per layer, 32 times


def test_selu_with_lecun_init_keeps_mean_0_and_variance_1_through_32_layers():
    """Seed 003 / Klambauer et al. 2017: SELU with LeCun-normal weights is self-normalising."""
    rng = np.random.default_rng(2)
    width, depth = 256, 32
    sizes = [width] * (depth + 1) + [10]
    coefs, intercepts = init_network(sizes, "selu", rng)  # SELU's default scheme: lecun_normal
    params = [p for W, b in zip(coefs, intercepts) for p in (W, b)]
    X = rng.standard_normal((2000, width))
    _, As = ref.mlp_forward(params, X, ref.NetSpec.build(sizes, "selu"))
    for l, A in enumerate(As[:-1]):
        assert abs(A.mean()) < 0.1, f"layer {l}: mean {A.mean():.3f}"
        assert abs(A.var() - 1) < 0.15, f"layer {l}: variance {A.var():.3f}"
    _, As_relu = ref.mlp_forward(params, X, ref.NetSpec.build(sizes, "relu"))
    assert As_relu[-2].var() < 1e-3  # the same weights without SELU's fixed point collapse


# -- learned activation parameters, losses and sample weights in the model ----------------------

LEARNED = ["prelu", dp.Activation("swish", learnable=True), "acon"]
MODEL_BACKENDS = ["numpy", "cpp"]


@pytest.mark.parametrize("backend", MODEL_BACKENDS)
def test_learned_activation_parameters_are_trained_saved_and_loaded(rng, backend, tmp_path):
    X, Y = problem(rng, "softmax")
    net = dp.MLP([12, 10, 10, 10, 4], LEARNED, residual=[False, True, False], seed=1,
                 backend=backend)
    names = [sorted(p) for p in net.activation_params_]
    assert names == [["slope"], ["beta"], ["beta", "p1", "p2"]]
    before = [{k: v.copy() for k, v in p.items()} for p in net.activation_params_]
    history = net.fit(X, Y, epochs=5, batch_size=20, lr=0.05, momentum=0.9)
    assert history.loss[-1] < history.loss[0]
    for old, new in zip(before, net.activation_params_):
        for name in old:
            assert not np.array_equal(old[name], new[name]), name  # every one was updated
    net.save(tmp_path / "m.npz")
    loaded = dp.MLP.load(tmp_path / "m.npz", backend=backend)
    for a, b in zip(loaded.activation_params_, net.activation_params_):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


@pytest.mark.parametrize("backend", MODEL_BACKENDS)
@pytest.mark.parametrize("output, loss", [("softmax", None), ("identity", "squared_error"),
                                          ("identity", "huber"), ("identity", "absolute_error"),
                                          ("sigmoid", None), ("exp", None)])
def test_integer_sample_weights_equal_repeated_rows(rng, backend, output, loss):
    """A weight of k counts a row k times (scikit-learn's check_sample_weight_equivalence)."""
    X, Y = problem(rng, output, n=30)
    counts = rng.integers(0, 4, 30)
    counts[0] = 1
    net = dp.MLP([12, 9, 4], "tanh", output, loss=loss, huber_delta=0.5, backend=backend)
    weighted = net.loss_and_gradients(X, Y, sample_weight=counts)
    repeated = net.loss_and_gradients(np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0))
    assert weighted[0] == pytest.approx(repeated[0], rel=1e-12)
    for got, want in zip(weighted[1] + weighted[2], repeated[1] + repeated[2]):
        assert_close(got, want)
    # full-batch training, where the batches are the same too
    kwargs = dict(epochs=3, lr=0.1, shuffle=False, alpha=0.01)
    a = dp.MLP([12, 9, 4], "tanh", output, loss=loss, backend=backend)
    b = dp.MLP([12, 9, 4], "tanh", output, loss=loss, backend=backend)
    a.fit(X, Y, batch_size=len(X), sample_weight=counts, **kwargs)
    b.fit(np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0), batch_size=counts.sum(),
          **kwargs)
    for got, want in zip(a.coefs_, b.coefs_):
        assert_close(got, want)


@pytest.mark.parametrize("backend", MODEL_BACKENDS)
@pytest.mark.parametrize("alpha_dropout", [False, True])
def test_dropout_is_seeded_active_in_training_and_off_in_prediction(rng, backend, alpha_dropout):
    X, Y = problem(rng, "softmax")
    sizes = [12, 16, 16, 4]

    def trained(dropout, seed=3):
        net = dp.MLP(sizes, "selu", dropout=dropout, alpha_dropout=alpha_dropout, seed=seed,
                     backend=backend)
        net.fit(X, Y, epochs=2, batch_size=25, lr=0.05)
        return net

    a, b, plain = trained(0.3), trained(0.3), trained(0.0)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])  # same seed, same masks
    assert not np.allclose(a.coefs_[0], plain.coefs_[0])  # the masks changed the training
    twin = dp.MLP(sizes, "selu", seed=3, backend=backend)  # the same weights, no dropout
    twin.coefs_, twin.intercepts_ = a.coefs_, a.intercepts_
    np.testing.assert_array_equal(a.forward(X), twin.forward(X))  # prediction never drops


@pytest.mark.parametrize("output, loss", [("softmax", None), ("sigmoid", None), ("exp", None),
                                          ("identity", "huber"), ("identity", "absolute_error")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_training_runs_match_reference(rng, output, loss, dtype):
    X, Y = problem(rng, output, n=97)
    weights = rng.uniform(0, 2, 97)
    weights[16:32] = 0  # a whole batch without weight when unshuffled: skipped
    cpp, numpy = pair([12, 20, 4], activation="tanh", output=output, loss=loss, dtype=dtype,
                      seed=8, n_threads=2)
    for shuffle in (False, True):
        kwargs = dict(epochs=3, batch_size=16, lr=0.02, momentum=0.9, alpha=1e-3,
                      shuffle=shuffle, sample_weight=weights)
        h_cpp, h_ref = cpp.fit(X, Y, **kwargs), numpy.fit(X, Y, **kwargs)
        rtol = TRAIN_RTOL[dtype]
        assert_close(np.array(h_cpp.loss), np.array(h_ref.loss), rtol=rtol, what="loss curve")
        for got, want in zip(cpp.coefs_ + cpp.intercepts_, numpy.coefs_ + numpy.intercepts_):
            assert_close(got, want, rtol=rtol, what="parameters after training")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", [
    dict(sizes=[12, 16, 16, 4], activation=["relu", "tanh"], dropout=[0.3, 0.5]),
    dict(sizes=[12, 16, 16, 16, 4], activation=["swish", "selu", "selu"], dropout=0.2,
         alpha_dropout=True, residual=[False, True, True]),
    dict(sizes=[12, 16, 16, 4], activation=["elu", "mish"], dropout=[0.0, 0.4]),
], ids=["dropout", "alpha-residual", "one-layer"])
def test_dropout_training_runs_match_reference(rng, dtype, net):
    X, Y = problem(rng, "softmax", n=97)
    net = dict(net)
    cpp, numpy = pair(net.pop("sizes"), **net, dtype=dtype, seed=5, n_threads=2)
    kwargs = dict(epochs=3, batch_size=16, lr=0.02, momentum=0.9)
    h_cpp, h_ref = cpp.fit(X, Y, record_health=True, **kwargs), numpy.fit(X, Y, **kwargs)
    rtol = TRAIN_RTOL[dtype]
    assert_close(np.array(h_cpp.loss), np.array(h_ref.loss), rtol=rtol, what="loss curve")
    for got, want in zip(cpp.coefs_ + cpp.intercepts_, numpy.coefs_ + numpy.intercepts_):
        assert_close(got, want, rtol=rtol, what="parameters after training")


def test_learned_parameter_gradients_are_bitwise_the_same_for_any_thread_count(rng):
    X, Y = problem(rng, "softmax", n=600, d=64)
    grads = []
    for threads in (1, 2):
        net = dp.MLP([64, 512, 512, 4], ["prelu", "acon"], seed=1, n_threads=threads)
        grads.append(net.loss_and_gradients(X, Y)[3])
    for a, b in zip(*grads):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def narrow_problem(rng, sizes, dtype, n, output):
    """Parameters with a dead unit (a zero column and bias: Z = 0 on every row, where ReLU'(0)
    shows) and a batch for a network whose last layer has few outputs."""
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype),
                   (rng.standard_normal(fan_out) * 0.1).astype(dtype)]
    params[-4][:, 3] = 0
    params[-3][3] = 0
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = (rng.integers(0, 2, (n, sizes[-1])) if output == "sigmoid"
         else rng.standard_normal((n, sizes[-1]))).astype(dtype)
    return params, X, Y


def engine_gradients(engine, params, X, Y):
    grads = [np.empty_like(p) for p in params]
    loss = engine.loss_and_gradients(params, X, Y, grads)
    return loss, grads


# A last layer of 1-4 outputs over ReLU units takes one pass over the batch for its weight
# gradient, the delta and the previous bias gradient (csrc/gemm.cpp, narrow_relu_backward):
# units in strips of 4 vectors of 8 (one or two outputs) or 2 (three or four), the last strip
# of 1 to 5 vectors ending with the 8 units ending at the last, overlapping the vector before
# it where 8 does not divide the units (8: one vector; 12: two; 24: three; 64: four or two;
# 37, 100, 260: five or three).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("units", [8, 12, 24, 37, 64, 100, 260])
@pytest.mark.parametrize("outputs", [1, 2, 3, 4])
@pytest.mark.parametrize("grad_at_zero", [0.0, 0.5, 1.0])
def test_a_narrow_last_layer_over_relu_matches_the_reference(rng, dtype, units, outputs,
                                                              grad_at_zero):
    relu = dp.Activation("relu", grad_at_zero=grad_at_zero)
    output = "sigmoid" if outputs == 1 else "identity"
    for sizes in ([7, units, outputs], [7, 12, units, outputs]):
        params, X, Y = narrow_problem(rng, sizes, dtype, 53, output)
        cpp = getattr(dp._core, f"Engine_{np.dtype(dtype).name}")(sizes, relu, output, n_threads=1)
        numpy = ref.Engine(sizes, relu, output)
        loss_c, got = engine_gradients(cpp, params, X, Y)
        loss_r, want = engine_gradients(numpy, params, X, Y)
        assert loss_c == pytest.approx(loss_r, rel=1e-10 if dtype == np.float64 else 1e-5)
        for g, w in zip(got, want):
            assert_close(g, w, what=f"gradient, sizes {sizes}")


@pytest.mark.parametrize("sizes", [[16, 256, 1], [16, 260, 3]])
def test_a_narrow_last_layers_one_pass_gives_the_bits_of_the_threaded_passes(rng, sizes):
    # On one thread the fused pass runs; on two, products this large (4096 x 256 x 1 and up)
    # take the separate, threaded passes. The sums are the same in the same order: same bits.
    relu = dp.Activation("relu", grad_at_zero=0.5)
    params, X, Y = narrow_problem(rng, sizes, np.float64, 4096, "identity")
    runs = [engine_gradients(dp._core.Engine_float64(sizes, relu, "identity", n_threads=t),
                             params, X, Y) for t in (1, 2)]
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["per-layer", "residual-mixed", "learned"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_half_steps_give_one_threads_bits_and_the_references_run(rng, name, weighted):
    """A small network's batch of at least 64 rows runs as two halves, one per thread, each
    gathering its own shuffled rows and drawing its part of the dropout masks, their gradients
    summed (mlp.hpp's step_slices): the bits of one thread, and the reference's training run.
    Batches of 70, 70 and 10 rows: two halved steps and one whole."""
    X, Y = problem(rng, "softmax", n=150)
    weights = rng.uniform(0.2, 2.0, 150) if weighted else None
    net = dict(NETWORKS[name])
    sizes = net.pop("sizes")
    fit = dict(epochs=3, batch_size=70, lr=0.01, optimizer="adam", alpha=1e-3,
               sample_weight=weights)
    runs = []
    for backend, threads in [("cpp", 1), ("cpp", 2), ("numpy", 1)]:
        model = dp.MLP(sizes, **net, dropout=0.1, seed=8, backend=backend, n_threads=threads)
        runs.append((model, model.fit(X, Y, **fit)))
    (one, h_one), (two, h_two), (numpy, h_ref) = runs
    assert h_one.loss == h_two.loss
    for a, b in zip(one._params(), two._params()):
        np.testing.assert_array_equal(a, b)
    assert_close(np.array(h_one.loss), np.array(h_ref.loss), rtol=TRAIN_RTOL[np.float64],
                 what="loss curve")
    for got, want in zip(one._params(), numpy._params()):
        assert_close(got, want, rtol=TRAIN_RTOL[np.float64], what="parameters after training")
