// The epoch loop: order the samples, cut batches, forward, loss, backward, update.
// Python calls this once per epoch; everything inside runs without the GIL.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "health.hpp"
#include "mix64.hpp"
#include "mlp.hpp"
#include "optim.hpp"
#include "stopping.hpp"

namespace dp {

// The order of epoch `epoch`: argsort of key_i = mix64(seed.C1 + epoch.C2 + i), ties by index.
// The NumPy reference computes the same keys vectorised, so both backends see the same batches.
// `key` is scratch of n entries.
inline void shuffle_order(idx* order, std::uint64_t* key, idx n, std::uint64_t seed,
                          std::uint64_t epoch) {
    const std::uint64_t base = seed * kGolden + epoch * 0xC2B2AE3D27D4EB4FULL;
    for (idx i = 0; i < n; ++i) {
        key[i] = mix64(base + static_cast<std::uint64_t>(i));
        order[i] = i;
    }
    std::sort(order, order + n, [&](idx a, idx b) { return key[a] != key[b] ? key[a] < key[b] : a < b; });
}

// How often a long call asks whether to stop (Ctrl-C): often enough to feel prompt, rarely
// enough that taking the GIL to ask costs nothing measurable.
constexpr std::chrono::milliseconds kInterruptCheck{50};

// Asks `ask` (may be empty) whether to stop, between batches, once kInterruptCheck has passed
// since the call began or since it last asked. One check spans a whole call: a call of many
// short epochs asks as often as one long epoch does (a clock restarted each epoch never would).
class InterruptCheck {
  public:
    explicit InterruptCheck(std::function<bool()> ask = {}) : ask_(std::move(ask)), last_(now()) {}

    bool operator()() {
        if (!ask_ || now() - last_ <= kInterruptCheck) return false;
        const bool stop = ask_();
        last_ = now();
        return stop;
    }

  private:
    static std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }
    std::function<bool()> ask_;
    std::chrono::steady_clock::time_point last_;
};

enum class Optimizer : int { sgd, nesterov, adam };

// One epoch's settings. Learning-rate schedules are per epoch, so the caller passes this epoch's
// lr; Adam's step counter t continues across epochs (`step` is t before this epoch's first batch).
struct TrainConfig {
    Optimizer optimizer = Optimizer::sgd;
    idx batch_size = 32;
    double lr = 0.01;
    double momentum = 0.0;                        // sgd, nesterov
    double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-8;  // adam
    double alpha = 0.0;                           // L2: 1/2 alpha sum ||W||^2 / n per batch
    double clip_norm = 0.0;                       // global-norm clipping; 0: none
    bool shuffle = true;
    std::uint64_t seed = 0, epoch = 0, step = 0;
};

// L2 for one batch whose size is `n` (rows): adds (alpha / n) W to each weight gradient and
// returns the penalty 1/2 alpha sum ||W||^2 / n (scikit-learn's), summed in float64 in a fixed
// order. Biases (and learned activation parameters) are not decayed.
template <typename T>
double apply_l2(const ParamViews<const T*>& params, const ParamViews<T*>& grad, const NetSpec& spec,
                double alpha, double n, int n_threads) {
    double squares = 0;
    for (idx l = 0; l < spec.layers(); ++l) {
        const idx count = spec.array_size(spec.weight_index(l));
        squares += sum_of_squares(params.W(l), count);
        add_l2<T>(grad.W(l), params.W(l), count, alpha, n, n_threads);
    }
    return 0.5 * alpha * squares / n;
}

// One optimizer step on every parameter array. state1 is the velocity (sgd, nesterov) or Adam's
// first moment, state2 Adam's second moment; t counts Adam's steps from 1.
// With l2_size > 0, apply_l2's decay for a batch of that size is folded in first, each weight
// array's in the same pass as its step where that pass is serial (decay_and_step), and the
// penalty is returned as apply_l2 returns it; the same values as apply_l2 and then update.
template <typename T>
double update(const ParamViews<T*>& params, const ParamViews<T*>& grad, const ParamViews<T*>& state1,
              const ParamViews<T*>& state2, const NetSpec& spec, const TrainConfig& c, std::uint64_t t,
              int n_threads, double l2_size = 0) {
    const double lr_t =
        c.optimizer == Optimizer::adam ? adam_step_size(c.lr, c.beta_1, c.beta_2, double(t)) : c.lr;
    const bool decays = l2_size > 0 && c.alpha > 0;
    const T decay = decays ? T(c.alpha / l2_size) : T(0);  // add_l2's
    double squares = 0;
    for (idx a = 0; a < spec.arrays(); ++a) {
        T *p = params.arrays[a], *g = grad.arrays[a], *s1 = state1.arrays[a];
        T* s2 = c.optimizer == Optimizer::adam ? state2.arrays[a] : nullptr;  // only Adam's exists
        const idx count = spec.array_size(a);
        const bool decayed = decays && spec.is_weights(a);
        const bool serial = threads_for(count, n_threads) == 1;
        const auto step = [&](const auto& rule) {
            if (decayed && serial) {
                squares += decay_and_step(p, g, s1, s2, count, decay, rule);
                return;
            }
            if (decayed) {
                squares += sum_of_squares(p, count);
                add_l2<T>(g, p, count, c.alpha, l2_size, n_threads);
            }
            step_all(p, s1, s2, g, count, rule, n_threads);
        };
        switch (c.optimizer) {
            case Optimizer::sgd: step(SgdRule<T>{T(c.lr), T(c.momentum)}); break;
            case Optimizer::nesterov: step(NesterovRule<T>{T(c.lr), T(c.momentum)}); break;
            case Optimizer::adam: step(AdamRule<T>(T(lr_t), c.beta_1, c.beta_2, T(c.epsilon))); break;
        }
    }
    return decays ? 0.5 * c.alpha * squares / l2_size : 0.0;
}

