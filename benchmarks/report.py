"""deltaprop against its NumPy reference (and PyTorch, when installed), side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/report.py [--quick]

Runs the comparisons of the pytest-benchmark suites in this folder in one process and prints a
compact table of median times and ratios: one training epoch (the 784-512-512-10 network on
2048 rows, batch 128, and the 64-128-64-10 one on 1797 x 64, batch 32), deltaprop's C++ engine
against the NumPy reference; and ``dp.ops.gemm`` against NumPy's matmul with GFLOP/s. Each row
first checks that every side computes the same result (an epoch's parameters to 1e-9 in
float64 and 1e-4 in float32, a product to 1e-12 / 1e-5): a mismatch is printed and makes the
script exit with status 1. Timings are never judged.

"threads" is deltaprop's ``n_threads``, NumPy's BLAS thread count (held by threadpoolctl) and
``torch.set_num_threads`` alike. The default run makes 3 passes over all rows, 5 samples per
measurement and pass, and prints the median of all 15 and each pass's ratio: about 2 minutes
on 2 cores; ``--quick`` (1 pass of 3) about 30 seconds; ``--markdown`` prints the tables as
Markdown. Torch is optional: ``pip install torch==2.13.0`` (the CPU build) adds it.
The machine must be otherwise idle: each row and the last lines say whether it was.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import deltaprop as dp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for workloads.py

import workloads  # noqa: E402
from workloads import (  # noqa: E402
    DTYPES,
    EPOCH_RTOL,
    GEMM_CASES,
    LARGE,
    ONLINE,
    SMALL,
    assert_gemm_agrees,
    assert_params_agree,
    blas_threads,
    epoch_data,
    fit_one_epoch,
    have_threadpoolctl,
    new_net,
)


# -- timing -------------------------------------------------------------------------------
def time_samples(run, setup, repeats, min_sample):
    """``repeats`` wall times of ``run(*setup())`` (setup untimed), after one untimed warm-up
    whose result is returned for the agreement check. A sample shorter than ``min_sample``
    seconds is the mean of as many back-to-back calls as reach it."""
    result = run(*setup())  # warm-up: caches, thread pools, lazy initialisation
    calls = 1
    if min_sample > 0:
        args = setup()
        start = time.perf_counter()
        run(*args)
        calls = max(1, int(min_sample / max(time.perf_counter() - start, 1e-9)))
    workloads.settle()  # let the previous side's spinning worker threads go to sleep
    samples = []
    for _ in range(repeats):
        args_list = [setup() for _ in range(calls)]
        start = time.perf_counter()
        for args in args_list:
            run(*args)
        samples.append((time.perf_counter() - start) / calls)
    return samples, result


def no_setup():
    return ()


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def fmt_ratio(ours, theirs):
    """How deltaprop compares: '2.1x faster' or '1.6x slower' (never '0.6x faster')."""
    if ours is None or theirs is None:
        return "-"
    if ours <= theirs:
        return f"{theirs / ours:.2f}x faster"
    return f"{ours / theirs:.2f}x slower"


def print_table(title, header, rows, note=None, markdown=False):
    if markdown:
        print(f"\n**{title}**\n" + (f"\n{note.strip()}\n" if note else ""))
        print("| " + " | ".join(map(str, header)) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            print("| " + " | ".join(str(c) for c in r) + " |")
        return
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(f"\n{title}")
    if note:
        print(note)
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)))


# -- the optional torch peer --------------------------------------------------------------
def load_torch(disabled):
    if disabled:
        return None, "skipped (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "skipped: torch is not importable (pip install torch==2.13.0 adds it)"
    return torch, f"torch {torch.__version__} eager on the CPU"


def torch_epoch_runner(torch, workload, dtype, X, y):
    """One epoch as deltaprop's fit runs it (epoch 0's sample order, scikit-learn's momentum
    convention, mean softmax cross-entropy per batch), in torch eager mode with autograd."""
    functional = torch.nn.functional
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.from_numpy(np.asarray(dp.reference.shuffle_order(X.shape[0], workload.seed, 0),
                                        dtype=np.int64))
    n, batch = X.shape[0], min(workload.batch_size, X.shape[0])
    lr, momentum = workload.lr, workload.momentum

    def setup():
        net = new_net(workload, dtype, "numpy")  # the same initial weights
        params = [torch.tensor(p, requires_grad=True) for p in net.coefs_ + net.intercepts_]
        velocities = [torch.zeros_like(p) for p in params]
        return params, velocities

    def run(params, velocities):
        L = len(params) // 2
        coefs, intercepts = params[:L], params[L:]
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            h = Xt[rows]
            for layer, (W, b) in enumerate(zip(coefs, intercepts)):
                h = torch.addmm(b, h, W)
                if layer < L - 1:
                    h = torch.relu(h)
            if workload.output == "sigmoid":  # mean over rows of softplus(z) - y z
                loss = functional.binary_cross_entropy_with_logits(
                    h[:, 0], yt[rows].to(h.dtype))
            else:
                loss = functional.cross_entropy(h, yt[rows])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, v, g in zip(params, velocities, grads):
                    v.mul_(momentum).sub_(g, alpha=lr)  # v <- mu v - lr g
                    p.add_(v)                           # p <- p + v
        return [p.detach().numpy().copy() for p in params]

    return setup, run


# -- the comparisons ----------------------------------------------------------------------
@dataclass
class Side:
    """One implementation in one row: ``run(*setup())`` is timed inside ``context()``;
    ``check(result)`` asserts the warm-up run's result agrees and returns its error."""

    context: Callable
    setup: Callable
    run: Callable
    check: Callable


