// AVX2 + FMA micro-kernels (compiled with -mavx2 -mfma): 16 ymm registers hold a 6 x 2-register
// tile of accumulators (12), two rows of B (2) and one broadcast of A (1).
#include <immintrin.h>

#include <utility>

#include "gemm_kernel.hpp"

namespace {

struct F32x8 {
    using T = float;
    using reg = __m256;
    static constexpr int width = 8;
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load(const T* p) { return _mm256_loadu_ps(p); }
    static void store(T* p, reg r) { _mm256_storeu_ps(p, r); }
    static reg broadcast(T x) { return _mm256_set1_ps(x); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
    // Lanes below n: all ones (maskload and maskstore leave the others, and their memory, alone).
    static __m256i first(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
    static reg load_first(const T* p, int n) { return _mm256_maskload_ps(p, first(n)); }
    static void store_first(T* p, reg r, int n) { _mm256_maskstore_ps(p, first(n), r); }
    // maxps returns its second operand when either is NaN: max0(NaN) = 0, as x > 0 ? x : 0.
    static reg max0(reg x) { return _mm256_max_ps(x, zero()); }
    static reg relu_step(reg s, reg at_zero) {
        const reg z = zero(), above = _mm256_blendv_ps(at_zero, _mm256_set1_ps(1), _mm256_cmp_ps(s, z, _CMP_GT_OQ));
        return _mm256_blendv_ps(above, z, _mm256_cmp_ps(s, z, _CMP_LT_OQ));
    }
};

struct F64x4 {
    using T = double;
    using reg = __m256d;
    static constexpr int width = 4;
    static reg zero() { return _mm256_setzero_pd(); }
    static reg load(const T* p) { return _mm256_loadu_pd(p); }
    static void store(T* p, reg r) { _mm256_storeu_pd(p, r); }
    static reg broadcast(T x) { return _mm256_set1_pd(x); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
    static __m256i first(int n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
    static reg load_first(const T* p, int n) { return _mm256_maskload_pd(p, first(n)); }
    static void store_first(T* p, reg r, int n) { _mm256_maskstore_pd(p, first(n), r); }
    static reg max0(reg x) { return _mm256_max_pd(x, zero()); }
    static reg relu_step(reg s, reg at_zero) {
        const reg z = zero(), above = _mm256_blendv_pd(at_zero, _mm256_set1_pd(1), _mm256_cmp_pd(s, z, _CMP_GT_OQ));
        return _mm256_blendv_pd(above, z, _mm256_cmp_pd(s, z, _CMP_LT_OQ));
    }
};

#include "gemm_kernel_body.inc"

}  // namespace

dp::GemmKernels dp::gemm_kernels_avx2() {
    return {kernel_entry<F32x8, 6, 2>(), kernel_entry<F64x4, 6, 2>(), &fma_probe<F32x8, 12>,
            &fma_probe<F64x4, 12>};
}
