#!/usr/bin/env bash
# The loops outside the GEMM micro-kernels are built three times (DP_ISA_CLONES, common.hpp:
# baseline x86-64, x86-64-v3, x86-64-v4) and the loader runs the one this CPU supports, so the
# suite only ever exercises one clone. This builds the extension twice more without clones,
# once for x86-64-v3 (AVX2) and once for the baseline (SSE2), and runs the whole suite against
# each: the two clones an AVX-512 machine never runs (vector code that differs per target:
# the softmax exp's integer clamp, the small-product loops' GNU vectors of 4 and 2 float64, ...).
#
#   scripts/isa_clones_check.sh [pytest arguments...]
#
# Run it with the python of an environment that has the test extra (pytest, scikit-learn).
# The CPU must run x86-64-v3 code (AVX2 + FMA) for the first build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${CLONES_WORK:-/tmp/deltaprop-clones}"
isolation=()
python -c "import scikit_build_core, pybind11" 2>/dev/null && isolation=(--no-build-isolation)
status=0
for target in x86-64-v3 x86-64; do
    flags="-DDELTAPROP_NO_ISA_CLONES"
    [ "$target" = x86-64 ] || flags="$flags -march=$target"
    lanes=4  # float64 values to a vector in the small-product loops: one AVX2 register
    [ "$target" = x86-64 ] && lanes=2  # one SSE2 register
    rm -rf "$WORK/$target/pkg"
    pip install -q "${isolation[@]}" --no-deps --target "$WORK/$target/pkg" \
        -Ccmake.define.CMAKE_CXX_FLAGS="$flags" -Cbuild-dir="$WORK/$target/build" "$ROOT"
    echo "== loops built for $target only"
    # -S: no site directories, so an editable install of deltaprop there cannot shadow this one;
    # the interpreter's own packages (pytest, numpy, scikit-learn) come in through PYTHONPATH.
    site="$(python -c 'import sys; print(":".join(p for p in sys.path if p.endswith("-packages")))')"
    PYTHONPATH="$WORK/$target/pkg:$site" python -S -c "import deltaprop._core as c; \
        assert c.build_info()['isa_clones'] == '', c.build_info(); \
        assert c.build_info()['small_product_lanes']['float64'] == $lanes, c.build_info()" || status=1
    (cd "$WORK" && PYTHONPATH="$WORK/$target/pkg:$site" python -S -m pytest -q -p no:cacheprovider \
        "$ROOT/tests" "$@") || status=1
done
exit $status
