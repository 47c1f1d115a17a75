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
def beir_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ViDoRe-style export: corpus/, queries/, qrels/ sub-folders; graded qrels, one judged-irrelevant page."""
    from documents import write_beir_folder

    return write_beir_folder(tmp_path_factory.mktemp("beir"))


@pytest.fixture(scope="session")
def miniatures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The offline miniatures of the ViDoRe tasks (task name -> local folder), in mteb's own layout."""
    from vdr_exp.fixtures import mini_vidore

    return mini_vidore.build(tmp_path_factory.mktemp("mini_vidore"))


@pytest.fixture(scope="session")
def migrated_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema migrated (seconds of migrations): kept in pytest's cache per
    MLflow version, so the quick loop migrates once, not once a session."""
    from mlflow.version import VERSION
    from support.stores import migrate

    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir(f"mlflow-store-{VERSION}") if cache else tmp_path_factory.mktemp("migrated")
    path = folder / "mlflow.db"
    if not path.is_file():
        scratch = folder / f"mlflow.db.{os.getpid()}.partial"
        os.replace(migrate(scratch), path)  # whole or not at all, should two sessions race
    return path


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


UNIT = Path(__file__).parent / "unit"
HEAVY_FIXTURES = {"fixture_paths", "demo"}  # the built tiny models and dataset (about a minute), the demo sweep


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The unit tier stays the quick loop (`make unit`, under a minute): no slow test and no built fixtures there;
    such a test belongs in tests/e2e."""
    for item in items:
        if UNIT in item.path.parents:
            heavy = HEAVY_FIXTURES & set(getattr(item, "fixturenames", ()))
            if item.get_closest_marker("slow") or heavy:
                why = f"uses {sorted(heavy)}" if heavy else "is marked slow"
                raise pytest.UsageError(f"{item.nodeid} {why}: move it to tests/e2e (the unit tier stays quick)")
