// _core.build_info() and _core.threads_used(): what this binary was built with and what the
// OpenMP runtime gives it now, the C++ half of deltaprop.show_config(). Every fact here comes
// from the compiler's own macros or the runtime's answer, never from a copy kept in sync by hand
// (the build type and sanitizers are CMake's, passed as definitions).
#include <string>
#include <vector>

#if defined(__has_include)
#if __has_include(<dlfcn.h>)
#include <dlfcn.h>
#define DELTAPROP_HAVE_DLADDR 1
#endif
#endif

#include "../gemm.hpp"
#include "../isa.hpp"
#include "checks.hpp"

#ifndef DELTAPROP_BUILD_TYPE
#define DELTAPROP_BUILD_TYPE ""
#endif
#ifndef DELTAPROP_SANITIZE
#define DELTAPROP_SANITIZE ""
#endif

namespace dp::bind {
namespace {

using namespace pybind11::literals;

std::string compiler_id() {
#if defined(__INTEL_LLVM_COMPILER)
    return "IntelLLVM";
#elif defined(__clang__)
    return "Clang";
#elif defined(__GNUC__)
    return "GCC";
#elif defined(_MSC_VER)
    return "MSVC";
#else
    return "unknown";
#endif
}

std::string compiler_version() {
#if defined(__clang__)
    return std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__) + "." +
           std::to_string(__clang_patchlevel__);
#elif defined(__GNUC__)
    return std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
           std::to_string(__GNUC_PATCHLEVEL__);
#elif defined(_MSC_VER)
    return std::to_string(_MSC_FULL_VER);
#else
    return "";
#endif
}

// __cplusplus as the standard's name: 201703 is C++17 (the year of the standard's draft date).
std::string cxx_standard(long value) {
    if (value > 202002L) return "C++23";
    if (value > 201703L) return "C++20";
    if (value > 201402L) return "C++17";
    if (value > 201103L) return "C++14";
    return "C++11";
}

// _OPENMP is the release date of the specification the compiler implements.
std::string openmp_version(long date) {
    const std::pair<long, const char*> releases[] = {{202111, "5.2"}, {202011, "5.1"}, {201811, "5.0"},
                                                     {201511, "4.5"}, {201307, "4.0"}, {201107, "3.1"},
                                                     {200805, "3.0"}};
    for (const auto& [released, version] : releases)
        if (date >= released) return version;
    return "older than 3.0";
}

// The shared library that provides the OpenMP runtime this module calls (libgomp, libomp, or
// the copy a repaired wheel bundles), or "" where the platform cannot say.
std::string openmp_library() {
#if defined(_OPENMP) && defined(DELTAPROP_HAVE_DLADDR)
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &info) && info.dli_fname)
        return info.dli_fname;
#endif
    return "";
}

std::vector<std::string> isa_names(bool (*keep)(Isa)) {
    std::vector<std::string> names;
    for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
        if (keep(isa)) names.emplace_back(isa_name(isa));
    return names;
}

// The build of the DP_ISA_CLONES loops the loader picked: the same test of the CPU (libgcc's)
// that their resolvers make.
std::string clones_selected() {
#if DP_HAVE_ISA_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
    return "x86-64";
#else
    return "";  // not multiversioned: one build, for the compiler's target
#endif
}

py::dict build_info() {
    py::dict openmp;
#ifdef _OPENMP
    openmp["_OPENMP"] = long(_OPENMP);
    openmp["version"] = openmp_version(_OPENMP);
#else
    openmp["_OPENMP"] = py::none();
    openmp["version"] = py::none();
#endif
    openmp["library"] = openmp_library();
    openmp["max_threads"] = default_threads();  // asked now: follows threadpoolctl limits
    openmp["processors"] = processors();
    openmp["forked_child"] = forked_after_team();  // forked after a team: runs on one thread
    return py::dict(
        "compiler_id"_a = compiler_id(), "compiler_version"_a = compiler_version(),
        "compiler"_a = std::string(__VERSION__), "cxx_standard"_a = cxx_standard(__cplusplus),
        "cplusplus"_a = long(__cplusplus), "build_type"_a = std::string(DELTAPROP_BUILD_TYPE),
        "sanitizers"_a = std::string(DELTAPROP_SANITIZE), "openmp"_a = openmp,
        "isa_built"_a = isa_names(&isa_built), "isa_supported"_a = isa_names(&isa_supported),
        "isa_active"_a = std::string(isa_name(active_isa())), "isa_clones"_a = clones_selected(),
        "isa_kernels_loaded"_a = isa_names(&kernels_loaded),
        "small_product_lanes"_a = py::dict("float32"_a = small_product_lanes(false),
                                           "float64"_a = small_product_lanes(true)));
}

// The team a kernel called with `n_threads` gets: the count resolve_threads() asks for (which
// parallel_for runs serially when it is 1), and the size OpenMP actually gives a region that
// asks for it. Measured, not computed, so a test of threadpoolctl or OMP_NUM_THREADS checks
// the runtime's behaviour and not our arithmetic. (A region of its own, not parallel_for's:
// an empty region always loses to one thread, which would tell contention.hpp the cores are
// busy; and while they are, the team kernels get is still this size when they try.)
int threads_used(int n_threads) {
    const int wanted = resolve_threads(n_threads);
    int team = 1;
    if (wanted > 1) {
        arm_fork_guard();
#ifdef _OPENMP
#pragma omp parallel num_threads(wanted)
        {
#pragma omp single
            team = omp_get_num_threads();
        }
#endif
    }
    return team;
}

py::dict contention_info() {
    const ContentionGate& gate = contention();
    return py::dict("lost_regions"_a = gate.lost_regions(), "serial_regions"_a = gate.serial_regions(),
                    "wait_ms"_a = double(gate.wait()) / 1e6);
}

}  // namespace

void bind_config(py::module_& m) {
    m.def("build_info", &build_info,
          "What the extension was built with (compiler, C++ standard, OpenMP, build type, "
          "sanitizers, instruction-set paths) and what the OpenMP runtime gives it now.");
    m.def("threads_used", [](const py::object& nt) { return threads_used(arg_threads(nt)); },
          "n_threads"_a = 0,
          "The size of the thread team a kernel called with n_threads gets now (0: the default, "
          "which honours OMP_NUM_THREADS and threadpoolctl limits).");
    m.def("contention_info", &contention_info,
          "Parallel regions that lost to one thread (the cores were busy), regions run on one "
          "thread since, and how long the next loss keeps them there (csrc/contention.hpp).");
    m.def("_contention_record", [](std::int64_t wall, std::int64_t cpu) { contention().record(wall, cpu); },
          "wall_ns"_a, "cpu_ns"_a, "For tests: a region's verdict, as if one had just run.");
}

}  // namespace dp::bind
