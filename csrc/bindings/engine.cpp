// The engine behind dp.MLP: one network (layer sizes, per-layer activations, residual blocks,
// output and loss), its reusable workspace, and the three calls the model makes (forward,
// loss_and_gradients, train_epoch). Parameters and optimizer state stay NumPy arrays owned by
// Python, passed as flat lists in NetSpec's order; every call receives them, checks them, and
// works on them in place with the GIL released.
#include <cstdint>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../legacy_shuffle.hpp"
#include "../names.hpp"
#include "../train.hpp"
#include "checks.hpp"
#include "gil.hpp"
#include "process_mutex.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;

struct Named {
    py::array array;
    std::string name;
};

// args[first, last) are written in place, so each must share no memory with any other argument.
// Each argument's byte span is taken once (a training call's dozen written arrays against its
// twenty arguments took 400 spans: 1 us of the call's 8.7 us on a 13-100-3 network).
inline void require_disjoint(const std::vector<Named>& args, size_t first, size_t last) {
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> spans;
    spans.reserve(args.size());
    for (const Named& arg : args) spans.push_back(byte_span(arg.array));
    for (size_t w = first; w < last; ++w)
        for (size_t a = 0; a < args.size(); ++a)
            if (a != w && spans_overlap(spans[w], spans[a]))
                throw py::value_error(args[w].name + " must not share memory with " + args[a].name);
}

// How a call uses a list of parameter-shaped arrays: read (checked finite), updated in place
// (writeable, checked finite), or only written (writeable; its old contents do not matter).
enum class Role { read, read_write, write };

// A sequence argument (not a str), or TypeError.
inline py::sequence arg_sequence(py::handle h, const std::string& name) {
    if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h))
        throw py::type_error(name + " must be a list, got " + type_name(h));
    return py::reinterpret_borrow<py::sequence>(h);
}

// The per-hidden-layer entries of an argument that is one value for all layers or a list of
// one per layer: `per_layer(value, l)` is called for each hidden layer l.
template <typename F>
void for_each_hidden(py::handle arg, idx hidden, const std::string& name, bool is_single, F&& per_layer) {
    if (is_single) {
        for (idx l = 0; l < hidden; ++l) per_layer(arg, l);
        return;
    }
    const py::sequence seq = arg_sequence(arg, name);
    if (idx(py::len(seq)) != hidden)
        throw py::value_error(name + " has " + std::to_string(py::len(seq)) + " entries, but the network has " +
                              std::to_string(hidden) + " hidden layers");
    for (idx l = 0; l < hidden; ++l) per_layer(seq[size_t(l)], l);
}

// Arrays to scan for NaN and inf while the engine's mutex is held. A model's parameters may be
// being written by a training call in another thread, which holds the mutex while it writes:
// scanning them before taking the mutex would race those writes. The scan runs without the GIL
// (the trainer takes the GIL, holding the mutex, to check for Ctrl-C).
template <typename T>
class FiniteChecks {
  public:
    void add(const T* p, idx count, std::string name) { items_.push_back({p, count, std::move(name)}); }

    // The message for the first array with a NaN or inf, or "" when all are finite.
    std::string failure() const {
        for (const Item& item : items_) {
            std::string message = non_finite_message(item.p, item.count, item.name);
            if (!message.empty()) return message;
        }
        return {};
    }

  private:
    struct Item {
        const T* p;
        idx count;
        std::string name;
    };
    std::vector<Item> items_;
};

// The parameters of networks of these sizes, sum over layers of (I + 1) O, must be countable:
// a layer of 2**40 x 2**40 weights would overflow the engine's index type (undefined behaviour
// that UBSan caught in NetSpec::layout) long before any allocation could fail. Beyond 2**45
// parameters (256 TiB of float64, as MLP's own limit) no machine holds them: MemoryError.
inline void require_parameter_count(const std::vector<idx>& sizes) {
    constexpr idx kMaxParameters = idx(1) << 45;
    idx total = 0;
    for (size_t l = 0; l + 1 < sizes.size(); ++l) {
        const idx fan_in = sizes[l] + 1, fan_out = sizes[l + 1];  // each at most 2**40 + 1
        if (fan_in > kMaxParameters / fan_out || total + fan_in * fan_out > kMaxParameters) {
            PyErr_SetString(PyExc_MemoryError, ("layer_sizes " + shape_str(sizes) + " need more than 2**45 parameters").c_str());
            throw py::error_already_set();
        }
        total += fan_in * fan_out;
    }
}

