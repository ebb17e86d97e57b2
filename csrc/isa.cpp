// CPU detection and the cached choice of GEMM path (ruy's "built and supported, decided once").
#include "isa.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace dp {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::generic: return "generic";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "?";
}

Isa parse_isa(const std::string& name) {
    for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
        if (name == isa_name(isa)) return isa;
    throw std::invalid_argument("unknown instruction set '" + name +
                                "'; expected 'generic', 'avx2' or 'avx512'");
}

bool isa_built(Isa isa) {
    switch (isa) {
        case Isa::generic: return true;
#ifdef DELTAPROP_HAVE_AVX2
        case Isa::avx2: return true;
#endif
#ifdef DELTAPROP_HAVE_AVX512
        case Isa::avx512: return true;
#endif
        default: return false;
    }
}

bool isa_supported(Isa isa) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    // libgcc's checks include the OS's XSAVE support of the wider registers.
    switch (isa) {
        case Isa::generic: return true;
        case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::avx512: return __builtin_cpu_supports("avx512f") && isa_supported(Isa::avx2);
    }
    return false;
#else
    return isa == Isa::generic;
#endif
}

std::vector<Isa> usable_isas() {
    std::vector<Isa> usable;
    for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
        if (isa_built(isa) && isa_supported(isa)) usable.push_back(isa);
    return usable;
}

namespace {

// The best usable path, or the one DELTAPROP_ISA names if it is usable. An unusable or unknown
// name falls back to the best path: a library must not fail to import over an env variable
// (deltaprop.show_config() reports the path actually chosen).
Isa initial_isa() {
    const Isa best = usable_isas().back();
    if (const char* env = std::getenv("DELTAPROP_ISA")) {
        try {
            const Isa wanted = parse_isa(env);
            if (isa_built(wanted) && isa_supported(wanted)) return wanted;
        } catch (const std::invalid_argument&) {
        }
    }
    return best;
}

std::atomic<int>& current() {
    static std::atomic<int> isa{static_cast<int>(initial_isa())};
    return isa;
}

}  // namespace

Isa active_isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
    if (!isa_built(isa))
        throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) +
                                    "' is not built into this deltaprop");
    if (!isa_supported(isa))
        throw std::invalid_argument(std::string("this CPU does not support '") + isa_name(isa) + "'");
    current().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace dp
