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
// (gemm.hpp's narrow_relu_backward), to the same bits. A small network's batch runs as two
// halves of its rows, one per thread, their weight gradients summed (step_slices below).
// X is dense or CSR rows (Input below); a sparse X feeds the first layer through sparse.hpp.
#pragma once

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "dense.hpp"
#include "dropout.hpp"
#include "gather.hpp"
#include "learned.hpp"
#include "loss.hpp"
#include "sparse.hpp"

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

// The rows the first layer reads: a dense row-major array (d values a row) or CSR rows.
template <typename T>
struct Input {
    const T* dense = nullptr;  // null: `csr`
    CsrRows<T> csr;

    Input(const T* x) : dense(x) {}  // NOLINT(google-explicit-constructor): most X are dense
    Input(const CsrRows<T>& x) : csr(x) {}  // NOLINT(google-explicit-constructor)
    bool sparse() const { return dense == nullptr; }
    // Whether the first layer reads these rows from the workspace's X_batch: dense shuffled
    // rows gathered there, or sparse ones densified there (CsrRows::densified).
    bool uses_x_batch(bool shuffled) const { return sparse() ? csr.densified : shuffled; }
    // The rows from the r-th on (d: the dense rows' width).
    Input from(idx r, idx d) const { return sparse() ? Input(csr.from(r)) : Input(dense + r * d); }
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
    std::vector<std::vector<T>> half_grads;  // the second half of a step in two (step_slices)
    std::vector<double> row_loss;
    std::vector<T> X_batch, Y_batch;       // gathered rows of a shuffled batch
    std::vector<double> weight_batch;      // and their sample weights
    std::vector<idx> order;                // sample order of an epoch
    std::vector<std::uint64_t> keys;       // its shuffle keys

    // Makes the buffers fit `spec` and `n` rows; allocates only when they grow or the net changes.
    // X_batch (gathered dense rows) only when `gathers_x`: a wide sparse X would make it huge.
    void reserve(const NetSpec& spec, idx n, bool gathers_x = false) {
        if (sizes != spec.sizes || n > rows) resize(spec, n);
        const idx x_values = checked_size(rows, spec.sizes.front(), "batch");
        if (gathers_x && X_batch.size() < size_t(x_values)) X_batch.resize(size_t(x_values));
    }

    ParamViews<T*> grad_views() { return views(grads); }
    // The second half's gradients (sized here, before the step's parallel region, the first
    // time: a big network, whose steps never split in halves, never holds them).
    ParamViews<T*> half_grad_views(const NetSpec& spec) {
        if (half_grads.empty()) size_like_params(half_grads, spec);
        return views(half_grads);
    }

    std::vector<idx> first;  // the network's NetSpec::first_array

    // What f_l' reads for hidden layer l.
    const T* stored(const NetSpec& spec, idx l) const {
        return spec.keeps_z(l) ? Z[l].data() : (spec.keeps_f(l) ? F[l].data() : A[l].data());
    }

  private:
    void resize(const NetSpec& spec, idx n) {
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
        size_like_params(grads, spec);
        half_grads.clear();  // sized by the first step in two halves
        first = spec.first_array;
        row_loss.resize(n_rows);
        Y_batch.resize(checked_size(n_rows, spec.sizes.back(), "batch targets"));
        weight_batch.resize(n_rows);
        sizes = spec.sizes;
        rows = n_rows;
    }

    static void size_like_params(std::vector<std::vector<T>>& arrays, const NetSpec& spec) {
        arrays.resize(static_cast<size_t>(spec.arrays()));
        for (idx a = 0; a < spec.arrays(); ++a) arrays[a].resize(static_cast<size_t>(spec.array_size(a)));
    }
    ParamViews<T*> views(std::vector<std::vector<T>>& arrays) {
        ParamViews<T*> v;
        for (auto& g : arrays) v.arrays.push_back(g.data());
        v.first = first;
        return v;
    }
};

// Rows [first, first + N) of a workspace's per-layer buffers: a slice of a batch, whose rows run
// through the network on their own (a row's activations and deltas depend on no other row).
template <typename T>
struct RowSlice {
    Workspace<T>& ws;
    idx first = 0;

