// The GEMM driver: blocking, packing, threads and the fused extras around a micro-kernel
// (gemm_kernel.hpp) chosen for this CPU. Products too small to repay packing take a direct loop.
//
// Loop order (BLIS's):
//   for each NC-wide column panel jc
//     for each KC-deep slice pc:
//       pack alpha . op(B)[pc.., jc..] into NR-wide micro-panels   (threads split the panels;
//                                                                    column sums of B taken here)
//       for each MC block of rows ic:
//         micro-kernel on each MR x NR tile, reading op(A) in place (threads split the tiles);
//         on the last slice, the epilogue on each finished tile
// (A small row-major B is read in place too, and op(A) is never packed: gemm_packed says why.)
// A tile of C is written by exactly one thread per (jc, pc) step and the pc steps run in order,
// so no two threads write the same element and every sum keeps its order for any thread count.
#include "gemm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <type_traits>
#include <vector>

#include "gemm_kernel.hpp"
#include "isa.hpp"

namespace dp {
namespace {

// Block sizes. KC x NR of B (32 KiB for float32 with NR = 32) and MR x KC of A (12 KiB, read in
// place) are the micro-kernel's working set in the 48 KiB L1 + 1 MiB L2 of one core here; the
// MC x KC block of A (MC <= 10 MR: at most 120 KiB) stays in L2 while the threads walk the
// micro-panels of B; the KC x NC panel of B (4 MiB at most) lives in the shared L3.
constexpr idx KC = 256;
constexpr idx NC = 4096;
constexpr int MC_PANELS = 10;
// The largest row-major op(B) the packed path reads in place however many rows C has: half the
// L2 of one core here.
constexpr idx kInPlaceBBytes = idx(512) << 10;

// The instruction sets whose kernel tables this process has built, one bit each (1 << Isa).
std::atomic<int> tables_built{0};

GemmKernels build_table(Isa isa, GemmKernels (*make)()) {
    tables_built.fetch_or(1 << int(isa), std::memory_order_relaxed);
    return make();
}

// The kernels of an instruction-set path, each set's table built on its first use, and only
// when it is the one asked for: each table is built by code compiled for its own instruction
// set (GCC fills the AVX-512 table with zmm moves), so building the AVX-512 one on the way to
// the generic path ended the process with SIGILL on any CPU without AVX-512.
const GemmKernels& kernels_for(Isa isa) {
#ifdef DELTAPROP_HAVE_AVX512
    if (isa == Isa::avx512) {
        static const GemmKernels avx512 = build_table(Isa::avx512, &gemm_kernels_avx512);
        return avx512;
    }
#endif
#ifdef DELTAPROP_HAVE_AVX2
    if (isa == Isa::avx2) {
        static const GemmKernels avx2 = build_table(Isa::avx2, &gemm_kernels_avx2);
        return avx2;
    }
#endif
    (void)isa;
    static const GemmKernels generic = build_table(Isa::generic, &gemm_kernels_generic);
    return generic;
}

template <typename T>
const GemmKernel<T>& kernel_for(Isa isa) {
    if constexpr (sizeof(T) == 4) return kernels_for(isa).f32; else return kernels_for(isa).f64;
}

template <typename T>
T* scratch(std::vector<T>& buf, idx size) {
    if (static_cast<idx>(buf.size()) < size) buf.resize(static_cast<size_t>(size));
    return buf.data();
}

// The epilogue's three loops over an m x n block of C (row stride ldc), each built per
// instruction set (DP_ISA_CLONES); Fn is an activation's struct (activations.hpp).
template <typename T>
DP_ISA_CLONES void add_bias_rows(T* c, idx ldc, idx m, idx n, const T* DP_RESTRICT bias) {
    for (idx r = 0; r < m; ++r) {
        T* DP_RESTRICT row = c + r * ldc;
        for (idx j = 0; j < n; ++j) row[j] += bias[j];
    }
}

template <typename T, typename Fn>
DP_ISA_CLONES void forward_rows(T* c, idx ldc, idx m, idx n, Fn fn) {
    for (idx r = 0; r < m; ++r) {
        T* DP_RESTRICT row = c + r * ldc;
        for (idx j = 0; j < n; ++j) row[j] = fn.forward(row[j]);
    }
}

// add_bias_rows then forward_rows in one pass (the same two operations on each value).
template <typename T, typename Fn>
DP_ISA_CLONES void bias_forward_rows(T* c, idx ldc, idx m, idx n, const T* DP_RESTRICT bias, Fn fn) {
    for (idx r = 0; r < m; ++r) {
        T* DP_RESTRICT row = c + r * ldc;
        for (idx j = 0; j < n; ++j) row[j] = fn.forward(row[j] + bias[j]);
    }
}

template <typename T, typename Fn>
DP_ISA_CLONES void derivative_rows(T* c, idx ldc, idx m, idx n, const T* s, idx lds, Fn fn) {
    for (idx r = 0; r < m; ++r) {
        T* DP_RESTRICT row = c + r * ldc;
        const T* DP_RESTRICT stored = s + r * lds;
        for (idx j = 0; j < n; ++j) row[j] *= fn.derivative(stored[j]);
    }
}

// The epilogue on rows [i0, i0+m) x columns [j0, j0+n) of C (c points at C[i0, j0]).
// The activation's kind is resolved once per call, so each row loop vectorises.
template <typename T>
void apply_epilogue(T* c, idx ldc, idx i0, idx j0, idx m, idx n, const Epilogue<T>& ep) {
    if (ep.bias && ep.activation)
        visit<T>(*ep.activation, [&](auto fn) { bias_forward_rows(c, ldc, m, n, ep.bias + j0, fn); });
    else if (ep.bias) add_bias_rows(c, ldc, m, n, ep.bias + j0);
    else if (ep.activation) visit<T>(*ep.activation, [&](auto fn) { forward_rows(c, ldc, m, n, fn); });
    if (ep.derivative)
        visit<T>(*ep.derivative, [&](auto fn) {
            derivative_rows(c, ldc, m, n, ep.stored + i0 * ep.ld_stored + j0, ep.ld_stored, fn);
        });
}

// The tile operation (gemm_kernel.hpp) that does all of `ep` in registers, where there is one:
// bias and pointers are the whole product's; each caller offsets them to its tile.
template <typename T>
TileOps<T> tile_ops_for(const Epilogue<T>& ep) {
    auto relu = [](const ActivationSpec* f) { return f && f->kind == Activation::relu; };
    TileOps<T> ops;
    if (ep.bias && !ep.activation && !ep.derivative) ops.op = TileOp::bias;
    else if (ep.bias && relu(ep.activation) && !ep.derivative) ops.op = TileOp::bias_relu;
    else if (!ep.bias && !ep.activation && relu(ep.derivative)) ops.op = TileOp::relu_mask;
    ops.bias = ep.bias;
    ops.stored = ep.stored;
    ops.lds = ep.ld_stored;
    if (ep.derivative) ops.at_zero = T(ep.derivative->grad_at_zero);
    return ops;
}

// C = beta . C, for a beta other than 0 and 1 (which the products fold in). Split over rows.
template <typename T>
void scale_rows(T* C, idx ldc, idx M, idx N, T beta, int n_threads) {
    parallel_for(M, threads_for(M * N, n_threads), [&](idx i) {
        T* c = C + i * ldc;
        for (idx j = 0; j < N; ++j) c[j] *= beta;
    });
}

// sums[j] = sum_k op(B)[k, j], k in order, as the packed path sums while it packs. A row-major
// op(B) is summed row by row (each sum still takes its k in order), so the loop runs along
// contiguous rows and vectorises across j.
template <typename T>
DP_ISA_CLONES void column_sums(T* DP_RESTRICT sums, const T* B, idx ldb, idx N, idx K, bool trans_b) {
    if (trans_b) {
        for (idx j = 0; j < N; ++j) {
            T s = 0;
            for (idx k = 0; k < K; ++k) s += B[j * ldb + k];
            sums[j] = s;
        }
        return;
    }
    std::fill(sums, sums + N, T(0));
    for (idx k = 0; k < K; ++k) {
        const T* DP_RESTRICT row = B + k * ldb;
        for (idx j = 0; j < N; ++j) sums[j] += row[j];
    }
}

// Direct path for products too small to repay packing: C += alpha . op(A) . op(B), row by row
// (each thread owns whole rows), k in order, then the extras. Serial below kParallelMinWork.
// A transposed B is first copied row-major into `scratch` (K x N, sized by the caller), so the
// inner loop runs along contiguous rows of both B and C and vectorises (read in place, each
// element of B^T is a stride apart); the sums and their order are the same either way.
// L values of T as one GNU vector, L fitting one register of the running loop clone's vector unit
// (lane_count): 8 float64 in the x86-64-v4 clone, 4 in the v3 (AVX2) one, 2 in the baseline's
// SSE2 (float32: 8, 8 and 4). A GNU vector wider than the target's registers is no register at
// all: GCC keeps it in memory and moves it through general registers between operations, which
// made these loops 8 to 15 times slower on AVX2 than on AVX-512 while they took 8 float64 to a
// vector everywhere. The small-product loops below hold their running sums in these, so each
// value of C is read and written once rather than once per k.
template <typename T, int L>
struct LanesOf {
    typedef T type __attribute__((vector_size(L * sizeof(T))));  // (an alias template drops it)
};
template <typename T, int L>
using Lanes = typename LanesOf<T, L>::type;

// (Through a reference: a function returning a vector type warns of an ABI change between
// targets, -Wpsabi, even when always inlined.)
template <typename V, typename T>
[[gnu::always_inline]] inline void load_lanes(V& v, const T* p) {
    std::memcpy(&v, p, sizeof v);
}

// The width in bytes of the vector registers that the loop clones the loader chose for this CPU
// use (common.hpp), or, built without clones, those of the compiler's target.
inline int loop_vector_bytes() {
#if DP_HAVE_ISA_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return 64;
    if (__builtin_cpu_supports("x86-64-v3")) return 32;
    return 16;
#elif defined(__AVX512F__)
    return 64;
#elif defined(__AVX__)
    return 32;
#else
    return 16;
#endif
}

// f(std::integral_constant<int, L>{}) for L values of T to one such register: the small-product
// loops are built for L = 2, 4, 8 and 16 (float32 on AVX-512), and run with this one.
template <typename T, typename F>
decltype(auto) by_lanes(F&& f) {
    static const int lanes = loop_vector_bytes() / int(sizeof(T));
    if (lanes >= 16) return f(std::integral_constant<int, 16>{});
    if (lanes == 8) return f(std::integral_constant<int, 8>{});
    if (lanes == 4) return f(std::integral_constant<int, 4>{});
    return f(std::integral_constant<int, 2>{});
}

// Lane indices for __builtin_shuffle on Lanes<T, L>: integers of T's size.
template <typename T, int L>
struct LaneIndexOf {
    using Int = std::conditional_t<sizeof(T) == 8, long long, int>;
    typedef Int type __attribute__((vector_size(L * sizeof(T))));
};

// The horizontal sums of v[0 .. L), lane i of `out` that of v[i]: each round adds the lanes half
// a vector apart, two vectors at a time (two shuffles and one vector addition per pair), so with
// 8 lanes each sum is ((h0 + h4) + (h2 + h6)) + ((h1 + h5) + (h3 + h7)) (21 operations, where
// summing each vector on its own took about 80).
template <typename T, int L>
[[gnu::always_inline]] inline void hsums(Lanes<T, L>& out, const Lanes<T, L>* v) {
    using I = typename LaneIndexOf<T, L>::type;
    using V = Lanes<T, L>;
    if constexpr (L == 16) {
        const I lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
        const I hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
        const I lo4 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
        const I hi4 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
        const I lo2 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
        const I hi2 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
        const I even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
        const I odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
        V r1[8], r2[4], r3[2];
        for (int p = 0; p < 8; ++p)
            r1[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], lo8) + __builtin_shuffle(v[2 * p], v[2 * p + 1], hi8);
        for (int p = 0; p < 4; ++p)
            r2[p] = __builtin_shuffle(r1[2 * p], r1[2 * p + 1], lo4) + __builtin_shuffle(r1[2 * p], r1[2 * p + 1], hi4);
        for (int p = 0; p < 2; ++p)
            r3[p] = __builtin_shuffle(r2[2 * p], r2[2 * p + 1], lo2) + __builtin_shuffle(r2[2 * p], r2[2 * p + 1], hi2);
        out = __builtin_shuffle(r3[0], r3[1], even) + __builtin_shuffle(r3[0], r3[1], odd);
    } else if constexpr (L == 8) {
        const I lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
        const I lo2 = {0, 1, 4, 5, 8, 9, 12, 13}, hi2 = {2, 3, 6, 7, 10, 11, 14, 15};
        const I even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = {1, 3, 5, 7, 9, 11, 13, 15};
        V halves[4], quarters[2];  // h_l + h_{l+4} of two vectors; then + the lane two on
        for (int p = 0; p < 4; ++p)
            halves[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], lo4) + __builtin_shuffle(v[2 * p], v[2 * p + 1], hi4);
        for (int q = 0; q < 2; ++q)
            quarters[q] = __builtin_shuffle(halves[2 * q], halves[2 * q + 1], lo2) +
                          __builtin_shuffle(halves[2 * q], halves[2 * q + 1], hi2);
        out = __builtin_shuffle(quarters[0], quarters[1], even) + __builtin_shuffle(quarters[0], quarters[1], odd);
    } else if constexpr (L == 4) {
        const I lo2 = {0, 1, 4, 5}, hi2 = {2, 3, 6, 7}, even = {0, 2, 4, 6}, odd = {1, 3, 5, 7};
        V halves[2];
        for (int p = 0; p < 2; ++p)
            halves[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], lo2) + __builtin_shuffle(v[2 * p], v[2 * p + 1], hi2);
        out = __builtin_shuffle(halves[0], halves[1], even) + __builtin_shuffle(halves[0], halves[1], odd);
    } else {
        static_assert(L == 2, "lanes come in 2, 4, 8 or 16");
        const I even = {0, 2}, odd = {1, 3};
        out = __builtin_shuffle(v[0], v[1], even) + __builtin_shuffle(v[0], v[1], odd);
    }
}

