"""Shared parts of the property-based tests (tests/test_properties*.py): the Hypothesis
profiles, strategies for sizes and dtypes, and arrays in every memory layout.

The "ci" profile (the default) is derandomized, so a run is repeatable and cannot flake;
HYPOTHESIS_PROFILE=thorough runs ten times the examples with fresh randomness.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from deltaprop import reference as ref

# No "explain" phase: it imports libcst, whose DeprecationWarning our warnings-as-errors turns
# into an internal error that hides the failure being reported.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True,
                          phases=PHASES, suppress_health_check=SLOW)
settings.register_profile("thorough", deadline=None, print_blob=True, phases=PHASES,
                          suppress_health_check=SLOW)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 10 if PROFILE == "thorough" else 1


def examples(n: int):
    """settings for a test of `n` examples (ten times more under the thorough profile)."""
    return settings(settings.get_profile(PROFILE), max_examples=n * SCALE)


DOCUMENTED = (TypeError, ValueError, MemoryError, FloatingPointError)
FLOATS = [np.float32, np.float64]
# dtypes the engine does not take: each is a TypeError naming the argument, never a cast
OTHER_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16, np.longdouble,
                np.complex64, np.complex128, object, ">f8", ">f4", "U3", "V8", "M8[s]"]
ACTIVATIONS = list(ref.ACTIVATIONS)
LAYOUTS = ["C", "C", "C", "read-only", "memmap", "misaligned", "F", "strided", "reversed"]

dims = st.one_of(st.sampled_from([0, 1, 1, 2]), st.integers(0, 40))
positive_dims = st.one_of(st.just(1), st.integers(1, 40))
seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from(FLOATS)
layouts = st.sampled_from(LAYOUTS)
grad_at_zero = st.sampled_from([0.0, 0.5, 1.0])

MEMMAP_DIR = tempfile.mkdtemp(prefix="deltaprop-properties-")
atexit.register(shutil.rmtree, MEMMAP_DIR, ignore_errors=True)


def make(values: np.ndarray, layout: str) -> np.ndarray:
    """`values` (the logical array) stored in `layout`; equal to `values` element by element."""
    if layout == "read-only":
        a = values.copy()
        a.setflags(write=False)
        return a
    if layout == "memmap" and values.size:
        path = os.path.join(MEMMAP_DIR, f"m{np.random.default_rng().integers(2**62)}.bin")
        a = np.memmap(path, dtype=values.dtype, mode="w+", shape=values.shape)
        a[...] = values
        return a
    if layout == "misaligned":  # a C-contiguous array one byte off its type's alignment
        buffer = np.zeros(values.nbytes + 1, np.uint8)
        a = np.ndarray(values.shape, values.dtype, buffer=buffer, offset=1)
        a[...] = values
        return a
    if layout == "F" and values.ndim:
        return np.asfortranarray(values)
    if layout == "strided" and values.ndim:
        wide = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), values.dtype)
        wide[..., ::2] = values
        return wide[..., ::2]
    if layout == "reversed" and values.ndim:
        return np.ascontiguousarray(values[::-1])[::-1]
    return np.array(values, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


def accepted_input(a: np.ndarray) -> bool:
    """Inputs of the elementwise and dense ops: C-contiguous and aligned (when not empty)."""
    return a.flags.c_contiguous and (a.flags.aligned or a.size == 0)


def normal(seed: int, shape, dtype, scale: float = 1.0) -> np.ndarray:
    return np.asarray(scale * np.random.default_rng(seed).standard_normal(shape), dtype)


def names_argument(error: Exception, *names: str) -> bool:
    message = str(error)
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", message) for n in names)


