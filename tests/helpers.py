"""Tolerances, parameter lists and helpers shared by the tests, in one place."""

from __future__ import annotations

import sys

import numpy as np

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