// The tile operation OP on x = C[i, j] (the scalar form of the kernels' store_tile).
template <TileOp OP, typename T>
[[gnu::always_inline]] inline T tile_op(T x, const TileOps<T>& ops, idx i, idx j) {
    if constexpr (OP == TileOp::bias) return x + ops.bias[j];
    if constexpr (OP == TileOp::bias_relu) return ReluFn<T>{}.forward(x + ops.bias[j]);
    if constexpr (OP == TileOp::relu_mask) return x * ReluFn<T>{ops.at_zero}.derivative(ops.stored[i * ops.lds + j]);
    return x;
}

// x times ReLU'(s), lane by lane: 1 where s > 0, 0 where s < 0, at_zero at 0 and NaN
// (ReluFn::derivative).
template <typename V, typename T>
[[gnu::always_inline]] inline void relu_mask_lanes(V& x, const T* s_at, T at_zero) {
    const V zero = {};
    V s;
    load_lanes(s, s_at);
    x *= s > zero ? zero + T(1) : (s < zero ? zero : zero + at_zero);
}

// The same on a vector of values x = C[i, j : j + L], lane by lane (GNU vector operations).
template <TileOp OP, typename V, typename T>
[[gnu::always_inline]] inline void tile_op_lanes(V& x, const TileOps<T>& ops, idx i, idx j) {
    if constexpr (OP == TileOp::bias || OP == TileOp::bias_relu) {
        V b;
        load_lanes(b, ops.bias + j);
        x += b;
    }
    if constexpr (OP == TileOp::bias_relu) x = x > V{} ? x : V{};
    if constexpr (OP == TileOp::relu_mask) relu_mask_lanes(x, ops.stored + i * ops.lds + j, ops.at_zero);
}

