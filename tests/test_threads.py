"""Threads: the engine's OpenMP runtime obeys threadpoolctl and OMP_NUM_THREADS, and several
Python threads may use the engine at once (different models, or one model's predictions),
getting exactly the serial results.

`_core.threads_used(n)` measures the team a kernel called with `n_threads=n` gets: it runs a
parallel region the way the kernels do and reports omp_get_num_threads() from inside it.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import python

import deltaprop as dp
from deltaprop import _core

threadpoolctl = pytest.importorskip("threadpoolctl")

PROCESSORS = _core.build_info()["openmp"]["processors"]
multicore = pytest.mark.skipif(PROCESSORS < 2, reason="needs 2 processors")


def our_openmp_library() -> str:
    return os.path.realpath(_core.build_info()["openmp"]["library"])


def test_threadpoolctl_finds_our_openmp_runtime():
    found = [os.path.realpath(lib["filepath"]) for lib in threadpoolctl.threadpool_info()
             if lib["user_api"] == "openmp"]
    assert our_openmp_library() in found, found


@multicore
def test_threadpool_limits_limits_our_kernels():
    assert _core.threads_used(0) == min(_core.default_threads(), PROCESSORS)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _core.threads_used(0) == 1
        assert dp.config_info()["openmp"]["max_threads"] == 1
        assert _core.threads_used(2) == 2  # an explicit n_threads is the caller's to choose
    assert _core.threads_used(0) == min(_core.default_threads(), PROCESSORS)


@multicore
def test_threadpool_limits_applies_to_the_thread_that_sets_it():
    """OpenMP's thread count is per calling thread: a worker thread sets its own limit."""
    def in_worker():
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            return _core.threads_used(0)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(in_worker).result() == 1


@multicore
def test_a_limited_fit_gives_the_same_model(rng):
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 3, 300)
    nets = [dp.MLP([20, 64, 3], seed=4) for _ in range(2)]
    nets[0].fit(X, y, epochs=2, batch_size=300)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        nets[1].fit(X, y, epochs=2, batch_size=300)
    for a, b in zip(nets[0].coefs_, nets[1].coefs_):
        np.testing.assert_array_equal(a, b)


@multicore
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_lbfgs_fit_does_not_depend_on_the_blas_thread_count(rng):
    """scipy's L-BFGS-B sums dot products over every parameter in its BLAS (~78 000 here),
    which two threads split differently: lbfgs runs it on one, so the model is the same bits
    however many BLAS threads the caller allows (scikit-learn's own lbfgs differs there)."""
    from deltaprop.sklearn import MLPClassifier

    X, y = rng.standard_normal((400, 300)), rng.integers(0, 5, 400)
    fits = []
    for blas in (1, 2):
        with threadpoolctl.threadpool_limits(limits=blas, user_api="blas"):
            fits.append(MLPClassifier(hidden_layer_sizes=(256,), solver="lbfgs", max_iter=10,
                                      random_state=0, n_threads=1).fit(X, y))
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


CHILD = "from deltaprop import _core; print(_core.threads_used(0), _core.threads_used(2))"


@multicore
@pytest.mark.parametrize("value, expected", [("1", 1), ("2", 2), ("64", PROCESSORS)])
def test_omp_num_threads_is_respected(value, expected):
    env = dict(os.environ, OMP_NUM_THREADS=value)
    out = subprocess.run(python("-c", CHILD), env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(expected), "2"]  # n_threads=2 overrides the environment


# -- fork ------------------------------------------------------------------------------------

# The end of a script that defines child(queue): runs it in a fork child (multiprocessing's
# default on Linux) with a 60 s limit, and prints the tuple it put in the queue, an item a line,
# or "hung" or "failed <exit code>".
IN_A_FORK_CHILD = """
ctx = mp.get_context("fork")
queue = ctx.Queue()
p = ctx.Process(target=child, args=(queue,))
p.start()
p.join(60)
if p.is_alive():
    p.kill()
    print("hung")
elif p.exitcode != 0:
    print("failed", p.exitcode)
else:
    print(*queue.get(timeout=10), sep="\\n")
"""

