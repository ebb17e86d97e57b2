"""Bad input at every public entry point gets a clear Python exception that names the argument:
TypeError for wrong types and dtypes; ValueError for shapes, layouts, read-only outputs, empty
input, NaN/inf, unknown names, out-of-range values and overlapping outputs; MemoryError for
impossible allocations; FileNotFoundError for a missing model file. Never a crash, a hang or a
silent wrong answer. Where a layout is accepted (gemm's transposed and sliced views, zero-size
products), the answer must be right.

Crash safety is checked in subprocesses, so a segfault fails one test instead of killing pytest.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import json
import os
import re
import subprocess
import textwrap
import warnings
from types import MappingProxyType

import numpy as np
import pytest
from helpers import python

import deltaprop as dp
from deltaprop import _core, ops
from deltaprop import reference as ref

# pybind11's own message when no overload accepts the arguments: it prints the signature and the
# arguments, but not which argument is wrong, so it never counts as naming the argument.
GENERIC = ("incompatible function arguments", "incompatible constructor arguments")


def names(*args: str) -> str:
    """A regex matching a message that names every one of `args` as a whole word."""
    return "(?s)^" + "".join(rf"(?=.*(?<!\w){re.escape(a)}(?!\w))" for a in args)


@contextlib.contextmanager
def raises(exc, *args: str, match: str | None = None):
    """pytest.raises(exc) whose message names each of `args` (and matches `match`), and is not
    pybind11's generic overload failure."""
    with pytest.raises(exc, match=names(*args)) as info:
        yield info
    message = str(info.value)
    assert not any(g in message for g in GENERIC), f"message does not say which argument: {message}"
    if match is not None:
        assert re.search(match, message), f"{match!r} not in {message!r}"


class Checks:
    """Several `raises` checks in one test; every failing one is reported, by label."""

    def __init__(self):
        self.problems: list[str] = []

    @contextlib.contextmanager
    def expect(self, label: str, exc, *args: str, match: str | None = None):
        try:
            with raises(exc, *args, match=match):
                yield
        except (Exception, pytest.fail.Exception) as error:
            message = " ".join(str(error).split())
            self.problems.append(f"{label}: {type(error).__name__}: {message[:300]}")

    def done(self):
        assert not self.problems, "\n".join(self.problems)


def _no_core_dump():
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(*args: str, timeout: float = 60):
    """Runs a fresh interpreter; a crash shows up as a return code, not a dead pytest."""
    return subprocess.run(python(*args), capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_no_core_dump)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def classification(rng, n=12, d=3, k=3):
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


# ======================================================================================
# dp.MLP(...) constructor
# ======================================================================================

CONSTRUCTOR_CASES = [
    # (positional args, keyword args, exception, the name the message must contain)
    ((5,), {}, ValueError, "layer_sizes"),
    (("abc",), {}, ValueError, "layer_sizes"),
    ((None,), {}, ValueError, "layer_sizes"),
    (([3],), {}, ValueError, "layer_sizes"),
    (([],), {}, ValueError, "layer_sizes"),
    (([[3, 2]],), {}, ValueError, "layer_sizes"),
    (([3.0, 2],), {}, TypeError, "layer_sizes[0]"),
    (([3, 2.5],), {}, TypeError, "layer_sizes[1]"),
    (([3, True],), {}, TypeError, "layer_sizes[1]"),
    (([3, "2"],), {}, TypeError, "layer_sizes[1]"),
    (([0, 2],), {}, ValueError, "layer_sizes[0]"),
    (([3, 4, -1],), {}, ValueError, "layer_sizes[2]"),
    (([3, 2], "foo"), {}, ValueError, "activation"),
    (([3, 2], ""), {}, ValueError, "activation"),
    (([3, 2], "ReLU"), {}, ValueError, "activation"),
    (([3, 4, 2], ["relu", "tanh"]), {}, ValueError, "activation"),
    (([3, 4, 4, 2], ["relu"]), {}, ValueError, "activation"),
    (([3, 4, 2],), {"residual": [True]}, ValueError, "residual"),
    (([3, 4, 4, 2],), {"residual": [False]}, ValueError, "residual"),
    (([3, 4, 4, 2],), {"residual": [False, 1]}, TypeError, "residual[1]"),
    (([3, 4, 4, 2],), {"residual": "yes"}, TypeError, "residual"),
    (([3, 4, 2],), {"residual": True}, ValueError, "residual"),
    (([3, 2], "relu", "relu"), {}, ValueError, "output"),
    (([3, 2], "relu", "Softmax"), {}, ValueError, "output"),
    (([3, 2],), {"dtype": "int32"}, TypeError, "dtype"),
    (([3, 2],), {"dtype": "float16"}, TypeError, "dtype"),
    (([3, 2],), {"dtype": np.complex128}, TypeError, "dtype"),
    (([3, 2],), {"dtype": "nonsense"}, TypeError, "dtype"),
    (([3, 2],), {"dtype": object}, TypeError, "dtype"),
    (([3, 2],), {"seed": -1}, ValueError, "seed"),
    (([3, 2],), {"seed": 1.5}, TypeError, "seed"),
    (([3, 2],), {"seed": "1"}, TypeError, "seed"),
    (([3, 2],), {"seed": True}, TypeError, "seed"),
    (([3, 2],), {"backend": "torch"}, ValueError, "backend"),
    (([3, 2],), {"backend": None}, ValueError, "backend"),
    (([3, 2],), {"n_threads": 0}, ValueError, "n_threads"),
    (([3, 2],), {"n_threads": -2}, ValueError, "n_threads"),
    (([3, 2],), {"n_threads": 1.0}, TypeError, "n_threads"),
    (([3, 2],), {"grad_at_zero": 2}, ValueError, "grad_at_zero"),
    (([3, 2],), {"grad_at_zero": -0.5}, ValueError, "grad_at_zero"),
    (([3, 2],), {"grad_at_zero": float("nan")}, ValueError, "grad_at_zero"),
    (([3, 2],), {"grad_at_zero": "0"}, TypeError, "grad_at_zero"),
]


@pytest.mark.parametrize("args, kwargs, exc, name", CONSTRUCTOR_CASES)
def test_mlp_constructor_rejects_bad_arguments(args, kwargs, exc, name):
    checks = Checks()
    for backend in ["cpp", "numpy"]:
        with checks.expect(backend, exc, name):
            dp.MLP(*args, **{"backend": backend, **kwargs})
    checks.done()


@pytest.mark.parametrize("args, name", [
    (([3, 2], None), "activation"),
    (([3, 2], {"relu"}), "activation"),
    (([3, 4, 2], ["relu", 3]), "activation"),
    (([3, 2], "relu", None), "output"),
])
def test_mlp_constructor_wrong_type_of_name_is_a_type_error_naming_it(args, name):
    with raises(TypeError, name):
        dp.MLP(*args)


@pytest.mark.parametrize("args, kwargs, name", [
    (([2**70, 2],), {}, "layer_sizes[0]"),  # beyond any index type
    (([3, 2],), {"n_threads": 2**40}, "n_threads"),  # beyond the engine's int
])
def test_mlp_constructor_out_of_range_integer_is_a_value_error_naming_it(args, kwargs, name):
    with raises(ValueError, name):
        dp.MLP(*args, **kwargs)


def test_n_threads_setter_validates():
    net = dp.MLP([3, 2])
    for value, exc in [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                       (2**40, ValueError)]:
        with raises(exc, "n_threads"):
            net.n_threads = value
    assert net.n_threads is None  # every rejected value left it alone


@pytest.mark.parametrize("sizes", [[10**6, 10**6], [2**40, 2**40]])
def test_mlp_impossible_allocation_is_a_memory_error(sizes):
    with pytest.raises(MemoryError):
        dp.MLP(sizes)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_a_seed_the_constructor_accepts_can_be_trained_with(backend, rng):
    X, y = classification(rng)
    try:
        net = dp.MLP([3, 4, 3], seed=2**64, backend=backend)
    except ValueError as error:  # rejecting it up front, by name, is fine too
        assert re.search(names("seed"), str(error))
        return
    history = net.fit(X, y, epochs=1)  # not a TypeError from the engine's uint64
    assert history.epochs == 1


# ======================================================================================
# forward / predict / loss_and_gradients / fit: X and Y
# ======================================================================================

def _X(case, X):
    return {
        "1-D": X[0],
        "3-D": X[None],
        "scalar": 3.0,
        "0 samples": X[:0],
        "wrong features": X[:, :2],
        "complex": X + 0j,
        "strings": np.array([["a", "b", "c"]] * len(X)),
        "object": np.array([[1.0, None, 2.0]] * len(X), dtype=object),
        "None": None,
        "NaN": np.where(X > 1, np.nan, X),
        "+inf": np.where(X > 1, np.inf, X),
        "-inf": np.where(X > 1, -np.inf, X),
    }[case]


X_CASES = {"1-D": ValueError, "3-D": ValueError, "scalar": ValueError, "0 samples": ValueError,
           "wrong features": ValueError, "complex": TypeError, "strings": TypeError,
           "object": TypeError, "None": TypeError, "NaN": ValueError, "+inf": ValueError,
           "-inf": ValueError}


METHODS = ["forward", "predict", "loss_and_gradients", "fit"]


def run_method(net, method, X, Y):
    if method in ("forward", "predict"):
        return getattr(net, method)(X)
    if method == "loss_and_gradients":
        return net.loss_and_gradients(X, Y)
    return net.fit(X, Y, epochs=1)


@pytest.mark.parametrize("case", list(X_CASES))
def test_bad_X_is_rejected(rng, case):
    X, y = classification(rng)
    bad = _X(case, X)
    checks = Checks()
    for backend in ["cpp", "numpy"]:
        for method in METHODS:
            net = dp.MLP([3, 4, 3], backend=backend)
            with checks.expect(f"{backend} {method}", X_CASES[case], "X"):
                run_method(net, method, bad, y)
    checks.done()


Y_CASES = [
    # (output, case, exception)
    ("softmax", "too few rows", ValueError),
    ("softmax", "label 1.5", ValueError),
    ("softmax", "label -1", ValueError),
    ("softmax", "label == n_outputs", ValueError),
    ("softmax", "NaN", ValueError),
    ("softmax", "inf", ValueError),
    ("softmax", "2-D wrong width", ValueError),
    ("softmax", "3-D", ValueError),
    ("softmax", "scalar", ValueError),
    ("softmax", "strings", TypeError),
    ("softmax", "complex", TypeError),
    ("softmax", "None", TypeError),
    ("softmax", "rows summing to 2", ValueError),
    ("softmax", "a negative probability", ValueError),
    ("sigmoid", "outside [0, 1]", ValueError),
    ("sigmoid", "2-D wrong width", ValueError),
    ("sigmoid", "NaN", ValueError),
    ("identity", "inf", ValueError),
    ("identity", "2-D wrong width", ValueError),
    ("identity", "too few rows", ValueError),
]


def _Y(case, y, n_out):
    return {
        "too few rows": y[:5],
        "label 1.5": np.where(y == 0, 1.5, y),
        "label -1": np.where(y == 0, -1, y),
        "label == n_outputs": np.where(y == 0, n_out, y),
        "NaN": np.where(y == 0, np.nan, y),
        "inf": np.where(y == 0, np.inf, y),
        "2-D wrong width": np.zeros((len(y), n_out + 2)),
        "3-D": np.zeros((len(y), n_out, 1)),
        "scalar": 1,
        "strings": np.array(["a"] * len(y)),
        "complex": y + 0j,
        "None": None,
        "outside [0, 1]": np.where(y == 0, 2.0, 1.0),
        "rows summing to 2": np.full((len(y), n_out), 2 / n_out),
        "a negative probability": 2 * np.eye(3)[y] - np.eye(3)[(y + 1) % 3],  # (softmax: 3)
    }[case]


