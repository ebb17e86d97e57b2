// Gathering a batch's rows from the data in a shuffled order (train.hpp's epochs, mlp.hpp's
// steps, each half of a step gathering its own rows on the thread that reads them).
#pragma once

#include <array>
#include <cstring>
#include <utility>

#include "common.hpp"

namespace dp {

// Copies rows order[0..rows) of src (cols wide) into dst. Rows of up to 16 values (a data
// set's few features, a few outputs) are copied with the width known at compile time, as a
// few moves: one libc call per row cost more than its copy (2% of a wine fit).
template <typename T, int COLS>
void gather_short_rows(T* dst, const T* src, const idx* order, idx rows) {
    for (idx r = 0; r < rows; ++r) std::memcpy(dst + r * COLS, src + order[r] * COLS, sizeof(T) * COLS);
}

template <typename T, int... C>
constexpr auto short_row_gathers(std::integer_sequence<int, C...>) {
    using Gather = void (*)(T*, const T*, const idx*, idx);
    return std::array<Gather, sizeof...(C)>{gather_short_rows<T, C + 1>...};
}

template <typename T>
void gather_rows(T* dst, const T* src, const idx* order, idx rows, idx cols) {
    static constexpr auto short_rows = short_row_gathers<T>(std::make_integer_sequence<int, 16>{});
    if (cols >= 1 && cols <= 16) {
        short_rows[cols - 1](dst, src, order, rows);
        return;
    }
    for (idx r = 0; r < rows; ++r)
        std::memcpy(dst + r * cols, src + order[r] * cols, sizeof(T) * static_cast<size_t>(cols));
}

}  // namespace dp
