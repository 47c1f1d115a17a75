"""Generated training queries, the whole offline chain: generate with the tiny random VLM -> filter -> mined
training set -> train -> evaluate on human queries (parsing and the filter in-process:
tests/unit/test_generation.py)."""

from __future__ import annotations

import json
import shutil

import pytest
from entrypoints import run_entry, runs_in

from vdr_exp.config.schema import bounded  # noqa: F401 - the schema module imports cleanly on its own


@pytest.mark.slow
def test_generated_pairs_train_a_model_that_is_judged_on_human_queries(doc_folder, fixture_paths, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(doc_folder, docs)
    work = tmp_path / "work"
    where = f"paths.output_dir={work / 'outputs'}"
    common = [where, "model=tiny_qwen3_vl", "pixels=fixture_small"]
    generate = [
        f"docs={docs}", "generator=tiny_qwen3_vl_generator", *common, "generate.filter.top_k=11",
        "generate.filter.duplicate_cosine=1.0",
    ]  # fmt: skip
    first = run_entry("vdr_exp.generate", generate, work, fixture_paths.root)
    assert first.returncode == 0, first.stderr[-3000:]
    out = next((work / "outputs" / "generated").iterdir())
    summary = json.loads((out / "generation.json").read_text())
    from datasets import load_from_disk

    rows = load_from_disk(str(out / "dataset")).to_pandas()
    assert set(rows.source) == {"human", "generated"} and (rows.source == "human").sum() == 12
    generated = rows[rows.source == "generated"]
    assert len(generated) == 33 and generated.kept.sum() == summary["metrics"]["kept"] >= 5
    assert set(generated[~generated.kept].drop_reason) <= {"empty", "too_short", "too_long", "near_duplicate"}
    assert (generated.round_trip_rank >= 1).all()
    kept_lines = (out / "queries.jsonl").read_text().splitlines()
    assert len(kept_lines) == generated.kept.sum() and json.loads(kept_lines[0])["source"] == "generated"

    (run,) = runs_in(work, "generate")
    assert run.info.status == "FINISHED" and run.data.tags["dataset_version"] == summary["version"]
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.digest == summary["version"]

    again = run_entry("vdr_exp.generate", generate, work, fixture_paths.root)  # resumes: nothing generated twice
    assert again.returncode == 0 and "0 of 33 (page, style) pairs left" in again.stdout + again.stderr

    sweep = run_entry(
        "vdr_exp.evaluate",
        ["sweep=generated_vs_human_offline", f"dataset.path={docs}", where],
        work,
        fixture_paths.root,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (trained,) = runs_in(work, "train")
    assert trained.data.tags["dataset"] == "generated-queries" and trained.info.status == "FINISHED"
    evaluations = runs_in(work, "evaluate")
    assert len(evaluations) == 2 and {r.data.tags["dataset"] for r in evaluations} == {"human-queries"}
    assert all("ndcg_at_10" in r.data.metrics for r in evaluations)
