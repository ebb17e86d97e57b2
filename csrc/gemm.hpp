// Matrix multiply: C = alpha . op(A) . op(B) + beta . C, row-major, with fused extras.
//
// Contract
//   op(A) is M x K: A[i*lda + k] when !trans_a, A[k*lda + i] when trans_a.
//   op(B) is K x N: B[k*ldb + j] when !trans_b, B[j*ldb + k] when trans_b.
//   C is M x N with row stride ldc and must not overlap A, B or the epilogue's inputs.
//   beta == 0 overwrites C without reading it (BLAS convention: NaN in C does not leak).
//   Each C element is summed over k in increasing order however the threads split the work,
//   so results are bitwise identical for any thread count (for a given instruction set path).
//
// Fusion, the reason this is not a BLAS call:
//   epilogue     applied to each tile of C as soon as it is final, while it is hot in cache:
//                C += bias (per column), then C = f(C), then C *= f'(S) for a stored matrix S
//                (the layer's A, or Z where f' needs it) - the forward's bias + activation and
//                delta propagation's derivative mask, without another pass over C. The bias
//                alone, bias + ReLU and the ReLU mask are done to the sums in registers before
//                they are stored (gemm_kernel.hpp's TileOps); other activations in a pass over
//                each finished tile.
//   col_sums_b   if not null, col_sums_b[j] = sum_k op(B)[k, j], taken while B is packed: the
//                bias gradient, summed from the delta as the weight-gradient product reads it.
#pragma once

#include "activations.hpp"
#include "common.hpp"
#include "isa.hpp"

namespace dp {

template <typename T>
struct Epilogue {
    const T* bias = nullptr;
    const ActivationSpec* activation = nullptr;
    const ActivationSpec* derivative = nullptr;  // multiply by f'(S), S = stored
    const T* stored = nullptr;
    idx ld_stored = 0;
};

template <typename T>
void gemm(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
          bool trans_a, bool trans_b, T alpha, T beta, int n_threads,
          const Epilogue<T>& epilogue = {}, T* col_sums_b = nullptr);

// The backward of a narrow layer (O <= kNarrowOutputs: regression, binary classification) over
// a ReLU layer, in one pass over the batch. Otherwise it is three thin passes over the N x I
// activations A: the weight gradient A^T dZ, the delta's product and ReLU mask, and the previous
// layer's bias-gradient sums. Here each strip of 8 to 40 units goes down the rows once, with
// all its sums in registers:
//   dW = A^T dZ (I x O), db = column sums of dZ (O),
//   dZ_prev = (dZ W^T) . ReLU'(S) (N x I; S rows lds apart, ReLU'(0) = at_zero),
//   db_prev = column sums of dZ_prev.
// Each value is the same sum in the same order as in those passes (the narrow and direct
// products and column_sums start each sum at 0 and add k in order), so the bits are the same.
// Needs I >= 8 and I >= small_product_lanes; runs on one thread.
constexpr idx kNarrowOutputs = 4;
template <typename T>
void narrow_relu_backward(T* dW, T* db, T* dZ_prev, T* db_prev, const T* dZ, const T* A, const T* W,
                          const T* S, idx lds, idx N, idx I, idx O, T at_zero);

// Whether this process has loaded the GEMM kernels of `isa`: a path's kernels load with its
// first product, and no other path's with them (a set's code must run only where that set is
// chosen; config_info() reports this so a test can check it).
bool kernels_loaded(Isa isa);

// The packed path's tile sizes for the active instruction set (for tests at tile edges).
int gemm_mr(bool f64);
int gemm_nr(bool f64);
// Values to a vector in the small-product loops (direct, narrow, one-pass backward) as they run
// on this CPU: one register of the loop clone's vector unit, at most 8.
int small_product_lanes(bool f64);

// One core's multiply-add throughput on the active path, measured by a register-only loop of
// about `seconds`: GFLOP/s (2 flops per multiply-add). The roofline benchmarks compare against.
double fma_peak_gflops(bool f64, double seconds);

}  // namespace dp