template <typename T>
class Engine {
  public:
    Engine(const py::object& layer_sizes, const py::object& activations, const py::object& output,
           const py::object& loss, const py::object& residual, const py::object& huber_delta,
           const py::object& mean_over_outputs, const py::object& clip_probabilities,
           const py::object& dropout,
           const py::object& alpha_dropout, const py::object& n_threads) {
        const py::sequence seq = arg_sequence(layer_sizes, "layer_sizes");
        if (py::len(seq) < 2)
            throw py::value_error("layer_sizes needs at least 2 entries (inputs and outputs), got " +
                                  std::to_string(py::len(seq)));
        for (size_t l = 0; l < py::len(seq); ++l)
            spec_.sizes.push_back(idx(arg_int(seq[l], "layer_sizes[" + std::to_string(l) + "]", 1, 1LL << 40)));
        require_parameter_count(spec_.sizes);
        const idx hidden = spec_.layers() - 1;
        spec_.hidden.resize(size_t(hidden));
        const bool one_activation = py::isinstance<py::str>(activations) ||
                                    is_instance_of(activations, "deltaprop.activations", "Activation");
        for_each_hidden(activations, hidden, "activations", one_activation, [&](py::handle a, idx l) {
            spec_.hidden[l].f = activation_spec(a, 0.0, true);
        });
        if (!residual.is_none())
            for_each_hidden(residual, hidden, "residual", PyBool_Check(residual.ptr()), [&](py::handle r, idx l) {
                const std::string name = "residual[" + std::to_string(l) + "]";
                spec_.hidden[l].residual = arg_bool(r, name);
                if (spec_.hidden[l].residual && spec_.sizes[l] != spec_.sizes[l + 1])
                    throw py::value_error(name + ": a residual block adds its input to its output, so hidden layer " +
                                          std::to_string(l) + " needs as many inputs as units, got " +
                                          std::to_string(spec_.sizes[l]) + " -> " + std::to_string(spec_.sizes[l + 1]));
            });
        spec_.loss = parse_loss(arg_str(output, "output"), loss.is_none() ? "" : arg_str(loss, "loss"),
                                arg_real(huber_delta, "huber_delta"));
        spec_.loss.mean_over_outputs = arg_bool(mean_over_outputs, "loss_mean_over_outputs");
        spec_.loss.clip_probabilities = arg_bool(clip_probabilities, "loss_clip_probabilities");
        spec_.layout();
        const bool alpha = arg_bool(alpha_dropout, "alpha_dropout");
        if (!dropout.is_none())
            for_each_hidden(dropout, hidden, "dropout", !py::isinstance<py::sequence>(dropout), [&](py::handle r, idx l) {
                const std::string name = "dropout[" + std::to_string(l) + "]";
                const double rate = arg_real(r, name);
                if (!(rate >= 0 && rate < 1)) throw py::value_error(name + " must be in [0, 1), got " + std::to_string(rate));
                spec_.hidden[l].dropout = rate;
                spec_.hidden[l].alpha_dropout = alpha;
            });
        set_threads(n_threads);
    }

    void set_threads(const py::object& n) { n_threads_ = arg_threads(n); }
    int threads() const { return n_threads_; }
    std::vector<idx> sizes() const { return spec_.sizes; }

    // Output activations for the rows of X, in the whole-data passes' row blocks (mlp.hpp:
    // RowBlocks), so memory stays bounded and Ctrl-C is noticed between blocks.
    py::array forward(const py::object& params_obj, const py::object& X_obj) {
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const auto p = params<const T*>(params_obj, "params", Role::read, args, finite);
        const auto [x, N] = rows_input(X_obj, "X", args, finite);
        const idx O = spec_.sizes.back(), L = spec_.layers();
        py::array_t<T> out = new_array<T>({N, O}, "the output");
        T* a = out.mutable_data();
        const RowBlocks blocks(N);
        for (idx b = 0; b < blocks.count; ++b) {
            locked(b == 0 ? finite : FiniteChecks<T>{}, [&] {
                const int nt = resolve_threads(n_threads_);
                const idx start = blocks.start(b), rows = blocks.rows(b);
                ws_.reserve(spec_, blocks.size, x.uses_x_batch(false));
                mlp_forward(ws_, p, x.from(start, spec_.sizes.front()), rows, spec_, nt);
                output_forward<T>(a + start * O, ws_.Z[L - 1].data(), rows, O, spec_.loss.output, nt);
            });
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        }
        return std::move(out);
    }

    // loss_and_gradients' loss, to the same bits, without the gradients, and forward's output
    // activations, from forward passes alone (stopping.hpp: evaluate_rows): what early
    // stopping reads of its held-out rows every epoch.
    py::tuple evaluate(const py::object& params_obj, const py::object& X_obj, const py::object& Y_obj,
                       const py::object& weight_obj) {
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const auto p = params<const T*>(params_obj, "params", Role::read, args, finite);
        const auto [x, y, N] = data(X_obj, Y_obj, args, finite);
        const double* w = weights(weight_obj, N, args);
        py::array_t<T> out = new_array<T>({N, spec_.sizes.back()}, "the output");
        double loss = 0;
        locked(finite, [&] {
            loss = evaluate_rows(ws_, p, x, y, w, N, out.mutable_data(), spec_, resolve_threads(n_threads_));
        });
        return py::make_tuple(loss, std::move(out));
    }

    // Early stopping's score (stopping.hpp: score_outputs) of rows whose outputs are A and
    // encoded targets Y: accuracy for softmax and sigmoid outputs (1 for a classifier of one
    // class), R² for the others.
    double score(const py::object& A_obj, const py::object& Y_obj, const py::object& weight_obj,
                 bool one_class) const {
        const py::array A = as_array(A_obj, "outputs"), Y = as_array(Y_obj, "Y");
        const idx N = rows_of(A, "outputs"), O = spec_.sizes.back();
        const T* a = input<T>(A, "outputs", {N, O}, false);
        const T* y = input<T>(Y, "Y", {N, O}, false);
        std::vector<Named> args;
        const double* w = weights(weight_obj, N, args);
        ReleasedGil release;
        return score_outputs(a, y, w, N, O, spec_.loss.output, one_class);
    }

