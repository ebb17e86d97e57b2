"""pytest-benchmark suites for deltaprop (not part of the test suite in tests/).

Run them with NumPy's OpenBLAS at its normal speed, from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/ -p no:cacheprovider

The header printed at the start names the machine, NumPy's BLAS and whether those two variables
were unset. Every benchmark asserts that its result agrees with the NumPy reference (or NumPy's
matmul); none asserts anything about time.
"""

from __future__ import annotations

import os
import sys

# The suites and report.py share benchmarks/workloads.py. pytest runs with
# --import-mode=importlib (pyproject.toml), which does not put this folder on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
import workloads  # noqa: E402

_MONITOR = pytest.StashKey()


def _fact_lines():
    facts = workloads.machine_facts()
    width = max(len(label) for label, _ in facts)
    return ["deltaprop benchmarks on:"] + [f"  {label:<{width}}  {value}" for label, value in facts]


def pytest_report_header(config):
    return _fact_lines()


def pytest_sessionstart(session):
    """pytest prints no header under -q; the facts matter there too (the benchmark tables are
    meaningless without them), so they are written here instead, still once."""
    config = session.config
    config.stash[_MONITOR] = workloads.CpuMonitor()
    if config.get_verbosity() < 0:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in _fact_lines():
                reporter.write_line(line)


@pytest.hookimpl(optionalhook=True)  # a pytest-benchmark hook: no error without the plugin
def pytest_benchmark_update_machine_info(config, machine_info):
    """The same facts in pytest-benchmark's JSON (--benchmark-json, --benchmark-autosave)."""
    machine_info["deltaprop_facts"] = dict(workloads.machine_facts())
    machine_info["openblas_env"] = workloads.openblas_env()


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    monitor = config.stash.get(_MONITOR, None)
    if monitor is not None:
        terminalreporter.write_line(f"CPU used by others during the run: {monitor.summary()}")
        terminalreporter.write_line(
            f"OpenBLAS variables: {workloads.openblas_env_line()}")
