"""prelu, learnable swish and acon through dp.ops (csrc/learned.hpp) against the reference, and
their parameter gradients against finite differences of the C++ forward."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, THREADS, assert_close

import deltaprop as dp
from deltaprop import reference as ref

LEARNED = {"prelu": "prelu", "swish": dp.Activation("swish", learnable=True, beta=0.7),
           "acon": dp.Activation("acon", alpha=0.1, beta=1.3)}
SHAPES = [(1, 1), (7, 5), (3, 4, 6), (700, 400)]  # the last splits over threads


def random_params(rng, activation, units, dtype):
    initial = ref.init_activation_params(activation, units, dtype)
    # away from the initial values, with a negative prelu slope and p1 < p2 somewhere
    return {k: (v + rng.uniform(-1.0, 1.0, v.shape)).astype(dtype) for k, v in initial.items()}


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES)
def test_learned_activations_match_reference(rng, name, dtype, threads, shape):
    f = LEARNED[name]
    Z = (rng.standard_normal(shape) * 2).astype(dtype)
    dA = rng.standard_normal(shape).astype(dtype)
    for P in (None, random_params(rng, f, shape[-1], dtype)):
        kw = dict(params=P, n_threads=threads)
        assert_close(dp.ops.activation_forward(Z, f, **kw), ref.activation_forward(Z, f, P),
                     what="f")
        assert_close(dp.ops.activation_derivative(Z, f, **kw),
                     ref.activation_derivative(Z, f, params=P), what="f'")
        assert_close(dp.ops.activation_backward(dA, Z, f, **kw),
                     ref.activation_backward(dA, Z, f, params=P), what="dZ")
        got = dp.ops.activation_param_gradients(dA, Z, f, **kw)
        want = ref.activation_param_gradients(dA, Z, f, P)
        assert got.keys() == want.keys()
        for key in got:
            assert got[key].dtype == dtype
            assert_close(got[key], want[key], rtol=1e-10 if dtype == np.float64 else 1e-4,
                         what=key)  # float32: the reference sums in float32, the engine in float64


@pytest.mark.parametrize("name", LEARNED)
def test_parameter_gradients_are_bitwise_the_same_for_any_thread_count(rng, name):
    f = LEARNED[name]
    Z, dA = rng.standard_normal((700, 400)), rng.standard_normal((700, 400))
    P = random_params(rng, f, 400, np.float64)
    one, two = (dp.ops.activation_param_gradients(dA, Z, f, P, n_threads=t) for t in (1, 2))
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])


@pytest.mark.parametrize("name", LEARNED)
def test_parameter_gradients_match_finite_differences_of_the_engine(rng, name):
    """C = Σ dA ⊙ f(Z; θ): its gradient in θ is activation_param_gradients(dA, Z, θ)."""
    f = LEARNED[name]
    Z = rng.standard_normal((6, 5)) * 2
    Z[np.abs(Z) < 0.05] = 0.5  # away from prelu's kink
    dA = rng.standard_normal((6, 5))
    P = random_params(rng, f, 5, np.float64)
    grads = dp.ops.activation_param_gradients(dA, Z, f, P)
    h = 1e-6
    for key, theta in P.items():
        fd = np.zeros_like(theta)
        for i in np.ndindex(theta.shape):
            saved = theta[i]
            theta[i] = saved + h
            up = (dA * dp.ops.activation_forward(Z, f, P)).sum()
            theta[i] = saved - h
            down = (dA * dp.ops.activation_forward(Z, f, P)).sum()
            theta[i] = saved
            fd[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[key], fd, rtol=1e-6, atol=1e-8, err_msg=key)


def test_activations_without_parameters_have_no_parameter_gradients(rng):
    Z = rng.standard_normal((3, 4))
    assert dp.ops.activation_param_gradients(Z, Z, "relu") == {}


# -- edges: single rows or units, odd sizes, other ranks, empty layers ---------------------------


def non_default_params(name, units, rng):
    """Chosen, not drawn near the start: negative slopes, a negative β, p1 < p2 everywhere."""
    if name == "prelu":
        return {"slope": rng.uniform(-1.0, 1.0, units)}
    if name == "swish":
        return {"beta": np.array([-1.3])}
    p1 = rng.uniform(-1.0, 0.5, units)
    return {"p1": p1, "p2": p1 + rng.uniform(0.1, 1.0, units), "beta": rng.uniform(-2, 2, units)}


def all_four(kernels, dA, Z, f, P, **kw):
    return {"f": kernels.activation_forward(Z, f, P, **kw),
            "f'": kernels.activation_derivative(Z, f, 0.0, P, **kw),
            "dZ": kernels.activation_backward(dA, Z, f, 0.0, P, **kw),
            **kernels.activation_param_gradients(dA, Z, f, P, **kw)}


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 7), (6, 1), (129, 5), (9,), (0, 4), (4, 0), (0,)], ids=str)
def test_edge_shapes_match_the_reference(rng, name, dtype, shape):
    f = LEARNED[name]
    Z = (rng.standard_normal(shape) * 3).astype(dtype)
    Z.flat[::3] = 0  # prelu's kink: f'(0) is the slope
    dA = rng.standard_normal(shape).astype(dtype)
    P = {k: v.astype(dtype) for k, v in non_default_params(name, shape[-1], rng).items()}
    got, want = all_four(dp.ops, dA, Z, f, P), all_four(ref, dA, Z, f, P)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].shape == want[key].shape and got[key].dtype == dtype
        assert_close(got[key], want[key], rtol=None if dtype == np.float64 else 1e-4, what=key)


@pytest.mark.parametrize("name", LEARNED)
def test_every_output_is_bitwise_the_same_for_one_and_two_threads(rng, name):
    f, shape = LEARNED[name], (2100, 125)  # 2**18 elements and more: two threads; odd units
    Z, dA = rng.standard_normal(shape) * 3, rng.standard_normal(shape)
    P = non_default_params(name, shape[1], rng)
    one, two = (all_four(dp.ops, dA, Z, f, P, n_threads=t) for t in (1, 2))
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


@pytest.mark.parametrize("name", LEARNED)
def test_the_derivative_matches_finite_differences_of_the_engine(rng, name):
    f = LEARNED[name]
    Z = rng.uniform(-4, 4, (6, 5))
    Z[np.abs(Z) < 0.05] = 0.5  # away from prelu's kink
    P, h = non_default_params(name, 5, rng), 1e-6
    fd = (dp.ops.activation_forward(Z + h, f, P) - dp.ops.activation_forward(Z - h, f, P)) / (2 * h)
    np.testing.assert_allclose(dp.ops.activation_derivative(Z, f, params=P), fd, rtol=1e-7,
                               atol=1e-9)
