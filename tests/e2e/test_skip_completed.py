"""A FINISHED run's numbers are never reused for inputs that changed: skip-completed and the embedding cache
both key on what the files hold, and a damaged cache entry is recomputed, never read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from entrypoints import run_entry, runs_in

from vdr_exp.data import content


def _sweep(work: Path, fixtures: Path, model: Path, docs: Path, *extra: str):
    overrides = [
        "-m",
        "model=tiny_qwen3_vl",
        f"model.path={model}",
        "pixels=fixture_small",
        "dataset=local_docs",
        f"dataset.path={docs}",
        f"dataset.page_cache={work / 'page_cache'}",
        f"eval.cache_dir={work / 'embedding_cache'}",
        *extra,
    ]
    result = run_entry("vdr_exp.evaluate", overrides, work, fixtures)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, runs_in(work, "evaluate")


@pytest.mark.slow
def test_edited_data_or_model_files_rerun_and_a_damaged_cache_entry_is_recomputed(doc_folder, tmp_path, fixture_paths):
    docs = Path(shutil.copytree(doc_folder, tmp_path / "docs"))
    model = Path(shutil.copytree(fixture_paths.root / "models" / "tiny-qwen3-vl", tmp_path / "model"))
    work = tmp_path / "work"

    _, runs = _sweep(work, fixture_paths.root, model, docs)
    first = runs[-1]
    again, runs = _sweep(work, fixture_paths.root, model, docs)
    assert "skipped: identical config" in again.stdout and len(runs) == 1  # nothing changed: skipped

    queries = docs / "queries.jsonl"
    queries.write_text(queries.read_text().replace('"page": 1}', '"page": 2}', 1))
    edited, runs = _sweep(work, fixture_paths.root, model, docs)
    assert "skipped" not in edited.stdout and len(runs) == 2 and runs[-1].info.status == "FINISHED"
    assert runs[-1].data.tags["config_fingerprint"] != first.data.tags["config_fingerprint"]

    template = model / "chat_template.jinja"
    template.write_text(template.read_text() + "\n")  # same weights, other tokenizer input: other embeddings
    retemplated, runs = _sweep(work, fixture_paths.root, model, docs)
    assert "skipped" not in retemplated.stdout and len(runs) == 3
    assert runs[-1].data.metrics["embedding_cache_misses"] == 2 and runs[-1].data.metrics["embedding_cache_hits"] == 0

    entries = sorted((work / "embedding_cache").glob("*.npy"))
    assert entries
    for entry in entries:  # a crash mid-write or a bad block: every entry cut short
        entry.write_bytes(entry.read_bytes()[:100])
    repaired, runs = _sweep(work, fixture_paths.root, model, docs, "force=true")
    assert runs[-1].info.status == "FINISHED" and "damaged" in runs[-1].data.tags["embedding_cache"]
    assert runs[-1].data.metrics["ndcg_at_10"] == runs[-2].data.metrics["ndcg_at_10"]
    _, runs = _sweep(work, fixture_paths.root, model, docs, "force=true")
    assert runs[-1].data.metrics["embedding_cache_hits"] == 2  # rewritten whole, and used again


def test_content_keys_follow_every_file_edit(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "queries.jsonl").write_text('{"q": 1}\n')
    key = content.stat_key(folder)
    assert content.stat_key(folder) == key and content.stat_key("org/hub-model") is None
    (folder / "sub" / "queries.jsonl").write_text('{"q": 2}\n')
    assert content.stat_key(folder) != key
    (folder / "model.safetensors").write_bytes(b"w1")
    (folder / "chat_template.jinja").write_text("a")
    small = content.small_files_digest(folder)
    (folder / "model.safetensors").write_bytes(b"w2")  # weights are hashed from the loaded tensors instead
    assert content.small_files_digest(folder) == small
    (folder / "chat_template.jinja").write_text("b")
    assert content.small_files_digest(folder) != small
