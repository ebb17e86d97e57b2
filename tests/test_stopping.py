"""Early stopping's look at its held-out rows (csrc/stopping.hpp; reference/stopping.py): the
score read from the network's outputs is scikit-learn's own accuracy_score and r2_score of the
predictions those outputs make (the oracle), the engine's score and loss match the reference,
evaluate is loss_and_gradients' loss and forward's outputs without the backward pass, and
train_epochs with held-out rows keeps scikit-learn's rule on their score, as the reference
does, refusing bad held-out arguments clearly."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, assert_close
from sklearn.metrics import accuracy_score, r2_score

from deltaprop import _core, reference

# (output, outputs): softmax over 4 classes, one sigmoid (binary), 3 sigmoids (multilabel),
# identity with 1 and 3 outputs
KINDS = [("softmax", 4), ("sigmoid", 1), ("sigmoid", 3), ("identity", 1), ("identity", 3)]
KIND_IDS = ["multiclass", "binary", "multilabel", "regression", "multi-output"]


def outputs_and_targets(rng, output, O, n=60, dtype=np.float64):
    if output == "softmax":
        A = rng.dirichlet(np.ones(O), n)
        A[:5] = 1 / O  # ties: np.argmax's first class
        Y = np.eye(O)[rng.integers(0, O, n)]
    elif output == "sigmoid":
        A = rng.uniform(0, 1, (n, O))
        A[:3] = 0.5  # exactly 0.5 reads as 0
        Y = (rng.uniform(0, 1, (n, O)) < 0.5).astype(float)
    else:
        Y = rng.standard_normal((n, O))
        A = Y + 0.7 * rng.standard_normal((n, O))
    return A.astype(dtype), Y.astype(dtype)


def sklearn_score(A, Y, w, output):
    """What scikit-learn's _score gives for the predictions these outputs make."""
    if output == "softmax":
        return accuracy_score(Y.argmax(axis=1), A.argmax(axis=1), sample_weight=w)
    if output == "sigmoid":
        truth, predicted = Y.astype(int), (A > 0.5).astype(int)
        if Y.shape[1] == 1:
            truth, predicted = truth.ravel(), predicted.ravel()
        return accuracy_score(truth, predicted, sample_weight=w)
    return r2_score(Y, A, sample_weight=w)


def engine(output, O, dtype=np.float64):
    return getattr(_core, f"Engine_{np.dtype(dtype).name}")([3, 5, O], "relu", output)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("output", "O"), KINDS, ids=KIND_IDS)
def test_the_reference_score_is_scikit_learns(rng, output, O, weighted):
    A, Y = outputs_and_targets(rng, output, O)
    w = rng.uniform(0, 3, len(A)) if weighted else None
    got = reference.score_outputs(A, Y, w, output)
    assert got == pytest.approx(sklearn_score(A, Y, w, output), rel=1e-12, abs=1e-14)
    assert 0.05 < got < 0.95  # neither none nor all right


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_a_classifier_of_one_class_is_always_right(rng, weighted, dtype):
    """Its targets encode as 0 and its predictions are its class whatever the sigmoid says
    (LabelBinarizer's inverse of one class): scikit-learn's accuracy is 1 for any outputs."""
    A = rng.uniform(0, 1, (40, 1)).astype(dtype)
    Y = np.zeros_like(A)
    w = rng.uniform(0, 3, len(A)) if weighted else None
    assert reference.score_outputs(A, Y, w, "sigmoid", one_class=True) == 1.0
    assert engine("sigmoid", 1, dtype).score(A, Y, w, one_class=True) == 1.0
    assert engine("sigmoid", 1, dtype).score(A, Y, w) < 1.0  # read as a binary problem: not


def test_r2_of_constant_targets_and_exact_predictions_is_scikit_learns(rng):
    Y = np.column_stack([np.full(20, 2.0), np.full(20, -1.0), rng.standard_normal(20)])
    A = Y.copy()
    A[:, 1] += 0.5  # a constant target missed: 0; a constant one hit exactly: 1
    A[:, 2] += 0.3 * rng.standard_normal(20)
    got = reference.score_outputs(A, Y, None, "identity")
    assert got == pytest.approx(r2_score(Y, A), rel=1e-12)
    assert engine("identity", 3).score(A, Y) == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("output", "O"), KINDS, ids=KIND_IDS)
