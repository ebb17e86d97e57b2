"""The classifier's labels to one-hot targets and outputs back to labels: LabelBinarizer's
``fit``, ``transform`` and ``inverse_transform``, with the same results, computed directly for
the common case (1-D labels of a binary or multiclass problem, all of them known classes).

Why: LabelBinarizer validates its input again on every call (type_of_target three times, five
check_array calls), ~370 µs for 32 labels, where the labels have already been validated against
``classes_`` by the estimator. That was most of a ``partial_fit`` on a small batch, and a third
of a ``predict``. Anything else (multilabel targets, a label outside ``classes_``, a single
class, a binarizer with other labels or sparse output) goes through LabelBinarizer itself.
``fit`` likewise costs ~200 µs (its parameter validation and type_of_target twice), a quarter of
the fixed cost of a whole small fit; 1-D integer labels, whose type needs no inspection, are
binarized directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.preprocessing import LabelBinarizer

from .._typing import FloatArray


def _plain(binarizer: LabelBinarizer) -> bool:
    """A binary or multiclass binarizer with its default 0/1 labels, dense, of 2+ classes."""
    return (binarizer.y_type_ in ("binary", "multiclass") and len(binarizer.classes_) >= 2
            and binarizer.neg_label == 0 and binarizer.pos_label == 1
            and not binarizer.sparse_output and not binarizer.sparse_input_)


def fit_binarizer(y: Any) -> LabelBinarizer:
    """``LabelBinarizer().fit(y)``. For a non-empty 1-D array of integers, type_of_target is
    'binary' for at most two distinct values and 'multiclass' otherwise, and the classes are the
    sorted distinct values: set directly, the fitted attributes are the ones fit would set."""
    binarizer = LabelBinarizer()
    if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu" and len(y):
        classes = np.unique(y)
        binarizer.y_type_ = "binary" if len(classes) <= 2 else "multiclass"
        binarizer.sparse_input_ = False
        binarizer.classes_ = classes
        return binarizer
    return binarizer.fit(y)


def class_indices(binarizer: LabelBinarizer, y: Any) -> npt.NDArray[np.intp] | None:
    """Each label's index in ``classes_``, or None unless y is 1-D labels that are all classes of
    a plain binarizer (then y has no class outside ``classes_``, as unique_labels would find)."""
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and _plain(binarizer)):
        return None
    classes = binarizer.classes_
    kinds = {classes.dtype.kind, y.dtype.kind}
    if kinds & set("US") and kinds & set("biuf"):
        return None  # str against numbers (NumPy < 1.25 compares them with a FutureWarning)
    try:
        index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
    except TypeError:  # labels that do not compare with the classes (str against int)
        return None
    known = np.array_equal(classes[index], y)  # classes_ is sorted (np.unique)
    return index if known else None


def encode(binarizer: LabelBinarizer, y: Any, dtype: npt.DTypeLike) -> FloatArray:
    """``binarizer.transform(y).astype(bool)`` in ``dtype``, as scikit-learn's MLPClassifier
    encodes targets: one column per class (one column, the second class's indicator, for two);
    a multilabel y's nonzero entries all positives (a 0/2 matrix is a 0/1 one)."""
    index = class_indices(binarizer, y)
    onehot: FloatArray
    if index is None:
        onehot = binarizer.transform(y).astype(bool).astype(dtype)
    elif len(binarizer.classes_) == 2:
        onehot = (index == 1).astype(dtype)[:, None]
    else:
        onehot = np.zeros((len(index), len(binarizer.classes_)), dtype=dtype)
        onehot[np.arange(len(index)), index] = 1
    return onehot


def decode(binarizer: LabelBinarizer, Y: Any) -> npt.NDArray[Any]:
    """``binarizer.inverse_transform(Y)``: the class of the largest output (multiclass), or
    the second class where the one output exceeds 0.5 (binary)."""
    if isinstance(Y, np.ndarray) and _plain(binarizer):
        classes = binarizer.classes_
        if binarizer.y_type_ == "multiclass" and Y.ndim == 2 and Y.shape[1] == len(classes):
            labels: npt.NDArray[Any] = classes[Y.argmax(axis=1)]
            return labels
        if binarizer.y_type_ == "binary" and (Y.ndim == 1 or Y.shape[1] == 1):
            labels = classes[(Y.reshape(-1) > 0.5).astype(np.intp)]
            return labels
    labels = binarizer.inverse_transform(Y)
    return labels


def class_row_weights(class_weight: Any, binarizer: LabelBinarizer,
                      y: Any) -> npt.NDArray[np.float64] | None:
    """Each row's weight from ``class_weight`` (None, 'balanced', a dict {class: weight}, or for
    multilabel y a list of such dicts, one per label column, keyed 0 and 1), as scikit-learn's
    other classifiers read it (compute_class_weight, compute_sample_weight); None for None.
    'balanced' weighs the classes of these rows (a fit's, or one partial_fit call's) by
    n_rows / (n_classes present * the class's count)."""
    from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

    if class_weight is None:
        return None
    if isinstance(class_weight, str) or binarizer.y_type_.startswith("multilabel"):
        rows = np.asarray(compute_sample_weight(class_weight, y), dtype=np.float64)
    elif isinstance(class_weight, dict):
        weights = np.asarray(compute_class_weight(class_weight, classes=binarizer.classes_, y=y),
                             dtype=np.float64)
        index = class_indices(binarizer, y)
        if index is None:  # labels LabelBinarizer itself handles: y holds only known classes
            index = np.searchsorted(binarizer.classes_, y)
        rows = weights[index]
    else:
        raise ValueError(f"class_weight must be 'balanced' or a dict {{class: weight}} for a "
                         f"{binarizer.y_type_} target (a list of dicts is for multilabel y), "
                         f"got {type(class_weight).__name__}")
    if not (np.isfinite(rows).all() and (rows >= 0).all()):
        raise ValueError(f"class_weight must hold finite, non-negative weights, got "
                         f"{class_weight!r}")
    return rows
