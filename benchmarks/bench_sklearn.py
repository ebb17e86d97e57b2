"""deltaprop.sklearn against scikit-learn's MLP: whole fits, side by side in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_sklearn.py [--quick]

Each row fits scikit-learn's estimator and deltaprop's with the same parameters (scikit-learn's
defaults, random_state=0), the same dtype and the same thread count (deltaprop's n_threads,
NumPy's BLAS threads held by threadpoolctl), fitted in turn (scikit-learn, deltaprop,
scikit-learn, ...) several times: at least ``--repeat`` times each (default 5), or 2 when one
pair of fits takes over 2 s, each fit after a 0.2 s pause (workloads.settle: worker threads of
the previous fit stop spinning). It prints the median fit times, their ratio (scikit-learn's
median over deltaprop's: above 1, deltaprop is faster; "per fit" lists each pair's) and both test
scores, which must agree within 1 percentage point of accuracy or 0.02 R² (a disagreement
makes the script exit with status 1). "back-to-back" is the same ratio from as many more pairs
fitted without the pauses, on the one-thread rows that take under a second: after an idle
pause, a fit runs from cold caches on this shared machine (0.6-1 ms more for either peer,
measured: a fifth of a 4 ms fit, a few percent of a 45 ms one), and one that follows other work
does not.

- digits, breast_cancer, wine (classification) and diabetes (regression, standardised target):
  standardised features, a 75/25 split, scikit-learn's defaults (adam, hidden (100,), up to 200
  epochs with its tol stopping), float64, 1 thread;
- with ``--settings``, the same four again with early_stopping=True (10 % of the rows held out,
  scored after every epoch), with verbose=True (its lines printed to a buffer) and with
  solver='lbfgs', scikit-learn's defaults otherwise, diabetes with loss='poisson' (its
  target divided by its mean), and the four with their defaults on 2 threads;
- the compute-bound problem: 20 000 x 784 synthetic rows (N(0, 1) features, 10 classes from a
  random linear teacher; 5 000 more to test on), hidden (512, 512), batch 128, adam, a fixed
  number of epochs (``--epochs``, default 3), float64 and float32, 1 and 2 threads;
- with ``--sparse``, a TF-IDF-like sparse matrix (5 000 x 200 000 training rows, 40 values a
  row, unit-length rows, two classes from a random linear teacher), hidden (16,), 5 epochs,
  float64, 1 and 2 threads: both multiply the stored entries only (no floors: they are for dense
  products), and both keep a dense 200 000 x 16 first layer, which each step's update sweeps;
- with ``--predict``, then predict_proba's latency on 1, 100 and all test rows of digits and
  breast_cancer (both estimators fitted with scikit-learn's defaults, so with the same weights;
  their probabilities must agree to 1e-10): at a few rows, scikit-learn's input checks are
  most of a call.

The "BLAS floor" column is what the fit's matrix products alone take in NumPy's BLAS at the
same thread count: per batch the forward products A W, the weight gradients A^T dZ and the
back-propagated deltas dZ W^T (shapes from scikit-learn's fit: its batches and epochs), timed
on their own, best of several. "max" is scikit-learn's time over that floor: the speed-up a
trainer that ran those products exactly as fast as OpenBLAS and everything else for free would
get. "FMA floor" is the same products' floating-point operations at this CPU's peak
multiply-add rate (``dp.ops.fma_peak_gflops`` per core, times the threads), and the "max"
beside it scikit-learn's time over that: the bound no trainer doing the same arithmetic on
these cores can pass, however small its products and overheads. Where it is below 10, a 10x
speed-up is not possible here at all.

``--markdown`` prints the table as Markdown. The machine must be otherwise idle: each row says
whether others used the CPU while it ran. Timings are never judged, only scores.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for workloads.py

import workloads  # noqa: E402

SCORE_BOUND = {"accuracy": 0.01, "R2": 0.02}


def bundled(name, rates=False):
    """A bundled data set's split; diabetes' target standardised, or with ``rates`` (the
    Poisson loss's) divided by its mean."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if name == "diabetes":
        y = y / y.mean() if rates else (y - y.mean()) / y.std()
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def sparse_text(n=6_000, width=200_000, per_row=40):
    """A TF-IDF-like CSR matrix, rows of unit length, and two classes from a random linear
    teacher: 5 000 rows to train, 1 000 to test."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(200)
    starts = np.arange(0, n * per_row + 1, per_row)
    X = sp.csr_matrix((rng.exponential(size=n * per_row), rng.integers(0, width, n * per_row),
                       starts), shape=(n, width))
    X = normalize(X)
    y = (X @ rng.standard_normal(width) > 0).astype(int)
    return X[:5_000], X[5_000:], y[:5_000], y[5_000:]


def compute_bound(dtype):
    rng = np.random.default_rng(784)
    X = rng.standard_normal((25_000, 784))
    teacher = rng.standard_normal((784, 10))
    y = (X @ teacher).argmax(axis=1)
    X = X.astype(dtype)
    return X[:20_000], X[20_000:], y[:20_000], y[20_000:]


def cases(args):
    """(label, kind, data loader, parameters, dtype, threads) per row."""
    rows = []
    small = [({}, "")] + ([(dict(early_stopping=True), " (early stop)"),
                           (dict(verbose=True), " (verbose)"),
                           (dict(solver="lbfgs"), " (lbfgs)")] if args.settings else [])
    for params, suffix in small:
        for name in ("digits", "breast_cancer", "wine", "diabetes"):
            kind = "MLPRegressor" if name == "diabetes" else "MLPClassifier"
            rows.append((name + suffix, kind, lambda n=name: bundled(n), params, "float64", 1))
    if args.settings:
        rows.append(("diabetes (poisson)", "MLPRegressor", lambda: bundled("diabetes", rates=True),
                     dict(loss="poisson"), "float64", 1))
        for name in ("digits", "breast_cancer", "wine", "diabetes"):  # the defaults, 2 threads
            kind = "MLPRegressor" if name == "diabetes" else "MLPClassifier"
            rows.append((name, kind, lambda n=name: bundled(n), {}, "float64", 2))
    if args.sparse:
        for threads in args.threads:
            rows.append(("text 5000x200000 sparse", "MLPClassifier", sparse_text,
                         dict(hidden_layer_sizes=(16,), max_iter=5), "float64", threads))
    big = dict(hidden_layer_sizes=(512, 512), batch_size=128, max_iter=args.epochs)
    for dtype in ("float64", "float32"):
        for threads in args.threads:
            rows.append(("20000x784 (512,512)", "MLPClassifier",
                         lambda d=dtype: compute_bound(d), big, dtype, threads))
    return rows


def fit_timed(est, X, y, blas, pause=True):
    if pause:
        workloads.settle()
    with workloads.blas_threads(blas), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the fixed epoch counts
        with contextlib.redirect_stdout(io.StringIO()):  # (verbose=True's lines)
            start = time.perf_counter()
            est.fit(X, y)
            return time.perf_counter() - start


def fits_timed(theirs, ours, X, y, blas, repeat, pause=True):
    """Both estimators' fit times, alternating, ``repeat`` pairs (2 once a pair takes over
    2 s): a slow moment of the machine then lands on both peers rather than on one. With
    ``pause`` each fit follows workloads.settle()'s pause; without, each follows the other
    peer's fit."""
    times = []
    while len(times) < (repeat if not times or sum(times[0]) < 2.0 else min(repeat, 2)):
        times.append((fit_timed(theirs, X, y, blas, pause), fit_timed(ours, X, y, blas, pause)))
    return times


