"""scikit-learn's own estimator checks (parametrize_with_checks) on both drop-ins, in several
configurations: each solver, scikit-learn's relu and one of deltaprop's activations, the
regressor's absolute and Huber losses, the classifier's class weights, one activation per
hidden layer, activations that learn parameters (prelu, acon), and deltaprop's residual blocks
with dropout.

Small networks and max_iter keep the whole file within seconds; the classifier must still reach
the 0.83 training accuracy check_classifiers_train asks for. No check is expected to fail,
except the sample-weight equivalence checks with dropout and with class_weight='balanced' (the
reasons are in expected_failed_checks)."""

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
    # deltaprop's options: the robust regression losses, class weights, a residual block
    # (the second hidden layer) and dropout
    MLPRegressor("absolute_error", learning_rate_init=0.01, max_iter=60, **SMALL),
    MLPRegressor("huber", solver="lbfgs", huber_delta=0.5, max_iter=60, **SMALL),
    MLPClassifier(class_weight="balanced", learning_rate_init=0.01, max_iter=60, **SMALL),
    MLPClassifier(hidden_layer_sizes=(32, 16), activation=["relu", "tanh"],
                  learning_rate_init=0.01, max_iter=60, n_threads=1),
    MLPClassifier(activation="prelu", learning_rate_init=0.01, max_iter=60, **SMALL),
    MLPRegressor(activation="acon", solver="lbfgs", max_iter=60, **SMALL),
    MLPClassifier(hidden_layer_sizes=(32, 32), residual=True, dropout=0.1,
                  learning_rate_init=0.01, max_iter=60, n_threads=1),
    MLPRegressor(hidden_layer_sizes=(32, 32), residual=True, dropout=0.1,
                 learning_rate_init=0.01, max_iter=60, n_threads=1),
]


def expected_failed_checks(estimator):
    if getattr(estimator, "class_weight", None) == "balanced":
        # 'balanced' weighs each class by its count of rows: repeating a row changes the
        # counts, and so every row's weight, where a weight of 2 on that row does not.
        reason = ("class_weight='balanced' counts rows: a repeated row changes the classes' "
                  "weights, a row of weight 2 does not")
        return {"check_sample_weight_equivalence_on_dense_data": reason,
                "check_sample_weight_equivalence_on_sparse_data": reason}
    if not estimator.dropout:
        return {}
    # Dropout draws a mask for each row of a batch: a row repeated twice is trained with two
    # independent masks, a row of weight 2 with one. The two objectives agree in expectation
    # over the masks, not fit by fit, so the equivalence the check asks for holds only without
    # dropout (every other configuration here passes it).
    reason = ("dropout draws one mask per row, so a repeated row and a row of weight 2 see "
              "different masks: equal only in expectation")
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


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
        names = {e.activation for e in configs if isinstance(e.activation, str)}
        assert names >= {"relu", "leaky_relu"}
        assert any(e.residual and e.dropout for e in configs)
    regressor_losses = {e.loss for e in ESTIMATORS if type(e) is MLPRegressor}
    assert regressor_losses >= {"squared_error", "absolute_error", "huber"}
    classifiers = [e for e in ESTIMATORS if type(e) is MLPClassifier]
    assert any(e.class_weight == "balanced" for e in classifiers)
    assert any(isinstance(e.activation, list) for e in classifiers)
    assert {e.activation for e in ESTIMATORS if isinstance(e.activation, str)} >= {"prelu", "acon"}