    double loss_and_gradients(const py::object& params_obj, const py::object& X_obj,
                              const py::object& Y_obj, const py::object& grads_obj,
                              const py::object& weight_obj) {
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const auto p = params<const T*>(params_obj, "params", Role::read, args, finite);
        const auto g = params<T*>(grads_obj, "grads", Role::write, args, finite);
        const auto [x, y, N] = data(X_obj, Y_obj, args, finite);
        const double* w = weights(weight_obj, N, args);
        require_disjoint(args, size_t(spec_.arrays()), size_t(2 * spec_.arrays()));
        double loss = 0;
        bool interrupted = false;
        locked(finite, [&] {
            InterruptCheck check(ask_signals);
            loss = whole_loss_and_gradients(ws_, p, g, x, y, w, N, spec_, resolve_threads(n_threads_),
                                            [&] { return interrupted = check(); });
        });
        if (interrupted) throw py::error_already_set();
        return loss;
    }

    // One epoch (train.hpp: train_epoch). Returns (its mean loss, Adam's step after it).
    py::tuple train_epoch(const py::object& params_obj, const py::object& state1_obj,
                          const py::object& state2_obj, const py::object& X_obj, const py::object& Y_obj,
                          const py::object& weight_obj, const py::object& order_obj,
                          const py::object& batch_obj, const py::object& lr_obj,
                          const py::object& momentum_obj, const py::object& shuffle_obj,
                          const py::object& seed_obj, const py::object& epoch_obj,
                          const py::object& optimizer_obj, const py::object& beta_1_obj,
                          const py::object& beta_2_obj, const py::object& epsilon_obj,
                          const py::object& alpha_obj, const py::object& clip_obj, const py::object& step_obj,
                          const py::object& health_obj) {
        TrainConfig c = config(batch_obj, momentum_obj, shuffle_obj, seed_obj, epoch_obj, optimizer_obj,
                               beta_1_obj, beta_2_obj, epsilon_obj, alpha_obj, clip_obj, step_obj);
        c.lr = arg_real(lr_obj, "lr");
        require_lr(c.lr);
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const Trainable t = trainable(params_obj, state1_obj, state2_obj, X_obj, Y_obj, weight_obj, c, args, finite);
        const idx* order = row_orders(order_obj, "order", {t.N}, t.N, args);
        require_disjoint(args, 0, t.written);
        double* health_out = health_obj.is_none() ? nullptr : health_array(health_obj, args);
        EpochResult result;
        locked(finite, [&] {
            if (health_out) health_.reset<T>(spec_);
            InterruptCheck check(ask_signals);
            result = dp::train_epoch(ws_, t.p, t.s1, t.s2, t.x, t.y, t.w, t.N, order, spec_, c,
                                     resolve_threads(n_threads_), check, health_out ? &health_ : nullptr);
            if (health_out) health_.write(health_out, spec_);
        });
        if (result.interrupted) throw py::error_already_set();
        return py::make_tuple(result.loss, result.step);
    }

