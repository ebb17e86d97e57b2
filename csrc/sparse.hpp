// The first layer fed by a sparse X (CSR rows), forward then backward: dense.hpp's products
// over the stored entries only. A TF-IDF row holds tens of values in 10^5 columns; densified,
// its first product was almost all multiplications by zero (5 000 x 200 000, 40 values a row,
// hidden (16,): densifying batches, a fit took 4x scikit-learn's; with these loops 0.8 s against
// its 4.5 s, benchmarks/bench_sklearn.py --sparse).
//   forward:           Z[r] = sum_k v_k W[c_k] + b          over row r's entries (c_k, v_k)
//   weight gradients:  dW = X^T dZ: dW[c_k] += v_k dZ[r],  db = sum over rows of dZ
// No delta goes further back: X has no gradient.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "common.hpp"

namespace dp {

// csr_rows_forward's block of columns: four 512-bit vectors.
template <typename T>
constexpr idx forward_block() {
    return 64 / sizeof(T) * 4;
}

// A matrix at least this dense (and at most kDensifiedMaxColumns wide) is read a batch or row
// block at a time into dense rows, then multiplied densely: per stored entry the sparse loops
// cost a few multiply-adds of the packed product's, so past some density the dense product
// wins. Measured, 2 000 x 300, whole fits, sparse over dense time: a first layer of 16 units
// (its rows of Z kept in L1, not in registers) 0.67 at 10% stored, 1.13 at 14%; of 100 units
// 0.43 at 10%, 0.55 at 14% (before the sums were kept in registers: 1.00 at 20%, 2.3 at 50%);
// of 512 units 0.44 at 10%. The width bound keeps a densified 2 048-row block within 64 MB.
template <typename T>
double densified_min_density(idx units) {
    return units < forward_block<T>() ? 0.10 : 0.25;
}
constexpr idx kDensifiedMaxColumns = 4096;

// Rows of a CSR matrix: row i's entries are values[j], columns[j] for j in [starts[i],
// starts[i + 1]), indices int32 or int64 as scipy stores them (`wide`). Row r of the view is
// order[r] when `order` is given, else first + r. Checked by the bindings: starts non-decreasing
// from 0 to at most `stored`, columns in [0, n_columns), values finite. `densified`: read into
// dense rows first (densified_min_density).
//
// The index arrays are the caller's, read in place while the GIL is released: another Python
// thread may rewrite them after the bindings' check. So each read of one (entries, column)
// is checked on its own and kept inside the matrix: such a race gives wrong rows, never a
// read or write outside.
template <typename T>
struct CsrRows {
    const T* values = nullptr;
    const void* columns = nullptr;
    const void* starts = nullptr;
    bool wide = false;
    bool densified = false;
    const idx* order = nullptr;
    idx first = 0;
    idx stored = 0;     // the entries the rows may reach: starts[last row + 1] as checked
    idx n_columns = 0;  // the matrix's width

    // Row i's entries [begin, end), within [0, stored).
    template <typename I>
    std::pair<idx, idx> entries(const I* row_starts, idx i) const {
        const idx begin = std::clamp<idx>(idx(read_once(row_starts + i)), 0, stored);
        return {begin, std::clamp<idx>(idx(read_once(row_starts + i + 1)), begin, stored)};
    }
    // Entry k's column, or -1 outside [0, n_columns) (the entry is then skipped).
    template <typename I>
    idx column(const I* entry_columns, idx k) const {
        const idx c = idx(read_once(entry_columns + k));
        return c >= 0 && c < n_columns ? c : -1;
    }
    // (volatile: the compiler may not read it again after the check, as it could assume)
    template <typename I>
    static I read_once(const I* p) { return *static_cast<const volatile I*>(p); }

