"""The lint configuration of pyproject.toml ([tool.ruff]) passes on the whole repository, so an unused import, an
undefined name or a syntax error fails ``make test`` instead of waiting for a reader to find it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")   # the venv's own executable (ruff is in the test extras)


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if not RUFF.is_file():
        pytest.fail(f"{RUFF} is missing: install the test extras (pip install -e '.[test]')")
    return subprocess.run([str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ruff_passes_on_the_repository():
    done = _ruff("check", "--no-cache", ".")
    assert done.returncode == 0, f"ruff check failed:\n{done.stdout}{done.stderr}"


def test_the_configuration_is_the_one_that_runs(tmp_path):
    # The rule set is read from pyproject.toml: a file with an unused import and an undefined name, checked with
    # the repository's settings, must fail with both codes (a configuration that selected nothing would pass).
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    done = _ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "F401" in done.stdout and "F821" in done.stdout
