"""What this deltaprop is built with and runs on: ``dp.show_config()`` prints it,
``dp.config_info()`` returns it as a dict (for bug reports and for tests).

The C++ facts (compiler, C++ standard, OpenMP, build type, sanitizers, instruction-set paths)
come from the extension itself (``_core.build_info()``); thread counts are asked of the OpenMP
runtime at the time of the call, so they follow ``OMP_NUM_THREADS`` and threadpoolctl limits.
"""

from __future__ import annotations

import platform
import sys
from typing import Any, TextIO

import numpy as np

from . import _core


def config_info() -> dict[str, Any]:
    """The configuration as a dict of sections: ``deltaprop``, ``compiler``, ``openmp``,
    ``isa`` and ``python``. Values are str, int, list of str or None."""
    from . import __version__

    info = _core.build_info()
    openmp = info["openmp"]
    return {
        "deltaprop": {
            "version": __version__,
            "extension": _core.__file__,
            "build_type": info["build_type"],
            "sanitizers": [s for s in info["sanitizers"].replace(",", ";").split(";") if s],
        },
        "compiler": {
            "id": info["compiler_id"],
            "version": info["compiler_version"],
            "cxx_standard": info["cxx_standard"],
        },
        "openmp": {
            "version": openmp["version"],
            "_OPENMP": openmp["_OPENMP"],
            "library": openmp["library"],
            "max_threads": openmp["max_threads"],
            "processors": openmp["processors"],
            "threads_used": _core.threads_used(0),  # what a call with n_threads=0 gets now
            # forked from a process whose OpenMP threads had started: one thread (common.hpp)
            "forked_child": openmp["forked_child"],
            # parallel regions that lost to one thread on busy cores, and those run on one
            # thread after such a loss (csrc/contention.hpp)
            "lost_regions": _core.contention_info()["lost_regions"],
            "serial_regions": _core.contention_info()["serial_regions"],
        },
        "isa": {
            "built": info["isa_built"],
            "supported": info["isa_supported"],
            "active": info["isa_active"],
            "elementwise": info["isa_clones"] or None,
            # the paths whose GEMM kernels have run in this process (csrc/gemm.cpp)
            "kernels_loaded": info["isa_kernels_loaded"],
            # values to a vector in the small products' loops, per dtype (csrc/gemm.cpp)
            "small_product_lanes": info["small_product_lanes"],
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "numpy": np.__version__,
        },
    }


def show_config(file: TextIO | None = None) -> None:
    """Prints :func:`config_info` as indented ``key: value`` lines to ``file`` (stdout)."""
    out = sys.stdout if file is None else file
    for section, values in config_info().items():
        print(f"{section}:", file=out)
        for key, value in values.items():
            if isinstance(value, list):
                value = ", ".join(value) or "none"
            print(f"  {key + ':':<15} {value}", file=out)