    // The view's rows from its r-th on.
    CsrRows from(idx r) const {
        CsrRows rest = *this;
        if (order) rest.order += r;
        else rest.first += r;
        return rest;
    }
    // The rows order[0..): a shuffled batch, read where it lies (nothing is gathered).
    CsrRows in_order(const idx* rows) const {
        CsrRows ordered = *this;
        ordered.order = rows;
        ordered.first = 0;
        return ordered;
    }
    idx row(idx r) const { return order ? order[r] : first + r; }
};

// body(columns, starts) with the indices' own integer type: one branch per call.
template <typename T, typename Body>
void with_indices(const CsrRows<T>& x, Body&& body) {
    if (x.wide) body(static_cast<const std::int64_t*>(x.columns), static_cast<const std::int64_t*>(x.starts));
    else body(static_cast<const std::int32_t*>(x.columns), static_cast<const std::int32_t*>(x.starts));
}

// The stored entries of the view's first N rows.
template <typename T>
idx stored_entries(const CsrRows<T>& x, idx N) {
    idx count = 0;
    with_indices(x, [&](const auto*, const auto* starts) {
        for (idx r = 0; r < N; ++r) {
            const auto [begin, end] = x.entries(starts, x.row(r));
            count += end - begin;
        }
    });
    return count;
}

// Rows [first, last) of Z = X W + b: each row's entries in stored order, then the bias, as
// the dense product adds it after the sum. Built per instruction set, the loops inside: one
// dispatch per range of rows.
// GCC 12 vectorised the loops over a row's entries (gathering W's values 8 entries at a time,
// its sums on the stack) rather than the loops over units. An empty asm on each entry's value
// keeps the entry loops scalar, so the unit loops are the ones vectorised: a forward pass of
// 2 000 rows, 30 of 300 columns stored, 100 units, 1.6 -> 0.74 ms.
template <typename T>
inline void keep_scalar(T& v) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("" : "+x"(v));  // (v stays in its vector register)
#else
    asm volatile("" : "+m"(v));
#endif
}

// A row's sums are kept kForwardBlock columns at a time in a local block, which the compiler
// holds in vector registers across the row's entries: each entry then costs its loads of W and
// its multiply-adds, not a load and a store of Z's row as well. A last block that would run
// past O is moved back to end at O, recomputing a few columns to the same bits (a pass of its
// own over the entries for the few columns left cost a third of the time at O = 100).
template <typename T, typename I>
DP_ISA_CLONES void csr_rows_forward(T* DP_RESTRICT Z, const CsrRows<T>& x, const I* columns, const I* starts,
                                    const T* DP_RESTRICT W, const T* DP_RESTRICT b, idx first, idx last, idx O) {
    constexpr idx kForwardBlock = forward_block<T>();
    for (idx r = first; r < last; ++r) {
        T* z = Z + r * O;
        const idx i = x.row(r);
        const auto [begin, end] = x.entries(starts, i);
        if (O < kForwardBlock) {  // a narrow layer: its row of Z stays in L1
            for (idx j = 0; j < O; ++j) z[j] = T(0);
            for (idx k = begin; k < end; ++k) {
                const idx c = x.column(columns, k);
                if (c < 0) continue;
                T v = x.values[k];
                keep_scalar(v);
                const T* w = W + c * O;
                for (idx j = 0; j < O; ++j) z[j] += v * w[j];
            }
            for (idx j = 0; j < O; ++j) z[j] += b[j];
            continue;
        }
        for (idx j0 = 0;; j0 += kForwardBlock) {
            j0 = std::min(j0, O - kForwardBlock);
            T sum[kForwardBlock] = {};
            for (idx k = begin; k < end; ++k) {
                const idx c = x.column(columns, k);
                if (c < 0) continue;
                T v = x.values[k];
                keep_scalar(v);
                const T* w = W + c * O + j0;
                for (idx j = 0; j < kForwardBlock; ++j) sum[j] += v * w[j];
            }
            for (idx j = 0; j < kForwardBlock; ++j) z[j0 + j] = sum[j] + b[j0 + j];
            if (j0 + kForwardBlock == O) break;
        }
    }
}

