// Gradient health (issue 6): per-layer numbers that show whether the error signal reaches the
// first layers, and whether units have died or saturated, gathered while training from the
// buffers a training step already fills. For layer l (the output layer last):
//   grad_norm      ||dC/dW_l||                 delta_norm  ||dZ_l||, the error signal at layer l
//   update_ratio   ||dW_l|| / ||W_l|| of the step the optimizer took
//   zero_fraction  the fraction of the layer's activations f(Z) that are exactly 0
//   dead_fraction  the fraction of units whose derivative f'(z) is 0 for every sample seen
//   saturated_fraction  ... whose |f'(z)| stays below 1% of f's largest derivative (seed 002's
//                  "network paralysis": a sigmoid or tanh unit pinned at 0 or 1)
// Norms are averaged over the epoch's batches; the fractions count every sample of the epoch.
// The output layer has no activation of its own (its function belongs to the loss), so its
// three fractions are NaN.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "mlp.hpp"
#include "optim.hpp"

namespace dp {

enum HealthRow : int {
    kGradNorm, kDeltaNorm, kUpdateRatio, kZeroFraction, kDeadFraction, kSaturatedFraction, kHealthRows
};

// sup |f'| of each activation: "saturated" is below 1% of it. Unbounded or learned slopes: 1.
inline double derivative_max(const ActivationSpec& f) {
    switch (f.kind) {
        case Activation::sigmoid: return 0.25;
        case Activation::selu: return kSeluLambda * kSeluAlpha;  // its left limit, above lambda
        default: return 1.0;
    }
}

class HealthAccumulator {
  public:
    void reset(const NetSpec& spec) {
        const idx L = spec.layers();
        for (auto* v : {&grad_, &delta_, &update_, &zeros_, &elements_}) v->assign(size_t(L), 0.0);
        alive_.assign(size_t(L), {});
        lively_.assign(size_t(L), {});
        for (idx l = 0; l + 1 < L; ++l) {
            alive_[l].assign(size_t(spec.sizes[l + 1]), 0);
            lively_[l].assign(size_t(spec.sizes[l + 1]), 0);
        }
        batches_ = 0;
    }

    // One batch's norms and activation statistics, after its backward pass.
    template <typename T>
    void add_batch(const Workspace<T>& ws, const ParamViews<T*>& grad, idx N, const NetSpec& spec,
                   int n_threads) {
        const idx L = spec.layers();
        for (idx l = 0; l < L; ++l) {
            const idx O = spec.sizes[l + 1];
            grad_[l] += std::sqrt(sum_of_squares(grad.W(l), spec.sizes[l] * O));
            delta_[l] += std::sqrt(sum_of_squares(ws.dZ[l].data(), N * O));
            if (l + 1 < L) add_activations(ws, l, N, spec, n_threads);
        }
        ++batches_;
    }

    // ||dW_l|| / ||W_l|| of the step just taken, from the optimizer's state after it (see
    // optim.hpp: sgd's velocity is the step; nesterov's is mu v - lr g; adam's -lr_t m/(sqrt(v)+eps)).
    template <typename T>
    void add_update(idx l, double step_squares, const T* W, idx count) {
        const double w = std::sqrt(sum_of_squares(W, count));
        update_[l] += w > 0 ? std::sqrt(step_squares) / w : 0.0;
    }

    // kHealthRows x L values, row-major, into `out`.
    void write(double* out, const NetSpec& spec) const {
        const idx L = spec.layers();
        const double nan = std::numeric_limits<double>::quiet_NaN(), b = double(std::max<idx>(batches_, 1));
        for (idx l = 0; l < L; ++l) {
            const bool hidden = l + 1 < L;
            out[kGradNorm * L + l] = grad_[l] / b;
            out[kDeltaNorm * L + l] = delta_[l] / b;
            out[kUpdateRatio * L + l] = update_[l] / b;
            out[kZeroFraction * L + l] = hidden && elements_[l] > 0 ? zeros_[l] / elements_[l] : nan;
            out[kDeadFraction * L + l] = hidden ? fraction_of_zeros(alive_[l]) : nan;
            out[kSaturatedFraction * L + l] = hidden ? fraction_of_zeros(lively_[l]) : nan;
        }
    }

  private:
    static double fraction_of_zeros(const std::vector<std::uint8_t>& flags) {
        idx zeros = 0;
        for (auto f : flags) zeros += f == 0;
        return flags.empty() ? 0.0 : double(zeros) / double(flags.size());
    }

    // Hidden layer l: zeros of f(Z), and per unit whether f' was ever nonzero (alive) or ever
    // at least 1% of its maximum (lively). Split over units, so no two threads share a flag.
    template <typename T>
    void add_activations(const Workspace<T>& ws, idx l, idx N, const NetSpec& spec, int n_threads) {
        const idx O = spec.sizes[l + 1];
        const ActivationSpec& f = spec.hidden[l].f;
        const T* S = ws.stored(spec, l);  // what f' reads
        // f(Z) itself: A unless a residual block added its input to it (then F, or from Z)
        const T* V = spec.keeps_f(l) ? ws.F[l].data() : (spec.residual(l) ? nullptr : ws.A[l].data());
        const T* Z = spec.keeps_z(l) ? ws.Z[l].data() : nullptr;
        const T threshold = T(0.01 * derivative_max(f));
        std::vector<idx> zeros(size_t(O), 0);
        std::uint8_t* alive = alive_[l].data();
        std::uint8_t* lively = lively_[l].data();
        visit<T>(f, [&](auto fn) {
            parallel_for(O, threads_for(N * O, n_threads), [&](idx j) {
                idx z = 0;
                for (idx n = 0; n < N; ++n) {
                    const idx e = n * O + j;
                    const T value = V ? V[e] : fn.forward(Z[e]);
                    const T d = std::fabs(fn.derivative(S[e]));
                    z += value == T(0);
                    alive[j] |= d != T(0);
                    lively[j] |= d >= threshold;
                }
                zeros[size_t(j)] = z;
            });
        });
        for (idx j = 0; j < O; ++j) zeros_[l] += double(zeros[size_t(j)]);
        elements_[l] += double(N * O);
    }

    std::vector<double> grad_, delta_, update_, zeros_, elements_;
    std::vector<std::vector<std::uint8_t>> alive_, lively_;
    idx batches_ = 0;
};

}  // namespace dp
