"""The NumPy reference mirrors the C++ names: a call written for an operation in dp.ops, or for
the engine, runs unchanged on its reference twin (the oracle every kernel is tested against and
what users can step through in Python). The reference may take more (the learned activations'
``params``), never less."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from helpers import assert_close

from deltaprop import _core, reference


def runtime_parameters(function) -> list[tuple]:
    """(name, keyword-only, default) from the signature pybind11 writes on a docstring's first
    line; "required" for no default; `self` left out."""
    args = ast.parse(f"def {function.__doc__.splitlines()[0]}: ...").body[0].args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [(a.arg, False, d) for a, d in zip(positional, defaults)]
    out += [(a.arg, True, d) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return [(name, kw, "required" if d is None else ast.literal_eval(d))
            for name, kw, d in out if name != "self"]


def python_parameters(function) -> list[tuple]:
    return [(p.name, p.kind == p.KEYWORD_ONLY, "required" if p.default is p.empty else p.default)
            for p in inspect.signature(function).parameters.values() if p.name != "self"]


def accepts_every_call_to(reference_params, cpp_params, name):
    """Each C++ parameter, in order, with its kind and default; any extra one has a default."""
    extra = [p for p in reference_params if p[0] not in {q[0] for q in cpp_params}]
    assert [p for p in reference_params if p not in extra] == cpp_params, name
    assert all(default != "required" for _, _, default in extra), (name, extra)


TWINS = sorted(n for n in dir(_core.ops) if not n.startswith("_") and hasattr(reference, n))


def test_every_operation_but_the_machine_controls_has_a_twin():
    # learned_activation is the C++ side's entry for prelu/acon/learnable swish, which the
    # reference's activation_* take through their `params`
    machine = {"available_isas", "get_isa", "set_isa", "gemm_tile", "fma_peak_gflops"}
    without = {n for n in dir(_core.ops) if not n.startswith("_")} - set(TWINS)
    assert without == machine | {"learned_activation"}


@pytest.mark.parametrize("name", TWINS)
def test_each_twin_takes_the_operations_parameters(name):
    accepts_every_call_to(python_parameters(getattr(reference, name)),
                          runtime_parameters(getattr(_core.ops, name)), name)


def test_the_reference_engine_takes_the_engines_parameters():
    cpp = runtime_parameters(_core.Engine_float64.__init__)
    accepts_every_call_to(python_parameters(reference.Engine.__init__), cpp, "Engine")
    for method in ("forward", "loss_and_gradients", "health"):
        accepts_every_call_to(python_parameters(getattr(reference.Engine, method)),
                              runtime_parameters(getattr(_core.Engine_float64, method)), method)


def value_only_flag(rng, output, flag, Y, scale=1.0):
    """A loss flag that changes the reported value only: (loss, grads) without and with it,
    the engine's after checking them against the reference's."""
    sizes = [4, 6, 3]
    X = rng.standard_normal((len(Y), 4))
    params = [rng.standard_normal((4, 6)) * scale, rng.standard_normal(6),
              rng.standard_normal((6, 3)) * scale, rng.standard_normal(3)]
    results = []
    for on in (False, True):
        both = []
        for engine in (_core.Engine_float64(sizes, "relu", output, **{flag: on}),
                       reference.Engine(sizes, "relu", output, **{flag: on})):
            grads = [np.empty_like(p) for p in params]
            both.append((engine.loss_and_gradients(params, X, Y, grads), grads))
        (loss, grads), (ref_loss, ref_grads) = both
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for g, r in zip(grads, ref_grads):
            assert_close(g, r)
        results.append((loss, grads))
    for g, r in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(g, r)
    return results[0][0], results[1][0]


def test_loss_mean_over_outputs_divides_the_loss_not_the_gradient(rng):
    summed, mean = value_only_flag(rng, "identity", "loss_mean_over_outputs",
                                   rng.standard_normal((9, 3)))
    assert mean == pytest.approx(summed / 3, rel=1e-15)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_loss_clip_probabilities_changes_the_loss_not_the_gradient(rng, output):
    exact, clipped = value_only_flag(rng, output, "loss_clip_probabilities",
                                     np.eye(3)[rng.integers(0, 3, 40)], scale=30)  # saturating
    assert clipped < exact / 2  # -log eps bounds each row's terms


def test_adam_without_its_second_moment_is_named(rng):
    engine = reference.Engine([2, 3, 2], "relu", "softmax")
    params = [np.ones((2, 3)), np.zeros(3), np.ones((3, 2)), np.zeros(2)]
    X, Y = np.ones((4, 2)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="second moment"):
        engine.train_epoch(params, [np.zeros_like(p) for p in params], None, X, Y, batch_size=2,
                           lr=0.1, optimizer="adam")
