"""dp.config_info() / dp.show_config(): every fact is the extension's or the runtime's own,
and agrees with what the rest of the package reports."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import python

import deltaprop as dp
from deltaprop import _core

SECTIONS = {
    "deltaprop": {"version", "extension", "build_type", "sanitizers"},
    "compiler": {"id", "version", "cxx_standard"},
    "openmp": {"version", "_OPENMP", "library", "max_threads", "processors", "threads_used",
               "forked_child", "lost_regions", "serial_regions"},
    "isa": {"built", "supported", "active", "elementwise", "kernels_loaded", "small_product_lanes"},
    "python": {"version", "implementation", "platform", "machine", "numpy"},
}


def test_the_sections_and_their_keys():
    info = dp.config_info()
    assert {k: set(v) for k, v in info.items()} == SECTIONS


def test_the_build_facts():
    info = dp.config_info()
    assert info["deltaprop"]["version"] == dp.__version__
    assert info["deltaprop"]["extension"] == _core.__file__
    build_types = {"Release", "RelWithDebInfo", "Debug", "MinSizeRel", ""}
    assert info["deltaprop"]["build_type"] in build_types
    assert set(info["deltaprop"]["sanitizers"]) <= {"address", "undefined", "thread", "leak"}
    compiler = info["compiler"]
    assert compiler["id"] in {"GCC", "Clang", "IntelLLVM", "MSVC"}
    assert compiler["version"].split(".")[0].isdigit()
    assert compiler["version"] in _core.compiler or compiler["id"] != "GCC"
    assert compiler["cxx_standard"] == "C++17"  # CMakeLists.txt asks for exactly C++17


def test_the_openmp_facts():
    omp = dp.config_info()["openmp"]
    assert omp["_OPENMP"] == _core.openmp >= 201307
    major, minor = map(int, omp["version"].split("."))
    assert (major, minor) >= (4, 0)
    assert omp["max_threads"] == _core.default_threads() >= 1
    assert omp["processors"] >= 1
    assert omp["threads_used"] == min(omp["max_threads"], omp["processors"])
    assert omp["forked_child"] is False  # test_threads.py forks one
    if sys.platform.startswith("linux"):
        assert os.path.exists(omp["library"]) and "omp" in os.path.basename(omp["library"])


def test_the_instruction_set_paths():
    isa = dp.config_info()["isa"]
    assert isa["built"][0] == "generic" and set(isa["built"]) <= {"generic", "avx2", "avx512"}
    usable = [name for name in isa["built"] if name in isa["supported"]]
    assert usable == dp.ops.available_isas()
    assert isa["active"] == dp.ops.get_isa()
    # the multiversioned loops (common.hpp), in x86-64 GCC builds with the SIMD paths: the
    # loader's pick needs AVX-512 (F, BW, CD, DQ, VL) for v4 and AVX2 + FMA for v3
    if isa["elementwise"] is not None:
        assert isa["elementwise"] in {"x86-64", "x86-64-v3", "x86-64-v4"}
        if isa["elementwise"] == "x86-64-v4":
            assert "avx512" in isa["supported"]
        if isa["elementwise"] != "x86-64":
            assert "avx2" in isa["supported"]
    # one register of the running clone's vectors: a wider GNU vector is kept in memory between
    # operations (8 to 15 times slower loops on AVX2)
    width = {"x86-64-v4": 64, "x86-64-v3": 32, "x86-64": 16}.get(isa["elementwise"])
    lanes = isa["small_product_lanes"]
    if width is not None:
        assert lanes == {"float64": width // 8, "float32": width // 4}
    assert lanes["float64"] in {2, 4, 8} and lanes["float32"] in {4, 8, 16}


def test_the_active_path_follows_set_isa(isa):
    assert dp.config_info()["isa"]["active"] == isa
    dp.ops.gemm(np.ones((20, 20)), np.ones((20, 20)))
    assert isa in dp.config_info()["isa"]["kernels_loaded"]


@pytest.mark.parametrize("path", ["generic", "avx2"])
def test_a_chosen_path_runs_no_other_paths_kernels(path):
    # Each path's table is built by code compiled for its instruction set: built on the way to
    # another path, it ran AVX-512 code on a CPU without AVX-512 (SIGILL). Checked here on any
    # CPU: a fresh process on one path loads that path's kernels only.
    if path not in dp.ops.available_isas():
        pytest.skip(f"this CPU cannot run {path}")
    code = ("import numpy as np, deltaprop as dp; x = np.ones((64, 64)); dp.ops.gemm(x, x); "
            "print(*dp.config_info()['isa']['kernels_loaded'])")
    out = subprocess.run(python("-c", code), env=dict(os.environ, DELTAPROP_ISA=path),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [path]


def test_the_python_facts():
    py = dp.config_info()["python"]
    assert py["numpy"] == np.__version__
    assert py["version"] == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.parametrize("n_threads", [1, 2, 1024])
def test_threads_used_is_the_team_a_call_gets(n_threads):
    processors = _core.build_info()["openmp"]["processors"]
    assert _core.threads_used(n_threads) == min(n_threads, processors)


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1025, ValueError), (1.5, TypeError),
                                        ("2", TypeError), (None, TypeError)])
def test_threads_used_checks_its_argument(bad, error):
    with pytest.raises(error, match="n_threads"):
        _core.threads_used(bad)


def test_show_config_prints_every_value(capsys):
    dp.show_config()
    printed = capsys.readouterr().out
    for section, values in dp.config_info().items():
        assert f"{section}:\n" in printed
        for key, value in values.items():
            if isinstance(value, list):
                value = ", ".join(value) or "none"
            assert f"  {key + ':':<15} {value}\n" in printed


def test_show_config_writes_to_a_file():
    buffer = io.StringIO()
    assert dp.show_config(file=buffer) is None
    assert buffer.getvalue().startswith("deltaprop:\n")
