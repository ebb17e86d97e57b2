"""Matrix multiply (csrc/gemm.hpp): C = alpha * op(A) @ op(B) + beta * C."""

from __future__ import annotations


def gemm(A, B, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None, *,
         n_threads=0, check_finite=True):
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
