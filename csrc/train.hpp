// The epoch loop: order the samples, cut batches, forward, loss, backward, update.
// Python calls this once per epoch; everything inside runs without the GIL.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "mlp.hpp"
#include "optim.hpp"

namespace dp {

// splitmix64's output function (Steele, Lea & Flood 2014): a bijection on 64-bit words
// whose outputs look independent for consecutive inputs.
inline std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

// The order of epoch `epoch`: argsort of key_i = mix64(seed.C1 + epoch.C2 + i), ties by index.
// The NumPy reference computes the same keys vectorised, so both backends see the same batches.
// `key` is scratch of n entries.
inline void shuffle_order(idx* order, std::uint64_t* key, idx n, std::uint64_t seed,
                          std::uint64_t epoch) {
    const std::uint64_t base = seed * 0x9E3779B97F4A7C15ULL + epoch * 0xC2B2AE3D27D4EB4FULL;
    for (idx i = 0; i < n; ++i) {
        key[i] = mix64(base + static_cast<std::uint64_t>(i));
        order[i] = i;
    }
    std::sort(order, order + n, [&](idx a, idx b) { return key[a] != key[b] ? key[a] < key[b] : a < b; });
}

struct SgdSchedule {
    idx batch_size = 32;
    double lr = 0.01;
    double momentum = 0.0;
    bool shuffle = true;
    std::uint64_t seed = 0;
    std::uint64_t epoch = 0;
};

// Copies rows order[0..rows) of src (cols wide) into dst.
template <typename T>
void gather_rows(T* dst, const T* src, const idx* order, idx rows, idx cols) {
    for (idx r = 0; r < rows; ++r)
        std::memcpy(dst + r * cols, src + order[r] * cols, sizeof(T) * static_cast<size_t>(cols));
}

// One epoch of minibatch SGD over n samples. `velocity` has the parameters' shapes.
// Returns the epoch's mean loss, each batch's loss (before its update) weighted by its rows,
// as scikit-learn's loss_curve_ does.
template <typename T>
double train_epoch(Workspace<T>& ws, const ParamViews<T*>& params, const ParamViews<T*>& velocity,
                   const T* X, const T* Y, idx n, const NetSpec& spec, const SgdSchedule& s,
                   int n_threads) {
    const idx L = spec.layers(), d = spec.sizes.front(), O = spec.sizes.back();
    const idx batch = std::min(s.batch_size, n);
    ws.reserve(spec, batch);
    if (s.shuffle) {
        ws.order.resize(static_cast<size_t>(n));
        ws.keys.resize(static_cast<size_t>(n));
        shuffle_order(ws.order.data(), ws.keys.data(), n, s.seed, s.epoch);
    }
    ParamViews<const T*> view;
    ParamViews<T*> grad;
    for (idx l = 0; l < L; ++l) {
        view.W.push_back(params.W[l]);
        view.b.push_back(params.b[l]);
        grad.W.push_back(ws.dW[l].data());
        grad.b.push_back(ws.db[l].data());
    }
    double total = 0.0;
    for (idx start = 0; start < n; start += batch) {
        const idx rows = std::min(batch, n - start);
        const T* Xb = X + start * d;  // unshuffled batches are read in place
        const T* Yb = Y + start * O;
        if (s.shuffle) {
            gather_rows(ws.X_batch.data(), X, ws.order.data() + start, rows, d);
            gather_rows(ws.Y_batch.data(), Y, ws.order.data() + start, rows, O);
            Xb = ws.X_batch.data();
            Yb = ws.Y_batch.data();
        }
        total += double(rows) * mlp_loss_and_gradients(ws, view, grad, Xb, Yb, rows, spec, n_threads);
        for (idx l = 0; l < L; ++l) {
            const idx I = spec.sizes[l], Ol = spec.sizes[l + 1];
            sgd_momentum_step<T>(params.W[l], velocity.W[l], grad.W[l], I * Ol, T(s.lr), T(s.momentum), n_threads);
            sgd_momentum_step<T>(params.b[l], velocity.b[l], grad.b[l], Ol, T(s.lr), T(s.momentum), n_threads);
        }
    }
    return total / double(n);
}

}  // namespace dp
