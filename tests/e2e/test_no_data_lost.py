"""Nothing the user owns is deleted or overwritten: mining refuses folders it did not create and replaces only its
own output (the atomic swap itself, in-process: tests/unit/test_dataset_folders.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from entrypoints import run_entry, runs_in

from vdr_exp.data.dataset_folder import MARKER, load_rows

MINE = ["model=tiny_qwen3_vl", "pixels=fixture_small", "mine.num_negatives=2"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def docs(doc_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the documents, so a bug here could not damage the shared fixture."""
    return Path(shutil.copytree(doc_folder, tmp_path / "docs"))


@pytest.mark.parametrize(
    "target",
    [
        "source",
        "unrelated",
        pytest.param("parent", marks=pytest.mark.slow),
        pytest.param("store", marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_mining_never_writes_over_a_folder_it_did_not_create(docs, tmp_path, fixture_paths, target):
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "holiday.txt").write_text("keep me")
    out = {"source": docs, "parent": tmp_path, "unrelated": unrelated, "store": tmp_path / "run"}[target]
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    overrides = [*MINE, f"dataset.path={docs}", f"dataset.page_cache={tmp_path / 'cache'}", f"mine.out={out}"]
    result = run_entry("vdr_exp.mine", overrides, tmp_path / "work", fixture_paths.root)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: mine.out=")]
    assert len(errors) == 1 and ("source folder" in errors[0] or "was not written by vdr-exp" in errors[0])
    after = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith(("work/", "cache/"))}
    assert after == before


@pytest.mark.slow
def test_mining_defaults_to_a_folder_per_source_and_replaces_its_own_output(docs, tmp_path, fixture_paths):
    other = Path(shutil.copytree(docs, tmp_path / "elsewhere" / "docs"))
    work = tmp_path / "work"
    outs = []
    for source in (docs, other, docs):
        overrides = [*MINE, f"dataset.path={source}", f"dataset.page_cache={tmp_path / 'cache'}"]
        result = run_entry("vdr_exp.mine", [*overrides, "paths.output_dir=outputs"], work, fixture_paths.root)
        assert result.returncode == 0, result.stderr[-2000:]
        outs.append(Path(runs_in(work, "mine")[-1].data.tags["mined_dataset"]))
        assert f"wrote {outs[-1]}" in result.stdout
    assert outs[0] != outs[1] and outs[0] == outs[2]  # same source, same folder; two sources never collide
    assert all(o.parent == (work / "outputs" / "mined").resolve() and o.name.startswith("docs-") for o in outs)
    assert (outs[0] / MARKER).is_file() and len(load_rows(str(outs[1]), "train", "train")) > 0
    assert not [p for p in outs[0].parent.iterdir() if p.name.startswith(".")]  # no staging or backup left