# Trains with 2 threads, then in a fork child trains the same model with 2 threads: whether the
# child got the parent's weights, on how many threads, and whether it knew it was a forked child.
# GNU OpenMP cannot start a team in a child forked after the parent's team: unguarded, the
# child's first parallel region never ends.
FORK_AFTER_A_TEAM = """
import multiprocessing as mp, numpy as np, deltaprop as dp
from deltaprop import _core
rng = np.random.default_rng(0)
X, y = rng.standard_normal((256, 64)), rng.integers(0, 3, 256)
def fit(n_threads):
    m = dp.MLP([64, 512, 512, 3], seed=0, n_threads=n_threads)
    m.fit(X, y, epochs=1, batch_size=128, lr=0.05)
    return np.concatenate([w.ravel() for w in m.coefs_])
print(_core.threads_used(2), dp.config_info()["openmp"]["forked_child"])
parent = fit(2)
assert np.array_equal(parent, fit(1))
def child(queue):
    same = bool(np.array_equal(fit(2), parent))
    queue.put((same, _core.threads_used(2), dp.config_info()["openmp"]["forked_child"]))
""" + IN_A_FORK_CHILD


@multicore
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_after_a_team_trains_on_one_thread_instead_of_hanging():
    out = subprocess.run(python("-c", FORK_AFTER_A_TEAM), capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    # the parent: 2 threads, unmarked; the child: the same weights on one thread, marked
    assert out == ["2", "False", "True", "1", "True"], out


# A model training in a thread when another thread forks: its engine's mutex is copied locked,
# with no thread in the child to release it. Unguarded, any call on it there waited forever.
FORK_WHILE_TRAINING = """
import threading, time, multiprocessing as mp, numpy as np
import deltaprop as dp
from deltaprop.sklearn import MLPClassifier
rng = np.random.default_rng(0)
X, y = rng.standard_normal((20000, 100)), rng.integers(0, 3, 20000)
est = MLPClassifier(hidden_layer_sizes=(256,), max_iter=1000, tol=0, n_threads=1)
threading.Thread(target=est.fit, args=(X, y), daemon=True).start()
time.sleep(1.0)  # inside the fit's one engine call, which holds the engine's mutex
def child(queue):
    try:
        est.predict(X[:3])
        outcome = "predicted"
    except RuntimeError as e:
        outcome = "RuntimeError: " + str(e)
    fresh = dp.MLP([100, 8, 3]).fit(X[:100], y[:100], epochs=1)  # other models still work
    queue.put((outcome, len(fresh.loss)))
""" + IN_A_FORK_CHILD


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_model_training_when_the_process_forks_fails_clearly_in_the_child():
    pytest.importorskip("sklearn")
    out = subprocess.run(python("-W", "ignore", "-c", FORK_WHILE_TRAINING), capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert out[0].startswith("RuntimeError: this model was in use by another thread when the "
                             "process was forked"), out
    assert out[1:] == ["1"]


# -- daemon threads at exit ------------------------------------------------------------------

# Daemon threads inside the engine when the main thread returns: one fitting (it retakes the GIL
# between batches to ask for Ctrl-C), one running products (it retakes the GIL after each). Python
# 3.9 to 3.13 ends such a thread with pthread_exit when it asks for the GIL during finalization;
# taken back in pybind11's noexcept destructor, that aborted the process (5 runs in 5).
DAEMONS = """
import threading, time
import numpy as np
import deltaprop as dp
from deltaprop.sklearn import MLPClassifier
rng = np.random.default_rng(0)
X, y = rng.standard_normal((20000, 100)), rng.integers(0, 3, 20000)
A = rng.standard_normal((400, 400))
inside = threading.Barrier(3)
def fit():
    inside.wait()
    MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=1000, tol=0).fit(X, y)
def products():
    inside.wait()
    while True:
        dp.ops.gemm(A, A)
for work in (fit, products):
    threading.Thread(target=work, daemon=True).start()
inside.wait()
time.sleep(0.5)
print("main thread returns")
"""


def test_daemon_threads_in_the_engine_let_the_interpreter_exit():
    pytest.importorskip("sklearn")
    run = subprocess.run(python("-W", "ignore", "-c", DAEMONS), capture_output=True, text=True,
                         timeout=120)
    assert (run.returncode, run.stdout, run.stderr) == (0, "main thread returns\n", "")


# -- sparse X rewritten by another thread during a call -----------------------------------------

# The bindings check X's indices with the GIL held; the engine then reads them in place without
# it. Another thread rewriting them in between made the engine read (and, in the backward pass,
# write) through indices of 2**30: SIGSEGV in each of fit and forward within ~1.5 s. Now each
# index is read once and kept inside the matrix: wrong rows at worst.
REWRITTEN_INDICES = """
import sys, threading, numpy as np, scipy.sparse as sp, deltaprop as dp
X = sp.random(20000, 1000, density=0.01, format="csr", random_state=0, dtype=np.float64)
y = np.random.default_rng(0).integers(0, 4, 20000)
net = dp.MLP([1000, 256, 4], seed=0)
good, bad = X.indices.copy(), np.full_like(X.indices, 2**30)
for call in ("fit", "forward") * 15:
    stop = threading.Event()
    def rewrite():
        while not stop.is_set():
            X.indices[:] = bad  # each write lands between the check and the reads, or not at all
            X.indices[:] = good
    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        net.fit(X, y, epochs=1, batch_size=64) if call == "fit" else net.forward(X)
    except ValueError:  # refused at the check
        pass
    stop.set()
    writer.join()
    X.indices[:] = good
print("no crash")
"""


def test_sparse_indices_rewritten_during_a_call_never_crash():
    pytest.importorskip("scipy")
    run = subprocess.run(python("-c", REWRITTEN_INDICES), capture_output=True, text=True,
                         timeout=300)
    assert (run.returncode, run.stdout) == (0, "no crash\n"), run.stderr[-2000:]


def test_a_fit_on_the_process_s_generator_leaves_np_random_to_other_threads():
    """random_state=None shuffles with np.random's own generator, whose lock the engine held
    through its whole call: np.random in another thread waited out the fit (3.6 s here)."""
    pytest.importorskip("sklearn")
    import threading

    from deltaprop.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4000, 64)), rng.integers(0, 3, 4000)
    est = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=60, tol=0, n_iter_no_change=100)

    def train():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (max_iter reached)
            est.fit(X, y)

    fit = threading.Thread(target=train)
    fit.start()
    try:
        fit.join(0.3)  # well into the fit
        lock = np.random.mtrand._rand._bit_generator.lock
        acquired = lock.acquire(timeout=1.0)
        if acquired:
            lock.release()
        assert fit.is_alive(), "the fit ended too soon to tell"
        assert acquired
    finally:
        fit.join()