@pytest.mark.parametrize("output, case, exc", Y_CASES)
def test_bad_Y_is_rejected(rng, output, case, exc):
    n_out = 3 if output == "softmax" else 1
    X, y = classification(rng, k=2)
    bad = _Y(case, y, n_out)
    checks = Checks()
    for backend in ["cpp", "numpy"]:
        for method in ["loss_and_gradients", "fit"]:
            net = dp.MLP([3, 4, n_out], output=output, backend=backend)
            with checks.expect(f"{backend} {method}", exc, "Y"):
                run_method(net, method, X, bad)
    checks.done()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_rows_of_probabilities_are_taken_as_rounded(rng, dtype):
    """Soft targets rounded in float32 sum to 1 only to float32's rounding: a float64 network
    takes them (the tolerance is the coarser dtype's), as it takes exact one-hot rows."""
    X, y = classification(rng)
    soft = rng.random((len(y), 3)).astype(np.float32)
    soft /= soft.sum(axis=1, keepdims=True)
    for Y in (soft, np.eye(3, dtype=int)[y]):
        loss, *_ = dp.MLP([3, 4, 3], dtype=dtype).loss_and_gradients(X, Y)
        assert np.isfinite(loss)


def test_label_too_large_for_an_integer_is_a_value_error(rng):
    """A float label beyond int64 must give the label ValueError, not numpy's cast RuntimeWarning
    (which the test configuration, like any warnings-as-errors user, turns into the exception)."""
    net = dp.MLP([3, 4, 3])
    X, y = classification(rng)
    with raises(ValueError, "Y"):
        net.loss_and_gradients(X, np.where(y == 0, 1e20, y).astype(np.float64))


def test_input_beyond_float32_range_is_a_value_error(rng):
    """X of 1e300 for a float32 network overflows in the cast: a ValueError naming X, not numpy's
    cast RuntimeWarning."""
    net = dp.MLP([3, 4, 3], dtype="float32")
    X, _ = classification(rng)
    with raises(ValueError, "X"):
        net.forward(X * 1e300)


FIT_HYPER = [
    ({"epochs": -1}, ValueError, "epochs"),
    ({"epochs": 1.5}, TypeError, "epochs"),
    ({"epochs": True}, TypeError, "epochs"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.0}, TypeError, "batch_size"),
    ({"lr": -0.1}, ValueError, "lr"),
    ({"lr": float("nan")}, ValueError, "lr"),
    ({"lr": float("inf")}, ValueError, "lr"),
    ({"lr": "0.1"}, TypeError, "lr"),
    ({"lr": 10**400}, ValueError, "lr"),  # past float's range: not float()'s OverflowError
    ({"lr_schedule": "step", "schedule_options": {"gamma": 1.5}}, ValueError, "gamma"),
    # an option the schedule does not take was a TypeError naming the internal Schedule class,
    # or (one another schedule takes) silently ignored
    ({"lr_schedule": "step", "schedule_options": {"step": 3}}, ValueError, "step_size, gamma"),
    ({"lr_schedule": "cosine", "schedule_options": {"gamma": 0.5}}, ValueError, "lr_min"),
    ({"schedule_options": {"power_t": 0.5}}, ValueError, "no options"),
    ({"lr_schedule": "step", "schedule_options": MappingProxyType({"gamma": 2.0})}, ValueError,
     "gamma"),  # any Mapping is read
    ({"lr_schedule": "step", "schedule_options": [("gamma", 0.5)]}, TypeError,
     "schedule_options"),
    ({"momentum": -0.1}, ValueError, "momentum"),
    ({"momentum": 1.5}, ValueError, "momentum"),
    ({"momentum": float("nan")}, ValueError, "momentum"),
]


def test_fit_takes_any_real_number_as_a_rate(rng):
    """A Fraction is a real number: fit takes it as the float it is, as dp.ops does (before,
    np.isfinite raised TypeError on it)."""
    from fractions import Fraction

    X, y = classification(rng)
    nets = [dp.MLP([3, 4, 3], seed=1) for _ in range(2)]
    for net, lr in zip(nets, (Fraction(1, 10), 0.1)):
        net.fit(X, y, epochs=2, lr=lr)
    for a, b in zip(nets[0].coefs_, nets[1].coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["fit", "forward", "sample_weight"])
def test_the_model_refuses_masked_arrays(rng, method):
    """np.asarray drops a mask: the model would train on the hidden values, as dp.ops refuse."""
    X, y = classification(rng)
    net = dp.MLP([3, 4, 3])
    masked = np.ma.masked_array(X, mask=np.zeros(X.shape, bool))
    if method == "sample_weight":
        with raises(TypeError, "sample_weight", match="masked array"):
            net.fit(X, y, epochs=1, sample_weight=np.ma.masked_array(np.ones(len(X)), mask=True))
    else:
        with raises(TypeError, "X", match="masked array"):
            net.fit(masked, y, epochs=1) if method == "fit" else net.forward(masked)


@pytest.mark.parametrize("kwargs, exc, name", FIT_HYPER)
def test_fit_rejects_bad_hyperparameters_and_leaves_the_model_alone(rng, kwargs, exc, name):
    X, y = classification(rng)
    checks = Checks()
    for backend in ["cpp", "numpy"]:
        net = dp.MLP([3, 4, 3], backend=backend)
        before = [a.copy() for a in net.coefs_ + net.intercepts_]
        with checks.expect(backend, exc, name):
            net.fit(X, y, **{"epochs": 1, **kwargs})
        after = net.coefs_ + net.intercepts_
        if net.epochs_trained_ or not all(np.array_equal(a, b) for a, b in zip(after, before)):
            checks.problems.append(f"{backend}: the rejected fit changed the model")
    checks.done()


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_fit_batch_size_beyond_the_engine_index_type(rng, backend):
    """batch_size=2**63 is a valid integer >= 1: train one full batch, or say batch_size is too
    large; never a TypeError from the binding."""
    net = dp.MLP([3, 4, 3], backend=backend)
    X, y = classification(rng)
    try:
        history = net.fit(X, y, epochs=1, batch_size=2**63)
    except ValueError as error:
        assert re.search(names("batch_size"), str(error))
    else:
        assert history.epochs == 1


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output", ["identity", "softmax", "sigmoid"])
def test_fit_diverging_learning_rate_raises_floating_point_error(rng, backend, dtype, output):
    X = rng.standard_normal((64, 4))
    t = X @ rng.standard_normal(4)
    Y = {"identity": t, "softmax": (t > 0).astype(int), "sigmoid": (t > 0).astype(float)}[output]
    net = dp.MLP([4, 8, 2 if output == "softmax" else 1], output=output, dtype=dtype,
                 backend=backend)
    # The reference is plain NumPy: its overflow warnings are NumPy's business, not the contract.
    quiet = np.errstate(all="ignore") if backend == "numpy" else contextlib.nullcontext()
    with quiet, pytest.raises(FloatingPointError, match=r"epoch \d+"):
        net.fit(X, Y, epochs=50, batch_size=8, lr=1e6)


@pytest.mark.parametrize("dtype, lr", [("float64", 1e308), ("float32", 3e38)])
def test_fit_never_returns_normally_with_non_finite_parameters(rng, dtype, lr):
    """One full-batch epoch whose single update overflows the weights: the epoch's loss (taken
    before the update) is finite, but the model is now inf/NaN. fit must not return as if all
    were well."""
    X = rng.standard_normal((64, 4))
    y = 10 * X @ rng.standard_normal(4)
    net = dp.MLP([4, 8, 1], output="identity", dtype=dtype)
    with pytest.raises(FloatingPointError, match=r"epoch 1\b"):
        net.fit(X, y, epochs=1, batch_size=64, lr=lr)


# ======================================================================================
# The engine reached through the model: user-replaced parameters
# ======================================================================================

def _replace(net, case):
    """Applies `case` to net and returns (exception, name) the engine must raise."""
    W0, b1, dt = net.coefs_[0], net.intercepts_[1], net.dtype
    other = np.float32 if dt == np.float64 else np.float64
    if case == "coefs wrong shape":
        net.coefs_[0] = np.zeros((3, 5), dt)
        return ValueError, "coefs_[0]"
    if case == "coefs transposed shape":
        net.coefs_[0] = np.ascontiguousarray(W0.T)
        return ValueError, "coefs_[0]"
    if case == "coefs 1-D":
        net.coefs_[0] = W0.ravel()
        return ValueError, "coefs_[0]"
    if case == "coefs other float dtype":
        net.coefs_[0] = W0.astype(other)
        return TypeError, "coefs_[0]"
    if case == "coefs int":
        net.coefs_[0] = np.zeros(W0.shape, int)
        return TypeError, "coefs_[0]"
    if case == "coefs F-ordered":
        net.coefs_[0] = np.asfortranarray(W0)
        return ValueError, "coefs_[0]"
    if case == "coefs strided view":
        net.coefs_[0] = np.repeat(W0, 2, axis=1)[:, ::2]
        return ValueError, "coefs_[0]"
    if case == "coefs list":
        net.coefs_[0] = W0.tolist()
        return TypeError, "coefs_[0]"
    if case == "coefs None":
        net.coefs_[0] = None
        return TypeError, "coefs_[0]"
    if case == "coefs NaN":
        W0[1, 1] = np.nan
        return ValueError, "coefs_[0]"
    if case == "coefs inf":
        W0[0, 2] = -np.inf
        return ValueError, "coefs_[0]"
    if case == "coefs too few":
        net.coefs_.pop()
        return ValueError, "coefs_"
    if case == "intercepts wrong shape":
        net.intercepts_[1] = np.zeros((1, b1.size), dt)
        return ValueError, "intercepts_[1]"
    if case == "intercepts other float dtype":
        net.intercepts_[1] = b1.astype(other)
        return TypeError, "intercepts_[1]"
    if case == "intercepts strided":
        net.intercepts_[1] = np.zeros(2 * b1.size, dt)[::2]
        return ValueError, "intercepts_[1]"
    if case == "intercepts NaN":
        b1[0] = np.nan
        return ValueError, "intercepts_[1]"
    if case == "intercepts too many":
        net.intercepts_.append(np.zeros(3, dt))
        return ValueError, "intercepts_"
    raise AssertionError(case)


REPLACED = ["coefs wrong shape", "coefs transposed shape", "coefs 1-D", "coefs other float dtype",
            "coefs int", "coefs F-ordered", "coefs strided view", "coefs list", "coefs None",
            "coefs NaN", "coefs inf", "coefs too few", "intercepts wrong shape",
            "intercepts other float dtype", "intercepts strided", "intercepts NaN",
            "intercepts too many"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", REPLACED)
def test_replaced_parameter_is_rejected_by_name(rng, dtype, case):
    X, y = classification(rng)
    checks = Checks()
    for method in METHODS:
        net = dp.MLP([3, 4, 3], dtype=dtype)
        exc, name = _replace(net, case)
        with checks.expect(method, exc, name):
            run_method(net, method, X, y)
    checks.done()


@pytest.mark.parametrize("which", ["coefs_", "intercepts_"])
def test_read_only_parameters_can_be_read_but_not_trained(rng, which):
    net = dp.MLP([3, 4, 3])
    X, y = classification(rng)
    getattr(net, which)[0].setflags(write=False)
    net.forward(X)  # reading a read-only parameter is fine
    net.loss_and_gradients(X, y)
    before = [a.copy() for a in net.coefs_ + net.intercepts_]
    with raises(ValueError, f"{which}[0]", match="read-only"):
        net.fit(X, y, epochs=1)
    for a, b in zip(net.coefs_ + net.intercepts_, before):
        np.testing.assert_array_equal(a, b)


def _alias(net, X, case):
    if case == "two coefs are one array":
        net.coefs_[1] = net.coefs_[0]
        return ("coefs_[0]", "coefs_[1]"), X
    if case == "two intercepts are one array":
        net.intercepts_[1] = net.intercepts_[0]
        return ("intercepts_[0]", "intercepts_[1]"), X
    if case == "an intercept is a row of a coef":
        net.intercepts_[1] = net.coefs_[0][1]
        return ("coefs_[0]", "intercepts_[1]"), X
    if case == "X is a coef":
        return ("coefs_[1]", "X"), net.coefs_[1]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["two coefs are one array", "two intercepts are one array",
                                  "an intercept is a row of a coef", "X is a coef"])
