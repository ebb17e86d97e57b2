// deltaprop._core: the only translation units that include pybind11 are in this folder.
// C++ exceptions become Python ones through pybind11's standard translation:
// std::invalid_argument / std::length_error -> ValueError, std::bad_alloc -> MemoryError.
#include <pybind11/stl.h>

#include "../names.hpp"
#include "checks.hpp"

namespace dp::bind {
void bind_ops(py::module_& m);
void bind_optim_ops(py::module_& m);
void bind_dropout_ops(py::module_& m);
void bind_loss_ops(py::module_& m);
void bind_learned_ops(py::module_& m);
void bind_engine(py::module_& m);
void bind_config(py::module_& m);
void bind_random_state(py::module_& m);
}  // namespace dp::bind

namespace {

template <typename Table>
std::vector<std::string> names_of(const Table& table) {
    std::vector<std::string> names;
    for (const auto& entry : table) names.push_back(entry.first);
    return names;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    namespace py = pybind11;
    m.doc() = "deltaprop's C++/OpenMP engine (internal: use the deltaprop package).";
    auto ops = m.def_submodule("ops");
    dp::bind::bind_ops(ops);
    dp::bind::bind_optim_ops(ops);
    dp::bind::bind_loss_ops(ops);
    dp::bind::bind_dropout_ops(ops);
    dp::bind::bind_learned_ops(ops);
    dp::bind::bind_engine(m);
    dp::bind::bind_config(m);
    dp::bind::bind_random_state(m);
    m.attr("ACTIVATIONS") = names_of(dp::activation_names());
    m.attr("OUTPUTS") = names_of(dp::output_names());
#ifdef _OPENMP
    m.attr("openmp") = _OPENMP;
#else
    m.attr("openmp") = py::none();
#endif
    m.attr("compiler") = __VERSION__;
    m.def("default_threads", &dp::default_threads,
          "Threads a call with n_threads=0 uses (OpenMP's default: OMP_NUM_THREADS, threadpoolctl).");
}
