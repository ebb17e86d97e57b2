// The first layer fed by a sparse X (CSR rows), forward then backward: dense.hpp's products
// over the stored entries only. A TF-IDF row holds tens of values in 10^5 columns; densified,
// its first product was almost all multiplications by zero (5 000 x 200 000, 40 values a row:
// 10.4 s a fit, scikit-learn's sparse product 2.4 s).
//   forward:           Z[r] = sum_k v_k W[c_k] + b          over row r's entries (c_k, v_k)
//   weight gradients:  dW = X^T dZ: dW[c_k] += v_k dZ[r],  db = sum over rows of dZ
// No delta goes further back: X has no gradient.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common.hpp"

namespace dp {

// Rows of a CSR matrix: row i's entries are values[j], columns[j] for j in [starts[i],
// starts[i + 1]), indices int32 or int64 as scipy stores them (`wide`). Row r of the view is
// order[r] when `order` is given, else first + r. Checked by the bindings: starts non-decreasing
// from 0, columns inside the matrix, values finite.
template <typename T>
struct CsrRows {
    const T* values = nullptr;
    const void* columns = nullptr;
    const void* starts = nullptr;
    bool wide = false;
    const idx* order = nullptr;
    idx first = 0;

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
        for (idx r = 0; r < N; ++r) count += idx(starts[x.row(r) + 1] - starts[x.row(r)]);
    });
    return count;
}

// Z = X W + b for the view's N rows (W: I x O, b: O). Each row on one thread, its entries in
// stored order, then the bias, as the dense product adds it after the sum: the bits do not
// depend on the thread count.
template <typename T>
void sparse_forward(T* Z, const CsrRows<T>& x, const T* W, const T* b, idx N, idx O, int n_threads) {
    const int nt = threads_for(stored_entries(x, N) * O, n_threads, kParallelMinMultiplyAdds);
    with_indices(x, [&](const auto* columns, const auto* starts) {
        parallel_for(N, nt, [&](idx r) {
            T* z = Z + r * O;
            std::fill(z, z + O, T(0));
            const idx i = x.row(r);
            for (auto k = starts[i]; k < starts[i + 1]; ++k) axpy_range(z, W + idx(columns[k]) * O, 0, O, x.values[k]);
            add_into(z, b, O);
        });
    });
}

// A += X for the view's N rows (A: N x O, X's columns < O): a residual first layer's skip.
template <typename T>
void sparse_add(T* A, const CsrRows<T>& x, idx N, idx O) {
    with_indices(x, [&](const auto* columns, const auto* starts) {
        for (idx r = 0; r < N; ++r) {
            const idx i = x.row(r);
            for (auto k = starts[i]; k < starts[i + 1]; ++k) A[r * O + idx(columns[k])] += x.values[k];
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
        parallel_ranges(O, nt, [&](idx begin, idx end) {
            for (idx r = 0; r < N; ++r) {
                const idx i = x.row(r);
                for (auto k = starts[i]; k < starts[i + 1]; ++k)
                    axpy_range(dW + idx(columns[k]) * O, dZ + r * O, begin, end, x.values[k]);
            }
        });
    });
}

}  // namespace dp
