// The network: L dense layers over parameter views, and the workspace they run in.
//
// Layer l (0-based) maps sizes[l] -> sizes[l+1]. Hidden layers share one activation; the last
// layer's Z feeds the fused output + loss (loss.hpp). Parameters are views of NumPy arrays that
// Python owns; the workspace (activations, deltas, gradients, batch copies) belongs to the engine
// and is allocated once per (layer sizes, batch rows), then reused.
#pragma once

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "dense.hpp"
#include "loss.hpp"

namespace dp {

struct NetSpec {
    std::vector<idx> sizes;  // d, h_1, ..., h_{L-1}, O
    ActivationSpec hidden;
    Output output = Output::softmax;
    idx layers() const { return static_cast<idx>(sizes.size()) - 1; }
};

// W[l] is sizes[l] x sizes[l+1], b[l] is sizes[l+1]. P is T* or const T*.
template <typename P>
struct ParamViews {
    std::vector<P> W, b;
};

// rows * cols, or std::length_error (a ValueError in Python) when it cannot be a buffer size.
inline idx checked_size(idx rows, idx cols, const char* what) {
    if (rows < 0 || cols < 0 || (cols != 0 && rows > std::numeric_limits<idx>::max() / cols))
        throw std::length_error(std::string(what) + ": size overflows");
    return rows * cols;
}

template <typename T>
struct Workspace {
    idx rows = 0;             // batch rows the buffers hold
    std::vector<idx> sizes;   // layer sizes they were made for
    // Per layer, rows x sizes[l+1]. A hidden layer keeps A, and Z only when its derivative needs
    // it; the output layer keeps Z (the logits) and A (the output function's values).
    std::vector<std::vector<T>> Z, A, dZ;
    std::vector<std::vector<T>> dW, db;    // gradient buffers for the training loop
    std::vector<double> row_loss;
    std::vector<T> X_batch, Y_batch;       // gathered rows of a shuffled batch
    std::vector<idx> order;                // sample order of an epoch
    std::vector<std::uint64_t> keys;       // its shuffle keys

    // Makes the buffers fit `spec` and `n` rows; allocates only when they grow or the net changes.
    void reserve(const NetSpec& spec, idx n) {
        if (sizes == spec.sizes && n <= rows) return;
        const idx L = spec.layers();
        const idx n_rows = std::max(n, sizes == spec.sizes ? rows : idx(0));
        Z.resize(L); A.resize(L); dZ.resize(L); dW.resize(L); db.resize(L);
        for (idx l = 0; l < L; ++l) {
            const idx count = checked_size(n_rows, spec.sizes[l + 1], "activation buffer");
            if (l == L - 1 || derivative_needs_z(spec.hidden)) Z[l].resize(count);
            A[l].resize(count); dZ[l].resize(count);
            dW[l].resize(checked_size(spec.sizes[l], spec.sizes[l + 1], "weight gradient"));
            db[l].resize(spec.sizes[l + 1]);
        }
        row_loss.resize(n_rows);
        X_batch.resize(checked_size(n_rows, spec.sizes.front(), "batch"));
        Y_batch.resize(checked_size(n_rows, spec.sizes.back(), "batch targets"));
        sizes = spec.sizes;
        rows = n_rows;
    }

    // What backward reads for hidden layer l: Z if the derivative needs it, else A.
    const T* stored(const NetSpec& spec, idx l) const {
        return derivative_needs_z(spec.hidden) ? Z[l].data() : A[l].data();
    }
};

// Fills ws.A (and ws.Z where needed) for every hidden layer and ws.Z for the output layer.
template <typename T>
void mlp_forward(Workspace<T>& ws, const ParamViews<const T*>& p, const T* X, idx N,
                 const NetSpec& spec, int n_threads) {
    const idx L = spec.layers();
    const T* input = X;
    for (idx l = 0; l < L; ++l) {
        const bool hidden = l < L - 1;
        T* Z = hidden && !derivative_needs_z(spec.hidden) ? nullptr : ws.Z[l].data();
        dense_forward<T>(Z, hidden ? ws.A[l].data() : nullptr, input, p.W[l], p.b[l], N,
                         spec.sizes[l], spec.sizes[l + 1], spec.hidden, n_threads);
        input = ws.A[l].data();
    }
}

// Forward, loss, backward. Returns the mean loss; writes dW[l] and db[l].
template <typename T>
double mlp_loss_and_gradients(Workspace<T>& ws, const ParamViews<const T*>& p,
                              const ParamViews<T*>& grad, const T* X, const T* Y, idx N,
                              const NetSpec& spec, int n_threads) {
    const idx L = spec.layers();
    mlp_forward(ws, p, X, N, spec, n_threads);
    const double loss =
        output_loss_delta<T>(ws.dZ[L - 1].data(), ws.A[L - 1].data(), ws.row_loss.data(),
                             ws.Z[L - 1].data(), Y, N, spec.sizes[L], spec.output, n_threads);
    for (idx l = L - 1; l >= 0; --l) {
        const idx I = spec.sizes[l], O = spec.sizes[l + 1];
        const T* input = l == 0 ? X : ws.A[l - 1].data();
        dense_backward<T>(grad.W[l], grad.b[l], ws.dZ[l].data(), input, N, I, O, n_threads);
        if (l > 0)
            delta_propagate<T>(ws.dZ[l - 1].data(), ws.dZ[l].data(), p.W[l], ws.stored(spec, l - 1),
                               N, I, O, spec.hidden, n_threads);
    }
    return loss;
}

}  // namespace dp