    T* Z(idx l) const { return at(ws.Z[l], l); }
    T* A(idx l) const { return at(ws.A[l], l); }
    T* F(idx l) const { return at(ws.F[l], l); }
    T* G(idx l) const { return at(ws.G[l], l); }
    T* dZ(idx l) const { return at(ws.dZ[l], l); }
    std::uint8_t* keep(idx l) const { return at(ws.keep[l], l); }
    double* row_loss() const { return ws.row_loss.data() + first; }
    // What f_l' reads for hidden layer l.
    const T* stored(const NetSpec& spec, idx l) const {
        return spec.keeps_z(l) ? Z(l) : (spec.keeps_f(l) ? F(l) : A(l));
    }

  private:
    template <typename V>
    V* at(std::vector<V>& buffer, idx l) const {
        return buffer.empty() ? nullptr : buffer.data() + first * ws.sizes[static_cast<size_t>(l + 1)];
    }
};

// Hidden layer l's dropout in training: A = D(F) over the slice's `count` values, its part of the
// batch's mask drawn from key.
template <typename T>
void drop_forward(const RowSlice<T>& s, T* A, const T* F, idx l, idx count, const NetSpec& spec,
                  const DropoutKey& key, int n_threads) {
    const LayerSpec& layer = spec.hidden[l];
    std::uint8_t* keep = s.keep(l);
    dropout_mask(keep, count, layer.dropout, dropout_stream(key.seed, key.epoch, key.batch, std::uint64_t(l)), n_threads,
                 s.first * spec.sizes[l + 1]);
    if (layer.alpha_dropout) alpha_dropout_forward<T>(A, F, keep, count, layer.dropout, n_threads);
    else dropout_forward<T>(A, F, keep, count, layer.dropout, n_threads);
}

// Sparse X's first layer: where dense_forward would write (Z and A, or only one of them),
// X W + b goes, then f. Z (kept) or the fused target is written first, A = f of it after.
template <typename T>
void sparse_layer_forward(T* Z, T* A, const CsrRows<T>& X, const T* W, const T* b, idx N, idx O,
                          const ActivationSpec& f, int n_threads) {
    T* sum = Z ? Z : A;
    sparse_forward<T>(sum, X, W, b, N, O, n_threads);
    if (A) activation_forward<T>(A, sum, N * O, f, n_threads);
}

// Layer l's Z = input W + b and, unless A is null, f(Z) (dense.hpp's dense_forward), the input
// X's rows for l == 0.
template <typename T>
void layer_forward(T* Z, T* A, const Input<T>& X, const T* input, const ParamViews<const T*>& p, idx l,
                   idx N, const NetSpec& spec, const ActivationSpec& f, int n_threads) {
    const idx I = spec.sizes[l], O = spec.sizes[l + 1];
    if (l == 0 && X.sparse()) sparse_layer_forward<T>(Z, A, X.csr, p.W(0), p.b(0), N, O, f, n_threads);
    else dense_forward<T>(Z, A, input, p.W(l), p.b(l), N, I, O, f, n_threads);
}

// The slice's N rows of X as the first layer reads them: CSR rows marked densified are written
// into the workspace's X_batch rows (reserved for them) and read from there.
template <typename T>
Input<T> layer_input(const RowSlice<T>& s, const Input<T>& X, idx N, idx d) {
    if (!X.sparse() || !X.csr.densified) return X;
    T* D = s.ws.X_batch.data() + s.first * d;
    csr_to_dense(D, X.csr, N, d);
    return Input<T>(static_cast<const T*>(D));
}