def product_floor(n, sizes, batch, epochs, dtype, blas):
    """Seconds that ``epochs`` epochs of n rows in batches of ``batch`` spend in their matrix
    products (forward, weight gradients, back-propagated deltas) in NumPy's BLAS."""
    rng = np.random.default_rng(0)
    rows_per_batch = [min(batch, n - start) for start in range(0, n, batch)]
    total = 0.0
    with workloads.blas_threads(blas):
        for rows in set(rows_per_batch):
            products = []
            for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
                A = rng.standard_normal((rows, fan_in)).astype(dtype)
                W = rng.standard_normal((fan_in, fan_out)).astype(dtype)
                dZ = rng.standard_normal((rows, fan_out)).astype(dtype)
                products += [(A, W), (A.T, dZ)] + ([(dZ, W.T)] if l else [])
            outs = [np.empty((a.shape[0], b.shape[1]), dtype) for a, b in products]

            def one_batch(products=products, outs=outs):
                for (a, b), out in zip(products, outs):
                    np.matmul(a, b, out=out)

            best = np.inf
            for _ in range(7):
                start = time.perf_counter()
                for _ in range(20):
                    one_batch()
                best = min(best, (time.perf_counter() - start) / 20)
            total += rows_per_batch.count(rows) * best
    return total * epochs


