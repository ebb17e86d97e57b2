// scikit-learn's stopping rules (BaseMultilayerPerceptron._update_no_improvement_count): the
// plateau of the training loss, or with early stopping, of a score on held-out rows, whose look
// after each epoch (their loss, their score, the parameters of the best score so far) is here.
//
// The score is scikit-learn's _score, read from the network's outputs in their encoding:
// accuracy for softmax outputs (a row is right when its largest output, the first of equals or
// the first NaN as np.argmax takes it, is its class) and for sigmoid outputs (each output above
// 0.5 reads as 1; a multilabel row is right when all its labels are), the coefficient of
// determination R² averaged over the outputs for identity and exp outputs (1 for exact
// predictions, 0 where only the targets are constant, NaN once a prediction is not finite).
// A classifier of one class predicts it whatever its output (LabelBinarizer's inverse), so
// every row is right: its accuracy is 1, not the sigmoid output read against the all-0 targets.
// It is summed in double, row by row: a weighted score may differ from scikit-learn's NumPy
// sums in its last bits, an unweighted accuracy (a count over N) does not.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "mlp.hpp"

namespace dp {

// An epoch whose value (the training loss, or a negated score) is not below best - tol adds to
// the count, any other resets it; training stops once the count exceeds `patience`
// (n_iter_no_change, which may be infinite). A NaN compares false both ways, as in
// scikit-learn.
struct Plateau {
    double tol = 0.0, patience = 0.0;
    double best = std::numeric_limits<double>::infinity();
    idx count = 0;
    bool improved = false;  // the last value recorded was a new best

    // Records one epoch's value; true when training should stop.
    bool record(double value) {
        if (value > best - tol) ++count;
        else count = 0;
        improved = value < best;
        if (improved) best = value;
        return double(count) > patience;
    }
};

// The mean loss of N rows (sample weights w, or null) and their output activations A (N x O),
// from forward passes over the whole-data passes' row blocks (mlp.hpp: RowBlocks): the loss of
// whole_loss_and_gradients to the same bits, without its backward pass.
template <typename T>
double evaluate_rows(Workspace<T>& ws, const ParamViews<const T*>& p, const Input<T>& X, const T* Y,
                     const double* w, idx N, T* A, const NetSpec& spec, int n_threads) {
    const idx O = spec.sizes.back(), L = spec.layers();
    const RowBlocks blocks(N);
    const double total = weight_total(w, N);
    ws.reserve(spec, blocks.size, X.uses_x_batch(false));
    double loss = 0.0;
    for (idx b = 0; b < blocks.count; ++b) {
        const idx start = blocks.start(b), rows = blocks.rows(b);
        mlp_forward(ws, p, X.from(start, spec.sizes.front()), rows, spec, n_threads);
        // (a block of no weight has mean 0 here: with no gradient asked, nothing divides by
        // its weights' sum)
        const double mean = output_loss_delta<T>(nullptr, A + start * O, ws.row_loss.data(), ws.Z[L - 1].data(),
                                                 Y + start * O, rows, O, spec.loss, w ? w + start : nullptr, n_threads);
        loss += block_share(blocks, b, w, total) * mean;
    }
    return loss;
}

// np.argmax of a row: the first largest value, or the first NaN.
template <typename T>
idx first_argmax(const T* a, idx count) {
    idx best = 0;
    for (idx k = 0; k < count && !std::isnan(a[best]); ++k)
        if (std::isnan(a[k]) || a[k] > a[best]) best = k;
    return best;
}

template <typename T>
bool row_right(const T* a, const T* y, idx O, Output out) {
    if (out == Output::softmax) return first_argmax(a, O) == first_argmax(y, O);
    for (idx k = 0; k < O; ++k)
        if ((a[k] > T(0.5)) != (y[k] > T(0.5))) return false;
    return true;
}

// R² of each output column, averaged (scikit-learn's r2_score, multioutput="uniform_average").
template <typename T>
double r2_outputs(const T* A, const T* Y, const double* w, idx N, idx O) {
    if (N < 2) return std::numeric_limits<double>::quiet_NaN();
    for (idx e = 0; e < N * O; ++e)
        if (!std::isfinite(A[e])) return std::numeric_limits<double>::quiet_NaN();
    const double weight_sum = weight_total(w, N);
    double score_sum = 0.0;
    for (idx k = 0; k < O; ++k) {
        double mean = 0.0, numerator = 0.0, denominator = 0.0;
        for (idx n = 0; n < N; ++n) mean += (w ? w[n] : 1.0) * double(Y[n * O + k]);
        mean /= weight_sum;
        for (idx n = 0; n < N; ++n) {
            const double wn = w ? w[n] : 1.0, y = double(Y[n * O + k]);
            const double miss = y - double(A[n * O + k]), spread = y - mean;
            numerator += wn * (miss * miss);
            denominator += wn * (spread * spread);
        }
        score_sum += numerator == 0 ? 1.0 : denominator == 0 ? 0.0 : 1.0 - numerator / denominator;
    }
    return score_sum / double(O);
}

// scikit-learn's early-stopping score of N rows with outputs A and encoded targets Y, of a
// classifier of one class when `one_class` (above).
template <typename T>
double score_outputs(const T* A, const T* Y, const double* w, idx N, idx O, Output out, bool one_class) {
    if (out == Output::identity || out == Output::exp) return r2_outputs(A, Y, w, N, O);
    double right = 0.0, total = 0.0;
    for (idx n = 0; n < N; ++n) {
        const double wn = w ? w[n] : 1.0;
        total += wn;
        if (one_class || row_right(A + n * O, Y + n * O, O, out)) right += wn;
    }
    return right / total;
}

// The held-out rows of an early-stopping fit and what each epoch leaves of them.
template <typename T>
struct HeldOut {
    Input<T> X{nullptr};
    const T* Y;
    const double* w;   // null: every row weighs 1
    idx N;
    ParamViews<T*> best;  // the parameters of the best score so far, copied there
    double* losses;       // per epoch of the call: the rows' loss, and their score
    double* scores;
    bool one_class = false;  // a classifier of one class (score_outputs)
    std::vector<T> outputs;

    // After an epoch: its loss and score go to entry e; `plateau` records the score (negated:
    // its rule keeps the lowest value) and the parameters are copied where it improved.
    // True when training should stop.
    bool record(idx e, const ParamViews<T*>& params, Workspace<T>& ws, const NetSpec& spec,
                Plateau& plateau, int n_threads) {
        const idx O = spec.sizes.back();
        outputs.resize(size_t(N * O));
        losses[e] = evaluate_rows(ws, as_const(params), X, Y, w, N, outputs.data(), spec, n_threads);
        scores[e] = score_outputs(outputs.data(), Y, w, N, O, spec.loss.output, one_class);
        const bool stop = plateau.record(-scores[e]);
        if (plateau.improved)
            for (idx a = 0; a < spec.arrays(); ++a)
                std::memcpy(best.arrays[a], params.arrays[a], sizeof(T) * size_t(spec.array_size(a)));
        return stop;
    }
};

}  // namespace dp
