"""Property-based tests (Hypothesis) of dp.ops fed hostile arguments: every dtype the
engine does not take, mixed float dtypes, NaN/inf with and without check_finite, objects that
are not arrays, keyword options of the wrong type or range, unknown activation names. Each is
a TypeError or ValueError naming the argument, or (check_finite=False) an unchecked result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from properties import (
    ACTIVATIONS,
    OTHER_DTYPES,
    examples,
    float_dtypes,
    names_argument,
    normal,
    seeds,
)

from deltaprop import ops

# -- hostile arrays: dtypes, NaN/inf, wrong types ------------------------------------------

ARRAY_OPS = {  # op: (call, its arrays' shapes, the argument names it checks in order)
    "gemm": (lambda A, B, **kw: ops.gemm(A, B, **kw), [(3, 4), (4, 2)], ["A", "B"]),
    "dense_forward": (lambda X, W, b, **kw: ops.dense_forward(X, W, b, "tanh", **kw),
                      [(3, 4), (4, 2), (2,)], ["X", "W", "b"]),
    "dense_backward": (lambda dZ, X, **kw: ops.dense_backward(dZ, X, **kw), [(3, 2), (3, 4)],
                       ["dZ", "X"]),
    "delta_propagate": (lambda dZ, W, Zp, **kw: ops.delta_propagate(dZ, W, Zp, "elu", **kw),
                        [(3, 2), (4, 2), (3, 4)], ["dZ", "W", "Z_prev"]),
    "activation_forward": (lambda Z, **kw: ops.activation_forward(Z, "mish", **kw), [(5,)],
                           ["Z"]),
    "activation_backward": (lambda dA, Z, **kw: ops.activation_backward(dA, Z, "selu", **kw),
                            [(2, 3), (2, 3)], ["dA", "Z"]),
    "activation_derivative": (lambda Z, **kw: ops.activation_derivative(Z, "softplus", **kw),
                              [(2, 2, 2)], ["Z"]),
    "output_loss_delta": (lambda Z, Y, **kw: ops.output_loss_delta(Z, Y, "sigmoid", **kw),
                          [(3, 2), (3, 2)], ["Z", "Y"]),
    "sgd_momentum_step": (lambda p, v, g, **kw: ops.sgd_momentum_step(p, v, g, 0.1, 0.5, **kw),
                          [(6,), (6,), (6,)], ["p", "v", "g"]),
    "adam_step": (lambda p, m, v, g, **kw: ops.adam_step(p, m, v, g, 3, 0.1, **kw),
                  [(2, 3)] * 4, ["p", "m", "v", "g"]),
    "add_l2": (lambda g, W, **kw: ops.add_l2(g, W, 0.5, 3, **kw), [(4,), (4,)], ["g", "W"]),
}


def good_arrays(op: str, dtype, seed: int) -> list:
    arrays = [normal(seed + i, shape, dtype) for i, shape in enumerate(ARRAY_OPS[op][1])]
    if op == "adam_step":
        arrays[2] = np.abs(arrays[2])
    return arrays


@examples(500)
@given(op=st.sampled_from(sorted(ARRAY_OPS)), dtype=float_dtypes, seed=seeds,
       position=st.integers(0, 3), bad=st.sampled_from(OTHER_DTYPES + ["mixed"]))
def test_a_wrong_dtype_is_a_type_error_naming_the_argument(op, dtype, seed, position, bad):
    call, _, names = ARRAY_OPS[op]
    arrays = good_arrays(op, dtype, seed)
    i = position % len(arrays)
    assume(bad != "mixed" or len(arrays) > 1)
    other = (np.float64 if dtype == np.float32 else np.float32) if bad == "mixed" else bad
    arrays[i] = np.zeros(arrays[i].shape, other)
    with pytest.raises(TypeError) as info:
        call(*arrays)
    # mixed float dtypes: the first array decides the dtype, so the message may blame another
    assert names_argument(info.value, *(names if bad == "mixed" else names[i:i + 1])), (
        str(info.value))


@examples(400)
@given(op=st.sampled_from(sorted(ARRAY_OPS)), dtype=float_dtypes, seed=seeds,
       position=st.integers(0, 3), value=st.sampled_from([np.nan, np.inf, -np.inf]),
       where=st.integers(0, 100), check_finite=st.booleans())
def test_nan_and_inf_are_named_or_pass_through_unchecked(op, dtype, seed, position, value, where,
                                                        check_finite):
    call, _, names = ARRAY_OPS[op]
    arrays = good_arrays(op, dtype, seed)
    i = position % len(arrays)
    arrays[i].flat[where % arrays[i].size] = value
    if check_finite:
        with pytest.raises(ValueError, match="NaN or inf") as info:
            call(*arrays)
        assert names_argument(info.value, names[i])
    else:
        with np.errstate(all="ignore"):
            call(*arrays, check_finite=False)  # no check, no crash: the result is IEEE's


NOT_ARRAYS = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3),
                       st.lists(st.floats(allow_nan=False), max_size=3),
                       st.tuples(st.integers()), st.binary(max_size=3))


@examples(300)
@given(op=st.sampled_from(sorted(ARRAY_OPS)), seed=seeds, position=st.integers(0, 3),
       thing=NOT_ARRAYS)
def test_a_non_array_is_a_type_error_naming_the_argument(op, seed, position, thing):
    call, _, names = ARRAY_OPS[op]
    arrays = good_arrays(op, np.float64, seed)
    i = position % len(arrays)
    arrays[i] = thing
    with pytest.raises(TypeError) as info:
        call(*arrays)
    assert names_argument(info.value, names[i]), str(info.value)


@examples(300)
@given(op=st.sampled_from(sorted(ARRAY_OPS)), seed=seeds,
       key=st.sampled_from(["n_threads", "check_finite"]),
       value=st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=2),
                       st.none(), st.booleans()))
def test_keyword_options_of_a_wrong_type_or_range_are_named(op, seed, key, value):
    call, _, _ = ARRAY_OPS[op]
    arrays = good_arrays(op, np.float64, seed)
    valid = (isinstance(value, bool) if key == "check_finite"
             else type(value) is int and 0 <= value <= 1024)
    if valid:
        call(*arrays, **{key: value})
        return
    with pytest.raises((TypeError, ValueError), match=key):
        call(*arrays, **{key: value})


@examples(200)
@given(op=st.sampled_from(["activation_forward", "activation_derivative", "dense_forward",
                           "delta_propagate", "activation_backward"]),
       name=st.text(max_size=12))
@example(op="activation_forward", name="prelu")
@example(op="dense_forward", name="acon")
def test_an_unknown_activation_name_is_a_value_error(op, name):
    arrays = {"Z": np.ones((2, 3)), "dA": np.ones((2, 3)), "X": np.ones((2, 3)),
              "W": np.ones((3, 3)), "b": np.ones(3), "dZ": np.ones((2, 3))}
    calls = {
        "activation_forward": lambda: ops.activation_forward(arrays["Z"], name),
        "activation_derivative": lambda: ops.activation_derivative(arrays["Z"], name),
        "activation_backward": lambda: ops.activation_backward(arrays["dA"], arrays["Z"], name),
        "dense_forward": lambda: ops.dense_forward(arrays["X"], arrays["W"], arrays["b"], name),
        "delta_propagate": lambda: ops.delta_propagate(arrays["dZ"], arrays["W"], arrays["Z"],
                                                       name),
    }
    # the learned activations are known names too: the activation_* ops take them (with their
    # default parameters), the fused ops refuse them with a ValueError naming the activation
    if name in ACTIVATIONS or (name in ("prelu", "acon") and op.startswith("activation_")):
        calls[op]()
        return
    with pytest.raises(ValueError, match="activation"):
        calls[op]()