// Fills A (and Z, F where kept) for every hidden layer and Z for the output layer, for the
// slice's N rows of X. `key` (null outside training) draws the dropout masks.
template <typename T>
void mlp_forward(const RowSlice<T>& s, const ParamViews<const T*>& p, const Input<T>& X, idx N,
                 const NetSpec& spec, int n_threads, const DropoutKey* key = nullptr) {
    const idx L = spec.layers();
    const T* input = X.dense;  // (null for sparse X: layer_forward reads X.csr)
    for (idx l = 0; l < L; ++l) {
        const idx O = spec.sizes[l + 1];
        if (l == L - 1) {  // the output layer: logits only
            layer_forward<T>(s.Z(l), nullptr, X, input, p, l, N, spec, {Activation::identity}, n_threads);
            break;
        }
        const ActivationSpec& f = spec.hidden[l].f;
        T* A = s.A(l);
        if (spec.learned(l)) {  // Z, then f with its parameters
            layer_forward<T>(s.Z(l), nullptr, X, input, p, l, N, spec, f, n_threads);
            learned_forward<T>(A, s.Z(l), N, O, f, p.learned(l), n_threads);
        } else if (spec.keeps_z(l))  // Z kept for f'; f(Z) goes straight to A
            layer_forward<T>(s.Z(l), A, X, input, p, l, N, spec, f, n_threads);
        else  // fused: Z is never stored
            layer_forward<T>(nullptr, spec.keeps_f(l) ? s.F(l) : A, X, input, p, l, N, spec, f, n_threads);
        const idx count = N * O;
        const T* F = spec.keeps_f(l) ? s.F(l) : A;  // f(Z), wherever it went
        if (key && spec.drops(l)) {
            drop_forward(s, A, F, l, count, spec, *key, n_threads);
            F = A;
        }
        if (spec.residual(l) && !input) {  // a residual first layer over sparse X: A = F + X
            if (F != A) std::memcpy(A, F, sizeof(T) * static_cast<size_t>(count));
            sparse_add<T>(A, X.csr, N, O);
        } else if (spec.residual(l))
            parallel_for(count, threads_for(count, n_threads), [&](idx e) { A[e] = F[e] + input[e]; });
        else if (F != A)
            std::memcpy(A, F, sizeof(T) * static_cast<size_t>(count));  // a dropout layer predicting
        input = A;
    }
}

// The whole workspace's rows from the first.
template <typename T>
void mlp_forward(Workspace<T>& ws, const ParamViews<const T*>& p, const Input<T>& X, idx N,
                 const NetSpec& spec, int n_threads, const DropoutKey* key = nullptr) {
    const RowSlice<T> s{ws, 0};
    mlp_forward(s, p, layer_input(s, X, N, spec.sizes.front()), N, spec, n_threads, key);
}

// G_{l-1} = dZ_l W_l^T [+ G_l], then dZ_{l-1} = D'(G_{l-1}) . f'(S_{l-1}): the unfused step.
template <typename T>
void unfused_delta(const RowSlice<T>& s, const ParamViews<const T*>& p, const ParamViews<T*>& grad,
                   idx l, idx N, const NetSpec& spec, int n_threads, bool dropped) {
    const idx I = spec.sizes[l], O = spec.sizes[l + 1], count = N * I;
    T* G = s.G(l - 1);
    T* dZ = s.dZ(l - 1);
    const bool skip = spec.residual(l);
    if (skip) std::memcpy(G, s.G(l), sizeof(T) * static_cast<size_t>(count));  // I == O here
    gemm<T>(G, I, s.dZ(l), O, p.W(l), O, N, I, O, false, true, T(1), T(skip ? 1 : 0), n_threads);
    const T* dF = G;  // dC/df(Z): G through the dropout's backward, where the layer dropped
    if (dropped) {
        const LayerSpec& layer = spec.hidden[l - 1];
        const std::uint8_t* keep = s.keep(l - 1);
        if (layer.alpha_dropout) alpha_dropout_backward<T>(dZ, G, keep, count, layer.dropout, n_threads);
        else dropout_backward<T>(dZ, G, keep, count, layer.dropout, n_threads);
        dF = dZ;
    }
    const ActivationSpec& f = spec.hidden[l - 1].f;
    if (spec.learned(l - 1))  // f' and the gradients of f's parameters, from the same dF
        learned_backward<T>(dZ, grad.learned(l - 1), dF, s.Z(l - 1), N, I, f, p.learned(l - 1), n_threads);
    else
        activation_backward<T>(dZ, dF, s.stored(spec, l - 1), count, f, n_threads);
}

