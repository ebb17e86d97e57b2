#!/usr/bin/env bash
# Builds deltaprop with AddressSanitizer + UndefinedBehaviorSanitizer into its own virtual
# environment and build directory, then runs the whole test suite under them.
#
#   scripts/sanitize.sh [pytest arguments...]
#   SANITIZE_VENV=/tmp/dp-asan SANITIZE_BUILD=/tmp/dp-asan-build scripts/sanitize.sh -x
#
# Why the environment below:
#   LD_PRELOAD      the ASan runtime must be the first library in the process; python itself
#                   is not instrumented, so it is preloaded rather than linked first.
#   detect_leaks=0  the interpreter keeps its own allocations (interned objects, module state)
#                   to the end; LeakSanitizer would report them all. Leaks in our code are
#                   checked separately, per call, by scripts/leak_check.sh.
#   halt_on_error   any report ends the run with a non-zero exit (UBSan's too: the module is
#                   built with -fno-sanitize-recover=undefined).
# The venv sees the system's site-packages (numpy, pytest, hypothesis, scikit-learn) so that
# only deltaprop itself is rebuilt.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SANITIZE_VENV:-/tmp/deltaprop-sanitize-venv}"
BUILD="${SANITIZE_BUILD:-/tmp/deltaprop-sanitize-build}"
SANITIZERS="${SANITIZERS:-address;undefined}"

python3 -m venv --system-site-packages "$VENV"
. "$VENV/bin/activate"
# --no-build-isolation when the build tools are at hand (no download); else pip fetches them.
isolation=()
python -c "import scikit_build_core, pybind11" 2>/dev/null && isolation=(--no-build-isolation)
pip install -q "${isolation[@]}" --force-reinstall --no-deps \
    -Ccmake.define.DELTAPROP_SANITIZE="$SANITIZERS" -Ccmake.build-type=RelWithDebInfo \
    -Cbuild-dir="$BUILD" "$ROOT"

ASAN_LIB="$(${CXX:-g++} -print-file-name=libasan.so)"
export LD_PRELOAD="$ASAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$ROOT"
python -c "import deltaprop as dp; s = dp.config_info()['deltaprop']['sanitizers']; \
assert s, 'not a sanitizer build'; print('sanitizers:', ', '.join(s))"
# -p no:cacheprovider: the run must not write into the source tree
python -m pytest -q -p no:cacheprovider "$@"