// Columns [first, last) of dW += X^T dZ over the view's N rows, each entry's part in stored
// order. Each entry loads and stores its row of dW. Regrouping a batch's entries by column
// first (a counting sort per step), so that each dW row builds up in registers to the same bits,
// was measured and dropped: 300 columns, 100 units, 200 rows at 5 and 10 % stored, 70 against
// 59 us and 125 against 116 us a step (the rows of dW it saves reloading are in L1 or L2; the
// sort costs 5-10 us). It won only where dW outgrows L2 (2 000 columns, 64 to 256 units) at 12
// or more entries a column, 1.1-1.9x, and its pass over every column made a 200 000-column
// fit 20 % slower.
template <typename T, typename I>
DP_ISA_CLONES void csr_rows_backward(T* DP_RESTRICT dW, const CsrRows<T>& x, const I* columns, const I* starts,
                                     const T* DP_RESTRICT dZ, idx N, idx O, idx first, idx last) {
    for (idx r = 0; r < N; ++r) {
        const T* d = dZ + r * O;
        const auto [begin, end] = x.entries(starts, x.row(r));
        for (idx k = begin; k < end; ++k) {
            const idx c = x.column(columns, k);
            if (c < 0) continue;
            T v = x.values[k];
            keep_scalar(v);
            T* w = dW + c * O;
            for (idx j = first; j < last; ++j) w[j] += v * d[j];
        }
    }
}

// Z = X W + b for the view's N rows (W: I x O, b: O). Threads split the rows, each computed
// alike (csr_rows_forward): the bits do not depend on the thread count.
template <typename T>
void sparse_forward(T* Z, const CsrRows<T>& x, const T* W, const T* b, idx N, idx O, int n_threads) {
    const int nt = threads_for(stored_entries(x, N) * O, n_threads, kParallelMinMultiplyAdds);
    with_indices(x, [&](const auto* columns, const auto* starts) {
        parallel_ranges(N, nt, [&](idx first, idx last) {
            csr_rows_forward(Z, x, columns, starts, W, b, first, last, O);
        });
    });
}

// The view's N rows as dense rows D (N x d): zeros, then each stored entry added in stored order
// (a column stored twice is summed, as scipy sums it).
template <typename T>
void csr_to_dense(T* D, const CsrRows<T>& x, idx N, idx d) {
    std::fill(D, D + N * d, T(0));
    with_indices(x, [&](const auto* columns, const auto* starts) {
        for (idx r = 0; r < N; ++r) {
            const auto [begin, end] = x.entries(starts, x.row(r));
            for (idx k = begin; k < end; ++k)
                if (const idx c = x.column(columns, k); c >= 0) D[r * d + c] += x.values[k];
        }
    });
}

// A += X for the view's N rows (A: N x O, X's columns < O): a residual first layer's skip.
template <typename T>
void sparse_add(T* A, const CsrRows<T>& x, idx N, idx O) {
    with_indices(x, [&](const auto* columns, const auto* starts) {
        for (idx r = 0; r < N; ++r) {
            const auto [begin, end] = x.entries(starts, x.row(r));
            for (idx k = begin; k < end; ++k)
                if (const idx c = x.column(columns, k); c >= 0) A[r * O + c] += x.values[k];
        }
    });
}

// dW = X^T dZ (I x O, every entry written: zero where no row has the column) and, unless null,
// db = the sum of dZ's N rows. Threads split dW's columns, each thread adding every entry's
// part in the same order, so the bits do not depend on the thread count.
template <typename T>
void sparse_backward(T* dW, T* db, const T* dZ, const CsrRows<T>& x, idx N, idx I, idx O, int n_threads) {
    parallel_ranges(I * O, threads_for(I * O, n_threads), [&](idx begin, idx end) {
        std::fill(dW + begin, dW + end, T(0));
    });
    if (db) {
        std::fill(db, db + O, T(0));
        for (idx r = 0; r < N; ++r) add_into(db, dZ + r * O, O);
    }
    // a part of at least 8 columns: each thread's slice of a dW row spans whole vectors
    const int nt = int(std::min<idx>(threads_for(stored_entries(x, N) * O, n_threads, kParallelMinMultiplyAdds),
                                     std::max<idx>(1, O / 8)));
    with_indices(x, [&](const auto* columns, const auto* starts) {
        parallel_ranges(O, nt, [&](idx first, idx last) {
            csr_rows_backward(dW, x, columns, starts, dZ, N, O, first, last);
        });
    });
}

}  // namespace dp