// Sum of squares of the step update() just took on weight array W_l, from the optimizer's state
// after it (optim.hpp): sgd p += v; nesterov p += mu v - lr g; adam p += -lr_t m / (sqrt(v) + eps).
template <typename T>
double step_squares(const ParamViews<T*>& grad, const ParamViews<T*>& state1, const ParamViews<T*>& state2,
                    idx l, idx count, const TrainConfig& c, std::uint64_t t) {
    const T* g = grad.W(l);
    const T* v = state1.W(l);
    double s = 0;
    switch (c.optimizer) {
        case Optimizer::sgd: return sum_of_squares(v, count);
        case Optimizer::nesterov:
            for (idx e = 0; e < count; ++e) {
                const double step = c.momentum * double(v[e]) - c.lr * double(g[e]);
                s += step * step;
            }
            return s;
        case Optimizer::adam: {
            const double lr_t = adam_step_size(c.lr, c.beta_1, c.beta_2, double(t));
            const T* m = state1.W(l);
            const T* v2 = state2.W(l);
            for (idx e = 0; e < count; ++e) {
                const double step = lr_t * double(m[e]) / (std::sqrt(double(v2[e])) + c.epsilon);
                s += step * step;
            }
            return s;
        }
    }
    return s;
}

// What one call of train_epoch did: the mean loss over the rows it trained on, Adam's t after
// it (c.step plus the steps it took: a skipped batch takes none), and whether the caller's
// InterruptCheck stopped it early (after a whole batch: parameters are consistent).
struct EpochResult {
    double loss = 0.0;
    std::uint64_t step = 0;
    bool interrupted = false;
};

// One epoch of minibatch training over n samples, read in the order `order` (n row indices,
// each < n, checked by the caller) when it is given, else shuffled when c.shuffle. The loss is
// the epoch's mean: each batch's loss (before its update, with its L2 penalty) weighted by its
// rows, as scikit-learn's loss_curve_ does. With sample weights, a batch's weight sum takes the
// place of its row count in the L2 term (scikit-learn), and a batch whose weights are all zero
// is skipped: no step, as if its rows were absent. `interrupted` is asked between batches, so
// Ctrl-C can stop a long epoch. With `health`, each batch's gradient health (health.hpp) is
// gathered into it.
template <typename T>
EpochResult train_epoch(Workspace<T>& ws, const ParamViews<T*>& params, const ParamViews<T*>& state1,
                        const ParamViews<T*>& state2, const Input<T>& X, const T* Y,
                        const double* sample_weight, idx n, const idx* order,
                        const NetSpec& spec, const TrainConfig& c, int n_threads,
                        InterruptCheck& interrupted, HealthAccumulator* health = nullptr) {
    const idx d = spec.sizes.front(), O = spec.sizes.back();
    const idx batch = std::min(c.batch_size, n);
    const bool shuffled = order || c.shuffle;
    ws.reserve(spec, batch, X.uses_x_batch(shuffled));
    if (!order && c.shuffle) {
        ws.order.resize(static_cast<size_t>(n));
        ws.keys.resize(static_cast<size_t>(n));
        shuffle_order(ws.order.data(), ws.keys.data(), n, c.seed, c.epoch);
        order = ws.order.data();
    }
    const ParamViews<const T*> view = as_const(params);
    const ParamViews<T*> grad = ws.grad_views();
    EpochResult result;
    double total = 0.0;
    idx done = 0;
    std::uint64_t t = c.step;
    std::vector<double> w_norms(health ? size_t(spec.layers()) : 0);  // ||W_l|| before a step
    for (idx start = 0; start < n; start += batch) {
        if (interrupted()) {
            result.interrupted = true;
            break;
        }
        const idx rows = std::min(batch, n - start);
        // unshuffled batches are read in place, shuffled ones gathered by the step (sparse
        // ones read where they lie)
        const BatchRows<T> source = order ? BatchRows<T>{X, Y, sample_weight, order + start}
                                          : BatchRows<T>{X.from(start, d), Y + start * O,
                                                         sample_weight ? sample_weight + start : nullptr, nullptr};
        const double size = weight_of(source, rows);  // what the L2 term is divided by
        if (size == 0) continue;  // weights all zero: nothing to learn from these rows
        const DropoutKey key{c.seed, c.epoch, std::uint64_t(start / batch)};
        double loss = mlp_loss_and_gradients(ws, view, grad, source, rows, spec, n_threads, &key);
        // The L2 decay goes into the update's pass unless clipping or health reads the decayed
        // gradient before it.
        const bool decay_in_update = c.clip_norm <= 0 && !health;
        if (c.alpha > 0 && !decay_in_update) loss += apply_l2(view, grad, spec, c.alpha, size, n_threads);
        // health reads dC/dW itself: before clipping scales it to clip_norm
        const bool norms = health && HealthAccumulator::samples_norms(start / batch);
        if (health) health->add_batch(ws, view, grad, rows, spec, norms, n_threads);
        if (c.clip_norm > 0)
            clip_by_global_norm<T>(grad.arrays.data(), spec.array_sizes.data(), spec.arrays(), c.clip_norm, n_threads);
        if (norms)
            for (idx l = 0; l < spec.layers(); ++l)
                w_norms[size_t(l)] = l2_norm<T>(params.W(l), spec.array_size(spec.weight_index(l)));
        loss += update(params, grad, state1, state2, spec, c, ++t, n_threads, decay_in_update ? size : 0.0);
        total += double(rows) * loss;
        done += rows;
        if (norms)
            for (idx l = 0; l < spec.layers(); ++l) {
                const idx count = spec.array_size(spec.weight_index(l));
                health->add_update(l, step_squares(grad, state1, state2, l, count, c, t), w_norms[size_t(l)]);
            }
    }
    result.loss = done > 0 ? total / double(done) : 0.0;
    result.step = t;
    return result;
}

