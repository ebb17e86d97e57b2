"""Checks and conversions of user input, done visibly in Python before the engine sees it.
Every error names the argument and says what was expected and what was seen."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._typing import CsrParts, FloatArray, Rows

DTYPES = ("float32", "float64")


def check_dtype(dtype: npt.DTypeLike) -> np.dtype[np.floating[Any]]:
    try:
        dt: np.dtype[Any] = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt.name not in DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return np.dtype(dt.name)  # in the machine's byte order (a '>f8' is float64 too)


def check_int(value: object, name: str, minimum: int = 1, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not minimum <= int(value) <= maximum:  # int() of an Integral is exact
        # below a bound that is only the engine's integer width, that width says nothing
        too_small = int(value) < minimum and maximum >= 2**63 - 1
        bounds = f">= {minimum}" if too_small else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def check_real(value: object, name: str, low: float, high: float = np.inf) -> float:
    """A finite real number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    bounds = f"{name} must be finite and in [{low}, {high}]"
    try:  # (a Fraction, or an int: one past float's range overflows)
        real = float(value)
    except OverflowError:
        raise ValueError(f"{bounds}, got an integer past float's range") from None
    if not (math.isfinite(real) and low <= real <= high):
        raise ValueError(f"{bounds}, got {value}")
    return real


def check_name(value: str, name: str, known: Collection[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; expected one of "
                         f"{', '.join(repr(k) for k in known)}")
    return value


def per_layer(value: object, n: int, name: str) -> list[Any]:
    """One value per layer: a list, tuple or 1-D array must have n entries; anything else (a 0-d
    array as its value) applies to all. The values are the caller's to check (so typed Any)."""
    if isinstance(value, np.ndarray) and value.ndim <= 1:  # as the estimators take them
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must be one value or a list of {n} (one per layer), got "
                             f"a list of {len(value)}")
        return list(value)
    return [value] * n


def residual_flags(residual: object, sizes: Sequence[int]) -> list[bool]:
    """One bool per hidden layer of a network of these layer ``sizes``: which hidden layers are
    residual blocks. True alone means every hidden layer as wide as its input (a block adds its
    input to its output, so it needs that); a list chooses per hidden layer."""
    n_hidden = len(sizes) - 2
    if isinstance(residual, (bool, np.bool_)):
        flags = [bool(residual) and sizes[l] == sizes[l + 1] for l in range(n_hidden)]
        if residual and not any(flags):
            raise ValueError(f"residual=True, but no hidden layer of {list(sizes)} has as many "
                             f"inputs as units, which a residual block needs")
        return flags
    flags = per_layer(residual, n_hidden, "residual")
    for l, flag in enumerate(flags):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"residual[{l}] must be a bool, got {type(flag).__name__}")
    return [bool(f) for f in flags]


def dropout_rates(dropout: object, n_hidden: int) -> list[float]:
    """One dropout rate in [0, 1) per hidden layer, from one rate for all or a list."""
    return [check_real(r, f"dropout[{l}]", 0.0, np.nextafter(1.0, 0.0))
            for l, r in enumerate(per_layer(dropout, n_hidden, "dropout"))]


def _numeric(X: npt.ArrayLike, name: str) -> npt.NDArray[Any]:
    if isinstance(X, np.ma.MaskedArray):  # (np.asarray would drop its mask silently)
        raise TypeError(f"{name} is a masked array, whose mask the model would ignore; pass "
                        f"{name}.filled(value) or {name}.data")
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise TypeError(f"{name} is complex; complex data is not supported")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    return X


def all_finite(a: npt.NDArray[Any]) -> bool:
    """Whether every value of a real array is finite, without a boolean array the size of it
    (an eighth of a float64 X): a finite sum proves it, as a NaN or an inf makes any sum NaN or
    inf; only when the sum is not finite (or overflowed) is each value looked at."""
    if a.dtype.kind in "biu":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    return bool(np.isfinite(a).all())


