// The engine behind dp.MLP: one network shape and activation, its reusable workspace, and the
// three calls the model makes (forward, loss_and_gradients, train_epoch). Parameters and optimizer
// state stay NumPy arrays owned by Python; every call receives them, checks them, and works on
// them in place with the GIL released.
#include <limits>
#include <mutex>
#include <type_traits>

#include "../names.hpp"
#include "../train.hpp"
#include "checks.hpp"

namespace dp::bind {
namespace {

using namespace pybind11::literals;

struct Named {
    py::array array;
    std::string name;
};

// args[first, last) are written in place, so each must share no memory with any other argument.
inline void require_disjoint(const std::vector<Named>& args, size_t first, size_t last) {
    for (size_t w = first; w < last; ++w)
        for (size_t a = 0; a < args.size(); ++a)
            if (a != w) require_no_overlap(args[w].array, args[w].name, args[a].array, args[a].name);
}

// How a call uses a list of parameter-shaped arrays: read (checked finite), updated in place
// (writeable, checked finite), or only written (writeable; its old contents do not matter).
enum class Role { read, read_write, write };

template <typename T>
class Engine {
  public:
    Engine(const py::object& layer_sizes, const py::object& activation, const py::object& grad_at_zero,
           const py::object& output, const py::object& n_threads) {
        if (!py::isinstance<py::sequence>(layer_sizes) || py::isinstance<py::str>(layer_sizes))
            throw py::type_error("layer_sizes must be a sequence of integers, got " + type_name(layer_sizes));
        const auto seq = py::reinterpret_borrow<py::sequence>(layer_sizes);
        if (py::len(seq) < 2)
            throw py::value_error("layer_sizes needs at least 2 entries (inputs and outputs), got " +
                                  std::to_string(py::len(seq)));
        for (size_t l = 0; l < py::len(seq); ++l)  // sizes up to 2**40: products stay in range
            spec_.sizes.push_back(idx(arg_int(seq[l], "layer_sizes[" + std::to_string(l) + "]", 1, 1LL << 40)));
        spec_.hidden = activation_spec(activation, arg_real(grad_at_zero, "grad_at_zero"));
        spec_.output = parse_output(arg_str(output, "output"));
        set_threads(n_threads);
    }

    void set_threads(const py::object& n) { n_threads_ = arg_threads(n); }
    int threads() const { return n_threads_; }
    std::vector<idx> sizes() const { return spec_.sizes; }

    // Output activations for the rows of X, computed in row chunks so memory stays bounded.
    py::array forward(const py::sequence& coefs, const py::sequence& intercepts, const py::object& X_obj) {
        std::vector<Named> args;
        const auto p = params<const T*>(coefs, intercepts, "coefs_", "intercepts_", Role::read, args);
        const py::array X = as_array(X_obj, "X");
        const idx N = rows_of(X, "X");
        const T* x = input<T>(X, "X", {N, spec_.sizes.front()}, true);
        const idx O = spec_.sizes.back(), L = spec_.layers();
        py::array_t<T> out(std::vector<py::ssize_t>{N, O});
        T* a = out.mutable_data();
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mutex_);
        const int nt = resolve_threads(n_threads_);
        constexpr idx kChunk = 1024;
        ws_.reserve(spec_, std::min(N, kChunk));
        for (idx start = 0; start < N; start += kChunk) {
            const idx rows = std::min(kChunk, N - start);
            mlp_forward(ws_, p, x + start * spec_.sizes.front(), rows, spec_, nt);
            output_forward<T>(a + start * O, ws_.Z[L - 1].data(), rows, O, spec_.output, nt);
        }
        return std::move(out);
    }