# -- several Python threads at once --------------------------------------------------------

MODELS = [  # different shapes, dtypes, activations, outputs and optimizers
    dict(sizes=[12, 40, 3], activation="relu", output="softmax", dtype="float64",
         fit=dict(optimizer="sgd", momentum=0.9, lr=0.05)),
    dict(sizes=[12, 24, 24, 1], activation="tanh", output="identity", dtype="float32",
         fit=dict(optimizer="adam", lr=0.003)),
    dict(sizes=[12, 64, 2], activation="elu", output="sigmoid", dtype="float64",
         fit=dict(optimizer="nesterov", momentum=0.5, lr=0.05, clip_norm=1.0)),
    dict(sizes=[12, 16, 3], activation="swish", output="softmax", dtype="float32",
         fit=dict(optimizer="sgd", lr=0.1, alpha=0.01)),
]


def data(spec, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((257, spec["sizes"][0]))
    outputs = spec["sizes"][-1]
    if spec["output"] == "softmax":
        Y = rng.integers(0, outputs, len(X))
    elif spec["output"] == "sigmoid":
        Y = rng.integers(0, 2, (len(X), outputs))
    else:
        Y = rng.standard_normal((len(X), outputs))
    return X, Y


def run(spec, seed, n_threads):
    """Fits a fresh model and returns everything it produced."""
    net = dp.MLP(spec["sizes"], spec["activation"], spec["output"], dtype=spec["dtype"],
                 seed=seed, n_threads=n_threads)
    X, Y = data(spec, seed)
    history = net.fit(X, Y, epochs=4, batch_size=16, **spec["fit"])
    return history.loss, [p.copy() for p in net.coefs_ + net.intercepts_], net.forward(X)


def assert_same(a, b):
    loss_a, params_a, out_a = a
    loss_b, params_b, out_b = b
    assert loss_a == loss_b
    for p, q in zip(params_a + [out_a], params_b + [out_b]):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("n_threads", [1, None])
def test_different_models_in_parallel_match_serial_runs(n_threads):
    jobs = [(spec, seed) for seed in range(3) for spec in MODELS]  # 12 fits
    serial = [run(spec, seed, n_threads) for spec, seed in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: run(*job, n_threads), jobs))
    for a, b in zip(serial, parallel):
        assert_same(a, b)


