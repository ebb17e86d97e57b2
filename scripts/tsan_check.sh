#!/usr/bin/env bash
# ThreadSanitizer over one engine shared by Python threads: one trains (train_epoch and
# train_epochs write the parameters and the optimizer state), the others predict, compute
# gradients and read gradient health from the same parameters at the same time. The engine's
# mutex must order every access to those arrays; TSan reports any pair of accesses, one a write,
# that nothing orders. Fails on any report.
#
#   scripts/tsan_check.sh
#   TSAN_VENV=/tmp/dp-tsan TSAN_BUILD=/tmp/dp-tsan-build scripts/tsan_check.sh
#
# Every engine runs one OpenMP thread: libgomp is not built with TSan, so its barriers would be
# invisible to it and every parallel region a false report. The interpreter is not instrumented
# either, but the GIL is a pthread mutex and condition variable, which TSan intercepts, so what
# the GIL orders counts as ordered. It found the race fixed in engine.cpp's FiniteChecks: the
# NaN scan of Engine.loss_and_gradients read parameters that a train_epoch in another thread
# was writing (adam_step), before the scan waited for the engine's mutex.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${TSAN_VENV:-/tmp/deltaprop-tsan-venv}"
BUILD="${TSAN_BUILD:-/tmp/deltaprop-tsan-build}"

python3 -m venv --system-site-packages "$VENV"
. "$VENV/bin/activate"
isolation=()
python -c "import scikit_build_core, pybind11" 2>/dev/null && isolation=(--no-build-isolation)
pip install -q "${isolation[@]}" --force-reinstall --no-deps \
    -Ccmake.define.DELTAPROP_SANITIZE=thread -Ccmake.build-type=RelWithDebInfo \
    -Cbuild-dir="$BUILD" "$ROOT"

LOG="$BUILD/tsan.log"
rm -f "$LOG".*  # reports of an earlier run that stopped before reading them are not this run's
cat > "$BUILD/workload.py" <<'PY'
import threading

import numpy as np

import deltaprop._core as core

rng = np.random.default_rng(0)
engine = core.Engine_float64([20, 64, 3], "relu", "softmax", n_threads=1)
params = [rng.standard_normal((20, 64)) * 0.1, np.zeros(64),
          rng.standard_normal((64, 3)) * 0.1, np.zeros(3)]
state = [[np.zeros_like(p) for p in params] for _ in range(2)]
X, Y = rng.standard_normal((256, 20)), np.eye(3)[rng.integers(0, 3, 256)]
# X again as CSR parts, for the sparse first layer (csrc/sparse.hpp): every entry stored (dense
# enough to be densified a batch at a time), and two columns a row (multiplied sparsely)
X_csr = (X.ravel(), np.tile(np.arange(20, dtype=np.int32), 256),
         np.arange(0, 256 * 20 + 1, 20, dtype=np.int32), 20)
X_sparse = (X[:, :2].ravel(), np.tile(np.array([3, 11], dtype=np.int32), 256),
            np.arange(0, 256 * 2 + 1, 2, dtype=np.int32), 20)
done = threading.Event()


def train():
    for r in range(20):
        engine.train_epoch(params, *state, X, Y, batch_size=16, lr=1e-3, optimizer="adam",
                           shuffle=False, step=r * 16)
    orders = np.stack([rng.permutation(256) for _ in range(10)])
    engine.train_epochs(params, *state, X, Y, orders=orders, lrs=np.full(10, 1e-3),
                        losses=np.empty(10), batch_size=16, optimizer="adam", step=320)
    engine.train_epochs(params, *state, X_csr, Y, orders=orders, lrs=np.full(10, 1e-3),
                        losses=np.empty(10), batch_size=16, optimizer="adam", step=480)
    engine.train_epochs(params, *state, X_sparse, Y, orders=orders, lrs=np.full(10, 1e-3),
                        losses=np.empty(10), batch_size=16, optimizer="adam", step=640)


def read():
    grads = [np.empty_like(p) for p in params]
    while not done.is_set():
        engine.forward(params, X[:8])
        engine.forward(params, X_csr)
        engine.forward(params, X_sparse)
        engine.loss_and_gradients(params, X[:8], Y[:8], grads)
        engine.health(params, X[:8], Y[:8])


readers = [threading.Thread(target=read) for _ in range(2)]
for t in readers:
    t.start()
try:
    train()
finally:  # the readers stop even if training raised
    done.set()
    for t in readers:
        t.join()
print("workload finished")
PY

# The TSan runtime must be loaded before anything else (python itself is not instrumented).
export LD_PRELOAD="$(${CXX:-g++} -print-file-name=libtsan.so) $(${CXX:-g++} -print-file-name=libstdc++.so.6)"
export TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0 log_path=$LOG" OMP_NUM_THREADS=1
python -c "import deltaprop as dp; assert dp.config_info()['deltaprop']['sanitizers'] == ['thread']"
status=0
python "$BUILD/workload.py" || status=$?
if compgen -G "$LOG.*" >/dev/null; then
    echo "ThreadSanitizer reports:"; cat "$LOG".*; rm -f "$LOG".*; exit 1
fi
[ $status -eq 0 ] && echo "OK: no data race between the engine's training and reading calls"
exit $status
