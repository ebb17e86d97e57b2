// Output layers fused with their losses (python/deltaprop/reference/loss.py is the readable twin).
//
// The loss is a weighted mean over the N rows of each row's loss, summed over the O outputs:
//     C = sum_n w_n sum_k l(z_nk, y_nk),     w_n = 1/N, or s_n / sum_m s_m with sample weights s
// (scikit-learn 1.7+'s objective with sample_weight), and the output delta is dZ_nk = w_n dl/dz_nk.
// Per output, its losses (the first is the output's own):
//   identity  squared_error    l = 1/2 r^2, r = a - y                 dl/dz = r
//             absolute_error   l = |r|                                dl/dz = sign(r), 0 at r = 0
//             huber            l = 1/2 r^2 if |r| <= delta, else delta (|r| - delta/2)
//                                                                     dl/dz = clip(r, -delta, delta)
//   sigmoid   binary_log_loss  l = softplus(z) - y z  (= -y log p - (1-y) log(1-p), stable)
//                                                                     dl/dz = p - y
//   softmax   log_loss         row: sum_k y_k (lse(z) - z_k)          dl/dz = a - y  (sum_k y_k = 1)
//   exp       poisson          l = e^z - y z + y log y - y            dl/dz = e^z - y
//             (the half Poisson deviance, scikit-learn's: 0 where e^z = y, y log y = 0 at y = 0;
//             the negative log-likelihood less log y! + y log y - y, constants of the data)
// The canonical pairs (each output's first loss) have dZ = (A - Y) w_n. Per-row losses go to
// `row_loss` and are summed in row order, so the total does not depend on threads.
// With clip_probabilities, the log losses' values clip each probability to [eps, 1 - eps] (eps
// of T) before its log, as scikit-learn's reported loss does: softmax's -log p = lse - z is
// bounded to [-log(1 - eps), -log eps]; the logistic loss is taken from the stored p, as
// scikit-learn takes it, whose 1 - p keeps only p's last digits where p nears 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "activations.hpp"
#include "common.hpp"
#include "exp_lanes.hpp"
#include "log_lanes.hpp"

