// The network: L dense layers over parameter views, and the workspace they run in.
//
// Layer l (0-based) maps sizes[l] -> sizes[l+1]. Hidden layer l has its own activation f_l, may
// drop units in training (D_l: dropout or AlphaDropout, dropout.hpp) and may be a residual block
// (design.md; seed 001's cure for depth), whose output adds its input:
//     Z_l = A_{l-1} W_l + b_l,   A_l = D_l(f_l(Z_l))  [+ A_{l-1} if residual]      (A_{-1} = X)
// D_l drops units of the branch only, never the identity path.
// The last layer's Z feeds the fused output + loss (loss.hpp). Parameters are views of NumPy
// arrays that Python owns, in one flat list: per layer W_l, b_l. The workspace (activations,
// deltas, gradients, batch copies) belongs to the engine and is allocated once per (network,
// batch rows), then reused.
//
// Backward, for hidden layer l with G_l = dC/dA_l:
//     dZ_l = D_l'(G_l) . f_l'(S_l)  S_l: the stored operand of f_l' (A_l, or Z_l where f' needs Z,
//                                  or f_l(Z_l) kept apart from A_l by a skip or a dropout)
//     G_{l-1} = dZ_l W_l^T [+ G_l if residual]    (the skip passes G_l through unchanged)
// When neither layer l nor l-1 is a residual block and l-1 drops nothing, the product and
// f'_{l-1} are one fused GEMM (dense.hpp's delta_propagate); otherwise G_{l-1} is formed first,
// then masked. A last layer of at most 4 outputs over ReLU units (regression, binary labels)
// does its weight gradient, its delta and the previous bias gradient in one pass over the batch
// (gemm.hpp's narrow_relu_backward), to the same bits.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "dense.hpp"
#include "dropout.hpp"
#include "learned.hpp"
#include "loss.hpp"

namespace dp {

struct LayerSpec {      // one hidden layer
    ActivationSpec f;
    bool residual = false;  // A_l = f(Z_l) + A_{l-1}; needs sizes[l] == sizes[l+1]
    double dropout = 0.0;   // the rate at which training drops units of f(Z_l)
    bool alpha_dropout = false;
};

// What draws a training step's dropout masks (dropout.hpp): null outside training.
struct DropoutKey {
    std::uint64_t seed, epoch, batch;
};

struct NetSpec {
    std::vector<idx> sizes;         // d, h_1, ..., h_{L-1}, O
    std::vector<LayerSpec> hidden;  // L - 1 entries
    LossSpec loss;                  // the output function and its loss

    idx layers() const { return static_cast<idx>(sizes.size()) - 1; }
    bool residual(idx l) const { return l < layers() - 1 && hidden[l].residual; }
    bool drops(idx l) const { return l < layers() - 1 && hidden[l].dropout > 0; }
    bool learned(idx l) const { return l < layers() - 1 && is_learned(hidden[l].f); }
    // f_l' reads Z_l (else the value f_l(Z_l)).
    bool keeps_z(idx l) const { return derivative_needs_z(hidden[l].f); }
    // f_l(Z_l) needs a buffer of its own: f' reads it and A_l is something else.
    bool keeps_f(idx l) const { return !keeps_z(l) && (residual(l) || drops(l)); }
    // delta propagation into hidden layer l-1 can be one fused GEMM.
    bool fused_delta(idx l) const {
        return !residual(l) && !residual(l - 1) && !drops(l - 1) && !learned(l - 1);
    }

    // The flat parameter list: per layer W_l (sizes[l] x sizes[l+1]), b_l, then the learned
    // parameters of hidden layer l's activation (learned.hpp). layout() fills it in once the
    // layers are set.
    std::vector<idx> first_array;  // per layer: the index of W_l
    std::vector<idx> array_sizes;
    void layout() {
        first_array.clear();
        array_sizes.clear();
        for (idx l = 0; l < layers(); ++l) {
            first_array.push_back(idx(array_sizes.size()));
            array_sizes.push_back(sizes[l] * sizes[l + 1]);
            array_sizes.push_back(sizes[l + 1]);
            if (learned(l))
                for (int k = 0; k < learned_param_count(hidden[l].f); ++k)
                    array_sizes.push_back(learned_param_size(hidden[l].f, sizes[l + 1]));
        }
    }
    idx arrays() const { return idx(array_sizes.size()); }
    idx array_size(idx a) const { return array_sizes[a]; }
    idx weight_index(idx l) const { return first_array[l]; }
    bool is_weights(idx a) const { return std::binary_search(first_array.begin(), first_array.end(), a); }
};

// Parameter-shaped arrays in the flat order of NetSpec; P is T* or const T*.
template <typename P>
struct ParamViews {
    std::vector<P> arrays;
    std::vector<idx> first;  // NetSpec::first_array
    P W(idx l) const { return arrays[first[l]]; }
    P b(idx l) const { return arrays[first[l] + 1]; }
    const P* learned(idx l) const { return arrays.data() + first[l] + 2; }  // the activation's
};

template <typename P>
ParamViews<const std::remove_pointer_t<P>*> as_const(const ParamViews<P>& p) {
    return {{p.arrays.begin(), p.arrays.end()}, p.first};
}

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
    // Per layer, rows x sizes[l+1]: A (the output), Z (kept where f' needs it; always for the
    // output layer: the logits), F (f(Z) where a residual block needs it apart from A), dZ, and
    // G (dC/dA, formed where the delta cannot be fused).
    std::vector<std::vector<T>> Z, A, F, dZ, G;
    std::vector<std::vector<std::uint8_t>> keep;  // dropout masks, for layers that drop
    std::vector<std::vector<T>> grads;     // one per parameter array, flat order
    std::vector<double> row_loss;
    std::vector<T> X_batch, Y_batch;       // gathered rows of a shuffled batch
    std::vector<double> weight_batch;      // and their sample weights
    std::vector<idx> order;                // sample order of an epoch
    std::vector<std::uint64_t> keys;       // its shuffle keys

