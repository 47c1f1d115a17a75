"""What a sweep leaves for the MLflow UI: a saved view behind the URL it prints, and descriptions on its runs.

The browser side (the view opened in Chromium, the descriptions rendered) is test_ui.py; here the stored facts the
UI reads, on the demo sweep (`make demo`); the descriptions' pieces in-process: tests/unit/test_sweep_descriptions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from entrypoints import runs_in, store_client

from vdr_exp.runs import sweep_views, tracking


@pytest.fixture(name="sweep")
def _sweep(demo: Path):
    client = store_client(demo)
    experiment = client.get_experiment_by_name("vdr")
    (parent,) = runs_in(demo, "sweep")
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return client, experiment, parent, children


def test_the_demo_prints_a_url_whose_saved_view_shows_its_jobs_by_ndcg(demo, sweep):
    client, experiment, parent, children = sweep
    url = sweep_views.view_url(tracking.LOCAL_UI, experiment.experiment_id, parent.info.run_id)
    assert url in (demo / "stdout.txt").read_text()
    envelope = json.loads(experiment.tags[sweep_views.VIEW_TAG_PREFIX + parent.info.run_id])
    assert envelope["name"] == parent.info.run_name
    state = json.loads(envelope["state"])
    assert state["orderByKey"] == "metrics.`ndcg_at_10`" and state["orderByAsc"] is False
    columns = state["selectedColumns"]
    assert columns[:2] == ["metrics.`ndcg_at_10`", "metrics.`delta_ndcg_at_10`"]
    dims = [int(c.removesuffix("`").rsplit("_", 1)[1]) for c in columns if "_dim_" in c]  # widest first
    assert dims == sorted(dims, reverse=True) and {32, 16, 8} <= set(dims)  # the demo's eval.dims
    assert "params.`model.name`" in columns  # what the demo's jobs vary
    assert state["columnOrder"][0] == "attributes.`Run Name`" and state["columnOrder"][1:] == columns
    # The view's filter finds exactly this sweep's jobs, and every one of them has the headline metric.
    found = client.search_runs([experiment.experiment_id], state["searchFilter"])
    assert sorted(r.info.run_id for r in found) == sorted(c.info.run_id for c in children) and len(found) >= 3
    assert all("ndcg_at_10" in r.data.metrics for r in found)
    assert {c["metricKey"] for c in state["compareRunCharts"] if c["type"] == "BAR"} == {
        "ndcg_at_10",
        "delta_ndcg_at_10",
    }


def test_the_sweep_parent_describes_its_leaderboard_command_and_files(demo, sweep):
    _, experiment, parent, _ = sweep
    note = parent.data.tags[sweep_views.NOTE_TAG]
    table = (demo / "outputs" / "leaderboards" / "offline_demo.md").read_text()
    assert table.strip() in note  # the leaderboard exactly as exported, intervals and p-values included
    assert note.startswith("**Best: tiny_qwen3_vl_finetuned") and "NDCG@10 " in note.splitlines()[0]
    assert "python -m vdr_exp.evaluate sweep=offline_demo" in note
    csv = f"[offline_demo.csv](#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}/artifacts/"
    assert csv + "leaderboard/offline_demo.csv)" in note
    assert "![offline_demo_matryoshka](get-artifact?path=leaderboard/offline_demo_matryoshka.png" in note


def test_each_job_says_in_one_line_what_it_is_and_how_it_scored(sweep):
    client, _, _, children = sweep
    evaluated = {c.data.tags["model_name"]: c for c in children if c.data.tags["run_kind"] == "evaluate"}
    base = evaluated["tiny_qwen3_vl"].data.metrics["ndcg_at_10"]
    for run in children:
        line = run.data.tags[sweep_views.NOTE_TAG]
        assert "\n" not in line and line.startswith(
            f"{run.data.tags['model_name']} · dataset {run.data.tags['dataset']} ·"
        )
        assert f"NDCG@10 {run.data.metrics['ndcg_at_10']:.3f}" in line and "pixels fixture_small" in line
        if run.data.tags["run_kind"] == "train":
            assert f"seed {run.data.params['trainer.seed']}" in line and "before training" in line
        else:
            delta = run.data.metrics["delta_ndcg_at_10"]
            assert delta == pytest.approx(run.data.metrics["ndcg_at_10"] - base, abs=1e-9)
            said = "(the sweep's base)" if run.data.tags["model_name"] == "tiny_qwen3_vl" else f"Δ {delta:+.3f} vs"
            assert said in line