// Forward, loss, backward over the slice's N rows of a batch of weight batch_weight (0: these
// rows are the batch; output_loss_delta). Returns the rows' part of the batch's (weighted) mean
// loss; writes every gradient array (the sums over these rows).
template <typename T>
double slice_loss_and_gradients(const RowSlice<T>& s, const ParamViews<const T*>& p,
                                const ParamViews<T*>& grad, const Input<T>& X_rows, const T* Y,
                                const double* sample_weight, idx N, const NetSpec& spec, int n_threads,
                                const DropoutKey* key, double batch_weight) {
    const idx L = spec.layers();
    const Input<T> X = layer_input(s, X_rows, N, spec.sizes.front());
    mlp_forward(s, p, X, N, spec, n_threads, key);
    const double loss = output_loss_delta<T>(s.dZ(L - 1), s.A(L - 1), s.row_loss(), s.Z(L - 1), Y, N,
                                             spec.sizes[L], spec.loss, sample_weight, n_threads, batch_weight);
    bool have_db = false;  // layer l's bias gradient, summed as its delta was written
    for (idx l = L - 1; l >= 0; --l) {
        const idx I = spec.sizes[l], O = spec.sizes[l + 1];
        const T* input = l == 0 ? X.dense : s.A(l - 1);
        if (l > 0 && spec.fused_delta(l) && narrow_backward_fits(spec.hidden[l - 1].f, N, I, O, n_threads, sizeof(T) == 8)) {
            narrow_relu_backward<T>(grad.W(l), grad.b(l), s.dZ(l - 1), grad.b(l - 1), s.dZ(l),
                                    input, p.W(l), s.stored(spec, l - 1), I, N, I, O,
                                    T(spec.hidden[l - 1].f.grad_at_zero));
            have_db = true;
            continue;
        }
        T* db = have_db ? nullptr : grad.b(l);
        if (input) dense_backward<T>(grad.W(l), db, s.dZ(l), input, N, I, O, n_threads);
        else sparse_backward<T>(grad.W(l), db, s.dZ(l), X.csr, N, I, O, n_threads);
        have_db = false;
        if (l == 0) break;
        if (spec.fused_delta(l))
            delta_propagate<T>(s.dZ(l - 1), s.dZ(l), p.W(l), s.stored(spec, l - 1),
                               N, I, O, spec.hidden[l - 1].f, n_threads);
        else
            unfused_delta(s, p, grad, l, N, spec, n_threads, key && spec.drops(l - 1));
    }
    return loss;
}

// The largest product of a forward and backward pass over N rows, in multiply-adds.
inline idx largest_product(const NetSpec& spec, idx N) {
    idx largest = 0;
    for (idx l = 0; l < spec.layers(); ++l) largest = std::max(largest, N * spec.sizes[l] * spec.sizes[l + 1]);
    return largest;
}

// A step big enough to split its products over threads (kStepParallelMinMultiplyAdds) runs as
// one slice on n_threads. A smaller one of at least 2 kHalfStepMinRows rows runs as two halves,
// each gathered and run through the whole network on a thread of its own, the second's
// gradients then added to the first's: a half's activations and deltas never leave its core,
// only the weights and the gradients cross. On 2 cores a digits step (200 x 64 x 100) took
// ~95 against ~155 us, its whole fit 1.2-1.4x less time, where splitting each product had
// gained nothing. The split depends on the rows and the network only, so the bits do not depend
// on the thread count; on one thread the halves run in turn (the same time as one slice).
constexpr idx kHalfStepMinRows = 32;

inline idx step_slices(const NetSpec& spec, idx N) {
    return largest_product(spec, N) >= kStepParallelMinMultiplyAdds || N < 2 * kHalfStepMinRows ? 1 : 2;
}

// A batch's N rows: rows [0, N) of X, Y and the sample weights (null: none), or with `order`
// their rows order[0..N), gathered into the workspace by the thread that runs them (sparse X's
// read where they lie).
template <typename T>
struct BatchRows {
    Input<T> X;
    const T* Y;
    const double* w;
    const idx* order;
};

// The batch's weight: its row count, or its sample weights' sum in row order.
template <typename T>
double weight_of(const BatchRows<T>& batch, idx N) {
    if (!batch.w || !batch.order) return weight_total(batch.w, N);
    double sum = 0.0;
    for (idx r = 0; r < N; ++r) sum += batch.w[batch.order[r]];
    return sum;
}

