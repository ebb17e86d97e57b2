// Cache-blocked, OpenMP-parallel GEMM: the portable engine every faster path is checked against.
//
// Loop order (BLIS's, without its micro-kernels):
//   for each NC-wide column panel jc
//     for each KC-deep slice pc:  pack alpha . op(B)[pc.., jc..] once, contiguous
//       parallel over (MB rows x NB cols) tiles of C: C_tile += op(A)_tile . Bp_tile
// A tile of C is written by exactly one thread per (jc, pc) step, and the pc steps run in order,
// so no two threads write the same element and every sum keeps the same order for any thread count.
#include "gemm.hpp"

#include <algorithm>
#include <vector>

namespace dp {
namespace {

// Block sizes in elements. A packed KC x NC panel of B (512 KiB in float64) stays in this
// machine class's 1 MiB per-core L2; one MB x KC tile of A and an NB-wide strip of C rows sit in L1.
constexpr idx KC = 256;
constexpr idx NC = 256;
constexpr idx MB = 32;  // rows of C in one parallel task
constexpr idx NB = 64;  // columns of C in one parallel task

template <typename T>
T* scratch(std::vector<T>& buf, idx size) {
    if (static_cast<idx>(buf.size()) < size) buf.resize(static_cast<size_t>(size));
    return buf.data();
}

// Bp (kc x nc, row-major) = alpha . op(B)[pc : pc+kc, jc : jc+nc]
template <typename T>
void pack_b(T* DP_RESTRICT Bp, const T* DP_RESTRICT B, idx ldb, idx pc, idx jc, idx kc, idx nc,
            bool trans_b, T alpha) {
    if (!trans_b) {
        for (idx k = 0; k < kc; ++k) {
            const T* src = B + (pc + k) * ldb + jc;
            for (idx j = 0; j < nc; ++j) Bp[k * nc + j] = alpha * src[j];
        }
    } else {  // op(B)[k, j] = B[j, k]: read B's rows contiguously, write transposed
        for (idx j = 0; j < nc; ++j) {
            const T* src = B + (jc + j) * ldb + pc;
            for (idx k = 0; k < kc; ++k) Bp[k * nc + j] = alpha * src[k];
        }
    }
}

// Ap (mb x kc) = op(A)[i0 : i0+mb, pc : pc+kc] for trans_a (A stored K x M)
template <typename T>
void pack_a_transposed(T* DP_RESTRICT Ap, const T* DP_RESTRICT A, idx lda, idx i0, idx pc, idx mb,
                       idx kc) {
    for (idx k = 0; k < kc; ++k) {
        const T* src = A + (pc + k) * lda + i0;
        for (idx r = 0; r < mb; ++r) Ap[r * kc + k] = src[r];
    }
}

// C (mb x nb, stride ldc) += Ap (mb x kc, stride lda) . Bp (kc x nb, stride ldb).
// Four rows at a time, so each element of Bp loaded feeds four multiply-adds.
template <typename T>
void tile_kernel(T* C, idx ldc, const T* Ap, idx lda, const T* Bp, idx ldb, idx mb, idx nb, idx kc) {
    idx r = 0;
    for (; r + 4 <= mb; r += 4) {
        T* DP_RESTRICT c0 = C + (r + 0) * ldc;
        T* DP_RESTRICT c1 = C + (r + 1) * ldc;
        T* DP_RESTRICT c2 = C + (r + 2) * ldc;
        T* DP_RESTRICT c3 = C + (r + 3) * ldc;
        const T* a = Ap + r * lda;
        for (idx k = 0; k < kc; ++k) {
            const T x0 = a[k], x1 = a[lda + k], x2 = a[2 * lda + k], x3 = a[3 * lda + k];
            const T* DP_RESTRICT b = Bp + k * ldb;
            for (idx j = 0; j < nb; ++j) {
                const T bj = b[j];
                c0[j] += x0 * bj;
                c1[j] += x1 * bj;
                c2[j] += x2 * bj;
                c3[j] += x3 * bj;
            }
        }
    }
    for (; r < mb; ++r) {
        T* DP_RESTRICT c = C + r * ldc;
        const T* a = Ap + r * lda;
        for (idx k = 0; k < kc; ++k) {
            const T x = a[k];
            const T* DP_RESTRICT b = Bp + k * ldb;
            for (idx j = 0; j < nb; ++j) c[j] += x * b[j];
        }
    }
}

// C = beta . C; beta == 0 writes zeros without reading C.
template <typename T>
void scale_rows(T* C, idx ldc, idx M, idx N, T beta, int n_threads) {
    if (beta == T(1)) return;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
    for (idx i = 0; i < M; ++i) {  // split over rows: each thread owns whole rows of C
        T* c = C + i * ldc;
        if (beta == T(0))
            std::fill(c, c + N, T(0));
        else
            for (idx j = 0; j < N; ++j) c[j] *= beta;
    }
}

}  // namespace

template <typename T>
void gemm(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
          bool trans_a, bool trans_b, T alpha, T beta, int n_threads) {
    if (M <= 0 || N <= 0) return;
    const int nt = threads_for(M * N * std::max<idx>(K, 1), resolve_threads(n_threads));
    scale_rows(C, ldc, M, N, beta, threads_for(M * N, nt));
    if (K <= 0 || alpha == T(0)) return;

    // Scratch is sized here, before any parallel region, so an allocation failure is a
    // std::bad_alloc in the calling thread, never an exception inside OpenMP. It is reused
    // across calls: a training step allocates nothing.
    static thread_local std::vector<T> b_buffer, a_buffer;
    T* Bp = scratch(b_buffer, std::min(K, KC) * std::min(N, NC));
    T* Ap_per_thread = trans_a ? scratch(a_buffer, nt * MB * KC) : nullptr;
    const idx m_tiles = (M + MB - 1) / MB;

    for (idx jc = 0; jc < N; jc += NC) {
        const idx nc = std::min(NC, N - jc);
        const idx n_tiles = (nc + NB - 1) / NB;
        for (idx pc = 0; pc < K; pc += KC) {
            const idx kc = std::min(KC, K - pc);
            pack_b(Bp, B, ldb, pc, jc, kc, nc, trans_b, alpha);
            // Split over tiles of C: tile (ti, tj) is owned by one thread.
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (nt > 1)
            for (idx ti = 0; ti < m_tiles; ++ti) {
                for (idx tj = 0; tj < n_tiles; ++tj) {
                    const idx i0 = ti * MB, mb = std::min(MB, M - i0);
                    const idx j0 = tj * NB, nb = std::min(NB, nc - j0);
                    const T* Ap = A + i0 * lda + pc;
                    idx ld_ap = lda;
                    if (trans_a) {
                        T* packed = Ap_per_thread + thread_index() * MB * KC;
                        pack_a_transposed(packed, A, lda, i0, pc, mb, kc);
                        Ap = packed;
                        ld_ap = kc;
                    }
                    tile_kernel(C + i0 * ldc + jc + j0, ldc, Ap, ld_ap, Bp + j0, nc, mb, nb, kc);
                }
            }
        }
    }
}

template void gemm<float>(float*, idx, const float*, idx, const float*, idx, idx, idx, idx, bool,
                          bool, float, float, int);
template void gemm<double>(double*, idx, const double*, idx, const double*, idx, idx, idx, idx,
                           bool, bool, double, double, int);

}  // namespace dp
