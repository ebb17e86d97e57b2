// AVX-512F micro-kernels (compiled with -mavx512f -mavx2 -mfma): 32 zmm registers hold a
// 12 x 2-register tile of accumulators (24), two rows of B (2) and broadcasts of A.
#include <immintrin.h>

#include <utility>

#include "gemm_kernel.hpp"

namespace {

struct F32x16 {
    using T = float;
    using reg = __m512;
    static constexpr int width = 16;
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const T* p) { return _mm512_loadu_ps(p); }
    static void store(T* p, reg r) { _mm512_storeu_ps(p, r); }
    static reg broadcast(T x) { return _mm512_set1_ps(x); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
};

struct F64x8 {
    using T = double;
    using reg = __m512d;
    static constexpr int width = 8;
    static reg zero() { return _mm512_setzero_pd(); }
    static reg load(const T* p) { return _mm512_loadu_pd(p); }
    static void store(T* p, reg r) { _mm512_storeu_pd(p, r); }
    static reg broadcast(T x) { return _mm512_set1_pd(x); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
};

#include "gemm_kernel_body.inc"

}  // namespace

dp::GemmKernels dp::gemm_kernels_avx512() {
    return {kernel_entry<F32x16, 12, 2>(), kernel_entry<F64x8, 12, 2>(), &fma_probe<F32x16, 24>,
            &fma_probe<F64x8, 24>};
}
