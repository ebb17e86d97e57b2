"""scikit-learn's own estimator checks (parametrize_with_checks) on both drop-ins, in several
configurations: each solver, scikit-learn's relu and one of deltaprop's activations.

Small networks and max_iter keep the whole file within seconds; the classifier must still reach
the 0.83 training accuracy check_classifiers_train asks for. No check is expected to fail."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SMALL = dict(hidden_layer_sizes=(32,), n_threads=1)
ESTIMATORS = [
    MLPClassifier(max_iter=100, n_threads=1),  # scikit-learn's own test configuration
    MLPRegressor(max_iter=100, n_threads=1),
    MLPClassifier(solver="sgd", learning_rate_init=0.1, max_iter=60, **SMALL),
    MLPRegressor(solver="sgd", learning_rate_init=0.01, max_iter=60, **SMALL),
    MLPClassifier(solver="lbfgs", max_iter=60, **SMALL),
    MLPRegressor(solver="lbfgs", max_iter=60, **SMALL),
    MLPClassifier(activation="leaky_relu", learning_rate_init=0.01, max_iter=60, **SMALL),
    MLPRegressor(activation="leaky_relu", learning_rate_init=0.01, max_iter=60, **SMALL),
]


def expected_failed_checks(estimator):
    return {}


# The checks fit with max_iter far below convergence on purpose.
@pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_the_checks_cover_both_estimators_every_solver_and_a_new_activation():
    """scikit-learn's checks raise on failure themselves; this guards what they are run on."""
    assert {type(e) for e in ESTIMATORS} == {MLPClassifier, MLPRegressor}
    for cls in (MLPClassifier, MLPRegressor):
        configs = [e for e in ESTIMATORS if type(e) is cls]
        assert {e.solver for e in configs} == {"adam", "sgd", "lbfgs"}
        assert {e.activation for e in configs} >= {"relu", "leaky_relu"}
