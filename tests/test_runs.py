"""Train and evaluate runs, driven as users drive them: real subprocesses, a real MLflow SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import pytrec_eval
from mlflow.tracking import MlflowClient

from vdr_exp.metrics import HEADLINE

ARTIFACTS = ("metrics.csv", "per_query.csv", "rankings.csv", "run.trec", "qrels.tsv", "matryoshka.csv")


def run_entry(module: str, overrides: list[str], workdir: Path, fixtures_root: Path) -> subprocess.CompletedProcess:
    """Run an entry point from ``workdir`` with every output (store, artifacts, run dir) inside it."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        module,
        *overrides,
        f"fixtures.root={fixtures_root}",
        f"tracking.store={workdir / 'mlflow.db'}",
        f"tracking.artifact_root={workdir / 'mlartifacts'}",
        f"hydra.run.dir={workdir / 'run'}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def only_run(workdir: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("vdr")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, f"expected one run, found {len(runs)}"
    return client, runs[0]


@pytest.fixture(scope="session")
def demo(tmp_path_factory, fixture_paths):
    workdir = tmp_path_factory.mktemp("demo")
    result = run_entry("vdr_exp.train", ["experiment=offline_demo"], workdir, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_offline_demo_logs_a_finished_run_that_improved(demo):
    client, run = only_run(demo)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    print(f"\noffline demo: base_ndcg_at_10 {metrics['base_ndcg_at_10']:.4f} -> ndcg_at_10 {metrics['ndcg_at_10']:.4f}")
    assert metrics["ndcg_at_10"] > metrics["base_ndcg_at_10"]
    for name in HEADLINE:
        assert name in metrics and f"base_{name}" in metrics
    for dim in (32, 16, 8):
        assert f"ndcg_at_10_dim_{dim}" in metrics
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 4
    assert len(client.get_metric_history(run.info.run_id, "eval_ndcg_at_10")) >= 3


def test_demo_run_records_config_tags_and_artifacts(demo):
    client, run = only_run(demo)
    tags, params = run.data.tags, run.data.params
    assert (
        tags["run_kind"] == "train" and tags["dataset"] == "synthetic_vdr" and tags["pixel_budget"] == "fixture_small"
    )
    assert tags["model_id"].endswith("tiny-qwen3-vl") and int(tags["param_count"]) > 0
    assert "experiment=offline_demo" in tags["hydra_overrides"] and tags["git_commit"]
    assert params["trainer.learning_rate"] == "0.002" and params["loss.matryoshka_dims"] == "[32, 16, 8]"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert set(ARTIFACTS) | {"config.yaml", "overrides.yaml", "base"} <= logged
    for name in ARTIFACTS:
        assert (demo / "run" / name).is_file()
    per_query = pd.read_csv(demo / "run" / "per_query.csv")
    assert len(per_query) == 64
    assert list(per_query.columns) == [
        "query_id", "query", "relevant_doc_ids", "first_relevant_rank", "ndcg_at_10", "rr_at_10", "recall_at_10",
    ]  # fmt: skip
    assert pd.read_csv(demo / "run" / "rankings.csv").groupby("query_id").size().eq(100).all()
    assert list(pd.read_csv(demo / "run" / "matryoshka.csv")["dim"]) == [32, 16, 8]
    assert (demo / "run" / "model" / "modules.json").is_file()
    assert not (demo / "mlruns").exists()


def test_ndcg_from_run_file_matches_trec_eval(demo):
    _, run = only_run(demo)
    with open(demo / "run" / "qrels.tsv") as f:
        qrels = pytrec_eval.parse_qrel(f)
    with open(demo / "run" / "run.trec") as f:
        trec_run = pytrec_eval.parse_run(f)
    measures = {"ndcg_cut.10", "map_cut.100", "recall.10", "P.10"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(trec_run)

    def mean(measure: str) -> float:
        return sum(q[measure] for q in per_query.values()) / len(per_query)

    assert abs(mean("ndcg_cut_10") - run.data.metrics["ndcg_at_10"]) < 1e-6
    assert abs(mean("map_cut_100") - run.data.metrics["map_at_100"]) < 1e-6
    assert abs(mean("recall_10") - run.data.metrics["recall_at_10"]) < 1e-6
    assert abs(mean("P_10") - run.data.metrics["precision_at_10"]) < 1e-6


def test_evaluate_run_of_the_fixtures(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["experiment=offline_eval", "model=tiny_qwen3_vl_4x"], tmp_path, fixture_paths.root
    )
    assert result.returncode == 0, result.stderr[-4000:]
    _, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_kind"] == "evaluate" and run.data.tags["model_name"] == "tiny_qwen3_vl_4x"
    assert 0.0 <= run.data.metrics["ndcg_at_10"] <= 1.0
    assert len(pd.read_csv(tmp_path / "run" / "per_query.csv")) == 64


def test_failing_run_ends_failed_with_a_clear_message(tmp_path, fixture_paths):
    missing = tmp_path / "no-such-model"
    result = run_entry(
        "vdr_exp.evaluate",
        ["experiment=offline_eval", "model=custom", f"model.path={missing}"],
        tmp_path,
        fixture_paths.root,
    )
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    _, run = only_run(tmp_path)
    assert run.info.status == "FAILED"
    assert "does not exist" in run.data.tags["error"]
