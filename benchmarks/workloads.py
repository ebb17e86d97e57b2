"""What the benchmarks measure, shared by the pytest-benchmark suites and ``report.py``: the
machine facts, the workloads (data, networks, training settings), the GEMM cases, how a
backend runs one epoch, and the agreement checks. Nothing here times anything."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
from dataclasses import dataclass

import numpy as np

import deltaprop as dp
from deltaprop import _core

# This project's machines may set these two; with them OpenBLAS (NumPy's BLAS) runs a forced,
# slower kernel set, so a comparison against NumPy is only fair with both unset for the
# benchmark command (benchmarks/README.md says why both).
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

DTYPES = ("float64", "float32")
THREADS = (1, 2)

# Agreement after one epoch, C++ (or torch) against the NumPy reference: max |a - e| must be
# at most rtol x max(1, max |e|). A whole epoch compounds the summation-order differences of
# its matrix products, hence 1e-4 in float32 (the test suite's training tolerance).
EPOCH_RTOL = {"float64": 1e-9, "float32": 1e-4}
# One matrix product against NumPy's, relative to the largest entry of the product.
GEMM_RTOL = {"float64": 1e-12, "float32": 1e-5}


# -- machine facts ------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_simd() -> str:
    """The widest x86 SIMD extensions /proc/cpuinfo lists (what OpenBLAS and deltaprop pick
    their kernels by)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl"]
                    return " ".join(w for w in wanted if w in flags) or "none of sse4.2..avx512"
    except OSError:
        pass
    return "unknown"


def blas_summary() -> str:
    """NumPy's BLAS: threadpoolctl's view (library, version, kernel architecture, threads) when
    threadpoolctl is importable, else what numpy.show_config records of its build."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        # NumPy's own (its wheel bundles it beside the package), not another library's BLAS
        blas = [i for i in blas if i.get("filepath", "").startswith(numpy_dir)
                and "numpy" in i.get("filepath", "")] or blas
        if blas:
            return "; ".join(
                f"{i.get('internal_api')} {i.get('version')} "
                f"(kernels {i.get('architecture', '?')}, {i.get('num_threads')} threads, "
                f"{os.path.basename(i.get('filepath', ''))})" for i in blas)
        return "threadpoolctl finds no BLAS loaded"
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (numpy.show_config; " \
               f"threadpoolctl not installed, so thread counts are not known)"
    except Exception:  # noqa: BLE001 - older NumPy without mode="dicts": say so, don't fail
        return "unknown (threadpoolctl not installed, numpy.show_config has no dict mode)"


def openblas_env() -> dict:
    """Each of OPENBLAS_VARS mapped to its value, or None when unset."""
    return {name: os.environ.get(name) for name in OPENBLAS_VARS}


def openblas_env_line() -> str:
    env = openblas_env()
    if all(v is None for v in env.values()):
        return "unset (" + ", ".join(OPENBLAS_VARS) + "): NumPy runs at its normal speed"
    shown = ", ".join(f"{k}={v!r}" if v is not None else f"{k} unset" for k, v in env.items())
    return (f"SET ({shown}): NumPy's OpenBLAS may be slowed; rerun with "
            f"`env -u {' -u '.join(OPENBLAS_VARS)} ...` for a fair comparison")


def deltaprop_summary() -> str:
    parts = [f"deltaprop {dp.__version__}", f"default_threads={_core.default_threads()}"]
    for attr, label in (("compiler", "compiler"), ("openmp", "OpenMP")):
        if hasattr(_core, attr):
            parts.append(f"{label} {getattr(_core, attr)}")
    if hasattr(dp.ops, "get_isa"):  # the GEMM's instruction-set dispatch, where it exists
        parts.append(f"GEMM path {dp.ops.get_isa()}")
    return ", ".join(parts)


def fma_peak_line() -> str | None:
    """One core's measured multiply-add peak per dtype (``dp.ops.fma_peak_gflops``, ~0.3 s
    each), the ceiling for the single-thread GEMM rows; None where deltaprop lacks it."""
    peak = getattr(dp.ops, "fma_peak_gflops", None)
    if peak is None:
        return None
    return ", ".join(f"{dt} {peak(dt):.0f} GFLOP/s" for dt in ("float32", "float64")) + \
        " (one core, deltaprop's register-only FMA loop)"


def machine_facts(measure_peak: bool = False) -> list:
    """(label, value) pairs, printed once by conftest.py and by report.py (which also measures
    the FMA peak)."""
    facts = [
        ("CPU", f"{cpu_model()}; {os.cpu_count()} logical cores; SIMD: {cpu_simd()}"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("NumPy", f"{np.__version__}; BLAS: {blas_summary()}"),
        ("deltaprop", deltaprop_summary()),
    ]
    peak = fma_peak_line() if measure_peak else None
    if peak:
        facts.append(("FMA peak", peak))
    return facts + [
        ("OpenBLAS variables", openblas_env_line()),
        ("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "unset")),
    ]


class CpuMonitor:
    """How much CPU time other processes used (and the hypervisor stole) between construction and
    ``summary()``: /proc/stat's busy time less this process's own. On a 2-core machine any other
    busy process distorts the 2-thread timings most, so the runs say how quiet the machine was."""

    def __init__(self):
        self._start = self._read()

    @staticmethod
    def _read():
        tick = os.sysconf("SC_CLK_TCK")
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            fields = None
        own = sum(getattr(resource.getrusage(who), attr)
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for attr in ("ru_utime", "ru_stime"))
        if fields is None or len(fields) < 8:
            return time.monotonic(), None, None, own
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return time.monotonic(), (user + nice + system + irq + softirq) / tick, steal / tick, own

    def measure(self):
        """(wall seconds, core-seconds used by other processes, core-seconds stolen), or None
        without /proc/stat."""
        end = self._read()
        wall = end[0] - self._start[0]
        if end[1] is None or self._start[1] is None or wall <= 0:
            return None
        others = max(0.0, end[1] - self._start[1] - (end[3] - self._start[3]))
        return wall, others, end[2] - self._start[2]

    def busy_share(self):
        """The share of the machine's cores that other processes (and the hypervisor) took, or
        None when unknown."""
        measured = self.measure()
        if measured is None:
            return None
        wall, others, steal = measured
        return (others + steal) / (wall * (os.cpu_count() or 1))

    def summary(self) -> str:
        measured = self.measure()
        if measured is None:
            return "unknown (no /proc/stat)"
        wall, others, steal = measured
        cores = os.cpu_count() or 1
        text = (f"{others:.1f} core-seconds by other processes ({others / (wall * cores):.0%} "
                f"of {cores} cores over {wall:.0f} s), {steal:.1f} stolen by the hypervisor")
        if others + steal > NOISY_MIN and (others + steal) / (wall * cores) > NOISY_SHARE:
            text += ": the machine was not quiet, so the timings are noisy (2-thread ones most)"
        return text


# Above this share of the machine taken by others during a measurement, it is flagged as noisy
# (and only past NOISY_MIN core-seconds: /proc/stat counts in 10 ms ticks).
NOISY_SHARE = 0.05
NOISY_MIN = 0.1


def is_noisy(monitor: CpuMonitor) -> bool:
    measured = monitor.measure()
    if measured is None:
        return False
    wall, others, steal = measured
    busy = others + steal
    return busy > NOISY_MIN and busy / (wall * (os.cpu_count() or 1)) > NOISY_SHARE


# After a multithreaded call, OpenBLAS's worker threads keep spinning for ~0.1 s (and OpenMP
# runtimes' for a shorter while); a 2-thread deltaprop call started in that window shares a
# core with a spinning thread and can take 50x longer (seen: 107 ms for a 1.6 ms product).
# Every timed block therefore starts after this pause.
SETTLE_SECONDS = 0.2


def settle() -> None:
    time.sleep(SETTLE_SECONDS)


# -- thread control for NumPy's BLAS -------------------------------------------------------
def have_threadpoolctl() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def blas_threads(n):
    """A context in which NumPy's BLAS uses ``n`` threads (None: leave it as it is). Without
    threadpoolctl the count cannot be set; callers only ask for None then."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


