"""The activation table: deltaprop.activations.Activation (names, defaults, validation) and the
NumPy reference of every activation, checked against central finite differences, textbook
formulas, the conventions at the kinks, and extreme inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deltaprop import reference as ref
from deltaprop.activations import (
    ALIASES,
    NAMES,
    SELU_ALPHA,
    SELU_LAMBDA,
    Activation,
    resolve,
)

LAM, ALP = SELU_LAMBDA, SELU_ALPHA

# Every name, with non-default parameters where the name takes them.
SPECS = [
    Activation("identity"), Activation("relu"), Activation("relu", grad_at_zero=0.5),
    Activation("leaky_relu"), Activation("leaky_relu", alpha=0.2), Activation("prelu"),
    Activation("elu"), Activation("elu", alpha=0.5), Activation("selu"), Activation("swish"),
    Activation("swish", beta=2.0), Activation("swish", beta=0.7, learnable=True),
    Activation("silu"), Activation("mish"), Activation("softplus"), Activation("sigmoid"),
    Activation("tanh"), Activation("abs"), Activation("acon"), Activation("acon", alpha=-0.3),
    Activation("necro_relu"), Activation("necro_relu", surrogate_slope=0.1, grad_at_zero=0.1),
]
IDS = [repr(s).replace("Activation", "") for s in SPECS]
KINKED = {"relu", "leaky_relu", "prelu", "abs", "necro_relu", "elu", "selu"}


def random_params(spec, fan_out, rng):
    """Learned parameters away from their initial values, so the checks are general."""
    params = ref.init_activation_params(spec, fan_out)
    return {k: v + rng.uniform(-0.5, 0.5, v.shape) for k, v in params.items()}


def away_from_kinks(rng, shape, spec):
    Z = rng.uniform(-4, 4, shape)
    if spec.name in KINKED:
        Z = np.where(np.abs(Z) < 0.05, 0.5, Z)
    return Z


def central_difference(f, Z, h=1e-6):
    return (f(Z + h) - f(Z - h)) / (2 * h)


# -- the Activation spec ----------------------------------------------------------------------


def test_the_table_has_every_name_in_both_places():
    assert set(NAMES) == set(ref.ALL_ACTIVATIONS)
    assert set(ref.ACTIVATIONS) <= set(NAMES) | set(ALIASES)
    assert {s.name for s in SPECS} == set(NAMES)


@pytest.mark.parametrize("name, field, value", [
    ("leaky_relu", "alpha", 0.01), ("prelu", "alpha", 0.25), ("elu", "alpha", 1.0),
    ("swish", "beta", 1.0), ("swish", "learnable", False), ("prelu", "learnable", True),
    ("acon", "alpha", 0.25), ("acon", "beta", 1.0), ("acon", "learnable", True),
    ("necro_relu", "surrogate_slope", 0.01), ("relu", "grad_at_zero", 0.0),
    ("relu", "surrogate_slope", None), ("tanh", "alpha", None), ("selu", "alpha", None),
])
def test_defaults_are_filled_in(name, field, value):
    assert getattr(Activation(name), field) == value


def test_equal_specs_compare_and_hash_equal():
    assert Activation("logistic") == Activation("sigmoid")
    assert Activation("relu", surrogate_slope=0.01) == Activation("necro_relu")
    assert hash(Activation("leaky_relu")) == hash(Activation("leaky_relu", alpha=0.01))
    assert Activation("leaky_relu", alpha=0.2) != Activation("leaky_relu")


def test_the_spec_is_frozen_and_its_parameters_are_keywords():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Activation("relu").grad_at_zero = 0.5
    with pytest.raises(TypeError):
        Activation("leaky_relu", 0.2)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": 3}, TypeError, "name"),
    ({"name": "relux"}, ValueError, "unknown activation 'relux'"),
    ({"name": "tanh", "alpha": 0.1}, ValueError, "takes no alpha"),
    ({"name": "selu", "alpha": 1.6}, ValueError, "takes no alpha"),
    ({"name": "tanh", "grad_at_zero": 0.5}, ValueError, "takes no grad_at_zero"),
    ({"name": "silu", "beta": 2.0}, ValueError, "takes no beta"),
    ({"name": "relu", "learnable": True}, ValueError, "takes no learnable"),
    ({"name": "tanh", "surrogate_slope": 0.1}, ValueError, "takes no surrogate_slope"),
    ({"name": "relu", "grad_at_zero": 2.0}, ValueError, "grad_at_zero"),
    ({"name": "relu", "grad_at_zero": "0.5"}, TypeError, "grad_at_zero"),
    ({"name": "leaky_relu", "alpha": -0.1}, ValueError, "alpha"),
    ({"name": "leaky_relu", "alpha": "big"}, TypeError, "alpha"),
    ({"name": "elu", "alpha": 0.0}, ValueError, "alpha"),
    ({"name": "swish", "beta": float("inf")}, ValueError, "beta"),
    ({"name": "swish", "learnable": "yes"}, TypeError, "learnable"),
    ({"name": "prelu", "learnable": False}, ValueError, "learnable"),
    ({"name": "necro_relu", "surrogate_slope": -0.1}, ValueError, "surrogate_slope"),
    ({"name": "relu", "surrogate_slope": float("nan")}, ValueError, "surrogate_slope"),
])
def test_bad_parameters_raise_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        Activation(**kwargs)


def test_resolve_accepts_a_name_or_a_spec_only():
    spec = Activation("elu", alpha=0.5)
    assert resolve(spec) is spec
    assert resolve("logistic") == Activation("sigmoid")
    with pytest.raises(TypeError, match="activation must be a str or"):
        resolve(3)


@pytest.mark.parametrize("spec, names", [
    (Activation("prelu"), ("slope",)), (Activation("swish", learnable=True), ("beta",)),
    (Activation("swish"), ()), (Activation("acon"), ("p1", "p2", "beta")), (Activation("elu"), ()),
])
def test_learned_parameters_and_their_initial_values(spec, names):
    assert spec.param_names == names
    params = ref.init_activation_params(spec, 5, "float32")
    assert tuple(params) == names
    for value in params.values():
        assert value.dtype == np.float32
        assert value.shape == ((1,) if spec.name == "swish" else (5,))
    if spec.name == "prelu":
        np.testing.assert_array_equal(params["slope"], 0.25)
    if spec.name == "acon":
        assert (params["p1"] == 1).all() and (params["p2"] == 0.25).all()
        assert (params["beta"] == 1).all()


# -- derivatives against finite differences and from the output --------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_derivative_matches_central_differences(rng, spec):
    Z = away_from_kinks(rng, (7, 5), spec)
    P = random_params(spec, 5, rng) or None
    got = ref.activation_derivative(Z, spec, params=P)
    fd = central_difference(lambda z: ref.activation_forward(z, spec, P), Z)
    if spec.name == "necro_relu":  # the surrogate: true derivative above 0, the slope below
        np.testing.assert_allclose(got[Z > 0], fd[Z > 0], rtol=1e-8)
        np.testing.assert_array_equal(got[Z < 0], spec.surrogate_slope)
        return
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_backward_is_the_upstream_gradient_times_the_derivative(rng, spec):
    Z = rng.standard_normal((6, 4))
    Z[0, 0] = 0.0
    dA = rng.standard_normal(Z.shape)
    P = random_params(spec, 4, rng) or None
    np.testing.assert_array_equal(ref.activation_backward(dA, Z, spec, params=P),
                                  dA * ref.activation_derivative(Z, spec, params=P))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_derivative_from_the_output_equals_the_derivative_from_z_where_claimed(rng, spec):
    Z = np.concatenate([rng.standard_normal(40) * 3, [0.0, -0.0, 1e-300, -1e-300, 30, -30,
                                                      700, -700]]).reshape(6, 8)
    P = random_params(spec, 8, rng) or None
    if spec.derivative_needs_z:
        with pytest.raises(ValueError, match="needs Z"):
            ref.activation_derivative_from_output(ref.activation_forward(Z, spec, P), spec,
                                                  params=P)
        return
    params = ref.init_activation_params(spec, 8) if P is None else P
    from_z = ref.ALL_ACTIVATIONS[spec.name]["from_z"](Z, spec, params)
    from_a = ref.activation_derivative_from_output(ref.activation_forward(Z, spec, P), spec,
                                                   params=P)
    np.testing.assert_allclose(from_a, from_z, rtol=1e-12, atol=2e-15)


@pytest.mark.parametrize("name", ["identity", "leaky_relu", "elu", "selu", "softplus",
                                  "sigmoid", "tanh"])
def test_these_derivatives_are_computed_from_the_output(name):
    assert not Activation(name).derivative_needs_z
    assert not Activation("relu").derivative_needs_z
    assert Activation("relu", grad_at_zero=0.5).derivative_needs_z  # A = 0 for z = 0 and z < 0


@pytest.mark.parametrize("spec, expected", [
    (Activation("relu"), 0.0), (Activation("relu", grad_at_zero=0.5), 0.5),
    (Activation("relu", grad_at_zero=1.0), 1.0), (Activation("necro_relu"), 0.0),
    (Activation("necro_relu", grad_at_zero=1.0), 1.0),
    (Activation("leaky_relu", alpha=0.2), 0.2), (Activation("prelu"), 0.25),
    (Activation("elu", alpha=0.5), 0.5), (Activation("selu"), LAM * ALP),
    (Activation("abs"), 0.0), (Activation("identity"), 1.0), (Activation("tanh"), 1.0),
    (Activation("sigmoid"), 0.25), (Activation("softplus"), 0.5), (Activation("silu"), 0.5),
    (Activation("mish"), 0.6), (Activation("acon"), 0.75 * 0.5 + 0.25),
])
def test_derivative_at_zero_is_the_documented_convention(spec, expected):
    Z = np.array([[0.0, -0.0]])
    np.testing.assert_allclose(ref.activation_derivative(Z, spec), expected, rtol=1e-15)


def test_the_positional_grad_at_zero_still_works_and_cannot_contradict_the_spec(rng):
    Z = np.array([[-1.0, 0.0, 2.0]])
    dA = np.ones_like(Z)
    np.testing.assert_array_equal(ref.activation_backward(dA, Z, "relu", 0.5), [[0, 0.5, 1]])
    np.testing.assert_array_equal(ref.activation_derivative(Z, "necro_relu", 1.0), [[0.01, 1, 1]])
    spec = Activation("relu", grad_at_zero=0.5)
    np.testing.assert_array_equal(ref.activation_derivative(Z, spec, 0.5), [[0, 0.5, 1]])
    with pytest.raises(ValueError, match="conflicts"):
        ref.activation_derivative(Z, spec, 1.0)
    with pytest.raises(ValueError, match="grad_at_zero"):
        ref.activation_derivative(Z, "tanh", 2.0)  # the engine's range check, for every name
    np.testing.assert_array_equal(ref.activation_derivative(Z, "tanh", 0.5),  # ignored, as C++
                                  ref.activation_derivative(Z, "tanh"))


# -- forwards: textbook formulas, extreme inputs, dtypes ---------------------------------------


def textbook(spec, z, P):
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    beta = P["beta"] if spec.name == "swish" and spec.learnable else spec.beta
    return {
        "identity": lambda: z, "relu": lambda: np.maximum(z, 0),
        "necro_relu": lambda: np.maximum(z, 0),
        "leaky_relu": lambda: np.where(z > 0, z, spec.alpha * z),
        "prelu": lambda: np.where(z > 0, z, P.get("slope", 0) * z),
        "elu": lambda: np.where(z > 0, z, spec.alpha * (np.exp(z) - 1)),
        "selu": lambda: LAM * np.where(z > 0, z, ALP * (np.exp(z) - 1)),
        "swish": lambda: z * sig(beta * z), "silu": lambda: z * sig(z),
        "mish": lambda: z * np.tanh(np.log(1 + np.exp(z))),
        "softplus": lambda: np.log(1 + np.exp(z)), "sigmoid": lambda: sig(z),
        "tanh": lambda: np.tanh(z), "abs": lambda: np.abs(z),
        "acon": lambda: ((P["p1"] - P["p2"]) * z * sig(P["beta"] * (P["p1"] - P["p2"]) * z)
                         + P["p2"] * z),
    }[spec.name]()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_forward_matches_the_textbook_formula(rng, spec):
    Z = rng.uniform(-6, 6, (5, 3))
    P = random_params(spec, 3, rng)
    got = ref.activation_forward(Z, spec, P or None)
    np.testing.assert_allclose(got, textbook(spec, Z, P), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_inputs_give_finite_correct_limits(dtype):
    big = 1000.0 if dtype == np.float64 else 100.0
    Z = np.array([[-big, big]], dtype=dtype)
    limits = {  # (f(-big), f(big), f'(-big), f'(big))
        "softplus": (0, big, 0, 1), "mish": (0, big, 0, 1), "swish": (0, big, 0, 1),
        "silu": (0, big, 0, 1), "sigmoid": (0, 1, 0, 0), "tanh": (-1, 1, 0, 0),
        "elu": (-1, big, 0, 1), "selu": (-LAM * ALP, LAM * big, 0, LAM),
        "acon": (-0.25 * big, big, 0.25, 1), "abs": (big, big, -1, 1),
    }
    for name, (f_lo, f_hi, d_lo, d_hi) in limits.items():
        A = ref.activation_forward(Z, name)
        D = ref.activation_derivative(Z, name)
        assert A.dtype == dtype and D.dtype == dtype
        np.testing.assert_allclose(A[0], [f_lo, f_hi], rtol=1e-6, atol=1e-30, err_msg=name)
        np.testing.assert_allclose(D[0], [d_lo, d_hi], rtol=1e-6, atol=1e-30, err_msg=name)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_float32_follows_float64(rng, spec):
    Z = rng.standard_normal((8, 6)) * 3
    P = random_params(spec, 6, rng) or None
    P32 = None if P is None else {k: v.astype(np.float32) for k, v in P.items()}
    for f in (ref.activation_forward, ref.activation_derivative):
        got = f(Z.astype(np.float32), spec, params=P32)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, f(Z, spec, params=P), rtol=2e-5, atol=2e-6)


# -- learned parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [Activation("prelu"), Activation("swish", learnable=True),
                                  Activation("acon"), Activation("acon", alpha=1.5, beta=-0.5)],
                         ids=["prelu", "swish", "acon", "acon-p2>p1"])
def test_parameter_gradients_match_finite_differences(rng, spec):
    Z = away_from_kinks(rng, (9, 4), spec)
    dA = rng.standard_normal(Z.shape)
    params = random_params(spec, 4, rng)
    grads = ref.activation_param_gradients(dA, Z, spec, params)
    assert set(grads) == set(spec.param_names)
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for j in range(value.size):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][j] += h
            down[name][j] -= h
            fd[j] = ((dA * ref.activation_forward(Z, spec, up)).sum()
                     - (dA * ref.activation_forward(Z, spec, down)).sum()) / (2 * h)
        assert grads[name].shape == value.shape
        np.testing.assert_allclose(grads[name], fd, rtol=1e-7, atol=1e-9, err_msg=name)


def test_activations_without_parameters_have_no_parameter_gradients(rng):
    Z = rng.standard_normal((3, 2))
    assert ref.activation_param_gradients(Z, Z, "elu") == {}
    assert ref.activation_param_gradients(Z, Z, Activation("swish")) == {}


def test_params_are_checked(rng):
    Z = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match=r"params\['slope'\] must be a real array of shape \(4,\)"):
        ref.activation_forward(Z, "prelu", {"slope": np.ones(3)})
    with pytest.raises(ValueError, match="keys"):
        ref.activation_forward(Z, "acon", {"p1": np.ones(4)})
    with pytest.raises(ValueError, match="no learned parameters"):
        ref.activation_forward(Z, "relu", {"slope": np.ones(4)})
    np.testing.assert_array_equal(ref.activation_forward(Z, "prelu"),  # None: initial values
                                  ref.activation_forward(Z, "prelu", {"slope": np.full(4, 0.25)}))


def test_prelu_slope_is_per_unit(rng):
    Z = -np.abs(rng.standard_normal((3, 2)))
    A = ref.activation_forward(Z, "prelu", {"slope": np.array([0.1, 0.5])})
    np.testing.assert_allclose(A, Z * [0.1, 0.5])


def test_selu_constants_make_mean_zero_variance_one_a_fixed_point():
    """Klambauer et al. 2017: for z ~ N(0, 1), E[selu(z)] = 0 and E[selu(z)²] = 1."""
    z = np.linspace(-12, 12, 2_400_001)
    density = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    a = ref.activation_forward(z, "selu")
    dz = z[1] - z[0]
    assert abs((a * density).sum() * dz) < 1e-9
    assert abs((a * a * density).sum() * dz - 1) < 1e-9


def test_specs_survive_pickle_and_copy():
    import copy
    import pickle

    spec = Activation("swish", beta=0.5, learnable=True)
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert copy.deepcopy(spec) == spec
    assert dataclasses.replace(spec, beta=2.0) == Activation("swish", beta=2.0, learnable=True)
