"""Type aliases for the package's annotations. The engine and the reference compute in float32
or float64, one dtype per call; the reference's arrays are typed with the common base."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from .activations import Activation

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
ActivationArg = Union[str, Activation]  # a name, or a spec with parameters
ActivationParams = dict[str, FloatArray]  # learned activation parameters by name
# one activation for every hidden layer, or a list or tuple of one per layer (per_layer)
ActivationsArg = Union[ActivationArg, Sequence[ActivationArg]]
Rng = Union[np.random.Generator, np.random.RandomState, int, None]  # a generator or a seed

PathArg = Union[str, os.PathLike[str]]  # a file's path

# X as the engine reads it: dense rows, or a sparse matrix's CSR (data, indices, indptr,
# n_columns), indices and indptr both int32 or both int64
CsrParts = tuple[FloatArray, npt.NDArray[Any], npt.NDArray[Any], int]
Rows = Union[FloatArray, CsrParts]

__all__ = ["ActivationArg", "ActivationParams", "ActivationsArg", "BoolArray", "CsrParts",
           "FloatArray", "IntArray", "PathArg", "Rng", "Rows"]