def test_fit_rejects_parameters_that_share_memory(rng, case):
    net = dp.MLP([3, 3, 3])
    X, y = classification(rng, n=3)
    pair, X = _alias(net, X, case)
    before = [a.copy() for a in net.coefs_ + net.intercepts_]
    with raises(ValueError, *pair, match="share memory"):
        net.fit(X, y, epochs=1)
    for a, b in zip(net.coefs_ + net.intercepts_, before):
        np.testing.assert_array_equal(a, b)


# ======================================================================================
# save / load
# ======================================================================================

@pytest.fixture
def saved(tmp_path):
    net = dp.MLP([2, 3, 2], activation="tanh", seed=4)
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


def _contents(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _write(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_loading_a_bad_file_closes_it(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(path.read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with raises(ValueError, str(bad)):
                dp.MLP.load(bad)
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, leaked


def test_load_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        dp.MLP.load(tmp_path / "no-such-model.npz")


def test_save_into_missing_directory_is_file_not_found(saved, tmp_path):
    net, _ = saved
    with pytest.raises(FileNotFoundError):
        net.save(tmp_path / "no-such-dir" / "model.npz")


def test_a_save_cut_short_leaves_the_file_that_was_there(saved, monkeypatch):
    """Ctrl-C (or a full disk) in the middle of a save: the file was opened in place, so it
    left half an archive where a good model was (9 to 20 of 20 interrupted saves)."""
    net, path = saved
    before = path.read_bytes()

    def cut_short(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", cut_short)
    with pytest.raises(KeyboardInterrupt):
        net.save(path)
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]  # (nothing left beside it)


def test_save_writes_through_a_symlink_and_keeps_the_file_s_mode(saved, tmp_path):
    net, path = saved
    os.chmod(path, 0o600)
    link = tmp_path / "link.npz"
    link.symlink_to(path)
    net.save(link)
    assert link.is_symlink() and os.stat(path).st_mode & 0o777 == 0o600
    assert dp.MLP.load(link).layer_sizes == net.layer_sizes


def test_save_keeps_what_open_would_keep(saved, tmp_path):
    """Where renaming a new file over the old one would change what open() keeps, the file is
    written in place: a hard link stays one file with its other name, a new file gets the
    umask's mode (the renamed one is private until it takes the old one's mode)."""
    net, path = saved
    other = tmp_path / "other-name.npz"
    os.link(path, other)
    dp.MLP([2, 5, 2], seed=1).save(path)
    assert os.path.samefile(path, other) and dp.MLP.load(other).layer_sizes == [2, 5, 2]
    umask = os.umask(0)
    os.umask(umask)
    net.save(tmp_path / "new.npz")
    assert os.stat(tmp_path / "new.npz").st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.25, 0.5, 0.9, 0.999])
def test_load_truncated_file(saved, tmp_path, fraction):
    _, path = saved
    raw = path.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:int(len(raw) * fraction)])
    with raises(ValueError, str(bad)):
        dp.MLP.load(bad)


def _positions_to_corrupt(raw: bytes, path) -> list:
    """Every byte of the zip structure (local headers, central directory, end record) and a
    sample of each member's data, which the member's CRC-32 covers as a whole."""
    import zipfile

    payload = set()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            off = info.header_offset
            name_len = int.from_bytes(raw[off + 26:off + 28], "little")
            extra_len = int.from_bytes(raw[off + 28:off + 30], "little")
            start = off + 30 + name_len + extra_len
            payload.update(range(start, start + info.compress_size))
    sample = {p for p in payload if p % 37 == 0} | {min(payload), max(payload)}
    return sorted(set(range(len(raw))) - payload | sample)


def test_load_corrupted_bytes(saved, tmp_path):
    """Flip bytes of a saved model one at a time: the load raises ValueError naming the file, or
    (for bytes no reader looks at, such as zip timestamps) gives back the same model bit for bit.
    Never another exception type, and never different parameters."""
    net, path = saved
    raw = path.read_bytes()
    problems = []
    for pos in _positions_to_corrupt(raw, path):
        data = bytearray(raw)
        data[pos] ^= 0xFF
        bad = tmp_path / f"corrupted-{pos}.npz"  # a new file: rewriting one in place is slow
        bad.write_bytes(bytes(data))
        try:
            got = dp.MLP.load(bad)
        except ValueError as error:
            if str(bad) not in str(error):
                problems.append(f"byte {pos}: message does not name the file: {error}")
            continue
        except Exception as error:  # noqa: BLE001 - this is what the test looks for
            problems.append(f"byte {pos}: {type(error).__name__}: {error}")
            continue
        same = (got.layer_sizes == net.layer_sizes and got.activation == net.activation
                and got.output == net.output and got.dtype == net.dtype
                and got.seed == net.seed and got.grad_at_zero == net.grad_at_zero
                and got.epochs_trained_ == net.epochs_trained_
                and all(a.dtype == b.dtype and a.shape == b.shape and
                        a.tobytes() == b.tobytes()
                        for a, b in zip(got.coefs_ + got.intercepts_,
                                        net.coefs_ + net.intercepts_)))
        if not same:
            problems.append(f"byte {pos}: loaded a different model silently")
    assert not problems, "\n".join(problems[:12])


def _header(arrays):
    return json.loads(str(arrays["header"]))


HEADER_CASES = [
    ("format", "other-format"),
    ("format", None),
    ("format", KeyError),
    ("version", 4),
    ("version", 0),
    ("version", "1"),
    ("version", True),
    ("version", 2.0),
    ("version", KeyError),
    ("state_arrays", "coefs_0"),
    ("state_arrays", ["no such array"]),
    ("state_arrays", ["header"]),
    ("state_arrays", ["coefs_0", "coefs_0"]),
    ("layer_sizes", [2, 5, 2]),
    ("layer_sizes", "x"),
    ("layer_sizes", KeyError),
    ("activation", "bogus"),
    ("output", "relu"),
    ("dtype", "int32"),
    ("dtype", "float32"),
    ("seed", -1),
    ("grad_at_zero", 5),
    ("epochs_trained", "x"),
    ("epochs_trained", None),
    ("epochs_trained", KeyError),
    ("epochs_trained", -5),
]


@pytest.mark.parametrize("key, value", HEADER_CASES)
def test_load_bad_header(saved, tmp_path, key, value):
    _, path = saved
    arrays = _contents(path)
    header = _header(arrays)
    if value is KeyError:
        del header[key]
    else:
        header[key] = value
    arrays["header"] = np.array(json.dumps(header))
    bad = _write(tmp_path / "bad-header.npz", arrays)
    with raises(ValueError, str(bad)):
        dp.MLP.load(bad)


def _array_case(arrays, case):
    if case == "plain npz, not ours":
        return {"a": np.ones(3), "b": np.zeros((2, 2))}
    if case == "empty npz":
        return {}
    if case == "header is a list":
        return {**arrays, "header": np.array(json.dumps([1, 2]))}
    if case == "header is a number":
        return {**arrays, "header": np.array(5)}
    if case == "header is not JSON":
        return {**arrays, "header": np.array("{not json")}
    if case == "header as bytes":
        return {**arrays, "header": np.frombuffer(str(arrays["header"]).encode(), np.uint8)}
    if case == "extra array":
        return {**arrays, "extra": np.ones(2)}
    if case == "missing array":
        return {k: v for k, v in arrays.items() if k != "coefs_1"}
    if case == "wrong dtype array":
        return {**arrays, "coefs_0": arrays["coefs_0"].astype(np.float32)}
    if case == "wrong shape array":
        return {**arrays, "coefs_0": np.ascontiguousarray(arrays["coefs_0"].T)}
    if case == "object array":
        return {**arrays, "coefs_0": np.array([None] * 6, dtype=object).reshape(2, 3)}
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["plain npz, not ours", "empty npz", "header is a list",
                                  "header is a number", "header is not JSON", "header as bytes",
                                  "extra array", "missing array", "wrong dtype array",
                                  "wrong shape array", "object array"])
def test_load_archive_that_is_not_a_model(saved, tmp_path, case):
    _, path = saved
    bad = tmp_path / "not-a-model.npz"
    _write(bad, _array_case(_contents(path), case))  # the object array is pickled by savez
    with raises(ValueError, str(bad)):
        dp.MLP.load(bad)


@pytest.mark.parametrize("kind", ["empty file", "text file", "pickle", "npy file", "directory",
                                  "gzip"])
def test_load_file_that_is_not_an_archive(tmp_path, kind):
    import gzip
    import pickle

    bad = tmp_path / f"model-{kind.replace(' ', '-')}"
    if kind == "empty file":
        bad.write_bytes(b"")
    elif kind == "text file":
        bad.write_text("layer_sizes = [2, 3]\n")
    elif kind == "pickle":
        bad.write_bytes(pickle.dumps({"layer_sizes": [2, 3]}))
    elif kind == "npy file":
        with open(bad, "wb") as f:
            np.save(f, np.ones(3))
    elif kind == "directory":
        bad.mkdir()
    else:
        bad.write_bytes(gzip.compress(b"PK\x03\x04 not really"))
    with raises(ValueError, str(bad)):
        dp.MLP.load(bad)


def _rewrite_member(path, bad, member, edit):
    """A copy of the archive at path, with member's bytes edited: a valid zip (its CRCs
    recomputed) holding a damaged array, as a bit flip before the zip was written would."""
    import zipfile

    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, edit(data) if name == member else data)
    return bad


def _npy_header_edit(old, new):
    """Replaces text in a .npy header, keeping its length (numpy pads it to 64 bytes)."""
    def edit(data):
        size = 10 + int.from_bytes(data[8:10], "little")  # magic, version, length, header
        head = data[10:size].replace(old, new)[:size - 11].ljust(size - 11) + b"\n"
        return data[:10] + head + data[size:]
    return edit


@pytest.mark.parametrize("case, edit", [
    ("unbalanced shape", _npy_header_edit(b"(2, 3)", b"(2, 3 ")),  # numpy's tokenizer raises
    ("huge shape", _npy_header_edit(b"(2, 3)", b"(2000000000000, 3)")),
    ("negative shape", _npy_header_edit(b"(2, 3)", b"(-2, -3)")),
    ("shape larger than the data", _npy_header_edit(b"(2, 3)", b"(3, 3)")),
    ("not a dict", _npy_header_edit(b"{", b"[")),
    ("object dtype", _npy_header_edit(b"'<f8'", b"'|O' ")),
    ("npy version 9", lambda data: data[:6] + b"\x09" + data[7:]),
    ("not npy", lambda data: b"garbage!" + data[8:]),
    ("data cut short", lambda data: data[:-8]),
])
def test_load_damaged_array_header(saved, tmp_path, case, edit):
    """Whatever a damaged .npy header says, the load raises ValueError naming the file, having
    allocated nothing the file does not hold (a 1 kB file asking for 48 TB)."""
    _, path = saved
    bad = _rewrite_member(path, tmp_path / "damaged.npz", "coefs_0.npy", edit)
    with raises(ValueError, str(bad)):
        dp.MLP.load(bad)