namespace dp {

enum class Output : int { identity = 0, sigmoid = 1, softmax = 2, exp = 3 };
enum class Loss : int { squared_error, absolute_error, huber, binary_log_loss, log_loss, poisson };

struct LossSpec {
    Output output = Output::softmax;
    Loss loss = Loss::log_loss;
    double huber_delta = 1.0;
    // The reported value only is divided by O: scikit-learn's squared error averages over the
    // outputs while its gradient does not, and its drop-in must report the same loss curve.
    bool mean_over_outputs = false;
    // The same for its log losses' values: each probability clipped to [eps, 1 - eps] before its
    // log (a confidently wrong row reports -log eps, 36 in double, not its |z|), the logistic's
    // from the rounded p (a wrong p = 1 - 1e-13 reports log(1 - p) to only three digits, as
    // scikit-learn does); the gradients stay A - Y, as scikit-learn's do.
    bool clip_probabilities = false;
};

// The bounds of -log p for p clipped to [eps, 1 - eps], eps of T: scikit-learn's log loss.
template <typename T>
struct NegLogBounds {
    double lo = -std::log1p(-double(std::numeric_limits<T>::epsilon()));
    double hi = -std::log(double(std::numeric_limits<T>::epsilon()));
    double operator()(double v) const { return std::min(std::max(v, lo), hi); }
};

inline Loss default_loss(Output out) {
    switch (out) {
        case Output::identity: return Loss::squared_error;
        case Output::sigmoid: return Loss::binary_log_loss;
        case Output::softmax: return Loss::log_loss;
        case Output::exp: return Loss::poisson;
    }
    return Loss::squared_error;
}

// e^x in place for count values x <= 0 (or NaN), vectorised (exp_lanes.hpp).
template <typename T>
DP_ISA_CLONES void exp_nonpositive_inplace(T* DP_RESTRICT v, idx count) {
    for (idx i = 0; i < count; ++i) v[i] = exp_nonpositive(v[i]);
}

// logs[n] = log(1 + rests[n]) for rests of at least 0, vectorised (log_lanes.hpp).
DP_ISA_CLONES inline void log1ps(double* DP_RESTRICT logs, const double* DP_RESTRICT rests,
                                 idx count) {
    for (idx i = 0; i < count; ++i) logs[i] = log1p_nonnegative(rests[i]);
}

// Rows per task of the output loops: enough values for the exponentials to fill vectors.
constexpr idx kOutputRows = 32;

// Softmax of `rows` rows (at most kOutputRows): A = e^(Z - row max) / row sum, and, when
// log_sums is not null, the log of each row's sum there, for the loss −log p_k = (max − z_k) +
// log sum. Each of those terms is exact or small, where (max + log sum) − z_k cancels the max
// back out (logits of 1e16 gave 2 for log 3). The sum is 1 (the max's own term) plus the rest,
// taken in double and through log1p: rounding 1 + e^-30 first keeps only 3 of e^-30's digits in
// double, and none in float32. The exponentials and logarithms of all the rows at once: across
// rows they fill vectors however few the classes are. Each row's max is at top[n], for the loss.
template <typename T>
void softmax_rows(T* A, const T* Z, idx rows, idx O, double* log_sums, idx* top) {
    double rests[kOutputRows];
    for (idx n = 0; n < rows; ++n) {
        const T* z = Z + n * O;
        top[n] = idx(std::max_element(z, z + O) - z);
        for (idx k = 0; k < O; ++k) A[n * O + k] = z[k] - z[top[n]];  // shift: no overflow
    }
    exp_nonpositive_inplace(A, rows * O);
    for (idx n = 0; n < rows; ++n) {
        T* a = A + n * O;
        T sum = 0;
        double rest = 0.0;
        for (idx k = 0; k < O; ++k) sum += a[k];
        for (idx k = 0; log_sums && k < O; ++k) rest += k == top[n] ? 0.0 : double(a[k]);
        for (idx k = 0; k < O; ++k) a[k] /= sum;
        rests[n] = rest;
    }
    if (log_sums) log1ps(log_sums, rests, rows);
}

// The logistic output over `count` values of a block of rows: a = sigmoid(z) = 1 / (1 + e) for
// z >= 0, e / (1 + e) below, e = e^-|z| (exp_lanes.hpp); and, when term is not null, each
// value's binary log-loss softplus(z) - y z in double, as (max(z, 0) - y z) + log(1 + e)
// (log_lanes.hpp): no overflow either way, and for a label that matches a large |z| the first
// term is exactly 0 (softplus(30) - 30 kept 1.3% of e^-30's digits). Vectorised across rows,
// as one output per row (binary labels) would leave three libm calls per value (7% of a
// breast_cancer fit). With clip, the term is scikit-learn's -(y log p + (1 - y) log(1 - p)),
// p = a clipped to [eps, 1 - eps] (1 - p in double), each log as log(1/x) >= 0 (log_lanes.hpp).
template <typename T>
DP_ISA_CLONES void logistic_values(T* DP_RESTRICT a, double* DP_RESTRICT term, const T* DP_RESTRICT z,
                                   const T* DP_RESTRICT y, idx count, bool clip) {
    auto value = [&](idx i) {
        const T e = exp_nonpositive(-std::fabs(z[i]));
        a[i] = (z[i] >= T(0) ? T(1) : e) / (T(1) + e);
        return e;
    };
    if (!term) {
        for (idx i = 0; i < count; ++i) value(i);
        return;
    }
    if (clip) {
        // One loop per step: on AVX2, GCC 12 vectorises each alone, but not the clamp's selects
        // in a loop that also converts or takes the logarithms ("control flow in loop": one
        // value at a time, 8% of a breast_cancer fit on a Zen 3 core). term holds p between.
        const double eps = double(std::numeric_limits<T>::epsilon());
        for (idx i = 0; i < count; ++i) value(i);
        for (idx i = 0; i < count; ++i) term[i] = double(a[i]);
        for (idx i = 0; i < count; ++i) term[i] = std::min(std::max(term[i], eps), 1.0 - eps);
        for (idx i = 0; i < count; ++i) {
            const double p = term[i], yd = double(y[i]);
            term[i] = yd * log_from_one(1.0 / p) + (1.0 - yd) * log_from_one(1.0 / (1.0 - p));
        }
        return;
    }
    for (idx i = 0; i < count; ++i) {
        const T e = value(i);
        const double zd = double(z[i]);
        const double ed = std::is_same_v<T, double> ? double(e) : exp_nonpositive(-std::fabs(zd));
        term[i] = (std::max(zd, 0.0) - double(y[i]) * zd) + log1p_nonnegative(ed);
    }
}

// One row of the identity or exp output: a = out(z); returns the row's loss (summed over
// outputs) when y != nullptr.
template <typename T>
double output_row(T* a, const T* z, const T* y, idx O, const LossSpec& spec) {
    double loss = 0.0;
    switch (spec.output) {
        case Output::identity:
            for (idx k = 0; k < O; ++k) {
                a[k] = z[k];
                if (!y) continue;
                const double r = double(z[k]) - double(y[k]), size = std::fabs(r), d = spec.huber_delta;
                switch (spec.loss) {
                    case Loss::absolute_error: loss += size; break;
                    case Loss::huber: loss += size <= d ? 0.5 * r * r : d * (size - 0.5 * d); break;
                    default: loss += 0.5 * r * r;
                }
            }
            break;
        case Output::exp:
            for (idx k = 0; k < O; ++k) {
                a[k] = std::exp(z[k]);
                if (!y) continue;
                const double yk = double(y[k]), zk = double(z[k]);
                loss += (std::exp(zk) - yk * zk) + (yk > 0 ? yk * std::log(yk) - yk : 0.0);
            }
            break;
        case Output::sigmoid:
        case Output::softmax: break;  // output_rows
    }
    return spec.mean_over_outputs ? loss / double(O) : loss;
}

// The logistic output of `rows` rows and, with y, each row's loss (its values' terms summed in
// order of k, as output_row sums), through a stack buffer of terms.
template <typename T>
void logistic_rows(T* A, double* row_loss, const T* Z, const T* Y, idx rows, idx O, const LossSpec& spec) {
    constexpr idx kChunk = 64;
    double term[kChunk];
    const idx count = rows * O;
    if (Y) std::fill(row_loss, row_loss + rows, 0.0);
    for (idx i0 = 0; i0 < count; i0 += kChunk) {
        const idx m = std::min(kChunk, count - i0);
        logistic_values<T>(A + i0, Y ? term : nullptr, Z + i0, Y ? Y + i0 : nullptr, m,
                           spec.clip_probabilities);
        for (idx i = 0; Y && i < m; ++i) row_loss[(i0 + i) / O] += term[i];
    }
    for (idx n = 0; Y && spec.mean_over_outputs && n < rows; ++n) row_loss[n] /= double(O);
}

// `rows` rows: A = out(Z), and when Y is not null each row's loss to row_loss.
template <typename T>
void output_rows(T* A, double* row_loss, const T* Z, const T* Y, idx rows, idx O, const LossSpec& spec) {
    if (spec.output == Output::sigmoid) {
        logistic_rows<T>(A, row_loss, Z, Y, rows, O, spec);
        return;
    }
    if (spec.output != Output::softmax) {
        for (idx n = 0; n < rows; ++n) {
            const double loss = output_row<T>(A + n * O, Z + n * O, Y ? Y + n * O : nullptr, O, spec);
            if (Y) row_loss[n] = loss;
        }
        return;
    }
    idx top[kOutputRows];
    softmax_rows<T>(A, Z, rows, O, Y ? row_loss : nullptr, top);  // row_loss: log sums, for now
    static const NegLogBounds<T> bound;  // (two logarithms, once)
    for (idx n = 0; Y && n < rows; ++n) {
        const T* z = Z + n * O;
        const double zmax = double(z[top[n]]), log_sum = row_loss[n];
        double loss = 0.0;
        for (idx k = 0; k < O; ++k) {
            const double neg_log_p = (zmax - double(z[k])) + log_sum;
            loss += double(Y[n * O + k]) * (spec.clip_probabilities ? bound(neg_log_p) : neg_log_p);
        }
        row_loss[n] = spec.mean_over_outputs ? loss / double(O) : loss;
    }
}

// d = (a - y) w over count values: the canonical pairs' delta, for one row or, where every row
// has the same weight, a block of rows in one vectorised pass.
template <typename T>
DP_ISA_CLONES void scaled_differences(T* DP_RESTRICT d, const T* DP_RESTRICT a, const T* DP_RESTRICT y,
                                      idx count, T w) {
    for (idx i = 0; i < count; ++i) d[i] = (a[i] - y[i]) * w;
}

// One row's delta: dz = w dl/dz (a = out(z) already computed).
template <typename T>
void output_row_delta(T* dz, const T* a, const T* z, const T* y, idx O, const LossSpec& spec, T w) {
    const double d = spec.huber_delta;
    switch (spec.loss) {
        case Loss::absolute_error:
            for (idx k = 0; k < O; ++k) {
                const double r = double(z[k]) - double(y[k]);
                dz[k] = T(r > 0 ? 1 : (r < 0 ? -1 : 0)) * w;
            }
            break;
        case Loss::huber:
            for (idx k = 0; k < O; ++k)
                dz[k] = T(std::clamp(double(z[k]) - double(y[k]), -d, d)) * w;
            break;
        default:  // the canonical pairs
            scaled_differences(dz, a, y, O, w);
    }
}

// A = out(Z) row by row (prediction).
template <typename T>
void output_forward(T* A, const T* Z, idx N, idx O, Output out, int n_threads) {
    const int nt = threads_for(N * O, n_threads);
    LossSpec spec;
    spec.output = out;
    parallel_for((N + kOutputRows - 1) / kOutputRows, nt, [&](idx block) {  // split over rows
        const idx n0 = block * kOutputRows, rows = std::min(kOutputRows, N - n0);
        output_rows<T>(A + n0 * O, nullptr, Z + n0 * O, nullptr, rows, O, spec);
    });
}

// The weight of N rows: their count without weights, else their weights' sum, in order.
inline double weight_total(const double* w, idx N) {
    if (!w) return double(N);
    double sum = 0.0;
    for (idx n = 0; n < N; ++n) sum += w[n];
    return sum;
}

// sum_n w_n row_loss[n], in row order: w_n = 1 / weight_sum, or s_n / weight_sum (a row of weight
// 0 adds nothing, even an infinite loss).
inline double weighted_loss(const double* row_loss, const double* sample_weight, idx N, double weight_sum) {
    double total = 0.0;
    for (idx n = 0; n < N; ++n)
        if (!sample_weight) total += row_loss[n];
        else if (sample_weight[n] != 0) total += sample_weight[n] / weight_sum * row_loss[n];
    return sample_weight ? total : total / weight_sum;
}

// A = out(Z); dZ = w_n dl/dz (skipped when dZ is null); returns sum_n w_n row_loss[n].
// sample_weight: null, or N weights the caller checked (finite, >= 0, positive sum).
// batch_weight: the weight w_n divides by, when these N rows are part of a larger batch (its
// rows, or its sample weights' sum); 0 (the default): these rows' own.
template <typename T>
double output_loss_delta(T* dZ, T* A, double* row_loss, const T* Z, const T* Y, idx N, idx O,
                         const LossSpec& spec, const double* sample_weight, int n_threads,
                         double batch_weight = 0.0) {
    const double weight_sum = batch_weight > 0 ? batch_weight : weight_total(sample_weight, N);
    const int nt = threads_for(N * O, n_threads);
    const T inv_n = T(1.0 / weight_sum);  // (the unweighted rows' w_n)
    // A row of weight 0 is absent: it adds nothing to the loss and its delta is 0, even where
    // its own loss is infinite (0 times inf would be NaN).
    const bool canonical = spec.loss == default_loss(spec.output);
    parallel_for((N + kOutputRows - 1) / kOutputRows, nt, [&](idx block) {  // whole rows each
        const idx n0 = block * kOutputRows, n1 = std::min(N, n0 + kOutputRows);
        output_rows<T>(A + n0 * O, row_loss + n0, Z + n0 * O, Y + n0 * O, n1 - n0, O, spec);
        if (dZ && canonical && !sample_weight) {  // dZ = (A - Y) / N over the block at once
            scaled_differences(dZ + n0 * O, A + n0 * O, Y + n0 * O, (n1 - n0) * O, inv_n);
            return;
        }
        for (idx n = n0; dZ && n < n1; ++n) {
            const T w = sample_weight ? T(sample_weight[n] / weight_sum) : inv_n;
            if (sample_weight && sample_weight[n] == 0) std::fill(dZ + n * O, dZ + (n + 1) * O, T(0));
            else output_row_delta<T>(dZ + n * O, A + n * O, Z + n * O, Y + n * O, O, spec, w);
        }
    });
    return weighted_loss(row_loss, sample_weight, N, weight_sum);
}

}  // namespace dp