    double loss_and_gradients(const py::sequence& coefs, const py::sequence& intercepts,
                              const py::object& X_obj, const py::object& Y_obj,
                              const py::sequence& dcoefs, const py::sequence& dintercepts) {
        std::vector<Named> args;
        const auto p = params<const T*>(coefs, intercepts, "coefs_", "intercepts_", Role::read, args);
        const auto g = params<T*>(dcoefs, dintercepts, "dcoefs", "dintercepts", Role::write, args);
        const auto [x, y, N] = data(X_obj, Y_obj, args);
        require_disjoint(args, 2 * spec_.layers(), 4 * spec_.layers());
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mutex_);
        ws_.reserve(spec_, N);
        return mlp_loss_and_gradients(ws_, p, g, x, y, N, spec_, resolve_threads(n_threads_));
    }

    double train_epoch(const py::sequence& coefs, const py::sequence& intercepts,
                       const py::sequence& vcoefs, const py::sequence& vintercepts,
                       const py::object& X_obj, const py::object& Y_obj, const py::object& batch_obj,
                       const py::object& lr_obj, const py::object& momentum_obj,
                       const py::object& shuffle_obj, const py::object& seed_obj,
                       const py::object& epoch_obj, const py::object& optimizer_obj,
                       const py::object& beta_1_obj, const py::object& beta_2_obj,
                       const py::object& epsilon_obj, const py::object& alpha_obj,
                       const py::object& clip_obj, const py::object& step_obj,
                       const py::object& scoefs, const py::object& sintercepts) {
        // Batches larger than the data are cut to it, so any size up to the index range is fine.
        const idx batch_size = idx(arg_int(batch_obj, "batch_size", 1, std::numeric_limits<idx>::max()));
        const double lr = arg_real(lr_obj, "lr"), momentum = arg_real(momentum_obj, "momentum");
        const bool shuffle = arg_bool(shuffle_obj, "shuffle");
        const std::uint64_t seed = arg_u64(seed_obj, "seed"), epoch = arg_u64(epoch_obj, "epoch");
        require_lr(lr);
        require_momentum(momentum);
        TrainConfig c;
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
        if (!(std::isfinite(c.alpha) && c.alpha >= 0)) throw py::value_error("alpha must be finite and >= 0");
        if (!(std::isfinite(c.clip_norm) && c.clip_norm >= 0)) throw py::value_error("clip_norm must be finite and >= 0 (0: no clipping)");
        c.batch_size = batch_size; c.lr = lr; c.momentum = momentum; c.shuffle = shuffle;
        c.seed = seed; c.epoch = epoch;
        std::vector<Named> args;
        const auto p = params<T*>(coefs, intercepts, "coefs_", "intercepts_", Role::read_write, args);
        const auto s1 = params<T*>(vcoefs, vintercepts, "optimizer state of coefs_", "optimizer state of intercepts_", Role::read_write, args);
        ParamViews<T*> s2;
        idx written = 4 * spec_.layers();
        if (c.optimizer == Optimizer::adam) {  // Adam's second moment
            if (scoefs.is_none() || sintercepts.is_none())
                throw py::value_error("optimizer 'adam' needs its second-moment state (scoefs, sintercepts)");
            s2 = params<T*>(py::reinterpret_borrow<py::sequence>(scoefs), py::reinterpret_borrow<py::sequence>(sintercepts),
                            "second moment of coefs_", "second moment of intercepts_", Role::read_write, args);
            written += 2 * spec_.layers();
        }
        const auto [x, y, N] = data(X_obj, Y_obj, args);
        require_disjoint(args, 0, size_t(written));
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mutex_);
        return dp::train_epoch(ws_, p, s1, s2, x, y, N, spec_, c, resolve_threads(n_threads_));
    }

  private:
    idx rows_of(const py::array& a, const std::string& name) const {
        require_shape(a, name, {-1, -1});
        require_nonempty(a, name);
        return a.shape(0);
    }

    // X (N x d) and Y (N x O), checked and finite.
    std::tuple<const T*, const T*, idx> data(const py::object& X_obj, const py::object& Y_obj,
                                             std::vector<Named>& args) const {
        const py::array X = as_array(X_obj, "X"), Y = as_array(Y_obj, "Y");
        const idx N = rows_of(X, "X");
        const T* x = input<T>(X, "X", {N, spec_.sizes.front()}, true);
        const T* y = input<T>(Y, "Y", {N, spec_.sizes.back()}, true);
        args.push_back({X, "X"});
        args.push_back({Y, "Y"});
        return {x, y, N};
    }

    // Views of one list of weights and one of biases, checked against the layer sizes and for
    // `role` (P is T* for the written roles); the arrays are appended to `keep` so they outlive
    // the GIL-free section.
    template <typename P>
    ParamViews<P> params(const py::sequence& coefs, const py::sequence& intercepts,
                         const std::string& cname, const std::string& iname, Role role,
                         std::vector<Named>& keep) const {
        const idx L = spec_.layers();
        for (const auto& [seq, name] : {std::pair{&coefs, cname}, std::pair{&intercepts, iname}})
            if (static_cast<idx>(py::len(*seq)) != L)
                throw py::value_error(name + " has " + std::to_string(py::len(*seq)) +
                                      " arrays, but the network has " + std::to_string(L) + " layers");
        ParamViews<P> v;
        for (idx l = 0; l < L; ++l) {
            const std::string wn = cname + "[" + std::to_string(l) + "]", bn = iname + "[" + std::to_string(l) + "]";
            const py::array W = as_array(coefs[l], wn), b = as_array(intercepts[l], bn);
            const std::vector<idx> ws{spec_.sizes[l], spec_.sizes[l + 1]}, bs{spec_.sizes[l + 1]};
            if constexpr (!std::is_const_v<std::remove_pointer_t<P>>) {
                v.W.push_back(output<T>(W, wn, ws));
                v.b.push_back(output<T>(b, bn, bs));
                if (role == Role::read_write) {
                    require_finite(v.W.back(), W.size(), wn);
                    require_finite(v.b.back(), b.size(), bn);
                }
            } else {
                v.W.push_back(input<T>(W, wn, ws, true));
                v.b.push_back(input<T>(b, bn, bs, true));
            }
            keep.push_back({W, wn});
            keep.push_back({b, bn});
        }
        return v;
    }

    NetSpec spec_;
    Workspace<T> ws_;
    int n_threads_ = 0;
    std::mutex mutex_;  // one call at a time per engine: the workspace is shared state
};