def _declare_member_size(raw: bytes, member: str, size: int) -> bytes:
    """The archive with the central directory's sizes (compressed and not) of ``member`` set to
    ``size``: a directory that lies, its member still stored."""
    name = member.encode()
    entry = raw.index(b"PK\x01\x02")  # the directory's first entry
    while raw[entry + 46:entry + 46 + len(name)] != name:
        entry = raw.index(b"PK\x01\x02", entry + 4)
    sizes = size.to_bytes(4, "little") * 2  # compressed size at +20, uncompressed at +24
    return raw[:entry + 20] + sizes + raw[entry + 28:]


def _deflated_copy(path, bad, extra_zeros=0):
    """The archive at path with every member deflated, plus an extra member of that many zero
    bytes when asked: a file of a few hundred kB that inflates to hundreds of MB."""
    import zipfile

    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        if extra_zeros:
            with zout.open("extra.npy", "w") as f:
                for _ in range(extra_zeros >> 20):
                    f.write(bytes(1 << 20))
    return bad


@pytest.mark.parametrize("case", ["directory declares 300 MB", "deflated members",
                                  "400 MB of zeros deflated"])
def test_load_takes_no_memory_the_file_does_not_hold(saved, tmp_path, case):
    """A model file's members are stored (np.savez), so the bytes a load reads are bounded by
    the file's size. A directory that declares more, or deflated members (which could inflate
    to any size), are refused before any member is read."""
    import tracemalloc

    _, path = saved
    bad = tmp_path / "bad.npz"
    if case == "directory declares 300 MB":
        bad.write_bytes(_declare_member_size(path.read_bytes(), "coefs_0.npy", 300_000_000))
    else:
        _deflated_copy(path, bad, extra_zeros=400 << 20 if case.startswith("400") else 0)
    assert bad.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with raises(ValueError, str(bad)):
            dp.MLP.load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"the load took {peak >> 20} MB"


@pytest.mark.parametrize("kind", ["character device", "FIFO"])
def test_load_a_file_that_is_not_regular_is_refused_at_once(tmp_path, kind):
    """zipfile would read /dev/zero without end, and opening a FIFO waits for a writer: each is
    a ValueError, in a fresh process that must end within its timeout."""
    path = "/dev/zero"
    if kind == "FIFO":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    result = run_python("-c", "import deltaprop as dp, sys\n"
                              "try:\n    dp.MLP.load(sys.argv[1])\n"
                              "except ValueError as e:\n    print(e)\n", path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{path} is not a readable deltaprop model file: ValueError: not a regular file" \
        in result.stdout


def test_load_a_header_nested_past_the_stack_is_a_bad_header(saved, tmp_path):
    _, path = saved
    contents = _contents(path)
    bad = _write(tmp_path / "deep.npz", {**contents, "header": np.array("[" * 100_000)})
    with raises(ValueError, str(bad), match="no header"):
        dp.MLP.load(bad)


def test_load_checks_the_arrays_before_building_the_network(saved, tmp_path):
    """A tiny file whose header names a huge network, and holds none of its weights, is refused
    before a network that size is built (20 000 x 20 000 would take seconds and 3.2 GB)."""
    class NeverBuilt(dp.MLP):
        def __init__(self, *args, **kwargs):
            raise AssertionError("the network was built before the file was checked")

    _, path = saved
    header = _header(_contents(path))
    header["layer_sizes"] = [20_000, 20_000]
    bad = _write(tmp_path / "huge-header.npz", {"header": np.array(json.dumps(header))})
    with raises(ValueError, "coefs_0 should be float64 (20000, 20000), got missing"):
        NeverBuilt.load(bad)


def test_save_refuses_parameters_load_would_refuse(tmp_path):
    net = dp.MLP([2, 3, 2], seed=0)
    net.coefs_[1][0, 0] = np.nan
    path = tmp_path / "nan.npz"
    with raises(ValueError, "coefs_1 holds NaN or inf"):
        net.save(path)
    assert not path.exists()


@pytest.mark.parametrize("kwargs, exc, name", [
    ({"backend": "bogus"}, ValueError, "backend"),
    ({"n_threads": "2"}, TypeError, "n_threads"),
    ({"n_threads": 0}, ValueError, "n_threads"),
])
def test_load_bad_arguments_blame_the_argument_not_the_file(saved, kwargs, exc, name):
    _, path = saved
    with raises(exc, name) as info:
        dp.MLP.load(path, **kwargs)
    assert "not a readable deltaprop model file" not in str(info.value)


# ======================================================================================
# dp.ops: gemm
# ======================================================================================

def _mats(rng, dtype=np.float64, m=4, k=5, n=3):
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def _out_case(case, A, B):
    m, n = A.shape[0], B.shape[1]
    if case == "read-only":
        out = np.zeros((m, n))
        out.setflags(write=False)
        return out, ValueError, ("out",)
    if case == "wrong shape":
        return np.zeros((n, m)), ValueError, ("out",)
    if case == "1-D":
        return np.zeros(m * n), ValueError, ("out",)
    if case == "3-D":
        return np.zeros((1, m, n)), ValueError, ("out",)
    if case == "float32":
        return np.zeros((m, n), np.float32), TypeError, ("out",)
    if case == "int":
        return np.zeros((m, n), int), TypeError, ("out",)
    if case == "F-ordered":
        return np.zeros((m, n), order="F"), ValueError, ("out",)
    if case == "reversed rows":
        return np.zeros((m, n))[::-1], ValueError, ("out",)
    if case == "reversed columns":
        return np.zeros((m, n))[:, ::-1], ValueError, ("out",)
    if case == "column step 2":
        return np.zeros((m, 2 * n))[:, ::2], ValueError, ("out",)
    if case == "broadcast":
        return np.broadcast_to(np.zeros(n), (m, n)), ValueError, ("out",)
    if case == "list":
        return np.zeros((m, n)).tolist(), TypeError, ("out",)
    if case == "memoryview":
        return memoryview(np.zeros((m, n))), TypeError, ("out",)
    if case == "scalar":
        return 0.0, TypeError, ("out",)
    raise AssertionError(case)


OUT_CASES = ["read-only", "wrong shape", "1-D", "3-D", "float32", "int", "F-ordered",
             "reversed rows", "reversed columns", "column step 2", "broadcast", "list",
             "memoryview", "scalar"]


@pytest.mark.parametrize("case", OUT_CASES)
def test_gemm_bad_out(rng, case):
    A, B = _mats(rng)
    checks = Checks()
    for beta in [0.0, 1.0]:
        out, exc, who = _out_case(case, A, B)
        with checks.expect(f"beta={beta}", exc, *who):
            ops.gemm(A, B, beta=beta, out=out)
    checks.done()


@pytest.mark.parametrize("case", ["out is A", "out is B", "out is A.T", "out is a view of A",
                                  "out interleaves with A"])
def test_gemm_out_overlapping_an_input(case):
    S = np.arange(9.0).reshape(3, 3)
    buf = np.arange(24.0).reshape(3, 8)
    A, B, out, other = {
        "out is A": (S, np.eye(3), S, "A"),
        "out is B": (np.eye(3), S, S, "B"),
        "out is A.T": (S.T, np.eye(3), S, "A"),
        "out is a view of A": (buf[:, :3], np.eye(3), buf[:, 1:4], "A"),
        "out interleaves with A": (buf[:, :3], np.eye(3), buf[:, 5:8], "A"),
    }[case]
    before = buf.copy(), S.copy()
    with raises(ValueError, "out", other, match="share memory"):
        ops.gemm(A, B, out=out)
    np.testing.assert_array_equal(buf, before[0])  # nothing was written
    np.testing.assert_array_equal(S, before[1])


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_gemm_mismatched_inner_dimensions(rng, trans_a, trans_b):
    A = rng.standard_normal((4, 5))
    B = rng.standard_normal((6, 3)) if not trans_b else rng.standard_normal((3, 6))
    if trans_a:
        A = rng.standard_normal((5, 4))
    with raises(ValueError, "A", "B", match="inner dimension"):
        ops.gemm(A, B, trans_a, trans_b)


def test_gemm_beta_without_out(rng):
    A, B = _mats(rng)
    with raises(ValueError, "beta", "out"):
        ops.gemm(A, B, beta=0.5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.complex64, np.complex128,
                                   object, np.bool_, np.float16, np.longdouble, ">f8", ">f4",
                                   "U3", "datetime64[s]"])
def test_gemm_rejects_dtype(rng, dtype):
    A, B = _mats(rng)
    checks = Checks()
    with checks.expect("A", TypeError, "A"):
        ops.gemm(A.astype(dtype), B)
    with checks.expect("B", TypeError, "B"):
        ops.gemm(A, B.astype(dtype))
    checks.done()


@pytest.mark.parametrize("dtype_a, dtype_b", [(np.float32, np.float64), (np.float64, np.float32)])
def test_gemm_rejects_mixed_float_dtypes(rng, dtype_a, dtype_b):
    A, B = _mats(rng)
    with raises(TypeError, "B", match="float32|float64"):
        ops.gemm(A.astype(dtype_a), B.astype(dtype_b))
    A32, B32 = A.astype(dtype_a), B.astype(dtype_a)
    with raises(TypeError, "out"):
        ops.gemm(A32, B32, out=np.zeros((4, 3), dtype_b))


