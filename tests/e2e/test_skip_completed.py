"""Skipping completed jobs: a rerun of a sweep skips every job already FINISHED with the same config, force=true
runs them again (unchanged models from the embedding cache, the same scores); and a FINISHED run's numbers are
never reused for inputs that changed: skip-completed and the embedding cache both key on what the files hold, and
a damaged cache entry is recomputed, never read. The keys themselves: tests/unit/test_skip_fingerprints.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from entrypoints import run_entry, runs_in, tiny_eval_sweep


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


FOUR_JOBS = tiny_eval_sweep("joblib", "pixels=fixture_small,side_256", "hydra.launcher.n_jobs=4")


def _children(workdir: Path, parent_id: str):
    return [r for r in runs_in(workdir) if r.data.tags.get("mlflow.parentRunId") == parent_id]


@pytest.mark.slow
def test_four_parallel_jobs_then_skip_then_force(tmp_path, fixture_paths):
    first = run_entry("vdr_exp.evaluate", FOUR_JOBS, tmp_path, fixture_paths.root)
    assert first.returncode == 0, first.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    children = _children(tmp_path, parent.info.run_id)
    assert len(children) == 4 and all(r.info.status == "FINISHED" and "ndcg_at_10" in r.data.metrics for r in children)
    assert len({r.data.tags["config_fingerprint"] for r in children}) == 4

    again = run_entry("vdr_exp.evaluate", FOUR_JOBS, tmp_path, fixture_paths.root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped: identical config already FINISHED") == 4
    second = runs_in(tmp_path, "sweep")[-1]
    assert not _children(tmp_path, second.info.run_id)
    skipped = {v for k, v in second.data.tags.items() if k.startswith("skipped.")}
    assert skipped == {r.info.run_id for r in children}
    assert "| tiny_qwen3_vl_4x" in again.stdout  # the leaderboard still lists the skipped jobs' runs

    forced = run_entry("vdr_exp.evaluate", [*FOUR_JOBS, "force=true"], tmp_path, fixture_paths.root)
    assert forced.returncode == 0, forced.stderr[-3000:]
    third = runs_in(tmp_path, "sweep")[-1]
    rerun = _children(tmp_path, third.info.run_id)
    assert len(rerun) == 4
    assert not [r for r in runs_in(tmp_path) if r.info.status == "RUNNING"]
    # Unchanged models: nothing is encoded again (embedding cache) and every metric is identical.
    first_by_config = {r.data.tags["config_fingerprint"]: r.data.metrics for r in children}
    for r in rerun:
        assert (r.data.metrics["embedding_cache_hits"], r.data.metrics["embedding_cache_misses"]) == (2, 0)
        before = first_by_config[r.data.tags["config_fingerprint"]]

        # Scores, that is: cache counters and encoding speed (logged only where something was encoded) aside.
        def scores(metrics: dict[str, float]) -> dict[str, float]:
            return {k: v for k, v in metrics.items() if not k.startswith(("embedding_cache", "encode_"))}

        assert scores(r.data.metrics) == scores(before)
