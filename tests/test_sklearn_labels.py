"""deltaprop.sklearn._labels: the classifier's direct label encoding and decoding must give
exactly what LabelBinarizer gives (values, dtype, shape), and hand everything it does not
cover to LabelBinarizer itself."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import LabelBinarizer

from deltaprop.sklearn import MLPClassifier
from deltaprop.sklearn._labels import class_indices, decode, encode, fit_binarizer

LABELS = {
    "binary ints": (np.array([3, 7]), np.array([7, 3, 3, 7, 7])),
    "multiclass ints": (np.array([0, 1, 2, 5]), np.array([5, 0, 2, 1, 1, 0])),
    "multiclass strings": (np.array(["cat", "dog", "eel"], dtype=object),
                           np.array(["eel", "cat", "dog", "eel"], dtype=object)),
    "binary strings": (np.array(["no", "yes"]), np.array(["yes", "no", "yes"])),
    "integral floats": (np.array([0, 1, 2]), np.array([2.0, 0.0, 1.0])),
    "bools": (np.array([False, True]), np.array([True, True, False])),
}


@pytest.mark.parametrize("y", [
    np.array([3, 7, 7, 3]), np.array([5, 0, 2, 1, 1, 0]), np.array([4, 4, 4]),
    np.array([2, 0, 1], dtype=np.uint8), np.array([-3, 9], dtype=np.int32),
    np.array([2.0, 0.0, 1.0]), np.array(["b", "a"]), np.array([True, False]),  # through fit
    np.eye(3, dtype=int),  # multilabel
], ids=repr)
def test_fit_binarizer_matches_label_binarizer_fit(y):
    expected = LabelBinarizer().fit(y)
    got = fit_binarizer(y)
    for attribute in ("y_type_", "sparse_input_"):
        assert getattr(got, attribute) == getattr(expected, attribute), attribute
    assert got.classes_.dtype == expected.classes_.dtype
    np.testing.assert_array_equal(got.classes_, expected.classes_)
    np.testing.assert_array_equal(got.transform(y), expected.transform(y))


def test_fit_binarizer_refuses_what_label_binarizer_refuses():
    for y in (np.array([], dtype=int), np.array([0.5, 1.5]), np.array([[1, 2], [3, 4]])):
        with pytest.raises(ValueError) as expected:
            LabelBinarizer().fit(y)
        with pytest.raises(ValueError) as got:
            fit_binarizer(y)
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("name", sorted(LABELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_and_decode_match_label_binarizer(name, dtype):
    classes, y = LABELS[name]
    binarizer = LabelBinarizer().fit(classes)
    assert class_indices(binarizer, y) is not None  # the direct path is the one under test
    expected = binarizer.transform(y).astype(dtype)
    got = encode(binarizer, y, dtype)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    # decoding network outputs: probabilities, one column for two classes (raveled, as
    # predict does, and not), ties and a NaN row
    rng = np.random.default_rng(0)
    outputs = rng.uniform(size=(7, expected.shape[1])).astype(dtype)
    outputs[0] = 0.5
    outputs[1] = np.nan
    for Y in (outputs, outputs.ravel()) if outputs.shape[1] == 1 else (outputs,):
        np.testing.assert_array_equal(decode(binarizer, Y), binarizer.inverse_transform(Y))
    np.testing.assert_array_equal(decode(binarizer, got), y.astype(classes.dtype))


@pytest.mark.parametrize("classes, y", [
    (np.array([0, 1, 2]), np.array([0, 3, 1])),        # a label outside the classes
    (np.array([0, 1, 2]), np.array(["0", "1"])),       # labels that do not compare
    (np.array([4]), np.array([4, 4])),                 # a single class
])
def test_what_it_does_not_cover_goes_to_label_binarizer(classes, y):
    binarizer = LabelBinarizer().fit(classes)
    assert class_indices(binarizer, y) is None
    if y.dtype.kind != "U":
        np.testing.assert_array_equal(encode(binarizer, y, np.float64),
                                      binarizer.transform(y).astype(np.float64))


def test_multilabel_targets_go_to_label_binarizer():
    Y = np.array([[1, 0, 1], [0, 1, 0]])
    binarizer = LabelBinarizer().fit(Y)
    assert class_indices(binarizer, Y) is None
    np.testing.assert_array_equal(encode(binarizer, Y, np.float32), Y.astype(np.float32))
    np.testing.assert_array_equal(decode(binarizer, Y * 0.9), binarizer.inverse_transform(Y * 0.9))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_multilabel_target_s_nonzero_entries_are_its_positives(solver):
    """type_of_target calls a 0/2 matrix multilabel-indicator, and scikit-learn's MLPClassifier
    trains on ``transform(y).astype(bool)``: the same model as on the 0/1 matrix (deltaprop's
    sigmoid outputs were trained towards 2, to a negative log loss)."""
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    fits = [MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=20, random_state=0,
                          n_threads=1).fit(X, target) for target in (Y, 2 * Y, -Y)]
    for fit in fits[1:]:
        assert fit.loss_ == fits[0].loss_
        for a, b in zip(fit.coefs_, fits[0].coefs_):
            np.testing.assert_array_equal(a, b)


def test_partial_fit_still_refuses_an_unknown_class():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, n_threads=1)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes not in `self.classes_`"):
        clf.partial_fit(X[:5], np.array([0, 1, 7, 1, 0]))