    // Up to len(lrs) epochs in one call (train.hpp: train_epochs): epoch e reads the rows
    // orders[e] (None: stored order), or with shuffle_state the order drawn as it starts
    // (shuffle_from), at learning rate lrs[e] and writes its loss to losses[e] (and with
    // `health`, an (epochs, kHealthRows, layers) float64 array, its gradient health to health[e]);
    // tol, n_iter_no_change, best_loss and no_improvement_count are scikit-learn's stopping
    // rule and its state before the call. Returns (epochs completed, why it stopped: "done",
    // "plateau" or "diverged", best_loss and no_improvement_count after them, Adam's step after
    // them, the exception that interrupted it or None): the caller records the completed epochs,
    // then raises it.
    py::tuple train_epochs(const py::object& params_obj, const py::object& state1_obj,
                           const py::object& state2_obj, const py::object& X_obj, const py::object& Y_obj,
                           const py::object& weight_obj, const py::object& orders_obj,
                           const py::object& shuffle_obj, const py::object& lrs_obj,
                           const py::object& losses_obj,
                           const py::object& batch_obj, const py::object& momentum_obj,
                           const py::object& seed_obj, const py::object& epoch_obj,
                           const py::object& optimizer_obj, const py::object& beta_1_obj,
                           const py::object& beta_2_obj, const py::object& epsilon_obj,
                           const py::object& alpha_obj, const py::object& clip_obj, const py::object& step_obj,
                           const py::object& tol_obj, const py::object& patience_obj,
                           const py::object& best_obj, const py::object& count_obj,
                           const py::object& held_out_obj, const py::object& best_score_obj,
                           const py::object& health_obj) {
        const TrainConfig c = config(batch_obj, momentum_obj, py::bool_(false), seed_obj, epoch_obj, optimizer_obj,
                                     beta_1_obj, beta_2_obj, epsilon_obj, alpha_obj, clip_obj, step_obj);
        Plateau plateau;
        plateau.tol = arg_real(tol_obj, "tol");
        plateau.patience = arg_real(patience_obj, "n_iter_no_change");
        plateau.best = arg_real(best_obj, "best_loss");
        plateau.count = idx(arg_int(count_obj, "no_improvement_count", 0, std::numeric_limits<idx>::max()));
        if (!(std::isfinite(plateau.tol) && plateau.tol >= 0)) throw py::value_error("tol must be finite and >= 0");
        if (!(plateau.patience >= 1)) throw py::value_error("n_iter_no_change must be >= 1 (inf: never stop)");
        if (std::isnan(plateau.best)) throw py::value_error("best_loss must not be NaN");
        const double best_score = arg_real(best_score_obj, "best_score");
        if (std::isnan(best_score)) throw py::value_error("best_score must not be NaN");
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const Trainable t = trainable(params_obj, state1_obj, state2_obj, X_obj, Y_obj, weight_obj, c, args, finite);
        const py::array lrs_array = as_array(lrs_obj, "lrs");
        require_shape(lrs_array, "lrs", {-1});
        const idx epochs = lrs_array.shape(0);
        const double* lrs = input<double>(lrs_array, "lrs", {epochs}, false);
        for (idx e = 0; e < epochs; ++e) require_lr(lrs[e]);
        args.push_back({lrs_array, "lrs"});
        const idx* orders = row_orders(orders_obj, "orders", {epochs, t.N}, t.N, args);
        const size_t before_shuffle = args.size();
        const ShuffleState shuffle = shuffle_from(shuffle_obj, t.N, args);
        if (orders && shuffle.key) throw py::value_error("give orders or shuffle_state, not both");
        const py::array losses_array = as_array(losses_obj, "losses");
        double* losses = output<double>(losses_array, "losses", {epochs});
        args.push_back({losses_array, "losses"});
        const size_t before_held_out = args.size();
        size_t held_out_written = args.size();
        std::optional<HeldOut<T>> held_out;
        if (!held_out_obj.is_none()) {
            held_out = held_out_from(held_out_obj, epochs, args, finite, held_out_written);
            plateau.best = -best_score;  // the rule keeps the lowest value: the negated score
        }
        require_disjoint(args, 0, t.written);
        require_disjoint(args, before_shuffle, before_held_out);
        require_disjoint(args, held_out_written, args.size());
        double* health_out = nullptr;  // per epoch, kHealthRows x layers
        if (!health_obj.is_none()) {
            const py::array a = as_array(health_obj, "health");
            health_out = output<double>(a, "health", {epochs, kHealthRows, spec_.layers()});
            for (const auto& other : args) require_no_overlap(a, "health", other.array, other.name);
        }
        EpochsResult result;
        locked(finite, [&] {
            InterruptCheck check(ask_signals);
            auto run = [&](auto&& order_for) {
                result = dp::train_epochs(ws_, t.p, t.s1, t.s2, t.x, t.y, t.w, t.N, order_for, lrs, losses,
                                          epochs, plateau, spec_, c, resolve_threads(n_threads_), check,
                                          held_out ? &*held_out : nullptr, health_out ? &health_ : nullptr,
                                          health_out);
            };
            if (!shuffle.key) {
                run([&](idx e) -> const idx* { return orders ? orders + e * t.N : nullptr; });
                return;
            }
            Mt19937 mt{shuffle.key, int(*shuffle.pos)};
            struct PositionBack {  // however the call ends, the state is where its draws left it
                const Mt19937& mt;
                std::int32_t* pos;
                ~PositionBack() { *pos = std::int32_t(mt.pos); }
            } back{mt, shuffle.pos};
            run([&](idx) -> const idx* {
                legacy_shuffle(mt, shuffle.order, t.N);
                return shuffle.order;
            });
        });
        // A signal that came after the last check would otherwise surface in the caller before
        // it records these epochs: ask once more, and hand it over with them.
        py::object error = py::none();
        if (result.stop == Stop::interrupted || PyErr_CheckSignals() != 0) error = py::error_already_set().value();
        static const char* const kStops[] = {"done", "plateau", "diverged", "interrupted"};
        return py::make_tuple(result.epochs, kStops[int(result.stop)], held_out ? -plateau.best : plateau.best,
                              plateau.count, result.step, error);
    }

    // Gradient health (health.hpp) of one step on all of X: kHealthRows x layers, with the
    // update ratio of a plain SGD step of learning rate lr, the gradient that of the objective
    // with L2 penalty alpha (scikit-learn's: divided by the rows' weight, as training does).
    py::array health(const py::object& params_obj, const py::object& X_obj, const py::object& Y_obj,
                     const py::object& weight_obj, const py::object& lr_obj, const py::object& alpha_obj) {
        const double lr = arg_real(lr_obj, "lr"), alpha = arg_real(alpha_obj, "alpha");
        require_lr(lr);
        require_alpha(alpha);
        std::vector<Named> args;
        FiniteChecks<T> finite;
        const auto p = params<const T*>(params_obj, "params", Role::read, args, finite);
        const auto [x, y, N] = data(X_obj, Y_obj, args, finite);
        const double* w = weights(weight_obj, N, args);
        py::array_t<double> out = new_array<double>({kHealthRows, spec_.layers()}, "health");
        double* o = out.mutable_data();
        locked(finite, [&] {
            const int nt = resolve_threads(n_threads_);
            ws_.reserve(spec_, N, x.uses_x_batch(false));
            const ParamViews<T*> grad = ws_.grad_views();
            mlp_loss_and_gradients(ws_, p, grad, x, y, w, N, spec_, nt);
            if (alpha > 0) apply_l2(p, grad, spec_, alpha, weight_total(w, N), nt);
            health_.reset<T>(spec_);
            health_.add_batch(ws_, p, grad, N, spec_, true, nt);
            for (idx l = 0; l < spec_.layers(); ++l) {
                const idx count = spec_.array_size(spec_.weight_index(l));
                health_.add_update(l, lr * lr * sum_of_squares(grad.W(l), count), l2_norm<T>(p.W(l), count));
            }
            health_.write(o, spec_);
        });
        return std::move(out);
    }