@dataclass
class Row:
    """One line of a table: its leading cells, its sides (deltaprop first), and what the
    passes measured."""

    cells: list
    sides: dict
    flops: float | None = None
    samples: dict = field(default_factory=lambda: defaultdict(list))
    pass_medians: dict = field(default_factory=lambda: defaultdict(list))
    errors: list = field(default_factory=list)
    busy: list = field(default_factory=list)

    def measure(self, repeats, min_sample, check, mismatches):
        monitor = workloads.CpuMonitor()
        for impl, side in self.sides.items():
            with side.context():
                samples, result = time_samples(side.run, side.setup, repeats, min_sample)
            self.samples[impl] += samples
            self.pass_medians[impl].append(statistics.median(samples))
            if check:
                what = f"{' '.join(map(str, self.cells))} {impl}"
                try:
                    self.errors.append(side.check(result))
                except AssertionError as exc:
                    self.errors.append(None)
                    mismatches.append(f"{what}: {exc}")
        self.busy.append(monitor.busy_share() if workloads.is_noisy(monitor) else 0.0)

    def median(self, impl):
        return statistics.median(self.samples[impl])

    def spread(self, peer):
        """Per pass, the peer's median time over deltaprop's (> 1: deltaprop faster)."""
        ours = next(iter(self.pass_medians.values()))
        return "/".join(f"{t / o:.2f}" for o, t in zip(ours, self.pass_medians[peer]))

    def status(self):
        noisy = [b for b in self.busy if b]
        return f"busy {max(noisy):.0%}" if noisy else "quiet"

    def err(self):
        if any(e is None for e in self.errors):
            return "MISMATCH"
        return f"{max(self.errors):.0e}" if self.errors else "-"


def blas_context(threads):
    return lambda: blas_threads(threads if have_threadpoolctl() else None)


def torch_context(torch, threads):
    @contextlib.contextmanager
    def context():
        torch.set_num_threads(threads)
        yield

    return context


def epoch_row(workload, dtype, threads, torch, want):
    X, y = epoch_data(workload, dtype)

    def check(params):
        return assert_params_agree(params, want, dtype, f"epoch {workload.label} {dtype}")

    def run(net):
        fit_one_epoch(net, workload, X, y)
        return net.coefs_ + net.intercepts_

    sides = {
        "deltaprop": Side(contextlib.nullcontext,
                          lambda: (new_net(workload, dtype, "cpp", threads),), run, check),
        "numpy": Side(blas_context(threads), lambda: (new_net(workload, dtype, "numpy"),), run,
                      check),
    }
    if torch is not None:
        setup, trun = torch_epoch_runner(torch, workload, dtype, X, y)
        sides["torch"] = Side(torch_context(torch, threads), setup, trun, check)
    return Row([workload.label, dtype, threads], sides)