# -- epoch workloads ----------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple
    batch_size: int
    lr: float = 0.01
    momentum: float = 0.9
    seed: int = 0
    output: str = "softmax"  # or "sigmoid": binary cross-entropy on one output unit
    rows: int = 2048         # synthetic rows (the small workload uses the digits)

    @property
    def label(self) -> str:
        return "-".join(map(str, self.sizes))


# The network: 2048 synthetic MNIST-shaped rows, 16 batches of 128 per epoch, where the
# matrix products dominate.
LARGE = Workload("large", (784, 512, 512, 10), batch_size=128)
# The digits demo's network: 1797 x 64, 57 batches of 32 (the last one of 5 rows), where the
# per-batch overhead (Python and NumPy calls, thread start-up) dominates.
SMALL = Workload("small", (64, 128, 64, 10), batch_size=32)
# Online training: one row per step, 2000 steps an epoch, where nothing but the per-step cost
# of the loop itself is measured (the 4-4-4-1 network, binary cross-entropy).
ONLINE = Workload("online", (4, 4, 4, 1), batch_size=1, output="sigmoid", rows=2000)
WORKLOADS = {w.name: w for w in (LARGE, SMALL, ONLINE)}


def step_flops(workload: Workload) -> float:
    """Multiply-add flops of one epoch's products: per step, forward X W and weight gradient
    A^T dZ for every layer, delta dZ W^T for every layer but the first."""
    sizes, n = workload.sizes, epoch_data_rows(workload)
    per_row = sum(i * o for i, o in zip(sizes, sizes[1:]))
    first = sizes[0] * sizes[1]
    return 2.0 * n * (3 * per_row - first)


def epoch_data_rows(workload: Workload) -> int:
    return 1797 if workload is SMALL else workload.rows


def small_data_source() -> str:
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return "synthetic (scikit-learn not installed)"
    return "scikit-learn digits"


