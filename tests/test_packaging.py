"""The project's promises to a new user: CI runs what the README says, and the installed
package is the built extension, not a source tree."""

from __future__ import annotations

from pathlib import Path

import deltaprop as dp

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands, ".ci/run runs nothing"
    for command in commands:
        assert command in readme, f"README.md does not show the CI command: {command}"


def test_the_engine_is_compiled_with_openmp():
    assert Path(dp._core.__file__).suffix in {".so", ".pyd"}
    assert dp._core.openmp is not None and dp._core.openmp >= 201307  # OpenMP 4.0 or later
    assert dp._core.default_threads() >= 1


def test_version_matches_the_project_metadata():
    from importlib.metadata import version

    assert dp.__version__ == version("deltaprop")