def epoch_table(torch, thread_counts):
    rows = []
    for workload in (LARGE, SMALL, ONLINE):
        for dtype in DTYPES:
            X, y = epoch_data(workload, dtype)
            ref = new_net(workload, dtype, "numpy")
            fit_one_epoch(ref, workload, X, y)
            for threads in thread_counts:
                rows.append(epoch_row(workload, dtype, threads, torch,
                                      ref.coefs_ + ref.intercepts_))
    return rows


def gemm_row(case, dtype, threads, torch):
    A, B, C = case.operands(dtype)
    An, Bn = case.numpy_views(A, B)
    expected = An @ Bn
    C_np = np.zeros_like(C)

    def checker(out):
        return lambda _: assert_gemm_agrees(out, expected, dtype, f"gemm {case.label} {dtype}")

    sides = {
        "deltaprop": Side(contextlib.nullcontext, no_setup,
                          lambda: dp.ops.gemm(A, B, case.trans_a, case.trans_b, out=C,
                                              n_threads=threads), checker(C)),
        "numpy": Side(blas_context(threads), no_setup, lambda: np.matmul(An, Bn, out=C_np),
                      checker(C_np)),
    }
    if torch is not None:
        At, Bt = torch.from_numpy(A), torch.from_numpy(B)
        At, Bt = (At.T if case.trans_a else At), (Bt.T if case.trans_b else Bt)
        Ct = torch.zeros(case.m, case.n, dtype=At.dtype)
        sides["torch"] = Side(torch_context(torch, threads), no_setup,
                              lambda: torch.matmul(At, Bt, out=Ct),
                              checker(Ct.numpy()))  # shares Ct's memory
    return Row([dtype, f"{case.label} ({case.name})", threads], sides, flops=case.flops)


def gemm_table(torch, thread_counts, cases=GEMM_CASES):
    return [gemm_row(case, dtype, threads, torch)
            for dtype in DTYPES for case in cases for threads in thread_counts]


def roofline_lines(epoch_rows, gemm_rows):
    """For the large network: the epoch's product flops over the engine's measured rate on the
    forward product (128x784x512), i.e. the time the epoch would take if it were nothing but
    matrix products at that rate, as a fraction of the time it took."""
    rates = {(r.cells[0], r.cells[2]): r.flops / r.median("deltaprop")
             for r in gemm_rows if "(forward)" in r.cells[1] and "128x784x512" in r.cells[1]}
    lines = []
    for row in epoch_rows:
        label, dtype, threads = row.cells
        if label != LARGE.label or (dtype, threads) not in rates:
            continue
        ideal = workloads.step_flops(LARGE) / rates[dtype, threads]
        took = row.median("deltaprop")
        lines.append(f"  {label} {dtype} {threads} thread(s): {ideal * 1e3:.1f} ms of products "
                     f"at {rates[dtype, threads] / 1e9:.0f} GFLOP/s in {fmt_time(took)} -> "
                     f"{ideal / took:.0%} of the GEMM roofline")
    return lines