def test_the_engine_score_matches_the_reference(rng, output, O, weighted, dtype):
    A, Y = outputs_and_targets(rng, output, O, dtype=dtype)
    w = rng.uniform(0, 3, len(A)) if weighted else None
    want = reference.score_outputs(A, Y, w, output)
    got = engine(output, O, dtype).score(A, Y, w)
    if weighted or output == "identity":
        assert got == pytest.approx(want, rel=1e-12)
    else:
        assert got == want  # a count over the rows, exactly


@pytest.mark.parametrize(("output", "O"), KINDS, ids=KIND_IDS)
def test_a_nan_output_scores_as_scikit_learn_reads_it(rng, output, O):
    """np.argmax takes the first NaN, NaN > 0.5 is false, and a regressor's score is NaN."""
    A, Y = outputs_and_targets(rng, output, O)
    A[7, -1] = np.nan
    want = reference.score_outputs(A, Y, None, output)
    got = engine(output, O).score(A, Y)
    if output == "identity":
        assert np.isnan(got) and np.isnan(want)
    else:
        assert got == want == pytest.approx(sklearn_score(A, Y, None, output), rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_evaluate_is_the_loss_of_loss_and_gradients_and_the_forward_outputs(
        rng, output, weighted, dtype):
    sizes = [4, 7, 3]
    n = 2600  # three of the engine's row chunks
    core = getattr(_core, f"Engine_{np.dtype(dtype).name}")(sizes, "tanh", output)
    params = [rng.standard_normal(s).astype(dtype) * 0.5
              for shape in zip(sizes[:-1], sizes[1:]) for s in (shape, shape[1:])]
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = (np.eye(3)[rng.integers(0, 3, n)] if output == "softmax"
         else rng.uniform(0, 2, (n, 3))).astype(dtype)
    w = rng.uniform(0, 2, n) if weighted else None
    if weighted:
        w[::5] = 0  # rows of no weight are absent from the loss
    loss, outputs = core.evaluate(params, X, Y, w)
    grads = [np.empty_like(p) for p in params]
    assert loss == core.loss_and_gradients(params, X, Y, grads, w)  # the same bits
    np.testing.assert_array_equal(outputs, core.forward(params, X))
    ref_loss, ref_outputs = reference.Engine(sizes, "tanh", output).evaluate(params, X, Y, w)
    assert_close(outputs, ref_outputs)
    assert loss == pytest.approx(ref_loss, rel=1e-10 if dtype == np.float64 else 1e-5)


def held_out_problem(rng, dtype, output="softmax"):
    sizes = [5, 8, 3]
    params = [rng.standard_normal(s).astype(dtype) * 0.5
              for shape in zip(sizes[:-1], sizes[1:]) for s in (shape, shape[1:])]

    def rows(n):
        X = rng.standard_normal((n, sizes[0]))
        y = (X[:, :3] + 0.8 * rng.standard_normal((n, 3))).argmax(axis=1)  # learnable
        return X.astype(dtype), np.eye(3, dtype=dtype)[y]

    return sizes, params, rows(90), rows(40)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_train_epochs_with_held_out_rows_matches_the_reference(rng, dtype, weighted):
    sizes, params, (X, Y), (X_val, Y_val) = held_out_problem(rng, dtype)
    w_val = rng.uniform(0.5, 2, len(X_val)) if weighted else None
    epochs = 25
    runs = []
    for eng in (getattr(_core, f"Engine_{np.dtype(dtype).name}")(sizes, "relu", "softmax"),
                reference.Engine(sizes, "relu", "softmax")):
        p = [a.copy() for a in params]
        best = [np.full_like(a, np.nan) for a in params]
        val_losses, val_scores = np.full(epochs, -1.0), np.full(epochs, -1.0)
        s1, s2 = [np.zeros_like(a) for a in p], [np.zeros_like(a) for a in p]
        result = eng.train_epochs(p, s1, s2, X, Y, lrs=np.full(epochs, 0.2),
                                  losses=np.empty(epochs), batch_size=16, optimizer="sgd",
                                  tol=1e-4, n_iter_no_change=3, no_improvement_count=0,
                                  held_out=(X_val, Y_val, w_val, best, val_losses, val_scores,
                                            False),
                                  best_score=-np.inf)
        runs.append((result, p, best, val_losses, val_scores))
    (result, p, best, val_losses, val_scores), ref = runs
    done = result[0]
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert (result[0], result[1], result[3]) == (ref[0][0], ref[0][1], ref[0][3])
    assert result[2] == pytest.approx(ref[0][2], rel=1e-12)  # weighted: summed in its order
    assert result[1] == "plateau" and 3 < done < epochs  # the held-out score stopped it
    assert result[2] == max(val_scores[:done])  # the best score, not a loss
    assert 0.5 < result[2] <= 1
    np.testing.assert_allclose(val_scores[:done], ref[4][:done], rtol=1e-12)
    assert_close(val_losses[:done], ref[3][:done], rtol)
    assert (val_losses[done:] == -1).all()  # nothing written past the last epoch
    for got, want in zip(best, ref[2]):
        assert_close(got, want, rtol)
    # the best epoch's parameters, kept: they score as that epoch did
    best_epoch = int(np.argmax(val_scores[:done]))
    core = getattr(_core, f"Engine_{np.dtype(dtype).name}")(sizes, "relu", "softmax")
    _, outputs = core.evaluate(best, X_val, Y_val, w_val)
    assert core.score(outputs, Y_val, w_val) == val_scores[best_epoch]
    if best_epoch < done - 1:
        assert any((b != q).any() for b, q in zip(best, p))


def test_a_held_out_score_that_never_improves_keeps_counting(rng):
    """The rule starts from best_score: a score no better than it adds to the count each epoch
    and copies nothing."""
    sizes, params, (X, Y), (X_val, Y_val) = held_out_problem(rng, np.float64)
    best = [np.full_like(a, 7.0) for a in params]
    s1, s2 = [np.zeros_like(a) for a in params], [np.zeros_like(a) for a in params]
    result = _core.Engine_float64(sizes, "relu", "softmax").train_epochs(
        params, s1, s2, X, Y, lrs=np.full(10, 0.01), losses=np.empty(10), batch_size=16,
        tol=0.0, n_iter_no_change=4, no_improvement_count=1,
        held_out=(X_val, Y_val, None, best, np.empty(10), np.empty(10), False), best_score=1.0)
    assert result[:4] == (4, "plateau", 1.0, 5)
    assert all((b == 7.0).all() for b in best)


def held_out_call(rng, **changes):
    sizes, params, (X, Y), (X_val, Y_val) = held_out_problem(rng, np.float64)
    parts = dict(X=X_val, Y=Y_val, w=None, best=[np.empty_like(a) for a in params],
                 losses=np.empty(3), scores=np.empty(3), one_class=False)
    held_out = changes.pop("held_out", None)
    parts.update({k: changes.pop(k) for k in list(changes) if k in parts})
    if callable(held_out):
        held_out = held_out(params, parts)
    elif held_out is None:
        held_out = tuple(parts.values())
    s1, s2 = [np.zeros_like(a) for a in params], [np.zeros_like(a) for a in params]
    core = _core.Engine_float64(sizes, "relu", "softmax")
    return core.train_epochs(params, s1, s2, X, Y, lrs=np.full(3, 0.01), losses=np.empty(3),
                             batch_size=16, held_out=held_out, **changes)


@pytest.mark.parametrize(("changes", "error", "words"), [
    (dict(held_out=[1, 2]), TypeError, "held_out must be a tuple"),
    (dict(held_out=lambda p, parts: (*list(parts.values())[:3], p, *list(parts.values())[4:])),
     ValueError, "must not share memory"),
    (dict(losses=np.empty(2)), ValueError, "held_out losses"),
    (dict(scores=np.empty(3, np.float32)), TypeError, "held_out scores"),
    (dict(w=np.zeros(40)), ValueError, "held_out sample_weight sums to zero"),
    (dict(Y=np.zeros((40, 2))), ValueError, "held_out Y"),
    (dict(X=np.full((40, 5), np.nan)), ValueError, "held_out X"),
    (dict(best_score=np.nan), ValueError, "best_score must not be NaN"),
    (dict(one_class=1), TypeError, "held_out one_class must be a bool"),
])
def test_bad_held_out_arguments_are_refused_clearly(rng, changes, error, words):
    with pytest.raises(error, match=words):
        held_out_call(rng, **changes)