  private:
    // The caller's (kHealthRows x layers) float64 array for an epoch's health.
    double* health_array(const py::object& obj, const std::vector<Named>& others) const {
        const py::array a = as_array(obj, "health");
        double* out = output<double>(a, "health", {kHealthRows, spec_.layers()});
        for (const auto& other : others) require_no_overlap(a, "health", other.array, other.name);
        return out;
    }

    // sample_weight: None, or N weights (checks.hpp), kept alive in `args`.
    static const double* weights(const py::object& obj, idx N, std::vector<Named>& args,
                                 const char* name = "sample_weight") {
        if (obj.is_none()) return nullptr;
        args.push_back({sample_weights(obj, N, name), name});
        return static_cast<const double*>(args.back().array.data());
    }

    // The optimizer settings shared by train_epoch and train_epochs (the learning rate is each
    // one's own).
    static TrainConfig config(const py::object& batch_obj, const py::object& momentum_obj,
                              const py::object& shuffle_obj, const py::object& seed_obj,
                              const py::object& epoch_obj, const py::object& optimizer_obj,
                              const py::object& beta_1_obj, const py::object& beta_2_obj,
                              const py::object& epsilon_obj, const py::object& alpha_obj,
                              const py::object& clip_obj, const py::object& step_obj) {
        TrainConfig c;
        // Batches larger than the data are cut to it, so any size up to the index range is fine.
        c.batch_size = idx(arg_int(batch_obj, "batch_size", 1, std::numeric_limits<idx>::max()));
        c.momentum = arg_real(momentum_obj, "momentum");
        c.shuffle = arg_bool(shuffle_obj, "shuffle");
        c.seed = arg_u64(seed_obj, "seed");
        c.epoch = arg_u64(epoch_obj, "epoch");
        require_momentum(c.momentum);
        const std::string optimizer = arg_str(optimizer_obj, "optimizer");
        if (optimizer == "sgd") c.optimizer = Optimizer::sgd;
        else if (optimizer == "nesterov") c.optimizer = Optimizer::nesterov;
        else if (optimizer == "adam") c.optimizer = Optimizer::adam;
        else throw py::value_error("unknown optimizer '" + optimizer + "'; expected 'sgd', 'nesterov' or 'adam'");
        c.beta_1 = arg_real(beta_1_obj, "beta_1");
        c.beta_2 = arg_real(beta_2_obj, "beta_2");
        c.epsilon = arg_real(epsilon_obj, "epsilon");
        c.alpha = arg_real(alpha_obj, "alpha");
        c.clip_norm = arg_real(clip_obj, "clip_norm");
        c.step = arg_u64(step_obj, "step");
        require_adam(c.beta_1, c.beta_2, c.epsilon);
        require_alpha(c.alpha);
        if (!(std::isfinite(c.clip_norm) && c.clip_norm >= 0)) throw py::value_error("clip_norm must be finite and >= 0 (0: no clipping)");
        return c;
    }

    // What a training call works on: parameters and optimizer state (written in place: they
    // are args[0, written)), data and sample weights.
    struct Trainable {
        ParamViews<T*> p, s1, s2;
        Input<T> x{nullptr};
        const T* y;
        idx N;
        const double* w;
        size_t written;
    };

    Trainable trainable(const py::object& params_obj, const py::object& state1_obj, const py::object& state2_obj,
                        const py::object& X_obj, const py::object& Y_obj, const py::object& weight_obj,
                        const TrainConfig& c, std::vector<Named>& args, FiniteChecks<T>& finite) const {
        Trainable t;
        t.p = params<T*>(params_obj, "params", Role::read_write, args, finite);
        t.s1 = params<T*>(state1_obj, "state1", Role::read_write, args, finite);
        if (c.optimizer == Optimizer::adam) {  // Adam's second moment
            if (state2_obj.is_none())
                throw py::value_error("optimizer 'adam' needs its second-moment state (state2)");
            t.s2 = params<T*>(state2_obj, "state2", Role::read_write, args, finite);
        }
        t.written = args.size();
        std::tie(t.x, t.y, t.N) = data(X_obj, Y_obj, args, finite);
        t.w = weights(weight_obj, t.N, args);
        return t;
    }

    // held_out (early stopping's rows): (X, Y, sample_weight or None, best, losses, scores,
    // one_class), best a parameter list the best epoch's parameters are copied to, losses and
    // scores float64 arrays of one entry per epoch, one_class a bool (score_outputs). args gets
    // the arrays it reads, then from `written` on those it writes.
    HeldOut<T> held_out_from(const py::object& obj, idx epochs, std::vector<Named>& args,
                             FiniteChecks<T>& finite, size_t& written) const {
        if (!py::isinstance<py::tuple>(obj) || py::len(obj) != 7)
            throw py::type_error("held_out must be a tuple (X, Y, sample_weight, best, losses, scores, "
                                 "one_class), got " + type_name(obj));
        const py::tuple parts = py::reinterpret_borrow<py::tuple>(obj);
        HeldOut<T> h;
        std::tie(h.X, h.Y, h.N) = data(parts[0], parts[1], args, finite, "held_out X", "held_out Y");
        h.w = weights(parts[2], h.N, args, "held_out sample_weight");
        written = args.size();
        h.best = params<T*>(parts[3], "held_out best", Role::write, args, finite);
        const py::array losses = as_array(parts[4], "held_out losses"), scores = as_array(parts[5], "held_out scores");
        h.losses = output<double>(losses, "held_out losses", {epochs});
        h.scores = output<double>(scores, "held_out scores", {epochs});
        args.push_back({losses, "held_out losses"});
        args.push_back({scores, "held_out scores"});
        if (!PyBool_Check(parts[6].ptr()))
            throw py::type_error("held_out one_class must be a bool, got " + type_name(parts[6]));
        h.one_class = parts[6].cast<bool>();
        return h;
    }