def render(rows, lead_header, peers, passes):
    header = list(lead_header)
    for impl in rows[0].sides:
        header += [impl if impl != "numpy" or rows[0].flops else "numpy ref"]
        if rows[0].flops:
            header += ["GF/s"]
    header += [f"deltaprop vs {p}" for p in peers]
    if passes > 1:
        header += [f"{p}/dp per pass" for p in peers]
    header += ["max err", "machine"]
    table = []
    for row in rows:
        cells = list(row.cells)
        for impl in row.sides:
            cells.append(fmt_time(row.median(impl)))
            if row.flops:
                cells.append(f"{row.flops / row.median(impl) / 1e9:.1f}")
        cells += [fmt_ratio(row.median("deltaprop"), row.median(p)) for p in peers]
        if passes > 1:
            cells += [row.spread(p) for p in peers]
        cells += [row.err(), row.status()]
        table.append(cells)
    return header, table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 pass of 3 samples instead of 3 passes of 5 (about 30 s)")
    parser.add_argument("--passes", type=int, default=None,
                        help="times the whole comparison is run, spread over time (default 3)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="samples per measurement and pass (default 5); the median of "
                             "all passes' samples is printed")
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out even if installed")
    parser.add_argument("--only", choices=["epoch", "gemm"], help="run one of the two tables")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--grid", action="store_true",
                        help="the GEMM table over the full grid of squares 256-2048 and MLP "
                             "shapes (batch 32/128/256 x fan-in 64/784/512/1024 x fan-out "
                             "10/64/512/1024, NN/TN/NT): long, best with --quick --only gemm")
    args = parser.parse_args(argv)
    args.passes = args.passes or (1 if args.quick else 3)
    args.repeats = args.repeats or (3 if args.quick else 5)
    if args.passes < 1 or args.repeats < 1:
        parser.error("--passes and --repeats take positive integers")
    min_sample = 0.005 if args.quick else 0.05
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        thread_counts = []
    if not thread_counts or any(t < 1 for t in thread_counts):
        parser.error("--threads takes comma-separated positive integers, e.g. 1,2")

    monitor = workloads.CpuMonitor()
    torch, torch_line = load_torch(args.no_torch)
    print("deltaprop benchmark report")
    facts = workloads.machine_facts(measure_peak=True) + [("torch peer", torch_line)]
    width = max(len(label) for label, _ in facts)
    for label, value in facts:
        print(f"  {label:<{width}}  {value}")
    if not have_threadpoolctl():
        print("  note: threadpoolctl is not installed, so NumPy runs with its default BLAS "
              "threads in every row")
    print(f"  {args.passes} pass(es) over all rows x {args.repeats} samples per measurement; "
          f"times are medians of all samples;\n  'machine': 'busy N%' when other processes "
          f"took more than {workloads.NOISY_SHARE:.0%} of the CPU during a pass of that row "
          f"(its timings are noisy)")

    tables = []
    if args.only in (None, "epoch"):
        tables.append(("epoch", epoch_table(torch, thread_counts)))
    if args.only in (None, "gemm"):
        grid = workloads.gemm_grid() if args.grid else GEMM_CASES
        tables.append(("gemm", gemm_table(torch, thread_counts, grid)))
    mismatches = []
    start = time.perf_counter()
    print("running", end="", flush=True)
    for p in range(args.passes):
        for _, rows in tables:
            for row in rows:
                row.measure(args.repeats, min_sample, p == 0, mismatches)
                print(".", end="", flush=True)
    print(f" {time.perf_counter() - start:.0f} s")

    peers = ["numpy"] + (["torch"] if torch is not None else [])
    for kind, rows in tables:
        if kind == "epoch":
            header, table = render(rows, ["network", "dtype", "thr"], peers, args.passes)
            print_table(
                "One training epoch (SGD, momentum 0.9, shuffled). max err: worst relative "
                "difference of the final parameters from the NumPy reference's, tolerance "
                f"{EPOCH_RTOL['float64']:g} (float64) / {EPOCH_RTOL['float32']:g} (float32)",
                header, table,
                f"  784-512-512-10: 2048 synthetic rows, batch 128 (16 steps); 64-128-64-10: "
                f"1797 {workloads.small_data_source()} rows, batch 32 (57 steps); 4-4-4-1: "
                f"online training, one row per step, 2000 steps (sigmoid output)",
                args.markdown)
        else:
            header, table = render(rows, ["dtype", "C = op(A) op(B), m x k x n", "thr"],
                                   peers, args.passes)
            header[3] = "dp.ops.gemm"
            print_table(
                "Matrix multiply into a preallocated C. max err: worst difference from "
                "NumPy's product relative to its largest entry", header, table,
                "  NN 1024^3; then the large network's first layer on a batch of 128: "
                "forward Z = X W (NN), weight gradient X^T dZ (TN), delta dZ W^T (NT)",
                args.markdown)
    measured = dict(tables)
    if "epoch" in measured and "gemm" in measured:
        print("\nThe large network against the GEMM roofline (step flops / measured GEMM rate):")
        print("\n".join(roofline_lines(measured["epoch"], measured["gemm"])))
    print(f"\nCPU used by others during the run: {monitor.summary()}")
    print(f"OpenBLAS variables: {workloads.openblas_env_line()}")
    if mismatches:
        print("\nRESULTS DISAGREE:")
        for item in mismatches:
            print(f"  {item}")
        return 1
    print("All results agree.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
