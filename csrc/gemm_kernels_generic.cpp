// Portable micro-kernels: plain C++ that any compiler and CPU run (the path always built).
#include <utility>

#include "gemm_kernel.hpp"

namespace {

template <typename S>
struct Scalar {
    using T = S;
    using reg = S;
    static constexpr int width = 1;
    static reg zero() { return S(0); }
    static reg load(const S* p) { return *p; }
    static void store(S* p, reg r) { *p = r; }
    static reg broadcast(S x) { return x; }
    static reg fma(reg a, reg b, reg c) { return a * b + c; }
    static reg add(reg a, reg b) { return a + b; }
    static reg mul(reg a, reg b) { return a * b; }
    static reg load_first(const S* p, int n) { return n > 0 ? *p : S(0); }
    static void store_first(S* p, reg r, int n) {
        if (n > 0) *p = r;
    }
    static reg max0(reg x) { return x > S(0) ? x : S(0); }
    static reg relu_step(reg s, reg at_zero) { return s > S(0) ? S(1) : (s < S(0) ? S(0) : at_zero); }
};

#include "gemm_kernel_body.inc"

}  // namespace

dp::GemmKernels dp::gemm_kernels_generic() {
    return {kernel_entry<Scalar<float>, 4, 8>(), kernel_entry<Scalar<double>, 4, 8>(),
            &fma_probe<Scalar<float>, 32>, &fma_probe<Scalar<double>, 32>};
}