def product_flops(n, sizes, batch, epochs):
    """Floating-point operations of the same products: 2 per multiply-add; the first layer has
    no back-propagated delta."""
    per_epoch = 0
    for start in range(0, n, batch):
        rows = min(batch, n - start)
        per_epoch += sum(2 * rows * fan_in * fan_out * (3 if l else 2)
                         for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])))
    return per_epoch * epochs


@functools.cache
def fma_peak(dtype_name):
    """GFLOP/s of one core at its measured multiply-add peak."""
    import deltaprop as dp

    return dp.ops.fma_peak_gflops(dtype_name, 0.3)


def run_row(label, kind, load, params, dtype, threads, repeat):
    import sklearn.neural_network as skl

    import deltaprop.sklearn as dps

    X_train, X_test, y_train, y_test = load()
    X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    theirs = getattr(skl, kind)(random_state=0, **params)
    ours = getattr(dps, kind)(random_state=0, n_threads=threads, **params)
    monitor = workloads.CpuMonitor()
    pairs = fits_timed(theirs, ours, X_train, y_train, threads, repeat)
    t_theirs = float(np.median([a for a, _ in pairs]))
    t_ours = float(np.median([b for _, b in pairs]))
    # One-thread rows again without the pauses (no worker threads to wait for there): a fit of
    # a few ms after an idle 0.2 s runs from cold caches on this shared machine.
    warm = (fits_timed(theirs, ours, X_train, y_train, threads, repeat, pause=False)
            if threads == 1 and t_theirs < 1.0 else None)
    warm_ratio = (float(np.median([a for a, _ in warm])) / float(np.median([b for _, b in warm]))
                  if warm else None)
    s_theirs, s_ours = theirs.score(X_test, y_test), ours.score(X_test, y_test)
    sizes = [X_train.shape[1], *theirs.hidden_layer_sizes, theirs.n_outputs_]
    # lbfgs: one whole-data pass per iteration (it evaluates at least once per iteration)
    batch = (X_train.shape[0] if theirs.solver == "lbfgs"
             else theirs.batch_size if theirs.batch_size != "auto" else 200)
    dense = not hasattr(X_train, "toarray")  # (the floors are dense products')
    floor = (product_floor(X_train.shape[0], sizes, batch, theirs.n_iter_, dtype, threads)
             if dense else None)
    peak_floor = (product_flops(X_train.shape[0], sizes, batch, theirs.n_iter_)
                  / (fma_peak(np.dtype(dtype).name) * threads * 1e9)) if dense else None
    metric = "R2" if kind == "MLPRegressor" else "accuracy"
    return dict(label=label, dtype=dtype, threads=threads,
                epochs=f"{theirs.n_iter_}/{ours.n_iter_}", sklearn=t_theirs, deltaprop=t_ours,
                ratio=t_theirs / t_ours, per_fit="/".join(f"{a / b:.1f}" for a, b in pairs),
                warm=warm_ratio,
                floor=floor, peak_floor=peak_floor, metric=metric,
                s_theirs=s_theirs, s_ours=s_ours,
                # equal test score, after as many epochs (a ratio of fits otherwise compares
                # unequal work)
                agree=(abs(s_theirs - s_ours) <= SCORE_BOUND[metric]
                       and theirs.n_iter_ == ours.n_iter_),
                machine="noisy" if workloads.is_noisy(monitor) else "quiet")