// Columns [j, j + L V) of the direct product's row i (c: C's row i), V vectors of L sums held
// in registers across k, then `ops`, then stored from column j + skip on (the columns before it
// are computed and dropped: another block wrote them).
template <int L, int V, TileOp OP, typename T, typename AAt>
[[gnu::always_inline]] inline void direct_block(T* DP_RESTRICT c, const T* Bk, idx ldbk, idx i, idx j,
                                                idx skip, idx K, AAt a_at, bool accumulate,
                                                const TileOps<T>& ops) {
    // (Every loop over v unrolled, or GCC may keep the sums in the stack between the loops,
    // zeroed with `rep stos` and stored through a copy loop: 200 x 100 x 4 took 18 us with 4
    // lanes, not 5.)
    Lanes<T, L> sum[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
        if (accumulate) load_lanes(sum[v], c + j + L * v);
        else sum[v] = Lanes<T, L>{};
    }
    for (idx k = 0; k < K; ++k) {
        const T a = a_at(k);
        const T* b = Bk + k * ldbk + j;
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) {
            Lanes<T, L> row;
            load_lanes(row, b + L * v);
            sum[v] += a * row;
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) tile_op_lanes<OP>(sum[v], ops, i, j + L * v);
    if (skip == 0)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) std::memcpy(c + j + L * v, &sum[v], sizeof sum[v]);
    else
        for (idx l = skip; l < L * V; ++l) c[j + l] = sum[l / L][l % L];
}

// Rows [i0, i1) of the direct product: C[i, :] = ops((accumulate ? C[i, :] : 0) + sum over k of
// alpha . op(A)[i, k] . Bk[k, :]), k in order for each element, `ops` done to the sums before
// they are stored: 4 L columns at a time, then L, then the last few as the L columns ending at
// the last one (each sum is the same whichever block computes it). One by one, the last few
// columns' ReLU step branched on each value, and mispredicted on half a layer's units (the
// delta of a 100-unit layer over 200 rows took 18% of a diabetes fit, not 13%).
template <typename T, int L, TileOp OP>
DP_ISA_CLONES void direct_rows(T* C, idx ldc, const T* A, idx lda, const T* Bk, idx ldbk, idx i0, idx i1,
                               idx N, idx K, bool trans_a, T alpha, bool accumulate, TileOps<T> ops) {
    for (idx i = i0; i < i1; ++i) {
        T* c = C + i * ldc;
        auto a_at = [&](idx k) { return alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]); };
        idx j = 0;
        for (; j + 4 * L <= N; j += 4 * L) direct_block<L, 4, OP>(c, Bk, ldbk, i, j, 0, K, a_at, accumulate, ops);
        for (; j + L <= N; j += L) direct_block<L, 1, OP>(c, Bk, ldbk, i, j, 0, K, a_at, accumulate, ops);
        if (j < N && N >= L) {
            direct_block<L, 1, OP>(c, Bk, ldbk, i, N - L, j - (N - L), K, a_at, accumulate, ops);
            continue;
        }
        for (; j < N; ++j) {
            T sum = accumulate ? c[j] : T(0);
            for (idx k = 0; k < K; ++k) sum += a_at(k) * Bk[k * ldbk + j];
            c[j] = tile_op<OP>(sum, ops, i, j);
        }
    }
}

// Rows of C per step of the direct and narrow loops: the products' rows, then the epilogue on
// them while they are still in L1.
constexpr idx kRowBlock = 8;