    // Makes the buffers fit `spec` and `n` rows; allocates only when they grow or the net changes.
    void reserve(const NetSpec& spec, idx n) {
        if (sizes == spec.sizes && n <= rows) return;
        const idx L = spec.layers();
        const idx n_rows = std::max(n, sizes == spec.sizes ? rows : idx(0));
        for (auto* v : {&Z, &A, &F, &dZ, &G}) v->assign(static_cast<size_t>(L), {});
        keep.assign(static_cast<size_t>(L), {});
        for (idx l = 0; l < L; ++l) {
            const idx count = checked_size(n_rows, spec.sizes[l + 1], "activation buffer");
            const bool hidden = l < L - 1;
            if (!hidden || spec.keeps_z(l)) Z[l].resize(count);
            if (hidden && spec.keeps_f(l)) F[l].resize(count);
            if (spec.drops(l)) keep[l].resize(count);
            if (hidden && l + 1 < L && !spec.fused_delta(l + 1)) G[l].resize(count);
            A[l].resize(count);
            dZ[l].resize(count);
        }
        grads.resize(static_cast<size_t>(spec.arrays()));
        for (idx a = 0; a < spec.arrays(); ++a) grads[a].resize(static_cast<size_t>(spec.array_size(a)));
        first = spec.first_array;
        row_loss.resize(n_rows);
        X_batch.resize(checked_size(n_rows, spec.sizes.front(), "batch"));
        Y_batch.resize(checked_size(n_rows, spec.sizes.back(), "batch targets"));
        weight_batch.resize(n_rows);
        sizes = spec.sizes;
        rows = n_rows;
    }

    ParamViews<T*> grad_views() {
        ParamViews<T*> v;
        for (auto& g : grads) v.arrays.push_back(g.data());
        v.first = first;
        return v;
    }
    std::vector<idx> first;  // the network's NetSpec::first_array

    // What f_l' reads for hidden layer l.
    const T* stored(const NetSpec& spec, idx l) const {
        return spec.keeps_z(l) ? Z[l].data() : (spec.keeps_f(l) ? F[l].data() : A[l].data());
    }
};

// Hidden layer l's dropout in training: A = D(F) over `count` values, the mask drawn from key.
template <typename T>
void drop_forward(Workspace<T>& ws, T* A, const T* F, idx l, idx count, const NetSpec& spec,
                  const DropoutKey& key, int n_threads) {
    const LayerSpec& layer = spec.hidden[l];
    std::uint8_t* keep = ws.keep[l].data();
    dropout_mask(keep, count, layer.dropout, dropout_stream(key.seed, key.epoch, key.batch, std::uint64_t(l)), n_threads);
    if (layer.alpha_dropout) alpha_dropout_forward<T>(A, F, keep, count, layer.dropout, n_threads);
    else dropout_forward<T>(A, F, keep, count, layer.dropout, n_threads);
}

