// The GEMM micro-kernel contract (BLIS's, transposed for row-major C).
//
//   run(kc, Ap, Bp, C, ldc, accumulate):
//     C[0:MR, 0:NR] (row stride ldc)  =  (accumulate ? C : 0)  +  sum_k Ap[k] (x) Bp[k]
//   Ap  one packed micro-panel of op(A): kc columns of MR values, Ap[k*MR + r] = op(A)[r, k]
//   Bp  one packed micro-panel of op(B): kc rows of NR values,    Bp[k*NR + j] = op(B)[k, j]
//   k runs from 0 to kc-1 in order, so a sum's order is fixed by the blocking alone.
//   Panels are zero-padded to full MR / NR; C must hold a full MR x NR tile (the driver passes a
//   scratch tile at the edges of C).
//
// Each instruction set's kernels live in their own translation unit, compiled with that set's
// flags and nothing else shared (no inline functions from other headers: a copy compiled with
// AVX-512 instructions must never be the one the linker keeps for generic code).
#pragma once

#include <cstddef>

namespace dp {

template <typename T>
struct GemmKernel {
    void (*run)(std::ptrdiff_t kc, const T* Ap, const T* Bp, T* C, std::ptrdiff_t ldc, int accumulate);
    int mr;
    int nr;
};

struct GemmKernels {
    GemmKernel<float> f32;
    GemmKernel<double> f64;
};

GemmKernels gemm_kernels_generic();
GemmKernels gemm_kernels_avx2();    // defined only when DELTAPROP_HAVE_AVX2
GemmKernels gemm_kernels_avx512();  // defined only when DELTAPROP_HAVE_AVX512

}  // namespace dp