template <typename T>
void gemm_direct(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
                 bool trans_a, bool trans_b, T alpha, bool accumulate, int n_threads, const Epilogue<T>& ep,
                 T* col_sums_b, T* scratch) {
    const int nt = threads_for(M * N * K, n_threads);
    const bool multiply = alpha != T(0);  // alpha = 0 reads neither A nor B
    const T* Bk = B;  // op(B) row-major, ldbk apart
    idx ldbk = ldb;
    if (trans_b && multiply) {
        for (idx j = 0; j < N; ++j)
            for (idx k = 0; k < K; ++k) scratch[k * N + j] = B[j * ldb + k];
        Bk = scratch;
        ldbk = N;
    }
    const TileOps<T> fused = multiply ? tile_ops_for(ep) : TileOps<T>{};  // else ep applies after
    const auto direct = by_lanes<T>([&](auto lanes) {
        constexpr int L = decltype(lanes)::value;
        using Rows = void (*)(T*, idx, const T*, idx, const T*, idx, idx, idx, idx, idx, bool, T, bool, TileOps<T>);
        const Rows rows[] = {direct_rows<T, L, TileOp::none>, direct_rows<T, L, TileOp::bias>,
                             direct_rows<T, L, TileOp::bias_relu>, direct_rows<T, L, TileOp::relu_mask>};
        return rows[int(fused.op)];
    });
    parallel_for((M + kRowBlock - 1) / kRowBlock, nt, [&](idx block) {
        const idx i0 = block * kRowBlock, i1 = std::min(M, i0 + kRowBlock);
        if (multiply) direct(C, ldc, A, lda, Bk, ldbk, i0, i1, N, K, trans_a, alpha, accumulate, fused);
        else if (!accumulate)
            for (idx i = i0; i < i1; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
        if (fused.op == TileOp::none) apply_epilogue(C + i0 * ldc, ldc, i0, 0, i1 - i0, N, ep);
    });
    if (col_sums_b) column_sums(col_sums_b, B, ldb, N, K, trans_b);
}

// Narrow path for a C of at most kNarrowColumns columns and many rows (an output layer of one to
// a few units over a batch: regression, binary classification): a few dot products per row, where
// the packed path would copy all of op(A) to fill tiles mostly idle. op(B)'s columns are first
// copied contiguous into `bt` (N x K). Each row of C is one thread's, and each sum has a fixed
// order (the same bits for any thread count): for op(A) = A, row i of C takes N dot products of
// A's row i (dot_rows); for op(A) = A^T the sums run along A's contiguous rows (dot_columns).
constexpr idx kNarrowColumns = 4;

// R rows x NC columns of the narrow product for op(A) = A, from row i:
// C[i + r, j] = OP((accumulate ? C[i + r, j] : 0) + alpha . A[i + r, :] . bt[j, :]) (K >= L;
// OP none or bias, as the epilogue's pass would do it after). Each sum keeps L lanes over k
// (lane l takes k = l, l + L, ...) and adds them pairwise, a tree log2(L) additions deep
// (hsums). The R x NC sums are independent, so their additions overlap where a single dot
// product would wait on each one's latency. The last K mod L values of k take one more step
// over the L values ending at K (lane l: k = K - L + l), its lanes before them zeroed in both
// operands, so an infinity there is not multiplied by 0. (Gathering those values one by one
// into zero-padded lanes cost as much as the rest: 133 x 100 x 3 took 2.9 us, 133 x 104 x 3
// 1.6 us.)
template <typename T, int L, int R, int NC, TileOp OP>
[[gnu::always_inline]] inline void dot_block(T* C, idx ldc, const T* A, idx lda, const T* bt, idx i,
                                             idx K, T alpha, bool accumulate, const TileOps<T>& ops) {
    using V = Lanes<T, L>;
    constexpr int S = R * NC, G = (S + L - 1) / L;  // sums, and groups of L for hsums
    V sum[G * L] = {};                              // sum[r * NC + j]; the ones past S stay 0
    idx k = 0;
    for (; k + L <= K; k += L) {
        V a[R], b[NC];
        // (Unrolled, or GCC may copy the rows to the stack one half-vector at a time first: the
        // 4-lane 200 x 1 x 100 product took 9 us, not 1.5.)
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) load_lanes(a[r], A + (i + r) * lda + k);
#pragma GCC unroll 8
        for (int j = 0; j < NC; ++j) load_lanes(b[j], bt + j * K + k);
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < NC; ++j) sum[r * NC + j] += a[r] * b[j];
    }
    if (k < K) {
        V lane, zero = {};
        for (int l = 0; l < L; ++l) lane[l] = T(l);
        const auto fresh = lane >= T(k - (K - L));  // lanes of k not summed yet
        V a[R], b[NC];
        for (int r = 0; r < R; ++r) {
            load_lanes(a[r], A + (i + r) * lda + K - L);
            a[r] = fresh ? a[r] : zero;
        }
        for (int j = 0; j < NC; ++j) {
            load_lanes(b[j], bt + j * K + K - L);
            b[j] = fresh ? b[j] : zero;
        }
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < NC; ++j) sum[r * NC + j] += a[r] * b[j];
    }
    V totals[G];
    for (int g = 0; g < G; ++g) hsums<T, L>(totals[g], sum + L * g);
    for (int q = 0; q < S; ++q) {
        const idx r = q / NC, j = q % NC;
        T& c = C[(i + r) * ldc + j];
        c = tile_op<OP>((accumulate ? c : T(0)) + alpha * totals[q / L][q % L], ops, i + r, j);
    }
}

// Rows [i0, i1) of the narrow product for op(A) = A, four at a time: at least four independent
// sums in flight (two rows left a one-column product waiting on each addition's latency:
// 200 x 100 x 1 1.9 -> 1.4 us, 133 x 100 x 3 3.2 -> 2.6 us without the call). Up to 16 sums and
// 8 operands fit AVX-512's 32 registers; with AVX2's 16 some sums spill.
template <typename T, int L, int NC, TileOp OP>
DP_ISA_CLONES void dot_rows(T* C, idx ldc, const T* A, idx lda, const T* bt, idx i0, idx i1, idx K,
                            T alpha, bool accumulate, TileOps<T> ops) {
    constexpr int R = 4;
    idx i = i0;
    for (; i + R <= i1; i += R) dot_block<T, L, R, NC, OP>(C, ldc, A, lda, bt, i, K, alpha, accumulate, ops);
    for (; i < i1; ++i) dot_block<T, L, 1, NC, OP>(C, ldc, A, lda, bt, i, K, alpha, accumulate, ops);
}

// Rows [i0, i0 + L R) of the narrow product for op(A) = A^T, whose rows are A's strided
// columns: the sums run along A's contiguous rows instead, L rows of C to a vector, R vectors x
// NC columns in registers, k in order. Rows before i0 + skip are computed but not written.
template <typename T, int L, int R, int NC>
[[gnu::always_inline]] inline void dot_columns_block(T* C, idx ldc, const T* A, idx lda, const T* bt,
                                                     idx i0, idx skip, idx K, T alpha, bool accumulate) {
    Lanes<T, L> sum[R][NC] = {};
    for (idx k = 0; k < K; ++k) {
        const T* a = A + k * lda + i0;
        Lanes<T, L> rows[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) load_lanes(rows[r], a + L * r);
        for (int j = 0; j < NC; ++j) {
            const T b = bt[j * K + k];
            for (int r = 0; r < R; ++r) sum[r][j] += rows[r] * b;
        }
    }
    for (idx l = skip; l < L * R; ++l)
        for (int j = 0; j < NC; ++j) {
            T& c = C[(i0 + l) * ldc + j];
            c = (accumulate ? c : T(0)) + alpha * sum[l / L][j][l % L];
        }
}

// Rows [i0, i1) of the narrow product for op(A) = A^T, 4 L at a time, then L at a time. The last
// few rows (fewer than L) take the L rows ending at the last one (the narrow path's C has at
// least NR >= 8 rows), written from the first not yet written: each row's sum is the same
// whichever block computes it. (Filling the lanes past the last row one at a time instead made
// a 4-row remainder of 100 take as long as the other 96 rows.)
template <typename T, int L, int NC>
DP_ISA_CLONES void dot_columns(T* C, idx ldc, const T* A, idx lda, const T* bt, idx i0, idx i1, idx K,
                               T alpha, bool accumulate) {
    idx i = i0;
    for (; i + 4 * L <= i1; i += 4 * L) dot_columns_block<T, L, 4, NC>(C, ldc, A, lda, bt, i, 0, K, alpha, accumulate);
    for (; i + L <= i1; i += L) dot_columns_block<T, L, 1, NC>(C, ldc, A, lda, bt, i, 0, K, alpha, accumulate);
    if (i < i1) dot_columns_block<T, L, 1, NC>(C, ldc, A, lda, bt, i1 - L, L - (i1 - i), K, alpha, accumulate);
}