// Fills A (and Z, F where kept) for every hidden layer and Z for the output layer. `key` (null
// outside training) draws the dropout masks.
template <typename T>
void mlp_forward(Workspace<T>& ws, const ParamViews<const T*>& p, const T* X, idx N,
                 const NetSpec& spec, int n_threads, const DropoutKey* key = nullptr) {
    const idx L = spec.layers();
    const T* input = X;
    for (idx l = 0; l < L; ++l) {
        const idx I = spec.sizes[l], O = spec.sizes[l + 1];
        if (l == L - 1) {  // the output layer: logits only
            dense_forward<T>(ws.Z[l].data(), nullptr, input, p.W(l), p.b(l), N, I, O, {Activation::identity}, n_threads);
            break;
        }
        const ActivationSpec& f = spec.hidden[l].f;
        T* A = ws.A[l].data();
        if (spec.learned(l)) {  // Z, then f with its parameters
            dense_forward<T>(ws.Z[l].data(), nullptr, input, p.W(l), p.b(l), N, I, O, f, n_threads);
            learned_forward<T>(A, ws.Z[l].data(), N, O, f, p.learned(l), n_threads);
        } else if (spec.keeps_z(l))  // Z kept for f'; f(Z) goes straight to A
            dense_forward<T>(ws.Z[l].data(), A, input, p.W(l), p.b(l), N, I, O, f, n_threads);
        else  // fused: Z is never stored
            dense_forward<T>(nullptr, spec.keeps_f(l) ? ws.F[l].data() : A, input, p.W(l), p.b(l), N, I, O, f, n_threads);
        const idx count = N * O;
        const T* F = spec.keeps_f(l) ? ws.F[l].data() : A;  // f(Z), wherever it went
        if (key && spec.drops(l)) {
            drop_forward(ws, A, F, l, count, spec, *key, n_threads);
            F = A;
        }
        if (spec.residual(l))
            parallel_for(count, threads_for(count, n_threads), [&](idx e) { A[e] = F[e] + input[e]; });
        else if (F != A)
            std::memcpy(A, F, sizeof(T) * static_cast<size_t>(count));  // a dropout layer predicting
        input = A;
    }
}

// G_{l-1} = dZ_l W_l^T [+ G_l], then dZ_{l-1} = D'(G_{l-1}) . f'(S_{l-1}): the unfused step.
template <typename T>
void unfused_delta(Workspace<T>& ws, const ParamViews<const T*>& p, const ParamViews<T*>& grad,
                    idx l, idx N, const NetSpec& spec, int n_threads, bool dropped) {
    const idx I = spec.sizes[l], O = spec.sizes[l + 1], count = N * I;
    T* G = ws.G[l - 1].data();
    T* dZ = ws.dZ[l - 1].data();
    const bool skip = spec.residual(l);
    if (skip) std::memcpy(G, ws.G[l].data(), sizeof(T) * static_cast<size_t>(count));  // I == O here
    gemm<T>(G, I, ws.dZ[l].data(), O, p.W(l), O, N, I, O, false, true, T(1), T(skip ? 1 : 0), n_threads);
    const T* dF = G;  // dC/df(Z): G through the dropout's backward, where the layer dropped
    if (dropped) {
        const LayerSpec& layer = spec.hidden[l - 1];
        const std::uint8_t* keep = ws.keep[l - 1].data();
        if (layer.alpha_dropout) alpha_dropout_backward<T>(dZ, G, keep, count, layer.dropout, n_threads);
        else dropout_backward<T>(dZ, G, keep, count, layer.dropout, n_threads);
        dF = dZ;
    }
    const ActivationSpec& f = spec.hidden[l - 1].f;
    if (spec.learned(l - 1))  // f' and the gradients of f's parameters, from the same dF
        learned_backward<T>(dZ, grad.learned(l - 1), dF, ws.Z[l - 1].data(), N, I, f, p.learned(l - 1), n_threads);
    else
        activation_backward<T>(dZ, dF, ws.stored(spec, l - 1), count, f, n_threads);
}

// The threads of a forward and backward pass over N rows: n_threads when its largest product
// reaches kStepParallelMinMultiplyAdds, else one (common.hpp).
inline int step_threads(const NetSpec& spec, idx N, int n_threads) {
    idx largest = 0;
    for (idx l = 0; l < spec.layers(); ++l) largest = std::max(largest, N * spec.sizes[l] * spec.sizes[l + 1]);
    return threads_for(largest, n_threads, kStepParallelMinMultiplyAdds);
}

