// Gradient health (issue 6): per-layer numbers that show whether the error signal reaches the
// first layers, and whether units have died or saturated, gathered while training from the
// buffers a training step already fills. For layer l (the output layer last):
//   grad_norm      ||dC/dW_l||                 delta_norm  ||dZ_l||, the error signal at layer l
//   update_ratio   ||dW_l|| / ||W_l|| of the step the optimizer took (inf for a step from
//                  all-zero weights)
//   zero_fraction  the fraction of the layer's activations f(Z) that are exactly 0
//   dead_fraction  the fraction of units whose activation f(z) is 0 for every sample seen (a
//                  dead ReLU unit, seed 002; necro_relu's can die too: its forward is ReLU's)
//   saturated_fraction  ... whose |f'(z)| stays below 1% of f's largest derivative (seed 003's
//                  "network paralysis": a sigmoid or tanh unit pinned at 0 or 1), that 1% in
//                  the network's float type (a float32 leaky slope of 0.01 is 1%, not below)
// The fractions count every sample of the epoch. The norms are averaged over every
// kHealthNormStride-th batch (the first always): reading every weight three times per batch
// (gradient, step, weights) cost 12% of a 784-512-512-10 epoch at batch 128 and an eighth of
// that still 3%; a sixteenth is under 1%, and a mean over a spread sample of batches tells as
// much as one over all of them.
// The output layer has no activation of its own (its function belongs to the loss), so its
// three fractions are NaN.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "mlp.hpp"
#include "optim.hpp"

namespace dp {

constexpr idx kHealthNormStride = 16;

enum HealthRow : int {
    kGradNorm, kDeltaNorm, kUpdateRatio, kZeroFraction, kDeadFraction, kSaturatedFraction, kHealthRows
};

// sup |f'| of each activation: "saturated" is below 1% of it. Learned slopes: 1.
inline double derivative_max(const ActivationSpec& f) {
    switch (f.kind) {
        case Activation::sigmoid: return 0.25;
        case Activation::selu: return kSeluLambda * kSeluAlpha;  // its left limit, above lambda
        // sigma(u)(1 + u(1 - sigma(u))) peaks at u = 2.40 whatever beta scales u by
        case Activation::swish: case Activation::silu: return 1.0998393;
        case Activation::mish: return 1.0884982;  // at z = 1.19
        case Activation::leaky_relu: case Activation::elu: return std::max(1.0, f.alpha);
        case Activation::necro_relu: return std::max(1.0, f.surrogate_slope);
        default: return 1.0;
    }
}

class HealthAccumulator {
  public:
    template <typename T>
    void reset(const NetSpec& spec) {
        const idx L = spec.layers();
        for (auto* v : {&grad_, &delta_, &update_, &zeros_, &elements_}) v->assign(size_t(L), 0.0);
        top_.assign(size_t(L), {});
        live_.assign(size_t(L), {});
        thresholds_.assign(size_t(L), 0.0);
        for (idx l = 0; l + 1 < L; ++l) {
            top_[l].assign(size_t(spec.sizes[l + 1]), 0.0);
            live_[l].assign(size_t(spec.sizes[l + 1]), 0.0);
            thresholds_[l] = double(T(0.01 * derivative_max(spec.hidden[l].f)));
        }
        batches_ = 0;
    }

    // Whether batch `index` of an epoch is one whose norms are taken.
    static bool samples_norms(idx index) { return index % kHealthNormStride == 0; }

    // One batch's activation statistics, and its norms when `norms`, after its backward pass.
    template <typename T>
    void add_batch(const Workspace<T>& ws, const ParamViews<const T*>& p, const ParamViews<T*>& grad,
                   idx N, const NetSpec& spec, bool norms, int n_threads) {
        const idx L = spec.layers();
        for (idx l = 0; l < L; ++l) {
            const idx O = spec.sizes[l + 1];
            if (norms) {
                grad_[l] += l2_norm<T>(grad.W(l), spec.sizes[l] * O);  // (exploding: past 1e154 too)
                delta_[l] += l2_norm<T>(ws.dZ[l].data(), N * O);
            }
            if (l + 1 < L) add_activations(ws, p, l, N, spec, n_threads);
        }
        batches_ += norms;
    }

    // ||dW_l|| / ||W_l|| of the step just taken, from the optimizer's state after it (see
    // optim.hpp: sgd's velocity is the step; nesterov's is mu v - lr g; adam's -lr_t m/(sqrt(v)+eps))
    // and the weights' norm before it (`w_norm`). All-zero weights (a symmetric start) moved: inf,
    // not the 0 of no step.
    void add_update(idx l, double step_squares, double w_norm) {
        const double step = std::sqrt(step_squares);
        update_[l] += w_norm > 0 ? step / w_norm : step > 0 ? std::numeric_limits<double>::infinity() : 0.0;
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
            out[kDeadFraction * L + l] = hidden ? fraction_below(live_[l], 0.0) : nan;
            out[kSaturatedFraction * L + l] = hidden ? fraction_below(top_[l], thresholds_[l]) : nan;
        }
    }

