"""Runs a researcher can tell apart in MLflow's runs table: names lead with the model and what the sweep varies,
parents carry their start time, and the experiment opens on the runs table (model development), not on traces."""

from __future__ import annotations

import pytest
from entrypoints import run_entry, runs_in, store_client


@pytest.mark.slow
def test_sweep_jobs_are_named_by_what_differs(tmp_path, fixture_paths):
    overrides = ["-m", "experiment=offline_eval", "dataset.max_eval_rows=4", "model=tiny_qwen3_vl,tiny_qwen3_vl_4x"]
    result = run_entry("vdr_exp.evaluate", [*overrides, "eval.top_k=10,20"], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(r.info.run_name for r in runs_in(tmp_path, "evaluate"))
    assert names == [
        "eval eval.top_k=10 tiny_qwen3_vl",
        "eval eval.top_k=10 tiny_qwen3_vl_4x",
        "eval eval.top_k=20 tiny_qwen3_vl",
        "eval eval.top_k=20 tiny_qwen3_vl_4x",
    ]
    (parent,) = runs_in(tmp_path, "sweep")
    assert parent.info.run_name.startswith("multirun ") and parent.info.run_name.endswith(" (sweep)")
    best = max(r.data.metrics["ndcg_at_10"] for r in runs_in(tmp_path, "evaluate"))
    assert parent.data.metrics == {"jobs_finished": 4, "jobs_failed": 0, "jobs_skipped": 0, "best_ndcg_at_10": best}

    again = run_entry("vdr_exp.evaluate", [*overrides, "eval.top_k=10,20"], tmp_path, fixture_paths.root)
    assert again.returncode == 0, again.stderr[-3000:]
    second = runs_in(tmp_path, "sweep")[-1]
    assert second.data.metrics["jobs_skipped"] == 4 and second.data.tags["all_skipped"] == "true"
    assert second.data.metrics["best_ndcg_at_10"] == best
    experiment = store_client(tmp_path).get_experiment_by_name("vdr")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
