// Parameter updates.
#pragma once

#include <algorithm>
#include <cmath>

#include "common.hpp"

namespace dp {

// SGD with momentum, in scikit-learn's convention (learning rate inside the velocity,
// sklearn/neural_network/_stochastic_optimizers.py, SGDOptimizer without Nesterov):
//   v <- momentum . v - lr . g
//   p <- p + v
// With momentum = 0 this is plain SGD, p <- p - lr . g (online training when batches are one row).
// Each optimizer's step of element e given its gradient g, as a rule that step_range (below) and
// the fused L2 pass (decay_and_step) run; the second state is Adam's alone.
template <typename T>
struct SgdRule {
    T lr, momentum;
    [[gnu::always_inline]] void operator()(T* DP_RESTRICT p, T* DP_RESTRICT v, T* DP_RESTRICT, T g, idx e) const {
        v[e] = momentum * v[e] - lr * g;
        p[e] += v[e];
    }
};

// `rule`'s step on elements [begin, end): p the parameters, s1 and s2 the rule's state.
template <typename T, typename Rule>
DP_ISA_CLONES void step_range(T* DP_RESTRICT p, T* DP_RESTRICT s1, T* DP_RESTRICT s2, const T* DP_RESTRICT g,
                              idx begin, idx end, const Rule rule) {
    for (idx e = begin; e < end; ++e) rule(p, s1, s2, g[e], e);
}

// `rule`'s step on all count elements, split over threads where that pays.
template <typename T, typename Rule>
void step_all(T* p, T* s1, T* s2, const T* g, idx count, const Rule& rule, int n_threads) {
    parallel_ranges(count, threads_for(count, n_threads),
                    [&](idx begin, idx end) { step_range(p, s1, s2, g, begin, end, rule); });
}

template <typename T>
void sgd_momentum_step(T* p, T* v, const T* g, idx count, T lr, T momentum, int n_threads) {
    step_all<T>(p, v, nullptr, g, count, SgdRule<T>{lr, momentum}, n_threads);
}

// Nesterov's accelerated gradient in scikit-learn's form (SGDOptimizer, nesterov=True;
// Sutskever et al. 2013, eq. 3-4 rewritten for the look-ahead parameters), g taken at p:
//   v <- momentum . v - lr . g
//   p <- p + momentum . v - lr . g        (with the new v)
template <typename T>
struct NesterovRule {
    T lr, momentum;
    [[gnu::always_inline]] void operator()(T* DP_RESTRICT p, T* DP_RESTRICT v, T* DP_RESTRICT, T g, idx e) const {
        v[e] = momentum * v[e] - lr * g;
        p[e] += momentum * v[e] - lr * g;
    }
};

template <typename T>
void nesterov_step(T* p, T* v, const T* g, idx count, T lr, T momentum, int n_threads) {
    step_all<T>(p, v, nullptr, g, count, NesterovRule<T>{lr, momentum}, n_threads);
}

// Adam's step size for step t (counted from 1): the bias corrections folded into lr.
inline double adam_step_size(double lr, double beta_1, double beta_2, double t) {
    return lr * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t));
}

// Adam (Kingma & Ba 2015, Algorithm 1 with section 2's efficiency note) in scikit-learn's form
// (AdamOptimizer): the bias corrections are folded into the step size lr_t, which the caller
// computes once per step with adam_step_size, t counting batches from 1;
// epsilon is added after the square root (not the paper's epsilon-hat):
//   m <- beta_1 . m + (1 - beta_1) . g
//   v <- beta_2 . v + (1 - beta_2) . g^2
//   p <- p - lr_t . m / (sqrt(v) + epsilon)
template <typename T>
struct AdamRule {
    T lr_t, keep_1, add_1, keep_2, add_2, epsilon;
    // The betas come in double so 1 - beta is taken in double and then rounded to T, as NumPy
    // and scikit-learn do with Python floats: in float32, 1 - float(0.9) is 0.100000024, not
    // float(0.1).
    AdamRule(T lr_t, double beta_1, double beta_2, T epsilon)
        : lr_t(lr_t), keep_1(T(beta_1)), add_1(T(1 - beta_1)), keep_2(T(beta_2)), add_2(T(1 - beta_2)),
          epsilon(epsilon) {}
    [[gnu::always_inline]] void operator()(T* DP_RESTRICT p, T* DP_RESTRICT m, T* DP_RESTRICT v, T g, idx e) const {
        m[e] = keep_1 * m[e] + add_1 * g;
        v[e] = keep_2 * v[e] + add_2 * (g * g);
        p[e] += (-lr_t * m[e]) / (std::sqrt(v[e]) + epsilon);
    }
};

