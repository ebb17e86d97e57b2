"""Matrix multiply (csrc/gemm.hpp): C = alpha * op(A) @ op(B) + beta * C."""

from __future__ import annotations

from .._typing import FloatArray


def gemm(A: FloatArray, B: FloatArray, trans_a: bool = False, trans_b: bool = False,
         alpha: float = 1.0, beta: float = 0.0, out: FloatArray | None = None, *,
         n_threads: int = 0, check_finite: bool = True) -> FloatArray:

    """``n_threads`` and ``check_finite`` mirror the engine's signature; NumPy ignores them."""
    op_a = A.T if trans_a else A
    op_b = B.T if trans_b else B
    product = alpha * (op_a @ op_b)
    if out is None:
        return product
    if beta == 0:  # BLAS convention: C is not read, so NaN in it does not leak
        out[...] = product
    else:
        out[...] = product + beta * out
    return out