    // What shuffle_state gives train_epochs: an MT19937's words and position, and the row order
    // that each epoch's draw shuffles in place (all three written).
    struct ShuffleState {
        std::uint32_t* key = nullptr;
        std::int32_t* pos = nullptr;
        idx* order = nullptr;
    };

    // None, or (key, pos, order): key the 624 words (uint32), pos an int32 array of one in
    // [0, 624], order N row indices (int64, in [0, N)), N below 2^32.
    static ShuffleState shuffle_from(const py::object& obj, idx N, std::vector<Named>& args) {
        static_assert(std::is_same_v<idx, std::int64_t>, "orders are int64 arrays");
        ShuffleState state;
        if (obj.is_none()) return state;
        if (!py::isinstance<py::tuple>(obj) || py::len(obj) != 3)
            throw py::type_error("shuffle_state must be a tuple (key, pos, order), got " + type_name(obj));
        const py::tuple parts = py::reinterpret_borrow<py::tuple>(obj);
        if (N > idx(std::numeric_limits<std::uint32_t>::max()))
            throw py::value_error("shuffle_state draws orders of at most 2**32 - 1 rows, X has " + std::to_string(N));
        const py::array key = as_array(parts[0], "shuffle_state key"), pos = as_array(parts[1], "shuffle_state pos"),
                        order = as_array(parts[2], "shuffle_state order");
        state.key = output<std::uint32_t>(key, "shuffle_state key", {Mt19937::kWords});
        state.pos = output<std::int32_t>(pos, "shuffle_state pos", {1});
        state.order = output<idx>(order, "shuffle_state order", {N});
        if (*state.pos < 0 || *state.pos > Mt19937::kWords)
            throw py::value_error("shuffle_state pos must be in [0, 624], got " + std::to_string(*state.pos));
        require_rows(state.order, N, N, "shuffle_state order");
        args.push_back({key, "shuffle_state key"});
        args.push_back({pos, "shuffle_state pos"});
        args.push_back({order, "shuffle_state order"});
        return state;
    }

    // An order of rows: None, or an int64 array of `shape` whose entries are row indices in
    // [0, N) (repeats allowed: any index array is a valid sampling of the rows).
    static const idx* row_orders(const py::object& obj, const std::string& name, const std::vector<idx>& shape,
                                 idx N, std::vector<Named>& args) {
        if (obj.is_none()) return nullptr;
        const py::array a = as_array(obj, name);
        const idx* o = input<idx>(a, name, shape, false);
        require_rows(o, idx(a.size()), N, name);
        args.push_back({a, name});
        return o;
    }

    // Each of the count entries of o a row index in [0, N), or ValueError.
    static void require_rows(const idx* o, idx count, idx N, const std::string& name) {
        for (idx i = 0; i < count; ++i)
            if (o[i] < 0 || o[i] >= N)
                throw py::value_error(name + " holds row index " + std::to_string(o[i]) + " at flat index " +
                                      std::to_string(i) + "; rows are 0 to " + std::to_string(N - 1));
    }

    // Between batches of a long training call: whether Ctrl-C (or another signal's handler)
    // asks to stop. Called without the GIL, holding the engine's mutex; the handler's
    // exception stays set for the caller.
    static bool ask_signals() {
        HeldGil gil;
        return PyErr_CheckSignals() != 0;
    }

    // Runs work() holding the engine's mutex, without the GIL, after the scan for NaN and inf
    // in `finite`; a failed scan becomes a ValueError once the GIL is back, Ctrl-C while waiting
    // for another thread's call its KeyboardInterrupt, and a mutex that cannot be had (left
    // locked by fork, or held by this thread's own call) a RuntimeError (process_mutex.hpp).
    template <typename Work>
    void locked(const FiniteChecks<T>& finite, Work&& work) {
        std::string bad;
        bool interrupted = false;
        {
            ReleasedGil nogil;
            try {
                const ProcessMutex::Guard lock = mutex_.lock(ask_signals);
                bad = finite.failure();
                if (bad.empty()) work();
            } catch (const ProcessMutex::Interrupted&) {
                interrupted = true;  // (the handler's exception is set: raised with the GIL)
            }
        }
        if (interrupted) throw py::error_already_set();
        if (!bad.empty()) throw py::value_error(bad);
    }

    idx rows_of(const py::array& a, const std::string& name) const {
        require_shape(a, name, {-1, -1});
        require_nonempty(a, name);
        return a.shape(0);
    }

    // X (rows_input) and Y (N x O), checked and finite.
    std::tuple<Input<T>, const T*, idx> data(const py::object& X_obj, const py::object& Y_obj,
                                             std::vector<Named>& args, FiniteChecks<T>& finite,
                                             const char* x_name = "X", const char* y_name = "Y") const {
        const auto [x, N] = rows_input(X_obj, x_name, args, finite);
        const py::array Y = as_array(Y_obj, y_name);
        const T* y = input<T>(Y, y_name, {N, spec_.sizes.back()}, false);
        finite.add(y, Y.size(), y_name);
        args.push_back({Y, y_name});
        return {x, y, N};
    }