template <typename T>
void bind_engine_for(py::module_& m, const char* name) {
    py::class_<Engine<T>>(m, name, "Workspace and kernels for one MLP shape (internal; use deltaprop.MLP).")
        .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                      const py::object&>(),
             "layer_sizes"_a, "activation"_a = "relu", "grad_at_zero"_a = 0.0, "output"_a = "softmax",
             "n_threads"_a = 0)
        .def_property("n_threads", &Engine<T>::threads, &Engine<T>::set_threads)
        .def_property_readonly("layer_sizes", &Engine<T>::sizes)
        .def("forward", &Engine<T>::forward, "coefs"_a, "intercepts"_a, "X"_a)
        .def("loss_and_gradients", &Engine<T>::loss_and_gradients, "coefs"_a, "intercepts"_a, "X"_a,
             "Y"_a, "dcoefs"_a, "dintercepts"_a)
        .def("train_epoch", &Engine<T>::train_epoch, "coefs"_a, "intercepts"_a, "vcoefs"_a,
             "vintercepts"_a, "X"_a, "Y"_a, "batch_size"_a, "lr"_a, "momentum"_a, "shuffle"_a,
             "seed"_a, "epoch"_a, py::kw_only(), "optimizer"_a = "sgd", "beta_1"_a = 0.9,
             "beta_2"_a = 0.999, "epsilon"_a = 1e-8, "alpha"_a = 0.0, "clip_norm"_a = 0.0,
             "step"_a = 0, "scoefs"_a = py::none(), "sintercepts"_a = py::none());
}

}  // namespace

void bind_engine(py::module_& m) {
    bind_engine_for<float>(m, "Engine_float32");
    bind_engine_for<double>(m, "Engine_float64");
}

}  // namespace dp::bind
