"""Tolerances, parameter lists and helpers shared by the tests, in one place."""

from __future__ import annotations

import re
import sys
from importlib.metadata import version

import numpy as np
import pytest


def release(package: str) -> tuple[int, int]:
    """(major, minor) of an installed package."""
    major, minor = version(package).split(".")[:2]
    return int(major), int(re.match(r"\d+", minor)[0])


# The comparisons with scikit-learn's own MLP that use what 1.7 added to it (sample_weight, the
# Poisson loss, the leading `loss` parameter, its loss functions' signatures); deltaprop.sklearn
# itself needs 1.6.
needs_sklearn_1_7 = pytest.mark.skipif(release("scikit-learn") < (1, 7),
                                       reason="compares with scikit-learn 1.7's MLP")

# C++ against the reference (design.md): float64 to ~1e-10, float32 to ~1e-5, relative to the
# largest magnitude of the expected result.
RTOL = {np.dtype("float64"): 1e-10, np.dtype("float32"): 1e-5}

DTYPES = [np.float64, np.float32]
THREADS = [1, 2]


def assert_close(actual, expected, rtol=None, what=""):
    """max |actual - expected| <= rtol * max(1, max |expected|), rtol by dtype by default."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if rtol is None:
        rtol = RTOL[np.result_type(actual.dtype, np.float32)]
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0))
    assert err <= rtol * scale, f"{what}: max error {err:.3g} > {rtol:.1g} x {scale:.3g}"


def python(*args: str) -> list[str]:
    """The command line of a fresh interpreter like this one: with -S when this one runs without
    site directories (scripts/isa_clones_check.sh), so that an editable install of deltaprop
    there cannot come before the build under test on PYTHONPATH."""
    return [sys.executable, *(["-S"] if sys.flags.no_site else []), *args]


def small_estimator(cls, **params):
    """A deltaprop.sklearn estimator small and quick enough for a test (8 hidden units, 10
    epochs, seeded), ``params`` on top."""
    return cls(**{"hidden_layer_sizes": (8,), "max_iter": 10, "random_state": 0,
                  "learning_rate_init": 0.01, **params})