template <typename T>
void gemm_narrow(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
                 bool trans_a, bool trans_b, T alpha, bool accumulate, int n_threads, const Epilogue<T>& ep,
                 T* col_sums_b, T* bt) {
    for (idx j = 0; j < N; ++j)
        for (idx k = 0; k < K; ++k) bt[j * K + k] = trans_b ? B[j * ldb + k] : B[k * ldb + j];
    const int nt = threads_for(M * N * K, n_threads, kParallelMinMultiplyAdds);
    // A bias alone (an output layer's) is added as each sum is stored; anything else, after.
    const TileOps<T> ops = tile_ops_for(ep);
    const bool fused = !trans_a && ops.op == TileOp::bias;
    using Columns = void (*)(T*, idx, const T*, idx, const T*, idx, idx, idx, T, bool);
    using Rows = void (*)(T*, idx, const T*, idx, const T*, idx, idx, idx, T, bool, TileOps<T>);
    const auto paths = by_lanes<T>([&](auto lanes) {
        constexpr int L = decltype(lanes)::value;
        const Columns columns[] = {dot_columns<T, L, 1>, dot_columns<T, L, 2>, dot_columns<T, L, 3>,
                                   dot_columns<T, L, 4>};
        const Rows rows[] = {dot_rows<T, L, 1, TileOp::none>, dot_rows<T, L, 2, TileOp::none>,
                             dot_rows<T, L, 3, TileOp::none>, dot_rows<T, L, 4, TileOp::none>};
        const Rows rows_bias[] = {dot_rows<T, L, 1, TileOp::bias>, dot_rows<T, L, 2, TileOp::bias>,
                                  dot_rows<T, L, 3, TileOp::bias>, dot_rows<T, L, 4, TileOp::bias>};
        return std::pair<Columns, Rows>{columns[N - 1], (fused ? rows_bias : rows)[N - 1]};
    });
    const Columns by_columns = paths.first;
    const Rows by_rows = paths.second;
    constexpr idx kBlock = 64;  // rows of C per task: a multiple of dot_columns' 4 L and of 4
    parallel_for((M + kBlock - 1) / kBlock, nt, [&](idx block) {
        const idx i0 = block * kBlock, i1 = std::min(M, i0 + kBlock);
        if (trans_a) by_columns(C, ldc, A, lda, bt, i0, i1, K, alpha, accumulate);
        else by_rows(C, ldc, A, lda, bt, i0, i1, K, alpha, accumulate, ops);
        if (!fused) apply_epilogue(C + i0 * ldc, ldc, i0, 0, i1 - i0, N, ep);
    });
    if (col_sums_b) column_sums(col_sums_b, B, ldb, N, K, trans_b);
}

// The micro-panels of op(B)[pc : pc+kc, j0 : j0+n], one after another kc x NR apart in Bp (the
// last zero-padded past n): Bp = alpha . op(B), and sums[j] += op(B)[k, j0 + j] when sums is not
// null, each sum adding its k in order.
// A row-major B is read row by row across all the panels: reading a panel at a time took NR
// values from each row, a row stride apart, a new page for every k when rows are 4 KiB or more,
// which the prefetchers do not follow (7% of a compute-bound fit on a Zen 3 core went to that
// packing, nearly all of it waiting on those loads).
// A transposed B is read along its rows (column j of op(B) is row j0 + j of B, contiguous),
// eight rows at a time: each k then writes eight neighbouring values of the panel, where reading
// k-major touched NR rows a stride apart for every k, and one row at a time wrote single values
// NR apart.
template <typename T>
DP_ISA_CLONES void pack_b_panels(T* DP_RESTRICT Bp, const T* B, idx ldb, idx pc, idx j0, idx kc, idx n, int NR,
                                 bool trans_b, T alpha, T* sums) {
    const idx panels = (n + NR - 1) / NR;
    if (!trans_b) {
        for (idx k = 0; k < kc; ++k) {
            const T* src = B + (pc + k) * ldb + j0;
            for (idx q = 0; q < panels; ++q) {
                T* DP_RESTRICT dst = Bp + q * NR * kc + k * NR;
                const T* DP_RESTRICT from = src + q * NR;
                const idx width = std::min<idx>(NR, n - q * NR);
                for (idx j = 0; j < width; ++j) dst[j] = alpha * from[j];
                for (idx j = width; j < NR; ++j) dst[j] = T(0);
            }
            if (sums)
                for (idx j = 0; j < n; ++j) sums[j] += src[j];
        }
        return;
    }
    constexpr idx kRows = 8;  // NR is a multiple of 8 on every path
    for (idx q = 0; q < panels; ++q)
        for (idx jb = 0; jb < NR; jb += kRows) {
            const idx first = q * NR + jb;  // of the panels' columns
            const T* src[kRows];
            for (idx jj = 0; jj < kRows; ++jj)  // columns past n read a valid row, then write zero
                src[jj] = B + (j0 + std::min(first + jj, n - 1)) * ldb + pc;
            for (idx k = 0; k < kc; ++k) {
                T* DP_RESTRICT dst = Bp + q * NR * kc + k * NR + jb;
                for (idx jj = 0; jj < kRows; ++jj) dst[jj] = first + jj < n ? alpha * src[jj][k] : T(0);
            }
        }
    if (sums)
        for (idx j = 0; j < n; ++j) {
            const T* DP_RESTRICT src = B + (j0 + j) * ldb + pc;
            T s = sums[j];
            for (idx k = 0; k < kc; ++k) s += src[k];
            sums[j] = s;
        }
}

// The rows of one MC block are [ic, ic + mc); blocks are balanced so no thread gets a sliver.
struct RowBlocks {
    idx count, size;
    RowBlocks(idx M, int MR) {
        const idx mc_max = idx(MR) * MC_PANELS;
        count = (M + mc_max - 1) / mc_max;
        const idx even = (M + count - 1) / count;
        size = (even + MR - 1) / MR * MR;
    }
};

// One packed product: its operands, its kernel, its scratch, and the two levels of work.
template <typename T>
struct PackedGemm {
    const GemmKernel<T>& kern;
    T* C; idx ldc;
    const T* A; idx lda;
    const T* B; idx ldb;
    idx M, N, K;
    bool trans_a, trans_b;
    T alpha;
    bool accumulate;            // add to C (beta = 1) rather than overwrite it (beta = 0)
    const Epilogue<T>& ep;
    T* col_sums_b;
    bool transposed_c;          // this computes C^T: M x N here is N x M of C (row stride ldc)
    RowBlocks blocks;
    // B read where it lies rather than packed (gemm_packed says when): full-width panels only,
    // the right edge is still packed, zero-padded.
    bool b_in_place;
    T* Bp;
    T* edge_all;                // per thread, an MR x NR tile for C^T's, transposed as stored
    TileOps<T> fused;           // the epilogue as a tile operation (op none: applied after)