@pytest.mark.parametrize("which", ["A", "B", "out"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_gemm_non_finite_with_check_finite(rng, which, value):
    checks = Checks()
    for layout in ["C", "F"]:
        for dtype in [np.float64, np.float32]:
            A, B = _mats(rng, dtype)
            out = np.ones((4, 3), dtype)
            {"A": A, "B": B, "out": out}[which][-1, 1] = value
            if layout == "F":
                A, B = np.asfortranarray(A), np.asfortranarray(B)
            beta = 1.0 if which == "out" else 0.0  # beta=0 does not read out (BLAS convention)
            label = f"{layout} {np.dtype(dtype).name}"
            with checks.expect(label, ValueError, which, match="NaN or inf"):
                ops.gemm(A, B, beta=beta, out=out, check_finite=True)
            # check_finite=False skips the check and propagates the value, as the user asked
            ops.gemm(A, B, beta=beta, out=out, check_finite=False)
            if np.isfinite(out).all():
                checks.problems.append(f"{label}: check_finite=False lost the {value}")
    checks.done()


@pytest.mark.parametrize("kwargs, name", [
    ({"alpha": np.nan}, "alpha"), ({"alpha": np.inf}, "alpha"), ({"alpha": -np.inf}, "alpha"),
    ({"beta": np.nan}, "beta"), ({"beta": np.inf}, "beta"),
])
def test_gemm_non_finite_scalars(rng, kwargs, name):
    A, B = _mats(rng)
    with raises(ValueError, name):
        ops.gemm(A, B, out=np.zeros((4, 3)), **kwargs)


@pytest.mark.parametrize("which", ["A", "B"])
@pytest.mark.parametrize("view", ["reversed rows", "reversed columns", "column step 2",
                                  "both steps 2", "broadcast rows"])
def test_gemm_rejects_views_without_a_unit_stride(rng, which, view):
    big = rng.standard_normal((10, 12))
    bad = {
        "reversed rows": big[:5, :5][::-1],
        "reversed columns": big[:5, :5][:, ::-1],
        "column step 2": big[:5, :10:2],
        "both steps 2": big[:10:2, :10:2],
        "broadcast rows": np.broadcast_to(big[0, :5], (5, 5)),
    }[view]
    other = rng.standard_normal((5, 5))
    with raises(ValueError, which, match="stride"):
        ops.gemm(bad, other) if which == "A" else ops.gemm(other, bad)


@pytest.mark.parametrize("shape", [(5,), (1, 5, 5), ()])
@pytest.mark.parametrize("which", ["A", "B"])
def test_gemm_rejects_wrong_ndim(rng, which, shape):
    bad = rng.standard_normal(shape)
    other = rng.standard_normal((5, 5))
    with raises(ValueError, which):
        ops.gemm(bad, other) if which == "A" else ops.gemm(other, bad)


def _layout(rng, shape, dtype, kind):
    """A matrix of logical `shape` stored in layout `kind`."""
    m, n = shape
    if kind == "C":
        return rng.standard_normal((m, n)).astype(dtype)
    if kind == "F":
        return np.asfortranarray(rng.standard_normal((m, n)).astype(dtype))
    if kind == "row-sliced":  # rows of a wider array: row stride > n
        return rng.standard_normal((m + 3, n + 7)).astype(dtype)[2:2 + m, 3:3 + n]
    if kind == "F-sliced":  # a window of a Fortran array: column stride > m
        base = np.asfortranarray(rng.standard_normal((m + 5, n + 2)).astype(dtype))
        return base[1:1 + m, 2:2 + n]
    if kind == "every other row":
        return rng.standard_normal((2 * m, n)).astype(dtype)[::2]
    if kind == "misaligned":  # C-contiguous data at an odd byte address
        buf = np.zeros(m * n * np.dtype(dtype).itemsize + 1, np.uint8)
        a = np.ndarray((m, n), dtype, buffer=buf, offset=1)
        a[...] = rng.standard_normal((m, n))
        return a
    raise AssertionError(kind)


LAYOUTS = ["C", "F", "row-sliced", "F-sliced", "every other row"]
LAYOUT_PAIRS = ([(a, "C") for a in LAYOUTS] + [("C", b) for b in LAYOUTS[1:]] +
                [("F", "F"), ("F-sliced", "row-sliced"), ("every other row", "F-sliced")])


TRANS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout_a, layout_b", LAYOUT_PAIRS)
def test_gemm_views_give_the_right_answer(isa, rng, dtype, layout_a, layout_b):
    for trans_a, trans_b in TRANS:
        _check_gemm_views(rng, dtype, trans_a, trans_b, layout_a, layout_b, n_threads=1)


@pytest.mark.parametrize("layout_a, layout_b", [("F", "row-sliced"), ("row-sliced", "F-sliced"),
                                                ("every other row", "F")])
def test_gemm_views_give_the_right_answer_threaded(rng, layout_a, layout_b):
    for trans_a, trans_b in TRANS:
        _check_gemm_views(rng, np.float64, trans_a, trans_b, layout_a, layout_b, n_threads=2)


def _check_gemm_views(rng, dtype, trans_a, trans_b, layout_a, layout_b, n_threads):
    m, n, k = 37, 29, 70  # over a few micro-tiles, with ragged edges
    what = f"trans_a={trans_a} trans_b={trans_b}"
    A = _layout(rng, (k, m) if trans_a else (m, k), dtype, layout_a)
    B = _layout(rng, (n, k) if trans_b else (k, n), dtype, layout_b)
    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    expected = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    got = ops.gemm(A, B, trans_a, trans_b, n_threads=n_threads)
    assert got.shape == (m, n) and got.dtype == dtype, what
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol * k * np.abs(expected).max(),
                               err_msg=what)
    # ... and into an out= view, with alpha and beta
    big = rng.standard_normal((m + 4, n + 6)).astype(dtype)
    out = big[2:2 + m, 3:3 + n]
    c0, outside = out.astype(np.float64), big.copy()
    result = ops.gemm(A, B, trans_a, trans_b, alpha=-0.5, beta=2.0, out=out,
                      n_threads=n_threads)
    assert result is out, what
    np.testing.assert_allclose(out, -0.5 * expected + 2.0 * c0, rtol=0,
                               atol=tol * k * (np.abs(expected).max() + 4), err_msg=what)
    outside[2:2 + m, 3:3 + n] = big[2:2 + m, 3:3 + n]
    np.testing.assert_array_equal(big, outside, err_msg=f"{what}: written outside the view")


@pytest.mark.parametrize("kind", ["row-sliced", "every other row", "F column"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gemm_into_strided_out(rng, kind, dtype):
    A, B = _mats(rng, dtype, m=9, k=6, n=1 if kind == "F column" else 7)
    out = (np.zeros((9, 1), dtype, order="F") if kind == "F column"
           else _layout(rng, (9, 7), dtype, kind))
    c0 = out.astype(np.float64)
    ops.gemm(A, B, beta=0.5, out=out)
    expected = A.astype(np.float64) @ B.astype(np.float64) + 0.5 * c0
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=0, atol=tol * max(1, np.abs(expected).max()))


@pytest.mark.parametrize("which", ["A", "B", "out"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gemm_rejects_misaligned_arrays(rng, which, dtype):
    """A view at an odd byte offset: loading its elements would be undefined behaviour (UBSan
    stops on it), so it is refused by name, like a layout without a unit stride."""
    arrays = {"A": _layout(rng, (4, 3), dtype, "C"), "B": _layout(rng, (3, 5), dtype, "C"),
              "out": _layout(rng, (4, 5), dtype, "C")}
    arrays[which] = _layout(rng, arrays[which].shape, dtype, "misaligned")
    with raises(ValueError, which, match="aligned"):
        ops.gemm(arrays["A"], arrays["B"], out=arrays["out"])


@pytest.mark.parametrize("m, n, k", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0), (1, 1, 0),
                                     (70, 90, 0), (0, 70, 300)])
def test_gemm_zero_size_dimensions(m, n, k):
    for dtype in [np.float64, np.float32]:
        for trans_a, trans_b in TRANS:
            _check_zero_size(dtype, trans_a, trans_b, m, n, k)


def _check_zero_size(dtype, trans_a, trans_b, m, n, k):
    A = np.ones((k, m) if trans_a else (m, k), dtype)
    B = np.ones((n, k) if trans_b else (k, n), dtype)
    got = ops.gemm(A, B, trans_a, trans_b, alpha=2.0)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_array_equal(got, np.zeros((m, n), dtype))
    for beta, fill in [(0.0, np.nan), (1.0, 3.0), (0.5, 3.0), (-2.0, 3.0)]:
        big = np.full((m + 2, n + 3), fill, dtype)
        out = big[1:1 + m, 2:2 + n]
        assert ops.gemm(A, B, trans_a, trans_b, alpha=2.0, beta=beta, out=out) is out
        # beta = 0 never reads C: NaN there is overwritten by the (zero) product
        np.testing.assert_array_equal(out, np.full((m, n), 0.0 if beta == 0 else beta * fill,
                                                   dtype))
        np.testing.assert_array_equal(big[0], np.full(n + 3, fill, dtype))  # outside untouched


@pytest.mark.parametrize("shapes", [((10**6, 0), (0, 10**6)), ((2**40, 0), (0, 2**40))])
def test_gemm_impossible_result_is_a_memory_error(shapes):
    A, B = np.empty(shapes[0]), np.empty(shapes[1])
    with pytest.raises(MemoryError):
        ops.gemm(A, B)


# ======================================================================================
# dp.ops: every other kernel, argument by argument
# ======================================================================================

OPS = {
    # op: (call taking the arrays by name plus keywords, {array argument: shape})
    "gemm": (lambda A, B, **kw: ops.gemm(A, B, **kw), {"A": (4, 3), "B": (3, 5)}),
    "dense_forward": (lambda X, W, b, **kw: ops.dense_forward(X, W, b, "tanh", **kw),
                      {"X": (4, 3), "W": (3, 5), "b": (5,)}),
    "dense_backward": (lambda dZ, X, **kw: ops.dense_backward(dZ, X, **kw),
                       {"dZ": (4, 5), "X": (4, 3)}),
    "delta_propagate": (lambda dZ, W, Z_prev, **kw: ops.delta_propagate(dZ, W, Z_prev, "tanh",
                                                                         **kw),
                        {"dZ": (4, 5), "W": (3, 5), "Z_prev": (4, 3)}),
    "activation_forward": (lambda Z, **kw: ops.activation_forward(Z, "sigmoid", **kw),
                           {"Z": (4, 3)}),
    "activation_backward": (lambda dA, Z, **kw: ops.activation_backward(dA, Z, "tanh", **kw),
                            {"dA": (4, 3), "Z": (4, 3)}),
    "output_loss_delta": (lambda Z, Y, **kw: ops.output_loss_delta(Z, Y, "softmax", **kw),
                          {"Z": (4, 3), "Y": (4, 3)}),
    "output_forward": (lambda Z, **kw: ops.output_forward(Z, "softmax", **kw), {"Z": (4, 3)}),
    "sgd_momentum_step": (lambda p, v, g, **kw: ops.sgd_momentum_step(p, v, g, 0.1, 0.9, **kw),
                          {"p": (6,), "v": (6,), "g": (6,)}),
    "relu_forward": (lambda Z, **kw: ops.relu_forward(Z, **kw), {"Z": (4, 3)}),
    "relu_backward": (lambda dA, Z, **kw: ops.relu_backward(dA, Z, 0.5, **kw),
                      {"dA": (4, 3), "Z": (4, 3)}),
    "relu_step": (lambda Z, **kw: ops.relu_step(Z, 0.5, **kw), {"Z": (4, 3)}),
    "activation_derivative": (lambda Z, **kw: ops.activation_derivative(Z, "tanh", **kw),
                              {"Z": (4, 3)}),
    "nesterov_step": (lambda p, v, g, **kw: ops.nesterov_step(p, v, g, 0.1, 0.9, **kw),
                      {"p": (6,), "v": (6,), "g": (6,)}),
    "adam_step": (lambda p, m, v, g, **kw: ops.adam_step(p, m, v, g, 1, 0.1, **kw),
                  {"p": (6,), "m": (6,), "v": (6,), "g": (6,)}),
    "add_l2": (lambda g, W, **kw: ops.add_l2(g, W, 0.1, 8, **kw), {"g": (4, 3), "W": (4, 3)}),
    **{op: (lambda op=op, **kw: getattr(ops, op)(kw.pop("A" if "forward" in op else "dA"),
                                                  np.eye(4, 3, dtype=bool), 0.5, **kw),
            {"A" if "forward" in op else "dA": (4, 3)})
       for op in ("dropout_forward", "dropout_backward", "alpha_dropout_forward",
                  "alpha_dropout_backward")},
}
OP_ARGS = [(op, arg) for op, (_, shapes) in OPS.items() for arg in shapes]
MULTI_ARGS = [(op, arg) for op, arg in OP_ARGS if len(OPS[op][1]) > 1]


def good_args(op, dtype=np.float64):
    rng = np.random.default_rng(7)
    args = {arg: rng.standard_normal(shape).astype(dtype) for arg, shape in OPS[op][1].items()}
    if op == "adam_step":
        args["v"] = np.abs(args["v"])  # a second moment: a running mean of squares
    return args


def call(op, **kwargs):
    return OPS[op][0](**kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", list(OPS))
def test_ops_accept_good_arguments(op, dtype):
    """The positive control for the tests below: the unmodified arguments are accepted."""
    call(op, **good_args(op, dtype))


@pytest.mark.parametrize("op, arg", OP_ARGS)
def test_ops_reject_wrong_dtype(op, arg):
    checks = Checks()
    for dtype in [np.int64, np.complex128, np.float16, np.bool_, object, ">f8"]:
        args = good_args(op)
        args[arg] = args[arg].astype(dtype)
        with checks.expect(np.dtype(dtype).str, TypeError, arg):
            call(op, **args)
    checks.done()


@pytest.mark.parametrize("op, arg", MULTI_ARGS)
def test_ops_reject_mixed_float_dtypes(op, arg):
    args = good_args(op)
    args[arg] = args[arg].astype(np.float32)
    others = "|".join(re.escape(a) for a in OPS[op][1])
    with pytest.raises(TypeError, match=rf"(?<!\w)({others})(?!\w).*float(32|64)"):
        call(op, **args)


# Which argument a message blames when `arg` gets an extra axis (the first array of an
# elementwise op sets the shape, so there the other one is blamed).
NDIM_BLAME = {("activation_backward", "Z"): "dA", ("relu_backward", "Z"): "dA",
              ("sgd_momentum_step", "p"): "v", ("nesterov_step", "p"): "v",
              ("adam_step", "p"): "m", ("add_l2", "g"): "W",
              **{(op, arg): "mask" for op, (_, shapes) in OPS.items() if "dropout" in op
                 for arg in shapes}}  # any shape, which the mask must have
NDIM_ARGS = [(op, arg) for op, arg in OP_ARGS
             if op not in ("activation_forward", "activation_derivative", "relu_forward",
                           "relu_step")]  # elementwise on any shape


@pytest.mark.parametrize("op, arg", NDIM_ARGS)
def test_ops_reject_wrong_shape(op, arg):
    args = good_args(op)
    args[arg] = args[arg][None].repeat(2, axis=0)
    with raises(ValueError, NDIM_BLAME.get((op, arg), arg), match="shape"):
        call(op, **args)


@pytest.mark.parametrize("op, arg", [(op, arg) for op, arg in OP_ARGS if op != "gemm"])
def test_ops_reject_non_contiguous(op, arg):
    args = good_args(op)
    a = args[arg]
    args[arg] = np.asfortranarray(a) if a.ndim == 2 else np.repeat(a, 2)[::2]
    with raises(ValueError, arg, match="contiguous"):
        call(op, **args)


@pytest.mark.parametrize("op, arg", OP_ARGS)
def test_ops_reject_misaligned(op, arg):
    args = good_args(op)
    a = args[arg]
    buffer = np.zeros(a.nbytes + 1, np.uint8)
    args[arg] = np.ndarray(a.shape, a.dtype, buffer=buffer, offset=1)
    args[arg][...] = a
    with raises(ValueError, arg, match="aligned"):
        call(op, **args)


@pytest.mark.parametrize("op, arg", OP_ARGS)
def test_ops_reject_non_finite_when_checking(op, arg):
    checks = Checks()
    for value in [np.nan, np.inf, -np.inf]:
        args = good_args(op)
        args[arg].flat[-1] = value
        with checks.expect(str(value), ValueError, arg, match="NaN or inf"):
            call(op, **args, check_finite=True)
        args = good_args(op)
        args[arg].flat[-1] = value
        call(op, **args, check_finite=False)  # and check_finite=False lets it through
    checks.done()


@pytest.mark.parametrize("op, arg", OP_ARGS)
def test_ops_reject_masked_arrays(op, arg):
    """An ndarray subclass is taken as its data (np.matrix, np.memmap), but a masked array's
    mask would be ignored silently: its hidden values would count."""
    args = good_args(op)
    args[arg] = np.ma.masked_array(args[arg], mask=np.zeros(args[arg].shape, bool))
    with raises(TypeError, arg, match="masked"):
        call(op, **args)


def test_adam_refuses_a_negative_second_moment():
    p, m, g = np.ones(6), np.zeros(6), np.ones(6)
    v = np.full(6, 1e-3)
    v[4] = -1.0
    with raises(ValueError, "v", match="second moment"):
        ops.adam_step(p, m, v, g, 1, 0.1)
    np.testing.assert_array_equal(p, 1.0)  # refused before any step
    ops.adam_step(p, m, v, g, 1, 0.1, check_finite=False)  # unchecked, as asked
    assert np.isnan(p[4])


@pytest.mark.parametrize("op", list(OPS))
def test_ops_reject_non_ndarray_by_name(op):
    """Arrays are never converted at this level (checks.hpp): a list or None is a TypeError that
    says which argument it was."""
    checks = Checks()
    for arg in OPS[op][1]:
        for bad in ["list", None]:
            args = good_args(op)
            args[arg] = args[arg].tolist() if bad == "list" else bad
            with checks.expect(f"{arg}={bad}", TypeError, arg):
                call(op, **args)
    checks.done()


@pytest.mark.parametrize("call_, name, exc", [
    (lambda A, B: ops.gemm(A, B, alpha="2"), "alpha", TypeError),
    (lambda A, B: ops.gemm(A, B, alpha=10**400), "alpha", ValueError),  # not OverflowError
    (lambda A, B: ops.gemm(A, B, trans_a="yes"), "trans_a", TypeError),
    (lambda A, B: ops.gemm(A, B, n_threads="2"), "n_threads", TypeError),
    (lambda A, B: ops.gemm(A, B, n_threads=2**40), "n_threads", ValueError),
    (lambda A, B: ops.activation_forward(A, None), "activation", TypeError),
    (lambda A, B: ops.output_loss_delta(A, A, 3), "output", TypeError),
    (lambda A, B: ops.shuffle_order(3.5, 0, 0), "n", TypeError),
    (lambda A, B: ops.shuffle_order(3, -1, 0), "seed", ValueError),
    (lambda A, B: ops.shuffle_order(3, 0, -1), "epoch", ValueError),
    (lambda A, B: ops.set_isa(None), "isa", TypeError),
    (lambda A, B: ops.gemm_tile(None), "dtype", TypeError),
])
def test_ops_scalar_argument_of_wrong_type_or_range_is_named(rng, call_, name, exc):
    A, B = _mats(rng, m=4, k=4, n=4)
    with raises(exc, name):
        call_(A, B)


def test_ops_reject_negative_n_threads():
    """n_threads=0 means OpenMP's default; a negative count is a mistake (dp.MLP and the engine
    reject it), not another spelling of the default."""
    checks = Checks()
    for op in OPS:
        with checks.expect(op, ValueError, "n_threads"):
            call(op, **good_args(op), n_threads=-3)
    checks.done()


@pytest.mark.parametrize("op, name", [
    ("dense_forward", "activation"), ("delta_propagate", "activation"),
    ("activation_forward", "activation"), ("activation_backward", "activation"),
    ("output_loss_delta", "output"), ("output_forward", "output"),
])
def test_ops_reject_unknown_names(op, name):
    checks = Checks()
    for bad in ["bogus", "", "ReLU", "relu ", "gelu"]:
        with checks.expect(repr(bad), ValueError, name, match=re.escape(repr(bad))):
            getattr(ops, op)(*good_args(op).values(), bad)
    checks.done()


@pytest.mark.parametrize("op", ["dense_forward", "delta_propagate", "activation_backward",
                                "relu_backward", "relu_step"])
def test_ops_reject_grad_at_zero_out_of_range(op):
    checks = Checks()
    for g0 in [-0.1, 1.5, float("nan"), float("inf")]:
        args = list(good_args(op).values()) + ([] if op.startswith("relu") else ["relu"])
        with checks.expect(repr(g0), ValueError, "grad_at_zero"):
            getattr(ops, op)(*args, g0)
    checks.done()


def test_sgd_rejects_bad_scalars_and_writes_nothing():
    checks = Checks()
    for name, value in [("lr", -0.1), ("lr", float("nan")), ("lr", float("inf")), ("lr", 10**400),
                        ("momentum", -0.1), ("momentum", 1.5), ("momentum", float("nan"))]:
        args = good_args("sgd_momentum_step")
        before = {k: v.copy() for k, v in args.items()}
        kwargs = {"lr": 0.1, "momentum": 0.0, name: value}
        with checks.expect(f"{name}={value}", ValueError, name):
            ops.sgd_momentum_step(args["p"], args["v"], args["g"], **kwargs)
        if not all(np.array_equal(args[k], before[k]) for k in args):
            checks.problems.append(f"{name}={value}: p or v was written")
    checks.done()


@pytest.mark.parametrize("which", ["p", "v"])
def test_sgd_rejects_read_only_state(which):
    args = good_args("sgd_momentum_step")
    args[which].setflags(write=False)
    with raises(ValueError, which, match="read-only"):
        call("sgd_momentum_step", **args)


@pytest.mark.parametrize("first, second", [("p", "v"), ("p", "g"), ("v", "g")])
def test_sgd_rejects_overlapping_arguments(first, second):
    checks = Checks()
    for how in ["same array", "overlapping views"]:
        args = good_args("sgd_momentum_step")
        if how == "same array":
            args[second] = args[first]
        else:
            buf = np.arange(9.0)
            args[first], args[second] = buf[:6], buf[3:9]
        with checks.expect(how, ValueError, first, second, match="share memory"):
            call("sgd_momentum_step", **args)
    checks.done()


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(loss="hinge"), ValueError, "loss"),
    (dict(loss="squared_error"), ValueError, "loss"),  # not softmax's
    (dict(loss=1), TypeError, "loss"),
    (dict(output="identity", loss="huber", huber_delta=0.0), ValueError, "huber_delta"),
    (dict(output="identity", huber_delta=float("nan")), ValueError, "huber_delta"),
    (dict(huber_delta="1"), TypeError, "huber_delta"),
    (dict(mean_over_outputs=1), TypeError, "mean_over_outputs"),
    (dict(clip_probabilities="yes"), TypeError, "clip_probabilities"),
    (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    (dict(sample_weight=np.ones((4, 1))), ValueError, "sample_weight"),
    (dict(sample_weight=[1, 1, -1, 1]), ValueError, "sample_weight"),
    (dict(sample_weight=[1, 1, np.nan, 1]), ValueError, "sample_weight"),
    (dict(sample_weight=[1, 1, np.inf, 1]), ValueError, "sample_weight"),
    (dict(sample_weight=np.zeros(4)), ValueError, "sample_weight"),
    (dict(sample_weight=np.full(4, 1e308)), ValueError, "sample_weight"),  # an infinite sum
    (dict(sample_weight=np.ones(4, bool)), TypeError, "sample_weight"),
    (dict(sample_weight=np.ones(4, complex)), TypeError, "sample_weight"),
    (dict(sample_weight=["a"] * 4), TypeError, "sample_weight"),
    (dict(output="exp", Y=-np.ones((4, 3))), ValueError, "Y"),
])
def test_output_loss_delta_rejects_bad_loss_arguments(kernels, kwargs, exc, name):
    kwargs = dict(kwargs)
    Z, Y = np.zeros((4, 3)), kwargs.pop("Y", np.full((4, 3), 1 / 3))
    with raises(exc, name):
        kernels.output_loss_delta(Z, Y, kwargs.pop("output", "softmax"), **kwargs)


@pytest.mark.parametrize("shape", [(0, 3), (4, 0), (0, 0)])
def test_output_loss_delta_rejects_empty(shape):
    with raises(ValueError, "Z", match="empty"):
        ops.output_loss_delta(np.zeros(shape), np.zeros(shape))


@pytest.mark.parametrize("n, i, o", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_size_layers_give_the_reference_answer(n, i, o, dtype):
    """Empty batches and layers are legal and must give exact zeros / biases, not uninitialised
    memory."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, i)).astype(dtype)
    W = rng.standard_normal((i, o)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dZ = rng.standard_normal((n, o)).astype(dtype)
    for got, want in [
        (ops.dense_forward(X, W, b, "tanh"), ref.dense_forward(X, W, b, "tanh")),
        (ops.dense_backward(dZ, X), ref.dense_backward(dZ, X)),
        ((ops.delta_propagate(dZ, W, X, "tanh"),), (ref.delta_propagate(dZ, W, X, "tanh"),)),
    ]:
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == dtype
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=0)


@pytest.mark.parametrize("make", [
    lambda: ops.dense_forward(np.empty((10**6, 0)), np.empty((0, 10**6)), np.zeros(10**6)),
    lambda: ops.dense_backward(np.empty((0, 10**6)), np.empty((0, 10**6))),
    lambda: ops.shuffle_order(10**15, 0, 0),
    lambda: ops.shuffle_order(2**62, 0, 0),
], ids=["dense_forward", "dense_backward", "shuffle_order", "shuffle_order 2**62"])
def test_ops_impossible_allocation_is_a_memory_error(make):
    with pytest.raises(MemoryError):
        make()


def test_small_ops_reject_bad_values():
    with raises(ValueError, "n"):
        ops.shuffle_order(-1, 0, 0)
    with raises(ValueError, "dtype"):
        ops.gemm_tile("float16")
    for bad in ["", "sse", "AVX2", "avx1024"]:
        with raises(ValueError, match=re.escape(repr(bad))):
            ops.set_isa(bad)
    assert ops.get_isa() in ops.available_isas()  # the rejected names changed nothing


def test_fma_peak_gflops_rejects_bad_arguments():
    fma_peak_gflops = getattr(ops, "fma_peak_gflops", None)
    if fma_peak_gflops is None:
        pytest.skip("this build has no dp.ops.fma_peak_gflops")
    checks = Checks()
    for bad in ["float16", "int32", ""]:
        with checks.expect(f"dtype={bad!r}", ValueError, "dtype"):
            fma_peak_gflops(bad, 0.01)
    for bad in [0.0, -1.0, float("nan"), float("inf"), 11.0]:
        with checks.expect(f"seconds={bad}", ValueError, "seconds"):
            fma_peak_gflops("float32", bad)
    checks.done()


# Every public function of dp.ops, and the tests above that feed it bad input.

@pytest.mark.parametrize("params, exc, name", [
    ({"alpha": np.ones(3)}, ValueError, "params"),
    ({"slope": np.ones(4)}, ValueError, "slope"),
    ({"slope": np.ones((1, 3))}, ValueError, "slope"),
    ({"slope": np.array([1.0, np.nan, 1.0])}, ValueError, "slope"),
    ({"slope": np.array([1.0, np.inf, 1.0])}, ValueError, "slope"),
    ({"slope": np.array(["a", "b", "c"])}, ValueError, "slope"),
    ({"slope": np.ones(3, complex)}, ValueError, "slope"),
    ([np.ones(3)], ValueError, "params"),
])
def test_learned_activation_ops_reject_bad_params(kernels, params, exc, name):
    Z = np.ones((4, 3))
    checks = Checks()
    for op, args in [("activation_forward", (Z, "prelu")),
                     ("activation_derivative", (Z, "prelu", 0.0)),
                     ("activation_backward", (Z, Z, "prelu", 0.0)),
                     ("activation_param_gradients", (Z, Z, "prelu"))]:
        with checks.expect(op, exc, name):
            getattr(kernels, op)(*args, params=params)
    checks.done()


def test_learned_activation_ops_reject_bad_arrays_and_stray_params():
    Z, P = np.ones((4, 3)), {"slope": np.ones(3)}
    with raises(ValueError, "params"):
        ops.activation_forward(Z, "relu", {"slope": np.ones(3)})
    with raises(TypeError, "Z"):
        ops.activation_forward(Z.tolist(), "prelu", P)
    with raises(TypeError, "Z"):
        ops.activation_forward(Z.astype(np.int64), "prelu", P)
    with raises(ValueError, "Z"):
        ops.activation_forward(np.ones((4, 6))[:, ::2], "prelu", P)
    with raises(ValueError, "Z"):
        ops.activation_forward(np.full((4, 3), np.nan), "prelu", P)
    with raises(ValueError, "dA"):
        ops.activation_backward(np.ones((4, 2)), Z, "prelu", params=P)
    with raises(TypeError, "dA"):
        ops.activation_param_gradients(Z.astype(np.float32), Z, "prelu", P)
    with raises(ValueError, "n_threads"):
        ops.activation_param_gradients(Z, Z, "acon", n_threads=-1)


def test_learned_activations_need_an_axis_of_units(kernels):
    """Their parameters run along Z's last axis: a 0-d Z has none (a fixed activation is fine)."""
    with raises(ValueError, "Z", match="at least 1 dimension"):
        kernels.activation_forward(np.array(0.5), "prelu")
    with raises(ValueError, "Z", match="at least 1 dimension"):
        kernels.activation_param_gradients(np.array(0.5), np.array(0.5), "acon")
    assert kernels.activation_forward(np.array(0.5), "tanh") is not None


def test_learned_params_too_large_for_float32_are_named_not_a_warning(kernels):
    """A float64 parameter cast to a float32 Z's dtype overflows to inf: a ValueError naming the
    parameter (with warnings as errors, never numpy's RuntimeWarning from the cast)."""
    Z = np.ones((4, 3), np.float32)
    with raises(ValueError, "params['slope']", match="NaN or inf"):
        kernels.activation_forward(Z, "prelu", {"slope": np.array([1e300, 0.0, 0.0])})


DROPOUT_MAPS = ["dropout_forward", "dropout_backward", "alpha_dropout_forward",
                "alpha_dropout_backward"]


@pytest.mark.parametrize("op", DROPOUT_MAPS)
def test_dropout_maps_reject_bad_arguments(kernels, op):
    f = getattr(kernels, op)
    A, mask = np.ones((4, 3)), np.ones((4, 3), bool)
    name = "A" if "forward" in op else "dA"
    checks = Checks()
    cases = [
        ((A.astype(np.int64), mask, 0.5), TypeError, name),
        ((A.astype(np.complex128), mask, 0.5), TypeError, name),
        ((A.astype(np.float16), mask, 0.5), TypeError, name),
        ((A.tolist(), mask, 0.5), TypeError, name),
        ((A, mask.astype(np.int8), 0.5), TypeError, "mask"),
        ((A, mask.astype(np.float64), 0.5), TypeError, "mask"),
        ((A, mask[:3], 0.5), ValueError, "mask"),
        ((A, mask.T, 0.5), ValueError, "mask"),
        ((A, mask, 1.0), ValueError, "rate"),
        ((A, mask, -0.1), ValueError, "rate"),
        ((A, mask, float("nan")), ValueError, "rate"),
        ((A, mask, "0.5"), TypeError, "rate"),
        ((A, mask, None), TypeError, "rate"),
    ]
    for args, exc, arg in cases:
        with checks.expect(repr(args[-1]) + arg, exc, arg):
            f(*args)
    if kernels is ops:  # the engine's layout rules: C-contiguous arrays only
        with checks.expect("strided", ValueError, name):
            f(np.ones((4, 6))[:, ::2], mask, 0.5)
        with checks.expect("threads", ValueError, "n_threads"):
            f(A, mask, 0.5, n_threads=-1)
    checks.done()


@pytest.mark.parametrize("args, exc, name", [
    (((2, 2), 0.5, -1, 0, 0, 0), ValueError, "seed"),
    (((2, 2), 0.5, 0, 2**64, 0, 0), ValueError, "epoch"),
    (((2, 2), 0.5, 0, 0, 1.5, 0), TypeError, "batch"),
    (((2, 2), 0.5, 0, 0, 0, "1"), TypeError, "layer"),
    (((2, 2), 1.0, 0, 0, 0, 0), ValueError, "rate"),
    (((2, 2), "x", 0, 0, 0, 0), TypeError, "rate"),
    (((2, -1), 0.5, 0, 0, 0, 0), ValueError, "shape"),
    (((2, 2.0), 0.5, 0, 0, 0, 0), TypeError, "shape"),
    (("22", 0.5, 0, 0, 0, 0), TypeError, "shape"),
    (((2**40, 2**40), 0.5, 0, 0, 0, 0), MemoryError, "too large"),
])
def test_dropout_mask_rejects_bad_arguments(args, exc, name):
    with pytest.raises(exc, match=name):
        ops.dropout_mask(*args)


def test_dropout_coefficients_and_stream_reject_bad_arguments():
    with raises(ValueError, "rate"):
        ops.alpha_dropout_coefficients(1.0)
    with raises(TypeError, "rate"):
        ops.alpha_dropout_coefficients(True)
    with raises(ValueError, "seed"):
        ops.dropout_stream(-1, 0, 0, 0)


def test_clip_by_global_norm_rejects_bad_arguments():
    good = [np.ones((3, 2)), np.ones(4)]
    with raises(TypeError, "grads"):
        ops.clip_by_global_norm("g", 1.0)
    with raises(TypeError, "grads[1]"):
        ops.clip_by_global_norm([np.ones(3), [1.0, 2.0]], 1.0)
    with raises(TypeError, "grads[1]"):
        ops.clip_by_global_norm([np.ones(3), np.ones(3, np.float32)], 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with raises(ValueError, "max_norm"):
            ops.clip_by_global_norm(good, bad)
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with raises(ValueError, "grads[0]", match="read-only"):
        ops.clip_by_global_norm([read_only], 1.0)
    with raises(ValueError, "grads[1]", match="NaN or inf"):
        ops.clip_by_global_norm([np.ones(2), np.array([np.nan])], 1.0)
    shared = np.ones(4)
    with raises(ValueError, "grads[1]"):
        ops.clip_by_global_norm([shared, shared[1:]], 1.0)
    assert ops.clip_by_global_norm([], 1.0) == 1.0


COVERED_OPS = set(OPS) | set(DROPOUT_MAPS) | {
    "shuffle_order", "get_isa", "set_isa", "available_isas", "gemm_tile", "fma_peak_gflops",
    "clip_by_global_norm", "dropout_mask", "dropout_stream", "alpha_dropout_coefficients",
    "activation_param_gradients"}


def test_every_public_op_is_covered_here():
    """A new dp.ops function needs its bad-input tests in this file (and a line in COVERED_OPS)."""
    assert set(ops.__all__) <= COVERED_OPS, sorted(set(ops.__all__) - COVERED_OPS)


# ======================================================================================
# Crash safety, in subprocesses
# ======================================================================================

FUZZ = r"""
import sys
import numpy as np
import deltaprop as dp

ops = dp.ops
seed, n_calls = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(seed)
DTYPES = [np.float32, np.float64, np.float64, np.float32, np.int32, np.int64, np.complex128,
          np.bool_, np.float16, object, ">f8", np.longdouble]
NAMES = ["relu", "tanh", "sigmoid", "logistic", "identity", "softmax", "", "RELU", "bogus"]
LEARNED = ["prelu", "acon", dp.Activation("swish", learnable=True), "tanh"]
EXPECTED = (TypeError, ValueError, MemoryError, FloatingPointError)

def dim():
    return int(rng.choice([0, 1, 1, 2, 3, 5, 8]))

def arr(shape=None):
    if rng.integers(14) == 0:
        return [None, 1.5, "x", [[1.0, 2.0]], (1.0,), b"ab"][rng.integers(6)]
    if shape is None:
        shape = tuple(dim() for _ in range(int(rng.choice([0, 1, 2, 2, 2, 3]))))
    dt = DTYPES[rng.integers(len(DTYPES))]
    a = rng.standard_normal(shape)
    if np.dtype(dt).kind in "iub":
        a = (a > 0) if dt is np.bool_ else (a * 3).astype(dt)
    a = np.asarray(a, dtype=dt) if dt is not object else a.astype(object)
    flag = rng.integers(9)
    if flag == 0 and a.ndim:
        a = np.asfortranarray(a)
    elif flag == 1 and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif flag == 2:
        a.setflags(write=False)
    elif flag == 3 and a.size and a.dtype.kind == "f":
        a.flat[rng.integers(a.size)] = [np.nan, np.inf, -np.inf][rng.integers(3)]
    elif flag == 4 and a.ndim:
        a = a[::-1]
    elif flag == 5 and a.ndim >= 2:
        a = a.T
    elif flag == 6 and a.dtype != object:
        buf = np.zeros(a.nbytes + 1, np.uint8)
        b = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
        b[...] = a
        a = b
    elif flag == 7 and a.ndim and a.shape[-1]:
        a = np.broadcast_to(a[..., :1], a.shape)
    return a

def scalar():
    return float(rng.choice([0.0, 1.0, -1.0, 0.5, 2.0, np.nan, np.inf, -np.inf, 1e308]))

def name():
    return NAMES[rng.integers(len(NAMES))]

def shape_of(a, default):
    return getattr(a, "shape", default)

def one_call():
    f = rng.integers(12)
    kw = dict(n_threads=int(rng.choice([0, 1, 2, -1])), check_finite=bool(rng.integers(2)))
    if f == 0:
        M, N, K = dim(), dim(), dim()
        ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
        A = arr((K, M) if ta else (M, K)) if rng.integers(3) else arr()
        B = arr((N, K) if tb else (K, N)) if rng.integers(3) else arr()
        out = [None, A, B, arr((M, N)), arr((M, N))][rng.integers(5)]
        beta = float(rng.choice([0.0, 0.0, 1.0, 0.5, np.nan]))
        return ops.gemm(A, B, ta, tb, scalar(), beta, out, **kw)
    if f == 1:
        N, I, O = dim(), dim(), dim()
        return ops.dense_forward(arr((N, I)), arr((I, O)), arr((O,)), name(), scalar(), **kw)
    if f == 2:
        N, I, O = dim(), dim(), dim()
        return ops.dense_backward(arr((N, O)), arr((N, I)), **kw)
    if f == 3:
        N, I, O = dim(), dim(), dim()
        return ops.delta_propagate(arr((N, O)), arr((I, O)), arr((N, I)), name(), scalar(), **kw)
    if f == 4:
        if rng.integers(2):
            return ops.activation_forward(arr(), name(), **kw)
        # a learned activation, with parameters good, bad or missing
        Z = arr()
        units = Z.shape[-1] if getattr(Z, "ndim", 0) else 1
        act = LEARNED[rng.integers(len(LEARNED))]
        params = [None, {}, arr(), {"slope": arr((units,))}, {"beta": arr((1,))},
                  {k: arr((units,)) for k in ("p1", "p2", "beta")}][rng.integers(6)]
        if rng.integers(2):
            return ops.activation_forward(Z, act, params, **kw)
        dA = arr(shape_of(Z, (2,))) if rng.integers(3) else arr()
        return ops.activation_param_gradients(dA, Z, act, params, **kw)
    if f == 5:
        Z = arr()
        dA = arr(shape_of(Z, (2,))) if rng.integers(3) else arr()
        return ops.activation_backward(dA, Z, name(), scalar(), **kw)
    if f == 6:
        shape = (dim(), dim())
        return ops.output_loss_delta(arr(shape), arr(shape), name(), **kw)
    if f == 7:
        shape = tuple(dim() for _ in range(int(rng.integers(0, 3))))
        p = arr(shape)
        v = p if rng.integers(6) == 0 else arr(shape)
        g = p if rng.integers(6) == 0 else arr(shape)
        return ops.sgd_momentum_step(p, v, g, scalar(), scalar(), **kw)
    if f == 8:
        return ops.shuffle_order(int(rng.integers(-3, 50)), int(rng.integers(0, 2**63)),
                                 int(rng.integers(0, 9)))
    if f == 9:
        Z = arr()
        g0 = scalar()
        which = rng.integers(3)
        if which == 0:
            return ops.relu_forward(Z, **kw)
        if which == 1:
            return ops.relu_step(Z, g0, **kw)
        return ops.relu_backward(arr(shape_of(Z, ())), Z, g0, **kw)
    if f == 10:  # the engine, through a model whose parameters were replaced
        sizes = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(2, 4)))]
        net = dp.MLP(sizes, ["relu", "tanh"][rng.integers(2)],
                     ["softmax", "sigmoid", "identity"][rng.integers(3)],
                     dtype=["float32", "float64"][rng.integers(2)],
                     n_threads=int(rng.integers(1, 3)))
        L = len(sizes) - 1
        for _ in range(int(rng.integers(1, 3))):
            params = net.coefs_ if rng.integers(2) else net.intercepts_
            l, r = int(rng.integers(L)), rng.integers(3)
            params[l] = (arr(params[l].shape) if r == 0 else
                         arr() if r == 1 else params[int(rng.integers(L))])
        X = arr((dim(), sizes[0])) if rng.integers(3) else arr()
        Y = arr((shape_of(X, (1,))[0] if getattr(X, "ndim", 0) else 1,))
        which = rng.integers(4)
        if which == 0:
            return net.forward(X)
        if which == 1:
            return net.predict(X)
        if which == 2:
            return net.loss_and_gradients(X, Y)
        return net.fit(X, Y, epochs=1, batch_size=int(rng.integers(1, 4)))
    which = rng.integers(4)
    if which == 0:
        return ops.gemm_tile(name())
    if which == 1:
        return ops.set_isa(name())
    return ops.get_isa() if which == 2 else ops.available_isas()

counts = {"accepted": 0, "rejected": 0}
for i in range(n_calls):
    try:
        one_call()
        counts["accepted"] += 1
    except EXPECTED:
        counts["rejected"] += 1
    # anything else propagates: a non-zero exit, with the traceback on stderr
print(counts)
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_randomized_bad_calls_never_crash(seed, tmp_path):
    """A few hundred random calls (shapes with 0 and 1, every dtype, F-order, negative and
    non-unit strides, read-only, misaligned, broadcast, NaN/inf, unknown names, aliased
    arguments) at dp.ops and the engine: each returns or raises TypeError/ValueError/MemoryError.
    A segfault, abort or other exception type makes the subprocess exit non-zero."""
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ)
    proc = run_python("-W", "error", str(script), str(seed), "400")
    assert proc.returncode == 0, (f"seed {seed}: exit code {proc.returncode}\n"
                                  f"{proc.stderr[-3000:]}")
    counts = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert counts["accepted"] > 20 and counts["rejected"] > 200, counts


@pytest.mark.parametrize("call_", [
    "C = dp.ops.gemm(np.ones((64, 64)), np.ones((64, 64)), n_threads=n); assert (C == 64).all()",
    "dp.MLP([64, 64, 2], n_threads=n).forward(np.ones((512, 64)))",
], ids=["ops.gemm", "MLP.forward"])
def test_absurd_thread_counts_do_not_crash(call_):
    """n_threads has no upper bound: 100000 threads cannot be had (here under a 4 GiB address
    space limit; libgomp also puts per-thread start data on the caller's stack). The call must
    raise ValueError naming n_threads (or MemoryError), or cap the count and compute the right
    answer, but never take the interpreter down."""
    proc = run_python("-c", textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import numpy as np, deltaprop as dp
        for n in (100_000, 1_000_000):
            try:
                {call_}
            except MemoryError:
                pass
            except ValueError as error:
                assert "n_threads" in str(error), error
        print("survived")
    """))
    assert proc.returncode == 0 and "survived" in proc.stdout, (
        f"exit code {proc.returncode}\n{proc.stderr[-2000:]}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [[2**40, 2**40], [2**40, 2**40, 2**40], [2**23] * 8])
def test_engine_sizes_beyond_any_memory_are_a_memory_error(dtype, sizes):
    """The engine counts a network's parameters before laying them out: 2**40 x 2**40 weights
    overflowed its index type (undefined behaviour, found by UBSan)."""
    with pytest.raises(MemoryError, match="layer_sizes"):
        getattr(_core, f"Engine_{dtype}")(sizes)


def test_target_errors_say_what_was_given_and_what_fits(rng):
    """The messages quote the user's own shape and values (not a reshaped column or numpy's
    np.int64(10) repr) and point at the output that takes them."""
    X, y = classification(rng)
    cases = [
        (dp.MLP([3, 4, 2], output="sigmoid"), y % 2, r"shape \(12, 2\), got \(12,\)$"),
        (dp.MLP([3, 4, 3]), y[:, None], r"class labels 0\.\.2, not a column\), got \(12, 1\)"),
        (dp.MLP([3, 4, 3]), np.where(y == 0, 10, y), r"holds label 10, but"),
        (dp.MLP([3, 4, 3]), np.where(y == 0, 0.5, y), r"holds label 0\.5, but"),
        (dp.MLP([3, 4, 1], output="sigmoid"), y, r"got values from 0 to 2; class labels"),
    ]
    for net, Y, words in cases:
        with pytest.raises(ValueError, match=words):
            net.fit(X, Y, epochs=1)


def test_a_softmax_of_one_unit_and_a_loss_of_another_output_are_refused():
    with pytest.raises(ValueError, match="softmax output of 1 unit .* output='sigmoid'"):
        dp.MLP([3, 4, 1])
    with pytest.raises(ValueError, match="loss 'huber' goes with output 'identity'; output "
                                         "'softmax' takes 'log_loss'"):
        dp.MLP([3, 4, 2], loss="huber")


def test_an_integer_bounded_only_by_its_width_says_so():
    with pytest.raises(ValueError, match=r"^epochs must be >= 0, got -1$"):
        dp.validation.check_int(-1, "epochs", minimum=0)
    with pytest.raises(ValueError, match=r"^seed must be in \[0, 7\], got 8$"):
        dp.validation.check_int(8, "seed", 0, 7)
    with pytest.raises(ValueError, match=r"^epochs must be in \[0, 9223372036854775807\]"):
        dp.validation.check_int(2**63, "epochs", minimum=0)  # too large: the width is the bound
    # the engine's own check says the same
    for n, words in ((-1, r"^n must be >= 0, got -1$"), (-2**70, r"^n must be >= 0"),
                     (2**64, r"^n must be in \[0, 9223372036854775807\]")):
        with pytest.raises(ValueError, match=words):
            dp.ops.shuffle_order(n, 0, 0)


def test_the_finite_check_takes_no_array_the_size_of_x():
    """check_matrix proves X finite by its sum (a NaN or inf makes any sum NaN or inf) and looks
    at each value only when the sum is not finite: np.isfinite(X).all() allocated a boolean
    array an eighth of a float64 X (96 MB for forward on 1e6 rows of 100)."""
    import tracemalloc

    X = np.ones((2000, 1000))  # 16 MB; the boolean array would be 2 MB
    dp.validation.check_matrix(X, "X", np.dtype(np.float64), 1000)  # (one-time caches)
    tracemalloc.start()
    try:
        assert dp.validation.check_matrix(X, "X", np.dtype(np.float64), 1000) is X
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak
    # and it still finds one bad value anywhere, and values whose sum overflows are fine
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (1999, 999), (1234, 5)):
            Y = X.copy()
            Y[where] = bad
            with pytest.raises(ValueError, match="NaN or inf"):
                dp.validation.check_matrix(Y, "X", np.dtype(np.float64), 1000)
    huge = np.full((4, 3), 1e308)
    assert dp.validation.check_matrix(huge, "X", np.dtype(np.float64), 3) is huge
    mixed = np.array([[np.inf, -np.inf]])  # a sum of NaN, from two infinities
    with pytest.raises(ValueError, match="NaN or inf"):
        dp.validation.check_matrix(mixed, "X", np.dtype(np.float64), 2)