    // X's rows and their count: a C-contiguous N x d array, or a CSR matrix as the tuple
    // (data, indices, indptr, n_columns) of scipy's arrays and shape[1] (csr_rows). Finite.
    std::pair<Input<T>, idx> rows_input(const py::object& X_obj, const std::string& name,
                                        std::vector<Named>& args, FiniteChecks<T>& finite) const {
        if (py::isinstance<py::tuple>(X_obj)) return csr_rows(py::reinterpret_borrow<py::tuple>(X_obj), name, args, finite);
        const py::array X = as_array(X_obj, name);
        const idx N = rows_of(X, name);
        const T* x = input<T>(X, name, {N, spec_.sizes.front()}, false);
        finite.add(x, X.size(), name);
        args.push_back({X, name});
        return {Input<T>(x), N};
    }

    // A CSR matrix of the network's input width: its values (T), column indices and row starts
    // (both int32 or both int64), checked as scipy's check_format checks them, since a bad index
    // would read outside W: starts rising from 0 to at most the values' count, each stored
    // entry's column in [0, d).
    std::pair<Input<T>, idx> csr_rows(const py::tuple& parts, const std::string& name, std::vector<Named>& args,
                                      FiniteChecks<T>& finite) const {
        if (py::len(parts) != 4)
            throw py::type_error(name + " must be an array or a CSR tuple (data, indices, indptr, n_columns), got a "
                                 "tuple of " + std::to_string(py::len(parts)));
        const idx d = spec_.sizes.front();
        const idx n_columns = idx(arg_int(parts[3], name + " n_columns", 0, std::numeric_limits<idx>::max()));
        if (n_columns != d)
            throw py::value_error(name + " has " + std::to_string(n_columns) + " columns, but the network takes " +
                                  std::to_string(d) + " inputs");
        const py::array values = as_array(parts[0], name + " data"), columns = as_array(parts[1], name + " indices"),
                        starts = as_array(parts[2], name + " indptr");
        require_shape(starts, name + " indptr", {-1});
        if (starts.shape(0) < 2) throw py::value_error(name + " has no rows (indptr " + shape_str(starts) + ")");
        const idx N = starts.shape(0) - 1, stored = values.size();
        CsrRows<T> csr;
        csr.values = input<T>(values, name + " data", {stored}, false);
        const bool wide = starts.dtype().equal(py::dtype::of<std::int64_t>());
        if (!wide && !starts.dtype().equal(py::dtype::of<std::int32_t>()))
            throw py::type_error(name + " indptr must have dtype int32 or int64, got " + std::string(py::str(starts.dtype())));
        idx in_use = 0;  // the entries the rows hold: starts[N]
        const auto check = [&](auto integer) {
            using I = decltype(integer);
            const I* s = input<I>(starts, name + " indptr", {N + 1}, false);
            const I* c = input<I>(columns, name + " indices (of indptr's dtype)", {stored}, false);
            csr.starts = s;
            csr.columns = c;
            if (s[0] != 0) throw py::value_error(name + " indptr must start at 0, got " + std::to_string(s[0]));
            for (idx r = 0; r < N; ++r)
                if (s[r + 1] < s[r])
                    throw py::value_error(name + " indptr must not decrease (row " + std::to_string(r) + ")");
            if (idx(s[N]) > stored)
                throw py::value_error(name + " indptr ends at " + std::to_string(s[N]) + ", past its " +
                                      std::to_string(stored) + " stored values");
            for (idx k = 0; k < idx(s[N]); ++k)
                if (c[k] < 0 || idx(c[k]) >= d)
                    throw py::value_error(name + " holds column index " + std::to_string(c[k]) + " at entry " +
                                          std::to_string(k) + "; columns are 0 to " + std::to_string(d - 1));
            in_use = idx(s[N]);
            finite.add(csr.values, in_use, name + " data");
        };
        if (wide) check(std::int64_t{});
        else check(std::int32_t{});
        csr.wide = wide;
        csr.stored = in_use;
        csr.n_columns = d;
        // (counted in floating point: N * d may pass the index range)
        csr.densified = d <= kDensifiedMaxColumns &&
                        double(in_use) >= densified_min_density<T>(spec_.sizes[1]) * double(N) * double(d);
        args.push_back({values, name + " data"});
        args.push_back({columns, name + " indices"});
        args.push_back({starts, name + " indptr"});
        return {Input<T>(csr), N};
    }

    // Flat parameter array `a`: its layer, and its place there (0: W, 1: b, 2 + k: the k-th
    // learned parameter of the activation).
    std::pair<idx, idx> locate(idx a) const {
        idx l = spec_.layers() - 1;
        while (spec_.first_array[l] > a) --l;
        return {l, a - spec_.first_array[l]};
    }

    // The name of flat parameter array `a` in messages: what the model calls it.
    std::string array_name(const std::string& list, idx a) const {
        const auto [l, k] = locate(a);
        const std::string layer = std::to_string(l);
        const std::string what =
            k == 0 ? "coefs_[" + layer + "]"
                   : k == 1 ? "intercepts_[" + layer + "]"
                            : "activation_params_[" + layer + "]['" + learned_param_name(spec_.hidden[l].f, int(k - 2)) + "']";
        return list + "[" + std::to_string(a) + "] (" + what + ")";
    }

