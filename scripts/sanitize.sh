#!/usr/bin/env bash
# Builds deltaprop with AddressSanitizer + UndefinedBehaviorSanitizer into its own virtual
# environment and build directory, then runs the whole test suite under them.
#
#   scripts/sanitize.sh [pytest arguments...]
#   SANITIZE_VENV=/tmp/dp-asan SANITIZE_BUILD=/tmp/dp-asan-build scripts/sanitize.sh -x
#
# Why the environment below:
#   LD_PRELOAD      the ASan runtime must be the first library in the process; python itself
#                   is not instrumented, so it is preloaded rather than linked first. libstdc++
#                   is preloaded with it: ASan intercepts __cxa_throw when it starts, and python
#                   does not link libstdc++, so without it the first C++ exception (every
#                   argument check that raises) dies in "CHECK failed: real___cxa_throw != 0".
#   detect_leaks=0  the interpreter keeps its own allocations (interned objects, module state)
#                   to the end; LeakSanitizer would report them all. Leaks in our code are
#                   checked separately, per call, by scripts/leak_check.sh.
#   halt_on_error   any report ends the run with a non-zero exit (UBSan's too: the module is
#                   built with -fno-sanitize-recover=undefined).
#   allocator_may_return_null
#                   ASan's allocator aborts on a request beyond its 1 TiB limit; the real one
#                   returns NULL, which NumPy turns into the MemoryError the tests expect.
#   log_path        reports go to files: pytest captures stderr, and a process that aborts
#                   takes its captured output with it. The script prints them and fails.
# SANITIZE_SKIP=alignment (a comma list) leaves checks out, e.g. to look past one finding.
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
extra_flags=(-Ccmake.define.DELTAPROP_NO_SANITIZE="${SANITIZE_SKIP:-}")
pip install -q "${isolation[@]}" --force-reinstall --no-deps "${extra_flags[@]}" \
    -Ccmake.define.DELTAPROP_SANITIZE="$SANITIZERS" -Ccmake.build-type=RelWithDebInfo \
    -Cbuild-dir="$BUILD" "$ROOT"
# The test extra's packages (pyproject.toml), for what the system's site-packages lack
pip install -q pytest scikit-learn hypothesis threadpoolctl

LOGS="$BUILD/sanitizer-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"
ASAN_LIB="$(${CXX:-g++} -print-file-name=libasan.so)"
STDCXX_LIB="$(${CXX:-g++} -print-file-name=libstdc++.so.6)"
export LD_PRELOAD="$ASAN_LIB $STDCXX_LIB"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan"
cd "$ROOT"
python -c "import deltaprop as dp; s = dp.config_info()['deltaprop']['sanitizers']; \
assert s, 'not a sanitizer build'; print('sanitizers:', ', '.join(s))"
# -p no:cacheprovider: the run must not write into the source tree
status=0
# Deselected: test_absurd_thread_counts_do_not_crash runs python under a 4 GiB address-space
# limit, and ASan alone reserves terabytes of shadow memory, so python cannot even start there.
python -m pytest -q -p no:cacheprovider --deselect \
    "tests/test_bad_input.py::test_absurd_thread_counts_do_not_crash" "$@" || status=$?
# Reports are errors; ASan's "failed to allocate" warnings (allocator_may_return_null) are not.
if compgen -G "$LOGS/*" >/dev/null && grep -lq "ERROR\|runtime error\|CHECK failed" "$LOGS"/*; then
    echo "sanitizer reports:"; cat "$LOGS"/*; status=1
fi
exit $status