def test_one_model_predicts_from_many_threads():
    """The engine's workspace is shared state; its mutex makes concurrent calls queue."""
    spec = MODELS[0]
    net = dp.MLP(spec["sizes"], seed=0)
    X, _ = data(spec, 0)
    batches = [X[i::5] for i in range(5)] * 8
    serial = [net.predict(B) for B in batches]
    outputs = [net.forward(B) for B in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        labels = list(pool.map(net.predict, batches))
        activations = list(pool.map(net.forward, batches))
    for a, b in zip(serial + outputs, labels + activations):
        np.testing.assert_array_equal(a, b)


def test_one_model_gradients_from_many_threads(rng):
    net = dp.MLP([12, 30, 3], seed=2, dtype="float32")
    X, y = rng.standard_normal((200, 12)), rng.integers(0, 3, 200)
    parts = [(X[i::4], y[i::4]) for i in range(4)] * 5
    serial = [net.loss_and_gradients(*p) for p in parts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda p: net.loss_and_gradients(*p), parts))
    for (la, dwa, dba, _), (lb, dwb, dbb, _) in zip(serial, parallel):
        assert la == lb
        for p, q in zip(dwa + dba, dwb + dbb):
            np.testing.assert_array_equal(p, q)


def test_predicting_while_the_same_model_trains_is_safe(rng):
    """Concurrent fit and predict on one model: no crash, and every prediction is a valid one
    (of the weights before or after some epoch, which the mutex keeps whole per call)."""
    net = dp.MLP([12, 40, 3], seed=1)
    X, y = rng.standard_normal((400, 12)), rng.integers(0, 3, 400)
    with ThreadPoolExecutor(max_workers=3) as pool:
        fit = pool.submit(net.fit, X, y, epochs=30, batch_size=8, lr=0.01)
        predictions = [pool.submit(net.forward, X) for _ in range(40)]
        fit.result()
        for p in predictions:
            A = p.result()
            assert A.shape == (400, 3) and np.isfinite(A).all()
            np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-12)


# -- busy cores (csrc/contention.hpp) ------------------------------------------------------------
# A parallel region whose wall time exceeds its threads' CPU time on the work (by more than a
# sleeping thread's wake-up, 200 us) lost to one thread: the cores are busy, and regions run on
# the calling thread for a while (2 ms, doubling while the next try loses too, up to 1 s).
# `_contention_record(wall_ns, cpu_ns)` gives the gate such a verdict.
LOST = (5_000_000, 1_000_000)  # a scheduler slice lost: 5 ms for 1 ms of work
WON = (1_000_000, 2_000_000)   # two threads, 1 ms each, done in 1 ms

def test_a_lost_region_doubles_the_wait_and_a_won_one_resets_it():
    _core._contention_record(*WON)  # a win: the wait starts over
    assert _core.contention_info()["wait_ms"] == 2.0
    lost = _core.contention_info()["lost_regions"]
    for wait in (4.0, 8.0, 16.0):
        _core._contention_record(*LOST)
        assert _core.contention_info()["wait_ms"] == wait
    assert _core.contention_info()["lost_regions"] == lost + 3
    for _ in range(20):
        _core._contention_record(*LOST)
    assert _core.contention_info()["wait_ms"] == 1000.0  # at most a second
    _core._contention_record(1_150_000, 1_000_000)  # a wake-up's delay is no loss
    assert _core.contention_info()["wait_ms"] == 2.0


@multicore
def test_while_the_cores_are_busy_a_fit_runs_on_one_thread_to_the_same_bits(rng):
    """After a loss, the 2-thread fit's regions run on one thread: the same model bit for bit
    (results never depend on the thread count), and the thread team is still there to ask."""
    X = rng.standard_normal((3000, 64))
    y = rng.integers(0, 10, 3000)
    fits = {}
    for label in ("one thread", "two threads", "two threads, cores busy"):
        net = dp.MLP([64, 256, 256, 10], seed=0, n_threads=1 if label == "one thread" else 2)
        before = _core.contention_info()["serial_regions"]
        if label.endswith("busy"):
            for _ in range(12):  # a wait of a few seconds: the whole fit
                _core._contention_record(*LOST)
        net.fit(X, y, epochs=2, batch_size=500)
        fits[label] = net
        if label.endswith("busy"):
            assert _core.contention_info()["serial_regions"] > before
            assert _core.threads_used(2) == 2
    _core._contention_record(*WON)  # the wait starts over for the tests that follow
    for label in ("two threads", "two threads, cores busy"):
        for a, b in zip(fits[label].coefs_ + fits[label].intercepts_,
                        fits["one thread"].coefs_ + fits["one thread"].intercepts_):
            np.testing.assert_array_equal(a, b)
