"""The package type-checks under mypy --strict (pyproject.toml's [tool.mypy]), _core.pyi
included: annotations that drift from the code fail here, not in a user's editor."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import python, release

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_strict_passes_on_the_package(tmp_path):
    pytest.importorskip("mypy")
    # the stubs the package's annotations are written against (older ones disagree in details)
    if release("numpy") < (2, 4) or release("mypy") < (1, 20) or release("matplotlib") < (3, 8):
        pytest.skip("needs numpy >= 2.4, mypy >= 1.20 and matplotlib >= 3.8 (typed)")
    if not (ROOT / "pyproject.toml").exists() or not (ROOT / "python" / "deltaprop").is_dir():
        pytest.skip("needs the source tree")
    out = subprocess.run([*python("-m", "mypy"), "--cache-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