// Forward, loss, backward. Returns the (weighted) mean loss; writes every gradient array.
// Sample weights: null, or N checked weights (loss.hpp). With `key`, hidden layers drop units as
// in training.
template <typename T>
double mlp_loss_and_gradients(Workspace<T>& ws, const ParamViews<const T*>& p, const ParamViews<T*>& grad,
                              const BatchRows<T>& batch, idx N, const NetSpec& spec, int n_threads,
                              const DropoutKey* key = nullptr) {
    const idx d = spec.sizes.front(), O = spec.sizes.back();
    // rows [first, first + rows) of the batch, gathered where shuffled
    auto run = [&](idx first, idx rows, const ParamViews<T*>& into, int threads, double batch_weight) {
        Input<T> X = batch.X.from(first, d);
        const T* Y = batch.Y + first * O;
        const double* w = batch.w ? batch.w + first : nullptr;
        if (batch.order) {
            if (X.sparse()) {
                X = batch.X.csr.in_order(batch.order + first);
            } else {
                gather_rows(ws.X_batch.data() + first * d, batch.X.dense, batch.order + first, rows, d);
                X = ws.X_batch.data() + first * d;
            }
            gather_rows(ws.Y_batch.data() + first * O, batch.Y, batch.order + first, rows, O);
            Y = ws.Y_batch.data() + first * O;
            if (batch.w) {
                gather_rows(ws.weight_batch.data() + first, batch.w, batch.order + first, rows, idx(1));
                w = ws.weight_batch.data() + first;
            }
        }
        return slice_loss_and_gradients(RowSlice<T>{ws, first}, p, into, X, Y, w, rows, spec, threads, key,
                                        batch_weight);
    };
    // (sparse X: one slice, as each half's first-layer gradient would span all of W_0; the
    // step's threads are the kernels' to use, its W_0-wide passes most of its work. Densified
    // rows are dense rows from here on.)
    if ((batch.X.sparse() && !batch.X.csr.densified) || step_slices(spec, N) == 1)
        return run(0, N, grad, threads_for(largest_product(spec, N), n_threads, kStepParallelMinMultiplyAdds), 0.0);
    const idx half = (N + 1) / 2;
    const double weight = weight_of(batch, N);
    const ParamViews<T*> second = ws.half_grad_views(spec);
    std::exception_ptr errors[2];  // (an exception must not leave a thread of a parallel region)
    parallel_for(2, std::min(n_threads, 2), [&](idx h) {
        try {
            run(h * half, h == 0 ? half : N - half, h == 0 ? grad : second, 1, weight);
        } catch (...) {
            errors[h] = std::current_exception();
        }
    });
    for (const std::exception_ptr& error : errors)
        if (error) std::rethrow_exception(error);
    for (idx a = 0; a < spec.arrays(); ++a) add_into(grad.arrays[a], second.arrays[a], spec.array_size(a));
    // every row's loss, summed as one slice sums it (evaluate_rows too: the same bits)
    const double* w = batch.w ? (batch.order ? ws.weight_batch.data() : batch.w) : nullptr;
    return weighted_loss(ws.row_loss.data(), w, N, weight);
}

// The batch's rows X, Y (and sample weights) as they lie.
template <typename T>
double mlp_loss_and_gradients(Workspace<T>& ws, const ParamViews<const T*>& p, const ParamViews<T*>& grad,
                              const Input<T>& X, const T* Y, const double* sample_weight, idx N,
                              const NetSpec& spec, int n_threads, const DropoutKey* key = nullptr) {
    return mlp_loss_and_gradients(ws, p, grad, BatchRows<T>{X, Y, sample_weight, nullptr}, N, spec, n_threads, key);
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
                                const ParamViews<T*>& grad, const Input<T>& X, const T* Y,
                                const double* w, idx N, const NetSpec& spec, int n_threads, Stop&& stop) {
    const RowBlocks blocks(N);
    ws.reserve(spec, blocks.size, X.uses_x_batch(false));
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
        loss += share * mlp_loss_and_gradients(ws, p, block_grad, X.from(start, spec.sizes.front()),
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
