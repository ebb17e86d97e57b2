// Matrix multiply: C = alpha . op(A) . op(B) + beta . C, row-major.
//
// Contract
//   op(A) is M x K: A[i*lda + k] when !trans_a, A[k*lda + i] when trans_a.
//   op(B) is K x N: B[k*ldb + j] when !trans_b, B[j*ldb + k] when trans_b.
//   C is M x N with row stride ldc and must not overlap A or B.
//   beta == 0 overwrites C without reading it (BLAS convention: NaN in C does not leak).
//   Each C element is summed over k in increasing order whatever the thread count,
//   so results are bitwise identical for 1 or many threads.
#pragma once

#include "common.hpp"

namespace dp {

template <typename T>
void gemm(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
          bool trans_a, bool trans_b, T alpha, T beta, int n_threads);

}  // namespace dp
