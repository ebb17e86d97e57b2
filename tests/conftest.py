"""Shared fixtures: the two backends' kernels side by side, and the data the estimator tests
train on."""

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


@pytest.fixture(scope="module")
def wine():
    """scikit-learn's bundled wine data (178 rows, 13 features, 3 classes), standardised."""
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.preprocessing import StandardScaler

    X, y = datasets.load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y