  private:
    // The fraction of units whose largest |f'| stayed at or below `bound` (0: exactly 0).
    static double fraction_below(const std::vector<double>& top, double bound) {
        idx below = 0;
        for (double t : top) below += bound == 0.0 ? t == 0.0 : t < bound;
        return top.empty() ? 0.0 : double(below) / double(top.size());
    }

    // Hidden layer l: zeros of f(Z), and per unit the largest |f(z)| (alive: above 0) and the
    // largest |f'| seen (lively: at least 1% of f's maximum).
    template <typename T>
    void add_activations(const Workspace<T>& ws, const ParamViews<const T*>& p, idx l, idx N,
                         const NetSpec& spec, int n_threads) {
        const idx O = spec.sizes[l + 1];
        const T* S = ws.stored(spec, l);  // what f' reads
        // f(Z) itself: A unless a skip or a dropout changed it (then F, or from Z)
        const T* V = spec.keeps_f(l) ? ws.F[l].data()
                                     : (spec.residual(l) || spec.drops(l) ? nullptr : ws.A[l].data());
        const T* Z = spec.keeps_z(l) ? ws.Z[l].data() : nullptr;
        if (spec.learned(l)) {  // f and f' need the parameters: computed here, into scratch
            const ActivationSpec& f = spec.hidden[l].f;
            std::vector<T> values(size_t(N * O)), derivatives(size_t(N * O));
            learned_forward<T>(values.data(), Z, N, O, f, p.learned(l), n_threads);
            learned_derivative<T>(derivatives.data(), Z, N, O, f, p.learned(l), n_threads);
            add_statistics(l, N, O, n_threads, values.data(), Z, derivatives.data(), Given<T>{});
            return;
        }
        visit<T>(spec.hidden[l].f, [&](auto fn) { add_statistics(l, N, O, n_threads, V, Z, S, fn); });
    }

    // S already holding f' (a learned layer's, computed with its parameters).
    template <typename T>
    struct Given {
        T forward(T z) const { return z; }
        T derivative(T d) const { return d; }
    };

    // Over the N x O elements of hidden layer l: f(z) from V (or fn.forward(Z) when V is null)
    // and f'(z) = fn.derivative(S) (Given: S holds f' already). The units are split into
    // one contiguous range per thread, each walked row by row in plain loops over pointers that
    // the compiler vectorises, so no two threads share a maximum.
    template <typename T, typename Fn>
    void add_statistics(idx l, idx N, idx O, int n_threads, const T* V, const T* Z, const T* S, Fn fn) {
        // A float sum would be a chain of dependent additions (the compiler may not reorder
        // them); an integer count of T's width vectorises alongside the comparisons.
        using Count = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
        const int nt = threads_for(N * O, n_threads);
        std::vector<idx> zeros(size_t(nt), 0);
        double* top = top_[l].data();
        double* live = live_[l].data();
        parallel_for(nt, nt, [=, &zeros](idx part) {  // by value: nothing the loops write aliases
            const idx j0 = O * part / nt, j1 = O * (part + 1) / nt, width = j1 - j0;
            std::vector<T> largest(size_t(2 * width), T(0));
            T* DP_RESTRICT m = largest.data();  // |f'|, then |f| from m + width
            T* DP_RESTRICT v = m + width;
            const Fn f = fn;
            idx z = 0;
            for (idx n = 0; n < N; ++n) {
                const T* DP_RESTRICT s = S + n * O + j0;
                for (idx j = 0; j < width; ++j) m[j] = std::max(m[j], std::fabs(f.derivative(s[j])));
                const T* DP_RESTRICT a = V ? V + n * O + j0 : nullptr;
                const T* DP_RESTRICT zr = V ? nullptr : Z + n * O + j0;
                Count zero_count = 0;  // an integer as wide as T: vectorises with the maxima
                if (a)
                    for (idx j = 0; j < width; ++j) {
                        zero_count += Count(a[j] == T(0));
                        v[j] = std::max(v[j], std::fabs(a[j]));
                    }
                else
                    for (idx j = 0; j < width; ++j) {
                        const T value = f.forward(zr[j]);
                        zero_count += Count(value == T(0));
                        v[j] = std::max(v[j], std::fabs(value));
                    }
                z += idx(zero_count);
            }
            for (idx j = 0; j < width; ++j) {
                top[j0 + j] = std::max(top[j0 + j], double(m[j]));
                live[j0 + j] = std::max(live[j0 + j], double(v[j]));
            }
            zeros[size_t(part)] = z;
        });
        for (idx z : zeros) zeros_[l] += double(z);
        elements_[l] += double(N * O);
    }

    std::vector<double> grad_, delta_, update_, zeros_, elements_;
    std::vector<std::vector<double>> top_;   // per hidden layer and unit: the largest |f'| seen
    std::vector<std::vector<double>> live_;  // ... and the largest |f(z)|
    std::vector<double> thresholds_;        // per hidden layer: 1% of f's largest derivative
    idx batches_ = 0;
};

}  // namespace dp