    std::vector<idx> array_shape(idx a) const {
        const auto [l, k] = locate(a);
        if (k == 0) return {spec_.sizes[l], spec_.sizes[l + 1]};
        return {spec_.array_size(a)};
    }

    // Views of one flat list of parameter-shaped arrays, checked against the network and for
    // `role` (P is T* for the written roles); the arrays are appended to `keep` so they outlive
    // the GIL-free section.
    template <typename P>
    ParamViews<P> params(const py::object& list, const std::string& name, Role role,
                         std::vector<Named>& keep, FiniteChecks<T>& finite) const {
        const py::sequence seq = arg_sequence(list, name);
        if (idx(py::len(seq)) != spec_.arrays())
            throw py::value_error(name + " has " + std::to_string(py::len(seq)) + " arrays, but the network has " +
                                  std::to_string(spec_.arrays()) +
                                  " (per layer: weights, biases, then its activation's learned parameters)");
        ParamViews<P> v;
        v.first = spec_.first_array;
        for (idx a = 0; a < spec_.arrays(); ++a) {
            const std::string an = array_name(name, a);
            const py::array arr = as_array(seq[size_t(a)], an);
            const std::vector<idx> shape = array_shape(a);
            if constexpr (!std::is_const_v<std::remove_pointer_t<P>>) {
                v.arrays.push_back(output<T>(arr, an, shape));
                if (role == Role::read_write) finite.add(v.arrays.back(), arr.size(), an);
            } else {
                v.arrays.push_back(input<T>(arr, an, shape, false));
                finite.add(v.arrays.back(), arr.size(), an);
            }
            keep.push_back({arr, an});
        }
        return v;
    }

    NetSpec spec_;
    Workspace<T> ws_;
    HealthAccumulator health_;
    int n_threads_ = 0;
    ProcessMutex mutex_;  // one call at a time per engine: the workspace is shared state
};

template <typename T>
void bind_engine_for(py::module_& m, const char* name) {
    py::class_<Engine<T>>(m, name, "Workspace and kernels for one network (internal; use deltaprop.MLP).")
        .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                      const py::object&, const py::object&, const py::object&, const py::object&,
                      const py::object&, const py::object&, const py::object&>(),
             "layer_sizes"_a, "activations"_a = "relu", "output"_a = "softmax", "loss"_a = py::none(),
             py::kw_only(), "residual"_a = py::none(), "huber_delta"_a = 1.0,
             "loss_mean_over_outputs"_a = false, "loss_clip_probabilities"_a = false,
             "dropout"_a = py::none(), "alpha_dropout"_a = false, "n_threads"_a = 0)
        .def_property("n_threads", &Engine<T>::threads, &Engine<T>::set_threads)
        .def_property_readonly("layer_sizes", &Engine<T>::sizes)
        .def("forward", &Engine<T>::forward, "params"_a, "X"_a)
        .def("evaluate", &Engine<T>::evaluate, "params"_a, "X"_a, "Y"_a, "sample_weight"_a = py::none())
        .def("score", &Engine<T>::score, "outputs"_a, "Y"_a, "sample_weight"_a = py::none(),
             "one_class"_a = false)
        .def("loss_and_gradients", &Engine<T>::loss_and_gradients, "params"_a, "X"_a, "Y"_a, "grads"_a,
             "sample_weight"_a = py::none())
        .def("train_epoch", &Engine<T>::train_epoch, "params"_a, "state1"_a, "state2"_a, "X"_a, "Y"_a,
             "sample_weight"_a = py::none(), py::kw_only(), "order"_a = py::none(), "batch_size"_a, "lr"_a, "momentum"_a = 0.0, "shuffle"_a = true, "seed"_a = 0,
             "epoch"_a = 0, "optimizer"_a = "sgd", "beta_1"_a = 0.9, "beta_2"_a = 0.999, "epsilon"_a = 1e-8,
             "alpha"_a = 0.0, "clip_norm"_a = 0.0, "step"_a = 0, "health"_a = py::none())
        .def("train_epochs", &Engine<T>::train_epochs, "params"_a, "state1"_a, "state2"_a, "X"_a, "Y"_a,
             "sample_weight"_a = py::none(), py::kw_only(), "orders"_a = py::none(),
             "shuffle_state"_a = py::none(), "lrs"_a, "losses"_a,
             "batch_size"_a, "momentum"_a = 0.0, "seed"_a = 0, "epoch"_a = 0, "optimizer"_a = "sgd",
             "beta_1"_a = 0.9, "beta_2"_a = 0.999, "epsilon"_a = 1e-8, "alpha"_a = 0.0, "clip_norm"_a = 0.0,
             "step"_a = 0, "tol"_a = 0.0, "n_iter_no_change"_a = std::numeric_limits<double>::infinity(),
             "best_loss"_a = std::numeric_limits<double>::infinity(), "no_improvement_count"_a = 0,
             "held_out"_a = py::none(), "best_score"_a = -std::numeric_limits<double>::infinity(),
             "health"_a = py::none())
        .def("health", &Engine<T>::health, "params"_a, "X"_a, "Y"_a, "sample_weight"_a = py::none(),
             "lr"_a = 0.01, "alpha"_a = 0.0);
}

}  // namespace

void bind_engine(py::module_& m) {
    bind_engine_for<float>(m, "Engine_float32");
    bind_engine_for<double>(m, "Engine_float64");
}

}  // namespace dp::bind
