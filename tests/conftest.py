"""Shared fixtures: the two backends' kernels side by side."""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop as dp


@pytest.fixture(params=["cpp", "numpy"])
def kernels(request):
    """The engine's ops and the reference's twins, called the same way."""
    return dp.ops if request.param == "cpp" else dp.reference


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=dp.ops.available_isas())
def isa(request):
    """Each instruction-set path this machine can run, forced for the test, then restored."""
    previous = dp.ops.get_isa()
    dp.ops.set_isa(request.param)
    yield request.param
    dp.ops.set_isa(previous)