enum class Stop : int { done, plateau, diverged, interrupted };

struct EpochsResult {
    idx epochs = 0;          // epochs completed
    std::uint64_t step = 0;  // Adam's t after them (and after an interrupted epoch's batches)
    Stop stop = Stop::done;
};

// Up to `epochs` epochs in one call, for callers with nothing to do between epochs (the
// scikit-learn estimators without callbacks or verbose output): epoch e reads its rows in the
// order order_for(e) gives just before it runs (n row indices, or null for stored order: rows
// given ahead, or a shuffle drawn then, as scikit-learn's loop draws one as each epoch starts),
// at learning rate lrs[e], and its mean loss goes to losses[e]. Adam's t continues from c.step
// (each epoch from where the one before left it), the dropout epoch from c.epoch. Stops early
// after an epoch that leaves a parameter NaN or inf (`diverged`), or whose loss makes `plateau`
// say stop, or when `interrupted` (that epoch is not counted, its order was taken). With `held_out` (early stopping), the plateau is that of
// the held-out rows' score, recorded after each epoch (HeldOut::record), not of the loss. With
// `health_out` (kHealthRows x layers per epoch), each epoch's gradient health is written there.
template <typename T, typename Orders>
EpochsResult train_epochs(Workspace<T>& ws, const ParamViews<T*>& params, const ParamViews<T*>& state1,
                          const ParamViews<T*>& state2, const Input<T>& X, const T* Y,
                          const double* sample_weight, idx n, Orders&& order_for, const double* lrs,
                          double* losses, idx epochs, Plateau& plateau, const NetSpec& spec,
                          const TrainConfig& c, int n_threads, InterruptCheck& interrupted,
                          HeldOut<T>* held_out = nullptr, HealthAccumulator* health = nullptr,
                          double* health_out = nullptr) {
    EpochsResult result;
    result.step = c.step;
    TrainConfig epoch_config = c;
    for (idx e = 0; e < epochs; ++e) {
        epoch_config.lr = lrs[e];
        epoch_config.epoch = c.epoch + std::uint64_t(e);
        epoch_config.step = result.step;
        const idx* order = order_for(e);
        if (health) health->reset<T>(spec);
        const EpochResult r = train_epoch(ws, params, state1, state2, X, Y, sample_weight, n, order, spec,
                                          epoch_config, n_threads, interrupted, health);
        result.step = r.step;
        if (r.interrupted) {
            result.stop = Stop::interrupted;
            break;
        }
        if (health) health->write(health_out + e * kHealthRows * spec.layers(), spec);
        losses[e] = r.loss;
        ++result.epochs;
        bool finite = true;
        for (idx a = 0; a < spec.arrays(); ++a) finite = finite && all_finite(params.arrays[a], spec.array_size(a));
        if (!finite) {
            result.stop = Stop::diverged;
            break;
        }
        if (held_out ? held_out->record(e, params, ws, spec, plateau, n_threads) : plateau.record(r.loss)) {
            result.stop = Stop::plateau;
            break;
        }
    }
    return result;
}

}  // namespace dp