template <typename T>
void adam_step(T* p, T* m, T* v, const T* g, idx count, T lr_t, double beta_1, double beta_2, T epsilon,
               int n_threads) {
    step_all<T>(p, m, v, g, count, AdamRule<T>(lr_t, beta_1, beta_2, epsilon), n_threads);
}

// L2 weight decay folded into a weight gradient already divided by the batch's n:
// g <- g + (alpha / n) . W, scikit-learn's (a^T delta + alpha W) / n.
template <typename T>
void add_l2(T* g, const T* W, idx count, double alpha, double n, int n_threads) {
    const T c = T(alpha / n);
    parallel_ranges(count, threads_for(count, n_threads),
                    [&](idx begin, idx end) { axpy_range(g, W, begin, end, c); });
}

// Sum of squares in float64, in a fixed order: the same sum for any thread count. Eight running
// sums over interleaved elements, added together at the end, break the chain of dependent
// additions (one per element, four cycles each) so the loop vectorises and pipelines.
template <typename T>
DP_ISA_CLONES double sum_of_squares(const T* g, idx count) {
    constexpr int kLanes = 8;
    double lane[kLanes] = {};
    idx e = 0;
    for (; e + kLanes <= count; e += kLanes)
        for (int k = 0; k < kLanes; ++k) lane[k] += double(g[e + k]) * double(g[e + k]);
    double s = 0;
    for (; e < count; ++e) s += double(g[e]) * double(g[e]);
    for (int k = 0; k < kLanes; ++k) s += lane[k];
    return s;
}

// A weight array's L2 decay and optimizer step in one pass (serial): returns the sum of squares
// of W before the step, in sum_of_squares's order, and sets g <- g + decay . W (add_l2's
// arithmetic) and takes `rule`'s step with it, element by element. The same values as
// sum_of_squares, add_l2 and the step one after the other, which read W three times.
template <typename T, typename Rule>
DP_ISA_CLONES double decay_and_step(T* DP_RESTRICT W, T* DP_RESTRICT g, T* DP_RESTRICT s1, T* DP_RESTRICT s2,
                                    idx count, T decay, const Rule rule) {
    constexpr int kLanes = 8;
    double lane[kLanes] = {};
    idx e = 0;
    for (; e + kLanes <= count; e += kLanes)
        for (int k = 0; k < kLanes; ++k) {
            lane[k] += double(W[e + k]) * double(W[e + k]);
            g[e + k] += decay * W[e + k];
            rule(W, s1, s2, g[e + k], e + k);
        }
    double s = 0;
    for (; e < count; ++e) {
        s += double(W[e]) * double(W[e]);
        g[e] += decay * W[e];
        rule(W, s1, s2, g[e], e);
    }
    for (int k = 0; k < kLanes; ++k) s += lane[k];
    return s;
}

// The global norm sqrt(sum of g^2) over every array, in double. Past ~1e154 the squares
// overflow, exactly where clipping is wanted most, so there it is m sqrt(sum of (g/m)^2) with
// m = max |g| (as LAPACK's dnrm2 scales): a second pass, on these rare steps only.
template <typename T>
double global_norm(const T* const* grads, const idx* counts, idx arrays) {
    double squares = 0;
    for (idx a = 0; a < arrays; ++a) squares += sum_of_squares(grads[a], counts[a]);
    if (std::isfinite(squares)) return std::sqrt(squares);
    double m = 0;
    for (idx a = 0; a < arrays; ++a)
        for (idx e = 0; e < counts[a]; ++e) m = std::max(m, std::fabs(double(grads[a][e])));
    if (!std::isfinite(m)) return squares;  // an infinite or NaN gradient: nothing to rescue
    double scaled = 0;
    for (idx a = 0; a < arrays; ++a)
        for (idx e = 0; e < counts[a]; ++e) scaled += (double(grads[a][e]) / m) * (double(grads[a][e]) / m);
    return m * std::sqrt(scaled);
}

// One array's norm, the same way.
template <typename T>
double l2_norm(const T* values, idx count) {
    return global_norm<T>(&values, &count, 1);
}

// Gradient clipping by global norm (Pascanu et al. 2013, algorithm 1; TensorFlow's
// clip_by_global_norm): scale = max_norm / max(norm, max_norm); g <- scale . g for every array
// when scale < 1. Returns scale: the direction is kept, the length capped.
template <typename T>
double clip_by_global_norm(T* const* grads, const idx* counts, idx arrays, double max_norm,
                           int n_threads) {
    const double scale = max_norm / std::max(global_norm<T>(grads, counts, arrays), max_norm);
    if (scale < 1.0)
        for (idx a = 0; a < arrays; ++a) {
            T* g = grads[a];
            const T s = T(scale);
            parallel_for(counts[a], threads_for(counts[a], n_threads), [&](idx e) { g[e] *= s; });
        }
    return scale;
}

}  // namespace dp