    // One (jc, pc) step. Called by every thread of a team (TEAM: its `omp for`s split the
    // work, each ending in a barrier; each thread's CPU time on its shares goes to `clock`,
    // contention.hpp), or alone, with plain loops: a product on one thread may run inside
    // someone else's parallel region (a half step, mlp.hpp), where an `omp for` would share its
    // iterations with that region's other threads.
    template <bool TEAM>
    void slice(idx jc, idx nc, idx pc, idx kc, RegionClock* clock = nullptr) const {
        const int MR = kern.mr, NR = kern.nr;
        const idx panels = (nc + NR - 1) / NR;
        T* edge = edge_all + (TEAM ? idx(thread_index()) : 0) * MR * NR;
        // Split into contiguous runs of micro-panels of B: each thread packs (and sums) its own
        // columns. Read in place, B's full panels are not packed, only its right edge.
        const idx first_packed = b_in_place ? nc / NR : 0;
        auto pack = [&](idx p0, idx p1) {
            if (p0 >= p1) return;
            const idx j0 = p0 * NR, n = std::min(p1 * NR, nc) - j0;
            pack_b_panels(Bp + p0 * NR * kc, B, ldb, pc, jc + j0, kc, n, NR, trans_b, alpha,
                          col_sums_b ? col_sums_b + jc + j0 : nullptr);
        };
        if constexpr (TEAM) {
            const idx parts = team_size(), packed = panels - first_packed;
            timed_share(*clock, [&] {
#pragma omp for schedule(static) nowait
                for (idx part = 0; part < parts; ++part)
                    pack(first_packed + packed * part / parts, first_packed + packed * (part + 1) / parts);
            });
#pragma omp barrier
        } else {
            pack(first_packed, panels);
        }
        for (idx ic = 0; ic < M; ic += blocks.size) {
            const idx mc = std::min(blocks.size, M - ic), a_panels = (mc + MR - 1) / MR;
            // Row panels of MR rows, evened out when the last would be short: a kernel of a few
            // rows waits on its few sums' latency and reloads B for little work (a 13-row weight
            // gradient of 133 k ran a 1-row panel at a third of the 12-row one's rate; 30 x 96 x
            // 200 took 9.95 us as 12 + 12 + 6 rows, 9.47 us as 10 + 10 + 10). Any split gives
            // each C element the same sums.
            const bool even = a_panels > 1 && mc % MR != 0;
            const idx base = even ? mc / a_panels : MR, extra = even ? mc % a_panels : 0;
            // Split over tiles of C, B-panel-major so a thread's consecutive tiles reuse one
            // micro-panel of B from L1. Each tile has one owner.
            auto tile_at = [&](idx p, idx q) {
                const idx i = ic + q * base + std::min(q, extra);
                tile(i, std::min(base + (q < extra), ic + mc - i), jc + p * NR, p, pc, kc, edge);
            };
            if constexpr (TEAM) {
                timed_share(*clock, [&] {
#pragma omp for collapse(2) schedule(static) nowait
                    for (idx p = 0; p < panels; ++p)
                        for (idx q = 0; q < a_panels; ++q) tile_at(p, q);
                });
#pragma omp barrier
            } else {
                for (idx p = 0; p < panels; ++p)
                    for (idx q = 0; q < a_panels; ++q) tile_at(p, q);
            }
        }
    }

    // The m x NR tile of C at (i, j), m <= MR, from op(A)'s rows i.. and B panel p.
    void tile(idx i, idx m, idx j, idx p, idx pc, idx kc, T* edge) const {
        const int NR = kern.nr;
        const idx n = std::min<idx>(NR, N - j);
        const int acc = accumulate || pc > 0;
        const bool last = pc + kc == K;
        const T* a = trans_a ? A + pc * lda + i : A + i * lda + pc;
        const typename GemmKernel<T>::Widths& kernels = trans_a ? kern.by_k : kern.by_row;
        const bool b_direct = b_in_place && n == NR;
        const T* b = b_direct ? B + pc * ldb + j : Bp + p * NR * kc;
        const idx ldbp = b_direct ? ldb : NR;
        const bool half = n <= NR / 2;
        const auto kernel = (half ? kernels.half : kernels.full)[m];
        if (transposed_c) {  // element (i + r, j + jj) here is C[j + jj, i + r]
            kernel(kc, a, lda, b, ldbp, edge, NR, half ? NR / 2 : NR, 0, nullptr);  // all its width
            T* c = C + j * ldc + i;
            for (idx jj = 0; jj < n; ++jj)
                for (idx r = 0; r < m; ++r)
                    c[jj * ldc + r] = acc ? c[jj * ldc + r] + edge[r * NR + jj] : edge[r * NR + jj];
            if (last) apply_epilogue(c, ldc, j, i, n, m, ep);
            return;
        }
        // The m-row kernel writes C directly (its first n columns, at the right edge), the
        // epilogue fused where it can be.
        T* c = C + i * ldc + j;
        if (last && fused.op != TileOp::none) {
            TileOps<T> ops = fused;
            ops.bias = fused.bias ? fused.bias + j : nullptr;
            ops.stored = fused.stored ? fused.stored + i * fused.lds + j : nullptr;
            kernel(kc, a, lda, b, ldbp, c, ldc, int(n), acc, &ops);
            return;
        }
        kernel(kc, a, lda, b, ldbp, c, ldc, int(n), acc, nullptr);
        if (last) apply_epilogue(c, ldc, i, j, m, n, ep);
    }
};

template <typename T>
void gemm_packed(const GemmKernel<T>& kern, T* C, idx ldc, const T* A, idx lda, const T* B,
                 idx ldb, idx M, idx N, idx K, bool trans_a, bool trans_b, T alpha, bool accumulate,
                 int nt, const Epilogue<T>& ep, T* col_sums_b, bool transposed_c) {
    const int MR = kern.mr, NR = kern.nr;
    const idx kc_max = std::min(K, KC);
    // All scratch is sized here, before any parallel region, so an allocation failure is a
    // std::bad_alloc in the calling thread, never an exception inside OpenMP. It is reused
    // across calls: a training step allocates nothing.
    static thread_local std::vector<T> b_buf, edge_buf;
    const RowBlocks blocks(M, MR);
    // Packing copies an operand into the micro-kernel's order, contiguous, so its panels stream
    // from cache without conflicts however often they are reused. Reading an operand where it
    // lies saves the copy, and on 2 threads the barrier that follows it. Measured on the Zen 5
    // machine (benchmarks/README.md):
    // - op(A) read in place, row-major or transposed, was as fast or faster at every shape tried,
    //   from 10 x 200 x 100 to 2048^2 x 512 (13-18% on the small ones; the float32 forward
    //   product 128 x 784 x 512, 0.92x of OpenBLAS packed, reached parity on one thread and
    //   1.2x on two), so A is never packed: each micro-kernel reads its MR rows with their
    //   stride (a row-major A: MR rows of kc values; a transposed one: kc rows of MR);
    // - a row-major B read in place (full-width panels; it must also need no alpha scaling) was
    //   faster while it is small (K N up to 512 KiB: 5-8% at 200 x 64 x 100) or few row panels
    //   reuse it (M <= 4 MR), and 4% slower at 128 x 784 x 512 in float64, whose 4 KiB row
    //   stride maps a panel's rows onto a few L1 sets. Inside another parallel region (a half
    //   step, mlp.hpp), B is packed: it is often weights another core just updated, and the
    //   kernel's strided reads of them waited on that core's cache line by line, where packing
    //   streams them across once (a digits half step: 136 against 112 us). Nor is a B whose
    //   row stride is a multiple of 128 bytes read in place: its panel's kc rows then fall in at
    //   most 32 of the 64 sets of L1, as many rows to a set as an 8-way L1 (Zen 3's) has ways
    //   before A's and C's lines are counted, and the loads miss. On a Zen 3 core the weight
    //   gradient 784 x 128 x 512 in float64, its dZ read in place with a 4 KiB stride, ran at
    //   0.6-0.7x of OpenBLAS, and packed at 1.05x.
    const bool conflicting_rows = ldb * idx(sizeof(T)) % 128 == 0;
    const bool b_in_place = !trans_b && alpha == T(1) && !in_parallel_region() && !conflicting_rows &&
                            (M <= 4 * idx(MR) || K * N * idx(sizeof(T)) <= kInPlaceBBytes);
    // Read in place, B's column sums are taken in a pass of their own.
    T* sums_while_packing = b_in_place ? nullptr : col_sums_b;
    if (col_sums_b && b_in_place) column_sums(col_sums_b, B, ldb, N, K, false);
    const PackedGemm<T> job{kern, C, ldc, A, lda, B, ldb, M, N, K, trans_a, trans_b, alpha,
                            accumulate, ep, sums_while_packing, transposed_c, blocks, b_in_place,
                            scratch(b_buf, (std::min(N, NC) + NR - 1) / NR * NR * kc_max),
                            scratch(edge_buf, idx(nt) * MR * NR),
                            transposed_c ? TileOps<T>{} : tile_ops_for(ep)};
    if (sums_while_packing) std::fill(col_sums_b, col_sums_b + N, T(0));
    for (idx jc = 0; jc < N; jc += NC) {
        const idx nc = std::min(NC, N - jc);
        for (idx pc = 0; pc < K; pc += KC) {
            const idx kc = std::min(KC, K - pc);
            team_region(
                nt, [&] { job.template slice<false>(jc, nc, pc, kc); },
                [&](RegionClock& clock) { job.template slice<true>(jc, nc, pc, kc, &clock); });
        }
    }
}

}  // namespace

