// Instruction-set paths: which are built into this binary, which this CPU can run, and which one
// the GEMM uses. The choice is made once (the best path built and supported, unless the
// DELTAPROP_ISA environment variable names another) and can be changed with set_isa(), so tests
// exercise every path on one machine.
#pragma once

#include <string>
#include <vector>

namespace dp {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // std::invalid_argument for an unknown name
bool isa_built(Isa isa);                 // compiled into this binary
bool isa_supported(Isa isa);             // this CPU and OS can run it
std::vector<Isa> usable_isas();          // built and supported, slowest first
Isa active_isa();                        // the path the GEMM uses now
void set_isa(Isa isa);                   // std::invalid_argument if not built or not supported

}  // namespace dp
