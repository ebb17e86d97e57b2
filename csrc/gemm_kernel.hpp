// The GEMM micro-kernel contract (BLIS's, transposed for row-major C).
//
//   kernel[m](kc, A, lda, Bp, ldbp, C, ldc, n, accumulate, ops), for m = 1..MR:
//     C[0:m, 0:n] (row stride ldc)  =  (accumulate ? C : 0)  +  sum_k op(A)[0:m, k] (x) Bp[k]
//   A   op(A)'s m rows, read where they lie (never packed), in one of two layouts, each with its
//       own set of kernels: by_k, A[k*lda + r] = op(A)[r, k] (a transposed A, stored K x M);
//       by_row, A[r*lda + k] = op(A)[r, k] (a row-major A)
//   Bp  kc rows of NR values of op(B), ldbp apart: Bp[k*ldbp + j] = op(B)[k, j] (a packed
//       micro-panel has ldbp = NR; a row-major B can also be read in place)
//   k runs from 0 to kc-1 in order, so a sum's order is fixed by the blocking alone.
//   A row count below MR (the bottom edge of C) has its own kernel, writing C directly. The
//   right edge, n < NR columns (its B zero-padded), is computed whole and stored (and C loaded,
//   and the ops' operands) with masked moves of the first n columns only, never touching memory
//   past them; an edge of at most NR / 2 columns takes the half-width kernels, so it does half
//   the idle work.
//   ops   null, or what to do to the finished sums in registers before they are stored (TileOps)
//
// Each instruction set's kernels live in their own translation unit, compiled with that set's
// flags and nothing else shared (no inline functions from other headers: a copy compiled with
// AVX-512 instructions must never be the one the linker keeps for generic code).
#pragma once

#include <cstddef>

namespace dp {

constexpr int kMaxMR = 12;

// The commonest epilogues (gemm.hpp), done by the kernel to a finished tile while it is still in
// registers: a layer's forward Z + b (the output layer) and ReLU(Z + b) (a hidden layer), and
// delta propagation's ReLU mask. Each is the arithmetic of the driver's own epilogue pass
// (gemm.cpp, apply_epilogue), in the same order, so either gives the same bits:
//   bias       x + b[j]
//   bias_relu  x + b[j] if above 0, else 0 (so NaN becomes 0, as ReluFn::forward)
//   relu_mask  x . step(S[r, j]): 1 where S > 0, 0 where S < 0, at_zero at 0 and at NaN
//              (ReluFn::derivative)
enum class TileOp : int { none, bias, bias_relu, relu_mask };

template <typename T>
struct TileOps {
    TileOp op = TileOp::none;
    const T* bias = nullptr;    // the tile's first column's bias
    const T* stored = nullptr;  // relu_mask: S at the tile's first element, rows lds apart
    std::ptrdiff_t lds = 0;
    T at_zero = T(0);           // relu_mask: ReLU'(0)
};

template <typename T>
struct GemmKernel {
    using Fn = void (*)(std::ptrdiff_t kc, const T* A, std::ptrdiff_t lda, const T* Bp,
                        std::ptrdiff_t ldbp, T* C, std::ptrdiff_t ldc, int n, int accumulate,
                        const TileOps<T>* ops);
    struct Widths {
        Fn full[kMaxMR + 1];  // full[m] computes m rows; full[mr] is the whole tile
        Fn half[kMaxMR + 1];  // the same, NR / 2 columns wide: a right edge of at most NR / 2
    };
    Widths by_k;    // A[k*lda + r]: a transposed A
    Widths by_row;  // A[r*lda + k]: a row-major A
    int mr;
    int nr;
};

struct GemmKernels {
    GemmKernel<float> f32;
    GemmKernel<double> f64;
    // Peak probe: `iterations` rounds of independent register-only multiply-adds, as many
    // accumulators as the kernel keeps (so latency is hidden as in the kernel); returns a value
    // the caller must use, and the multiply-adds done (for the probe's GFLOP/s = 2 x that / s).
    double (*fma_probe_f32)(long iterations, double* fmas);
    double (*fma_probe_f64)(long iterations, double* fmas);
};

GemmKernels gemm_kernels_generic();
GemmKernels gemm_kernels_avx2();    // defined only when DELTAPROP_HAVE_AVX2
GemmKernels gemm_kernels_avx512();  // defined only when DELTAPROP_HAVE_AVX512

}  // namespace dp