template <typename T>
void gemm(T* C, idx ldc, const T* A, idx lda, const T* B, idx ldb, idx M, idx N, idx K,
          bool trans_a, bool trans_b, T alpha, T beta, int n_threads, const Epilogue<T>& ep,
          T* col_sums_b) {
    for (const ActivationSpec* f : {ep.activation, ep.derivative})  // before any parallel region
        if (f && is_learned(*f)) throw std::invalid_argument("a learned activation cannot be fused into a product");
    const int nt = threads_for(M * N * std::max<idx>(K, 1), resolve_threads(n_threads),
                               kParallelMinMultiplyAdds);
    const GemmKernel<T>& kern = kernel_for<T>(active_isa());
    // Packing costs O(MK + KN) copies for O(MNK) work: it pays once every dimension spans a few
    // tiles. Below that (and for an empty product), the direct loop.
    // A narrow C with many rows (an output layer's few columns over a batch) is not small: up to
    // kNarrowColumns columns take dot products, wider ones the packed path (as C^T, below, when
    // that reads op(A) in place).
    // A short C (a weight gradient of a layer with a few inputs: 10 x 200 x 100 for diabetes) is
    // not small either: the direct loop reads and writes each row of C once per k, while the
    // packed path's edge kernel for m < MR rows keeps the rows in registers (5x faster there). A
    // single row stays direct: a vector-matrix product has nothing for packing to share.
    const bool transposable = N < kern.nr && M >= kern.nr;
    // A C of at most kNarrowColumns columns over many rows: a few dot products per row (at
    // least 8 rows and 8 values of k, and a vector's worth of each: dot_columns' last rows and
    // the dot products' last values of k are the L ending there). However small the product:
    // the direct loop's last columns are one sum each, waiting on every addition (the output
    // layer over breast_cancer's last batch of 26 rows, 26 x 1 x 100, took 1.2 us of a 77 us
    // epoch, the other 400 rows 2.6 us).
    const idx lanes = small_product_lanes(sizeof(T) == 8);
    const bool narrow = alpha != T(0) && K >= std::max<idx>(lanes, 8) && N >= 1 && N <= kNarrowColumns &&
                        M >= std::max<idx>(lanes, 8);
    const bool direct = !narrow && (alpha == T(0) || K < 8 || M * N * K < idx(16) * 16 * 16 ||
                                    (!transposable && (M < 2 || N < 8)));
    // Every path folds beta = 0 (overwrite, C never read) or 1 (accumulate) into its sums; other
    // values take a pass of C = beta . C first and then accumulate.
    const bool accumulate = beta != T(0);
    if (beta != T(0) && beta != T(1)) scale_rows(C, ldc, M, N, beta, nt);
    // Both loops' scratch (op(B) copied column-contiguous or row-major), sized here so a failed
    // allocation is std::bad_alloc in the calling thread, never inside OpenMP, and reused across
    // calls.
    static thread_local std::vector<T> bt_buf;
    if (narrow) {
        gemm_narrow<T>(C, ldc, A, lda, B, ldb, M, N, K, trans_a, trans_b, alpha, accumulate, nt, ep,
                       col_sums_b, scratch(bt_buf, N * K));
    } else if (direct) {
        T* bt = trans_b && alpha != T(0) ? scratch(bt_buf, N * K) : nullptr;
        gemm_direct<T>(C, ldc, A, lda, B, ldb, M, N, K, trans_a, trans_b, alpha, accumulate, nt, ep,
                       col_sums_b, bt);
    } else if (N < kern.nr && M > N && trans_a) {
        // A narrow C (a weight gradient A^T dZ into an output layer's 10 columns) would leave
        // most of an NR-wide tile idle: compute C^T = op(B)^T op(A)^T instead, its narrow side
        // now along MR. op(B)^T is B read with the opposite transpose flag, and likewise for A:
        // here op(A)^T is A as stored, which the packed path reads in place. A row-major A (an
        // output layer's forward A W) keeps the idle columns: as C^T's B it would be copied
        // transposed, once per product and used by a single row panel, and that copy cost more
        // than the tile's idle lanes (200 x 10 x 100: 7.0 us as C^T, 5.5 us as is; 200 x 8 x 100
        // 6.2 and 3.2 us).
        gemm_packed<T>(kern, C, ldc, B, ldb, A, lda, N, M, K, !trans_b, !trans_a, alpha, accumulate,
                       nt, ep, nullptr, true);
        if (col_sums_b) column_sums(col_sums_b, B, ldb, N, K, trans_b);
    } else {
        gemm_packed<T>(kern, C, ldc, A, lda, B, ldb, M, N, K, trans_a, trans_b, alpha, accumulate,
                       nt, ep, col_sums_b, false);
    }
}

