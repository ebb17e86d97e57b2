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
    static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
    static reg load_first(const T* p, int n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
    static void store_first(T* p, reg r, int n) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), r); }
    // maxps returns its second operand when either is NaN: max0(NaN) = 0, as x > 0 ? x : 0.
    // (The zero-masked form: GCC 12's _mm512_max_ps and _pd warn of their own undefined pass-through.)
    static reg max0(reg x) { return _mm512_maskz_max_ps(__mmask16(0xFFFF), x, zero()); }
    static reg relu_step(reg s, reg at_zero) {
        const reg above = _mm512_mask_mov_ps(at_zero, _mm512_cmp_ps_mask(s, zero(), _CMP_GT_OQ), _mm512_set1_ps(1));
        return _mm512_mask_mov_ps(above, _mm512_cmp_ps_mask(s, zero(), _CMP_LT_OQ), zero());
    }
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
    static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
    static reg load_first(const T* p, int n) { return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p); }
    static void store_first(T* p, reg r, int n) { _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), r); }
    static reg max0(reg x) { return _mm512_maskz_max_pd(__mmask8(0xFF), x, zero()); }
    static reg relu_step(reg s, reg at_zero) {
        const reg above = _mm512_mask_mov_pd(at_zero, _mm512_cmp_pd_mask(s, zero(), _CMP_GT_OQ), _mm512_set1_pd(1));
        return _mm512_mask_mov_pd(above, _mm512_cmp_pd_mask(s, zero(), _CMP_LT_OQ), zero());
    }
};

#include "gemm_kernel_body.inc"

}  // namespace

dp::GemmKernels dp::gemm_kernels_avx512() {
    return {kernel_entry<F32x16, 12, 2>(), kernel_entry<F64x8, 12, 2>(), &fma_probe<F32x16, 24>,
            &fma_probe<F64x8, 24>};
}