def check_finite(X: npt.NDArray[Any], name: str) -> None:
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or inf")


def is_sparse(X: object) -> bool:
    """Whether X is a scipy sparse matrix or array (told by its methods: no scipy import)."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def csr_parts(X: Any, dtype: npt.DTypeLike) -> CsrParts:
    """A scipy sparse matrix as the engine reads it, its entries where they lie: its CSR
    (data in ``dtype``, indices, indptr, n_columns), indices and indptr of one integer type."""
    X = X.tocsr()
    indices, indptr = X.indices, X.indptr
    if indptr.ndim != 1 or len(indptr) != X.shape[0] + 1:  # (the engine counts rows by indptr)
        raise ValueError(f"malformed sparse matrix: its indptr has {indptr.size} entries, but "
                         f"its shape {X.shape} needs {X.shape[0] + 1}")
    if indices.dtype != indptr.dtype or indptr.dtype not in (np.int32, np.int64):
        indices, indptr = indices.astype(np.int64), indptr.astype(np.int64)
    return (np.ascontiguousarray(X.data, dtype=dtype), np.ascontiguousarray(indices),
            np.ascontiguousarray(indptr), int(X.shape[1]))


def rows_of(X: Rows) -> int:
    """The rows of X as check_matrix returns it."""
    return len(X[2]) - 1 if isinstance(X, tuple) else X.shape[0]


def check_matrix(X: npt.ArrayLike, name: str, dtype: np.dtype[np.floating[Any]],
                 n_cols: int) -> Rows:
    """X as a C-contiguous (n, n_cols) array of `dtype`, non-empty and finite; a scipy sparse
    matrix as its CSR parts (csr_parts; never densified), its stored values finite.
    A copy is made only when X is not already so."""
    if is_sparse(X):
        return _check_sparse(X, name, dtype, n_cols)
    X = _numeric(X, name)
    _check_shape(X.shape, name, n_cols)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        # C-contiguous and aligned (the engine refuses views at odd byte offsets): copied if not
        checked: FloatArray = np.require(np.asarray(X, dtype=dtype), requirements=["C", "A"])
    if not all_finite(checked):
        raise ValueError(f"{name} contains NaN or inf (or values beyond the {dtype} range)")
    return checked


def _check_shape(shape: tuple[int, ...], name: str, n_cols: int) -> None:
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} has 0 samples (shape {shape}); at least 1 is required")
    if shape[1] != n_cols:
        raise ValueError(f"{name} has {shape[1]} features, but the network expects {n_cols}")


def _check_sparse(X: Any, name: str, dtype: np.dtype[np.floating[Any]],
                  n_cols: int) -> CsrParts:
    _check_shape(X.shape, name, n_cols)
    _numeric(np.empty(0, X.dtype), name)  # its dtype: real numbers only
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        parts = csr_parts(X, dtype)
    if not all_finite(parts[0]):
        raise ValueError(f"{name} contains NaN or inf (or values beyond the {dtype} range)")
    return parts


def _check_distributions(Y: npt.NDArray[Any], name: str, dtype: np.dtype[Any]) -> None:
    """Softmax targets given as rows: each a distribution, its values >= 0 and summing to 1 (to
    a few roundings of the coarser of its dtype and the network's), since cross-entropy's
    gradient p - y assumes they do: a row of another sum would train towards a different
    target than the one it states."""
    if (Y < 0).any():
        raise ValueError(f"{name} must be non-negative for a softmax output (class labels, or "
                         f"rows of probabilities)")
    eps = max(np.finfo(dtype).eps, np.finfo(Y.dtype).eps if Y.dtype.kind == "f" else 0.0)
    sums = np.asarray(Y, dtype=np.float64).sum(axis=1)
    off = np.abs(sums - 1) > 8 * Y.shape[1] * eps
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{name}'s rows must each sum to 1 for a softmax output (rows of "
                         f"probabilities), but row {row} sums to {float(sums[row])!r}")


def check_targets(Y: npt.ArrayLike, name: str, dtype: np.dtype[np.floating[Any]], n_rows: int,
                  n_outputs: int, output: str) -> FloatArray:
    """Targets as a C-contiguous (n_rows, n_outputs) array of `dtype`.

    softmax: class labels 0..n_outputs-1 (1-D) become one-hot rows; 2-D rows must be
    distributions (_check_distributions). sigmoid: 0/1 targets, 1-D when there is one output.
    identity: values, 1-D when there is one output."""
    Y = _numeric(Y, name)
    given = Y.shape
    if Y.shape[:1] != (n_rows,):
        raise ValueError(f"{name} has {Y.shape[0] if Y.ndim else 0} rows, but X has {n_rows}")
    check_finite(Y, name)
    if Y.ndim == 1 and output == "softmax":
        with np.errstate(invalid="ignore"):  # labels beyond int64 are caught as not integral
            labels = Y.astype(np.int64)
        wrong = (labels != Y) | (labels < 0) | (labels >= n_outputs)
        if wrong.any():
            bad = Y[wrong][0].item()  # a Python number: its repr is what the user wrote
            raise ValueError(f"{name} holds label {bad!r}, but a softmax output of {n_outputs} "
                             f"units takes integer labels 0..{n_outputs - 1}")
        onehot = np.zeros((n_rows, n_outputs), dtype=dtype)
        onehot[np.arange(n_rows), labels] = 1
        return onehot
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != n_outputs:
        hint = f" or ({n_rows},)" if n_outputs == 1 else ""
        if output == "softmax":
            column = ", not a column" if given[1:] == (1,) else ""
            hint = (f" (rows of probabilities), or ({n_rows},) (class labels 0..{n_outputs - 1}"
                    f"{column})")
        raise ValueError(f"{name} must have shape ({n_rows}, {n_outputs}){hint}, got {given}")
    if output == "softmax":
        _check_distributions(Y, name, dtype)
    if output == "sigmoid" and ((Y < 0) | (Y > 1)).any():
        raise ValueError(f"{name} must hold values in [0, 1] for a sigmoid output (0/1 labels, "
                         f"one column per output), got values from {Y.min().item()!r} to "
                         f"{Y.max().item()!r}; class labels 0..K-1 go with a softmax output")
    if output == "exp" and (Y < 0).any():
        raise ValueError(f"{name} must be non-negative for an exp output (Poisson counts or rates)")
    with np.errstate(over="ignore", invalid="ignore"):
        checked: FloatArray = np.require(np.asarray(Y, dtype=dtype), requirements=["C", "A"])
    if not all_finite(checked):
        raise ValueError(f"{name} has values beyond the {dtype} range")
    return checked


def check_sample_weight(sample_weight: npt.ArrayLike | None, n_rows: int,
                        name: str = "sample_weight",
                        rows: str = "X") -> npt.NDArray[np.float64] | None:
    """Per-row weights as a C-contiguous float64 array of shape (n_rows,), or None. Weights
    are finite and non-negative, at least one is positive (else there is nothing to fit), and
    their sum is finite (each row's share is its weight over the sum). ``name`` and ``rows``
    name the weights and their rows' array in messages."""
    if sample_weight is None:
        return None
    s = _numeric(sample_weight, name)
    if s.dtype.kind == "b":
        raise TypeError(f"{name} must hold real numbers, got dtype bool")
    if s.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), one weight per row of {rows}, "
                         f"got {s.shape}")
    s = np.ascontiguousarray(s, dtype=np.float64)
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    with np.errstate(over="ignore"):  # an overflowing sum is reported below
        total = s.sum()
    if not total > 0:
        raise ValueError(f"{name} sums to zero; at least one weight must be positive")
    if not np.isfinite(total):
        raise ValueError(f"{name} sums to more than float64 holds; scale the weights down")
    return s