// V vectors of L units of narrow_relu_backward (gemm.hpp), down all N rows: units j0 + L v for
// v < V - 1, and `last` for the last vector. The O columns of W^T (Wt, O x I) and every running
// sum stay in registers. Each lane's sums: dW^T[c, j] over k of A[k, j] . dZ[k, c], as the
// narrow transposed product sums them; the delta 0 + sum over c of dZ[k, c] . W[j, c], times
// ReLU'(S[k, j]), as the direct product and its fused mask; db_prev[j] over k of the delta, as
// column_sums. Where the last vector overlaps the one before it, the shared units get the same
// sums in the same order, so they are stored twice with the same bits.
template <typename T, int L, int O, int V>
[[gnu::always_inline]] inline void narrow_backward_strip(T* dW, T* dZ_prev, T* db_prev, const T* dZ,
                                                         const T* A, const T* Wt, const T* S, idx lds,
                                                         idx N, idx I, idx j0, idx last, T at_zero) {
    idx at[V];
    for (int v = 0; v < V; ++v) at[v] = v < V - 1 ? j0 + L * v : last;
    Lanes<T, L> w[O][V], acc[O][V] = {}, bias_sums[V] = {};
    for (int c = 0; c < O; ++c)
        for (int v = 0; v < V; ++v) load_lanes(w[c][v], Wt + c * I + at[v]);
    for (idx k = 0; k < N; ++k) {
        const T* dz = dZ + k * O;
        for (int v = 0; v < V; ++v) {
            Lanes<T, L> a, d = {};
            load_lanes(a, A + k * I + at[v]);
            for (int c = 0; c < O; ++c) acc[c][v] += a * dz[c];
            for (int c = 0; c < O; ++c) d += dz[c] * w[c][v];
            relu_mask_lanes(d, S + k * lds + at[v], at_zero);
            std::memcpy(dZ_prev + k * I + at[v], &d, sizeof d);
            bias_sums[v] += d;
        }
    }
    for (int v = 0; v < V; ++v)
        for (idx l = 0; l < L; ++l) {
            db_prev[at[v] + l] = bias_sums[v][l];
            for (int c = 0; c < O; ++c) dW[(at[v] + l) * O + c] = T(0) + T(1) * acc[c][v][l];
        }
}

// The units in strips of VS vectors of L (with AVX-512's 32 registers, 4 for one or two outputs
// and 2 for three or four; half that with 16 registers, where L < 8; so the sums stay in
// registers), the last strip's last vector the L units ending at unit I - 1. A single vector left
// over would be a pass of its own down the rows (I = 100 with three outputs: a fifth of the time
// went to its 4 units), so it joins the last strip.
template <typename T, int L, int O>
DP_ISA_CLONES void narrow_backward_strips(T* dW, T* dZ_prev, T* db_prev, const T* dZ, const T* A,
                                          const T* Wt, const T* S, idx lds, idx N, idx I, T at_zero) {
    constexpr int VS = (O <= 2 ? 4 : 2) / (L < 8 ? 2 : 1);
    const idx vectors = (I + L - 1) / L;
    idx strips = vectors / VS, rest = vectors % VS;  // the last strip: `rest` vectors, below
    if (strips > 0 && rest <= 1) {
        --strips;
        rest += VS;
    }
    for (idx s = 0; s < strips; ++s) {
        const idx j0 = s * L * VS;
        narrow_backward_strip<T, L, O, VS>(dW, dZ_prev, db_prev, dZ, A, Wt, S, lds, N, I, j0, j0 + L * (VS - 1),
                                           at_zero);
    }
    const idx j0 = strips * L * VS;
    auto strip = [&](auto V) {
        narrow_backward_strip<T, L, O, decltype(V)::value>(dW, dZ_prev, db_prev, dZ, A, Wt, S, lds, N, I, j0, I - L,
                                                           at_zero);
    };
    using One = std::integral_constant<int, 1>;
    using Two = std::integral_constant<int, 2>;
    using Three = std::integral_constant<int, 3>;
    if (rest == 1) strip(One{});
    else if (rest == 2) strip(Two{});
    else if (rest == 3) strip(Three{});
    else if constexpr (VS == 4) {  // rest 4 or 5
        if (rest == 4) strip(std::integral_constant<int, 4>{});
        else strip(std::integral_constant<int, 5>{});
    }
}

template <typename T>
void narrow_relu_backward(T* dW, T* db, T* dZ_prev, T* db_prev, const T* dZ, const T* A, const T* W,
                          const T* S, idx lds, idx N, idx I, idx O, T at_zero) {
    static thread_local std::vector<T> wt_buf;  // W^T, O x I (reused across calls)
    T* Wt = scratch(wt_buf, O * I);
    for (idx j = 0; j < I; ++j)
        for (idx c = 0; c < O; ++c) Wt[c * I + j] = W[j * O + c];
    using Strips = void (*)(T*, T*, T*, const T*, const T*, const T*, const T*, idx, idx, idx, T);
    const Strips strips = by_lanes<T>([&](auto lanes) {
        constexpr int L = decltype(lanes)::value;
        const Strips by_outputs[] = {narrow_backward_strips<T, L, 1>, narrow_backward_strips<T, L, 2>,
                                     narrow_backward_strips<T, L, 3>, narrow_backward_strips<T, L, 4>};
        return by_outputs[O - 1];
    });
    strips(dW, dZ_prev, db_prev, dZ, A, Wt, S, lds, N, I, at_zero);
    column_sums(db, dZ, O, O, N, false);
}

template void narrow_relu_backward<float>(float*, float*, float*, float*, const float*, const float*,
                                          const float*, const float*, idx, idx, idx, idx, float);
template void narrow_relu_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                           const double*, const double*, idx, idx, idx, idx, double);

double fma_peak_gflops(bool f64, double seconds) {
    const GemmKernels& set = kernels_for(active_isa());
    auto probe = f64 ? set.fma_probe_f64 : set.fma_probe_f32;
    double best = 0, fmas = 0, sink = 0;
    for (long iterations = 1 << 12;; iterations *= 2) {  // grow until one run is long enough
        const auto t0 = std::chrono::steady_clock::now();
        sink += probe(iterations, &fmas);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2 * fmas / dt / 1e9);
        if (dt > seconds / 4 || iterations > (1L << 40)) {
            for (int repeat = 0; repeat < 3; ++repeat) {  // best of a few: the machine is shared
                const auto t1 = std::chrono::steady_clock::now();
                sink += probe(iterations, &fmas);
                const double d = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
                best = std::max(best, 2 * fmas / d / 1e9);
            }
            break;
        }
    }
    return sink == -1.0 ? 0.0 : best;  // sink keeps the probe from being optimised away
}

int small_product_lanes(bool f64) {
    auto lanes = [](auto l) { return int(decltype(l)::value); };
    return f64 ? by_lanes<double>(lanes) : by_lanes<float>(lanes);
}

bool kernels_loaded(Isa isa) { return tables_built.load(std::memory_order_relaxed) & (1 << int(isa)); }

int gemm_mr(bool f64) { return f64 ? kernel_for<double>(active_isa()).mr : kernel_for<float>(active_isa()).mr; }
int gemm_nr(bool f64) { return f64 ? kernel_for<double>(active_isa()).nr : kernel_for<float>(active_isa()).nr; }

template void gemm<float>(float*, idx, const float*, idx, const float*, idx, idx, idx, idx, bool,
                          bool, float, float, int, const Epilogue<float>&, float*);
template void gemm<double>(double*, idx, const double*, idx, const double*, idx, idx, idx, idx,
                           bool, bool, double, double, int, const Epilogue<double>&, double*);

}  // namespace dp