// Forward, loss, backward. Returns the (weighted) mean loss; writes every gradient array.
// sample_weight: null, or N checked weights (loss.hpp).
// With `key`, hidden layers drop units as in training.
template <typename T>
double mlp_loss_and_gradients(Workspace<T>& ws, const ParamViews<const T*>& p,
                              const ParamViews<T*>& grad, const T* X, const T* Y,
                              const double* sample_weight, idx N, const NetSpec& spec, int n_threads,
                              const DropoutKey* key = nullptr) {
    const idx L = spec.layers();
    n_threads = step_threads(spec, N, n_threads);
    mlp_forward(ws, p, X, N, spec, n_threads, key);
    const double loss =
        output_loss_delta<T>(ws.dZ[L - 1].data(), ws.A[L - 1].data(), ws.row_loss.data(),
                             ws.Z[L - 1].data(), Y, N, spec.sizes[L], spec.loss, sample_weight, n_threads);
    bool have_db = false;  // layer l's bias gradient, summed as its delta was written
    for (idx l = L - 1; l >= 0; --l) {
        const idx I = spec.sizes[l], O = spec.sizes[l + 1];
        const T* input = l == 0 ? X : ws.A[l - 1].data();
        if (l > 0 && spec.fused_delta(l) && narrow_backward_fits(spec.hidden[l - 1].f, N, I, O, n_threads, sizeof(T) == 8)) {
            narrow_relu_backward<T>(grad.W(l), grad.b(l), ws.dZ[l - 1].data(), grad.b(l - 1), ws.dZ[l].data(),
                                    input, p.W(l), ws.stored(spec, l - 1), I, N, I, O,
                                    T(spec.hidden[l - 1].f.grad_at_zero));
            have_db = true;
            continue;
        }
        dense_backward<T>(grad.W(l), have_db ? nullptr : grad.b(l), ws.dZ[l].data(), input, N, I, O, n_threads);
        have_db = false;
        if (l == 0) break;
        if (spec.fused_delta(l))
            delta_propagate<T>(ws.dZ[l - 1].data(), ws.dZ[l].data(), p.W(l), ws.stored(spec, l - 1),
                               N, I, O, spec.hidden[l - 1].f, n_threads);
        else
            unfused_delta(ws, p, grad, l, N, spec, n_threads, key && spec.drops(l - 1));
    }
    return loss;
}

// Passes over all the rows (predictions, L-BFGS's objective, early stopping's held-out rows)
// run in blocks of at most kRowBlock rows, evened out: a block's activations stay in cache,
// where all rows at once ran twice as slow (20 000 x 30 rows, hidden (100,): 25 against 10 ms;
// 784-512-512: 1.65 against 1.50 s). Every whole-data pass uses this one partition, so they
// agree to the bit.
constexpr idx kRowBlock = 2048;

struct RowBlocks {
    idx count, size, N;
    explicit RowBlocks(idx rows) : count((rows + kRowBlock - 1) / kRowBlock), size(0), N(rows) {
        size = count > 0 ? (N + count - 1) / count : 0;
    }
    idx start(idx b) const { return b * size; }
    idx rows(idx b) const { return std::min(size, N - b * size); }
};

// The weight of N rows: their count without weights, else their weights' sum, in order.
inline double weight_total(const double* w, idx N) {
    if (!w) return double(N);
    double sum = 0.0;
    for (idx n = 0; n < N; ++n) sum += w[n];
    return sum;
}

// Block b's part of the rows' total weight `total` (w: null, or N weights with a positive sum).
// One block's share is exactly 1: its sum is the total's, taken in the same order.
inline double block_share(const RowBlocks& blocks, idx b, const double* w, double total) {
    return weight_total(w ? w + blocks.start(b) : nullptr, blocks.rows(b)) / total;
}

// mlp_loss_and_gradients over all N rows, by RowBlocks: each block's (weighted) mean loss and
// gradients count by its share of the rows' weight (one block: the one pass itself); blocks of
// no weight are skipped. `stop` is asked between blocks; true from it leaves the pass
// unfinished and returns NaN.
template <typename T, typename Stop>
double whole_loss_and_gradients(Workspace<T>& ws, const ParamViews<const T*>& p,
                                const ParamViews<T*>& grad, const T* X, const T* Y,
                                const double* w, idx N, const NetSpec& spec, int n_threads, Stop&& stop) {
    const RowBlocks blocks(N);
    ws.reserve(spec, blocks.size);
    if (blocks.count == 1) return mlp_loss_and_gradients(ws, p, grad, X, Y, w, N, spec, n_threads);
    const double total = weight_total(w, N);
    const ParamViews<T*> block_grad = ws.grad_views();
    for (idx a = 0; a < spec.arrays(); ++a) std::fill(grad.arrays[a], grad.arrays[a] + spec.array_size(a), T(0));
    double loss = 0.0;
    for (idx b = 0; b < blocks.count; ++b) {
        if (b > 0 && stop()) return std::numeric_limits<double>::quiet_NaN();
        const double share = block_share(blocks, b, w, total);
        if (share == 0) continue;
        const idx start = blocks.start(b);
        loss += share * mlp_loss_and_gradients(ws, p, block_grad, X + start * spec.sizes.front(),
                                               Y + start * spec.sizes.back(), w ? w + start : nullptr,
                                               blocks.rows(b), spec, n_threads);
        const T s = T(share);
        for (idx a = 0; a < spec.arrays(); ++a) {
            T* g = grad.arrays[a];
            const T* c = block_grad.arrays[a];
            for (idx i = 0; i < spec.array_size(a); ++i) g[i] += s * c[i];
        }
    }
    return loss;
}

}  // namespace dp
