"""`make setup` must fail early and say why when the disk cannot hold a new virtualenv.

A half-installed `.venv` after pip's "No space left on device" is worse than no venv: the next `make` would
find a Python there and carry on with missing packages. So the check runs before the venv is created.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_refuses_a_disk_too_small_for_the_venv(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run(
        ["make", "setup", "MIN_FREE_GB=1000000"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "GB free on this disk" in result.stderr
    assert "MIN_FREE_GB=0" in result.stderr
    assert not (tmp_path / ".venv").exists(), "no half-made virtualenv is left behind"
