"""Session-wide offline fixtures: built once per test session, never downloaded."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from vdr_exp.fixtures import FixturePaths, ensure_fixtures  # noqa: E402


@pytest.fixture(scope="session")
def fixture_paths(tmp_path_factory: pytest.TempPathFactory) -> FixturePaths:
    return ensure_fixtures(tmp_path_factory.mktemp("fixtures"))
