"""Every package folder (the configs' included) is listed in pyproject.toml, so the wheel carries it (the wheel
built and run from an empty directory: tests/e2e/test_packaging.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import vdr_exp

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    package_root = Path(vdr_exp.__file__).parent
    found = {
        ".".join(("vdr_exp", *p.parent.relative_to(package_root).parts))
        for p in package_root.rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    for top in ("conf", "sweeps"):  # the config folders at the top of the repository, mapped into the package
        found |= {
            ".".join(("vdr_exp", top, *p.parent.relative_to(ROOT / top).parts))
            for p in (ROOT / top).rglob("__init__.py")
        }
    assert found == listed


def test_no_two_test_modules_share_a_name():
    """The test folders are not packages: pytest imports each module by its file name, and a second
    tests/*/test_x.py stops the whole collection ("import file mismatch")."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
