"""Session-wide offline fixtures: built once per test session, never downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from vdr_exp.fixtures import FixturePaths, ensure_fixtures


@pytest.fixture(scope="session")
def fixture_paths(tmp_path_factory: pytest.TempPathFactory) -> FixturePaths:
    return ensure_fixtures(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, fixture_paths: FixturePaths) -> Path:
    """What `make demo` runs: the offline sweep (train tiny, then compare base, finetuned, 4x), once per session."""
    from entrypoints import run_entry

    workdir = tmp_path_factory.mktemp("demo")
    result = run_entry("vdr_exp.evaluate", ["sweep=offline_demo"], workdir, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-4000:]
    (workdir / "stdout.txt").write_text(result.stdout)
    (workdir / "stderr.txt").write_text(result.stderr)
    return workdir


@pytest.fixture(scope="session")
def doc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three multi-page PDFs and two images; one query per page, one query with graded relevance."""
    from documents import write_doc_folder

    return write_doc_folder(tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema migrated, made once per session (seconds of migrations)."""
    from support.stores import migrate

    return migrate(tmp_path_factory.mktemp("migrated") / "mlflow.db")


@pytest.fixture
def new_store(tmp_path: Path, migrated_store: Path) -> Path:
    """``tmp_path/mlflow.db``: a new, empty store of this test's own, copied from the migrated one."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, path)
    return path


@pytest.fixture
def store(new_store: Path):
    """A throwaway store in ``tmp_path`` (tests/support/stores.py), runs logged as the pipeline logs them."""
    from support.stores import Store

    return Store(new_store.parent)