def predict_rows():
    """Prediction latency: predict_proba on 1, 100 and all test rows of digits and
    breast_cancer, both estimators fitted as in the default rows (so with the same weights),
    1 thread. Each size: 5 rounds alternating the peers, each round's best of a loop of calls;
    the median round. The probabilities must agree (1e-10 of the largest)."""
    import sklearn.neural_network as skl

    import deltaprop.sklearn as dps

    rows = []
    for name in ("digits", "breast_cancer"):
        X_train, X_test, y_train, _ = bundled(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = skl.MLPClassifier(random_state=0).fit(X_train, y_train)
            ours = dps.MLPClassifier(random_state=0, n_threads=1).fit(X_train, y_train)
        for n in (1, 100, len(X_test)):
            X = np.ascontiguousarray(X_test[:n])
            error = np.abs(theirs.predict_proba(X) - ours.predict_proba(X)).max()
            loops = max(10, 20_000 // n)
            times = {"sk": [], "dp": []}
            with workloads.blas_threads(1):
                for _ in range(5):
                    for peer, est in (("sk", theirs), ("dp", ours)):
                        start = time.perf_counter()
                        for _ in range(loops):
                            est.predict_proba(X)
                        times[peer].append((time.perf_counter() - start) / loops)
            t_sk, t_dp = float(np.median(times["sk"])), float(np.median(times["dp"]))
            rows.append(dict(label=name, rows=n, sklearn=t_sk, deltaprop=t_dp,
                             error=float(error), agree=bool(error <= 1e-10)))
    return rows


def print_predict_table(rows, markdown):
    head = ["data", "rows", "scikit-learn", "deltaprop", "speed-up", "max |diff|", "agree"]
    cells = [[r["label"], str(r["rows"]), f"{r['sklearn'] * 1e6:.1f} us",
              f"{r['deltaprop'] * 1e6:.1f} us", f"{r['sklearn'] / r['deltaprop']:.1f}x",
              f"{r['error']:.0e}", "yes" if r["agree"] else "NO"] for r in rows]
    print_cells(head, cells, markdown)


def print_cells(head, rows, markdown):
    """A table: Markdown, or columns padded to their widest cell."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    for row in [head] + rows:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)))


def seconds(t):
    return f"{t * 1e3:.1f} ms" if t < 0.1 else f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.2f} s"


def floor_cells(r, key):
    """A floor's two cells: its time and scikit-learn's time over it ("-" for sparse rows)."""
    if r[key] is None:
        return ["-", "-"]
    return [seconds(r[key]), f"{r['sklearn'] / r[key]:.1f}x"]


def print_table(results, markdown):
    head = ["data", "dtype", "thr", "epochs sk/dp", "scikit-learn", "deltaprop", "speed-up",
            "per fit", "back-to-back", "BLAS floor", "max", "FMA floor", "max",
            "test score sk / dp", "agree", "machine"]
    rows = [[r["label"], r["dtype"], str(r["threads"]), r["epochs"], seconds(r["sklearn"]),
             seconds(r["deltaprop"]), f"{r['ratio']:.1f}x", r["per_fit"],
             f"{r['warm']:.1f}x" if r["warm"] else "-", *floor_cells(r, "floor"),
             *floor_cells(r, "peak_floor"),
             f"{r['metric']} {r['s_theirs']:.4f} / {r['s_ours']:.4f}",
             "yes" if r["agree"] else "NO", r["machine"]] for r in results]
    print_cells(head, rows, markdown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the compute-bound fit")
    parser.add_argument("--threads", default="1,2", help="thread counts of the compute-bound rows")
    parser.add_argument("--repeat", type=int, default=5,
                        help="fits of each estimator per row (2 where a pair takes over 2 s)")
    parser.add_argument("--settings", action="store_true",
                        help="the four small data sets again with early_stopping=True, "
                             "verbose=True (printed to a buffer) and solver='lbfgs', "
                             "diabetes with loss='poisson', and the four on 2 threads")
    parser.add_argument("--sparse", action="store_true",
                        help="a TF-IDF-like sparse fit (5 000 x 200 000, 40 values a row)")
    parser.add_argument("--predict", action="store_true",
                        help="then predict_proba's latency on 1, 100 and all test rows")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 thread, 3 fits")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    if args.quick:
        args.epochs, args.threads, args.repeat = 1, [1], 3
    import sklearn

    print("deltaprop.sklearn against scikit-learn", sklearn.__version__)
    for label, value in workloads.machine_facts():
        print(f"  {label:<20}  {value}")
    if not workloads.have_threadpoolctl():
        print("  note: threadpoolctl is missing, so NumPy's BLAS threads are not held")
    monitor = workloads.CpuMonitor()
    results = []
    for row in cases(args):
        results.append(run_row(*row, max(1, args.repeat)))
        print(".", end="", flush=True)
    print()
    print_table(results, args.markdown)
    agree = all(r["agree"] for r in results)
    if args.predict:
        predicted = predict_rows()
        print("predict_proba, 1 thread:")
        print_predict_table(predicted, args.markdown)
        agree = agree and all(r["agree"] for r in predicted)
    print(f"machine during the run: {monitor.summary()}")
    print(f"OpenBLAS variables at the end: {workloads.openblas_env_line()}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