def epoch_data(workload: Workload, dtype: str):
    """(X, y): seeded, fixed for a workload. The large one is synthetic (N(0, 1) features with
    labels from a random linear teacher, so training makes progress); the small one is
    scikit-learn's bundled digits scaled to [0, 1], or synthetic data of the same shape when
    scikit-learn is not installed."""
    n_in, n_out = workload.sizes[0], workload.sizes[-1]
    rng = np.random.default_rng(20240601 + n_in)
    if workload is SMALL:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            pass
        else:
            digits = load_digits()
            return (digits.data / 16.0).astype(dtype), digits.target.astype(np.int64)
        n = 1797
        X = rng.random((n, n_in))
    else:
        n = workload.rows
        X = rng.standard_normal((n, n_in))
    teacher = rng.standard_normal((n_in, max(n_out, 2)))
    y = ((X - X.mean(axis=0)) @ teacher).argmax(axis=1).astype(np.int64)  # 0/1 for one output
    return X.astype(dtype), y


def new_net(workload: Workload, dtype: str, backend: str, n_threads=None) -> dp.MLP:
    """The untrained network: the same initial weights for every backend (same seed)."""
    return dp.MLP(list(workload.sizes), activation="relu", output=workload.output, dtype=dtype,
                  seed=workload.seed, backend=backend, n_threads=n_threads)


def fit_one_epoch(net: dp.MLP, workload: Workload, X, y):
    """The timed call: one epoch of minibatch SGD with momentum, shuffled (epoch 0's order)."""
    return net.fit(X, y, epochs=1, batch_size=workload.batch_size, lr=workload.lr,
                   momentum=workload.momentum, shuffle=True)


def max_rel_error(actual, expected) -> float:
    """max |actual - expected| / max(1, max |expected|), the test suite's measure."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def assert_params_agree(got, want, dtype: str, what: str) -> float:
    """Asserts each array of ``got`` agrees with ``want`` within EPOCH_RTOL; returns the worst
    relative error."""
    assert len(got) == len(want), f"{what}: {len(got)} arrays, expected {len(want)}"
    worst = 0.0
    for i, (a, e) in enumerate(zip(got, want)):
        assert a.shape == e.shape, f"{what}: array {i} shape {a.shape} != {e.shape}"
        err = max_rel_error(a, e)
        worst = max(worst, err)
        assert err <= EPOCH_RTOL[dtype], (
            f"{what}: array {i} differs from the NumPy reference by {err:.3g} "
            f"(relative), more than {EPOCH_RTOL[dtype]:g}")
    return worst


# -- GEMM cases ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GemmCase:
    """C (m x n) = op(A) @ op(B) with inner dimension k; A and B are stored as the MLP stores
    them, so a transposed operand is a transposed view for NumPy (BLAS handles it natively)."""

    name: str
    m: int
    k: int
    n: int
    trans_a: bool = False
    trans_b: bool = False

    @property
    def layout(self) -> str:
        return ("T" if self.trans_a else "N") + ("T" if self.trans_b else "N")

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n

    @property
    def label(self) -> str:
        return f"{self.layout} {self.m}x{self.k}x{self.n}"

    def operands(self, dtype: str, seed: int = 7):
        rng = np.random.default_rng(seed)
        a_shape = (self.k, self.m) if self.trans_a else (self.m, self.k)
        b_shape = (self.n, self.k) if self.trans_b else (self.k, self.n)
        A = rng.uniform(-1.0, 1.0, a_shape).astype(dtype)
        B = rng.uniform(-1.0, 1.0, b_shape).astype(dtype)
        return A, B, np.zeros((self.m, self.n), dtype=dtype)

    def numpy_views(self, A, B):
        return (A.T if self.trans_a else A), (B.T if self.trans_b else B)


GEMM_CASES = [
    GemmCase("square", 1024, 1024, 1024),
    # The first layer of the large network on one batch of 128: X (128x784), W (784x512).
    GemmCase("forward", 128, 784, 512),                  # Z = X W
    GemmCase("weight-grad", 784, 128, 512, trans_a=True),  # dW = X^T dZ
    GemmCase("delta", 128, 512, 784, trans_b=True),      # dX = dZ W^T
]


def gemm_grid() -> list:
    """The issue's full grid (report.py --grid): squares 256 to 2048, and every MLP product of
    a batch of 32/128/256 rows through a layer of fan-in 64/784/512/1024 and fan-out
    10/64/512/1024, in its three layouts."""
    cases = [GemmCase("square", s, s, s) for s in (256, 512, 1024, 2048)]
    for batch in (32, 128, 256):
        for fan_in in (64, 784, 512, 1024):
            for fan_out in (10, 64, 512, 1024):
                cases += [GemmCase("forward", batch, fan_in, fan_out),
                          GemmCase("weight-grad", fan_in, batch, fan_out, trans_a=True),
                          GemmCase("delta", batch, fan_out, fan_in, trans_b=True)]
    return cases


def assert_gemm_agrees(C, expected, dtype: str, what: str) -> float:
    scale = float(np.abs(expected).max(initial=0.0)) or 1.0
    err = float(np.abs(C.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0))
    assert err <= GEMM_RTOL[dtype] * scale, (
        f"{what}: max error {err:.3g} > {GEMM_RTOL[dtype]:g} x {scale:.3g}")
    return err / scale
