#!/usr/bin/env bash
# Leak check of the engine under valgrind: many fit/predict cycles of a small model (and the
# ops, and calls that raise), run twice with different cycle counts. A leak in our code grows
# with the cycles; the interpreter's own end-of-process allocations do not. Fails if
#   - any valgrind record (a leak "definitely" or "indirectly" lost, an invalid read or write,
#     a use of an uninitialised value) has a frame in deltaprop's extension, or
#   - the bytes definitely + indirectly lost grow between the short and the long run.
# (The interpreter itself has a few dozen records of its own, none of them ours.)
#
#   scripts/leak_check.sh [cycles]        (default 1000; uses the deltaprop python imports)
#   PYTHON=/path/to/venv/bin/python scripts/leak_check.sh
#
# PYTHONMALLOC=malloc makes Python's allocations visible to valgrind one by one (so a leaked
# array or object is a record of its own); one OpenMP thread with passive waiting keeps
# valgrind (which runs threads one at a time) fast; valgrind's CPU has no AVX-512, and the
# engine's dispatch sees that and picks another path.
set -euo pipefail
CYCLES="${1:-1000}"
PYTHON="${PYTHON:-python3}"
OUT="${LEAK_OUT:-/tmp/deltaprop-leak-check}"
mkdir -p "$OUT"
cat > "$OUT/workload.py" <<'PY'
import sys
import numpy as np
import deltaprop as dp

cycles = int(sys.argv[1])
rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 8)), rng.integers(0, 3, 64)
for i in range(cycles):
    net = dp.MLP([8, 16, 3], activation=["relu", "tanh", "elu"][i % 3], seed=i,
                 dtype=["float64", "float32"][i % 2], n_threads=1)
    net.fit(X, y, epochs=1, batch_size=16, optimizer=["sgd", "adam", "nesterov"][i % 3])
    net.predict(X)
    net.loss_and_gradients(X, y)
    # several epochs in one engine call (the scikit-learn estimators' loop), Adam's state
    params = net._params()
    state = [[np.zeros_like(p) for p in params] for _ in range(2)]
    Xd, Yd = X.astype(net.dtype), np.eye(3, dtype=net.dtype)[y]
    net._engine.train_epochs(params, *state, Xd, Yd, orders=np.stack([np.arange(64)[::-1]] * 2),
                             lrs=np.full(2, 0.01), losses=np.empty(2), batch_size=16,
                             optimizer="adam", tol=0.1, n_iter_no_change=1)
    # the same rows as CSR parts (the sparse first layer: all stored, densified a batch at a
    # time; one column a row, multiplied sparsely), and a malformed matrix refused
    Xs = (Xd.ravel(), np.tile(np.arange(8), 64), np.arange(0, 64 * 8 + 1, 8), 8)
    Xone = (Xd[:, 0].copy(), np.full(64, 5), np.arange(65), 8)
    for rows in (Xs, Xone):
        net._engine.train_epochs(params, *state, rows, Yd, orders=np.stack([np.arange(64)] * 2),
                                 lrs=np.full(2, 0.01), losses=np.empty(2), batch_size=16,
                                 optimizer="adam")
    dp.ops.dense_forward(X, net.coefs_[0].astype(np.float64), np.zeros(16), "swish")
    dp.ops.shuffle_order(100, i, 1)
    for bad in (lambda: net.forward(X[:, :5]), lambda: dp.ops.gemm(X, X),
                lambda: dp.ops.activation_forward(X, "nonsense"),
                lambda: net._engine.forward(params, (Xs[0], Xs[1], Xs[2][::-1].copy(), 8))):
        try:
            bad()
        except (TypeError, ValueError):
            pass
print("cycles", cycles, dp.ops.get_isa())
PY

# The workload must finish: a run that fails to import deltaprop (PYTHON without it installed),
# or dies on the way, loses no bytes of ours and would otherwise pass as "no leak".
"$PYTHON" -c "import deltaprop" || {
    echo "FAIL: $PYTHON cannot import deltaprop (install it, or set PYTHON=)"; exit 1; }

run() {  # run <cycles>: prints "definitely indirectly" lost bytes
    local log="$OUT/valgrind-$1.log" finished
    finished=$(PYTHONMALLOC=malloc OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive \
        valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
        --num-callers=40 --log-file="$log" "$PYTHON" "$OUT/workload.py" "$1") || true
    if [[ "$finished" != "cycles $1 "* ]]; then
        echo "FAIL: the $1-cycle workload did not finish (see $log)" >&2; return 1
    fi
    local definite indirect
    definite=$(grep -oP 'definitely lost: \K[0-9,]+' "$log" | tr -d , || echo 0)
    indirect=$(grep -oP 'indirectly lost: \K[0-9,]+' "$log" | tr -d , || echo 0)
    echo "${definite:-0} ${indirect:-0}"
}

short=$(run 10) || exit 1
long=$(run "$CYCLES") || exit 1
echo "definitely / indirectly lost bytes after 10 cycles:        $short"
echo "definitely / indirectly lost bytes after $CYCLES cycles: $long"
ours=$(awk '/^==[0-9]+== [A-Z0-9]/ {record = ""; keep = 1}
            keep {record = record $0 "\n"}
            /^==[0-9]+== $/ && keep {if (record ~ /_core\.cpython|dp::|pybind11::/) printf "%s", record
                                     keep = 0}' "$OUT/valgrind-$CYCLES.log")
status=0
if [ -n "$ours" ]; then
    echo "FAIL: valgrind records with a frame in deltaprop's extension:"; echo "$ours"; status=1
fi
read -r d1 i1 <<<"$short"; read -r d2 i2 <<<"$long"
if [ $((d2 + i2)) -gt $((d1 + i1)) ]; then
    echo "FAIL: lost bytes grow with the cycles ($((d1 + i1)) -> $((d2 + i2)))"; status=1
fi
[ $status -eq 0 ] && echo "OK: no leak in deltaprop's code (logs in $OUT)"
exit $status
