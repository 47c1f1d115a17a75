"""Train and evaluate runs, driven as users drive them: real subprocesses, a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import pytrec_eval
from entrypoints import only_run, run_entry, runs_in, store_client
from mlflow.entities import LoggedModelStatus

from vdr_exp.retrieval.metrics import HEADLINE

ARTIFACTS = ("metrics.csv", "per_query.csv", "rankings.csv", "run.trec", "qrels.tsv", "matryoshka.csv")


def train_run(demo: Path):
    """The sweep's first prerequisite training run (experiment=offline_demo, seed 42) and its run directory."""
    (run,) = [r for r in runs_in(demo, "train") if r.data.tags["seed"] == "42"]
    return store_client(demo), run, demo / "sweep" / "train_first_0"


def test_offline_demo_training_run_finished_and_improved(demo):
    client, run, _ = train_run(demo)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    print(f"\noffline demo: base_ndcg_at_10 {metrics['base_ndcg_at_10']:.4f} -> ndcg_at_10 {metrics['ndcg_at_10']:.4f}")
    assert metrics["ndcg_at_10"] > metrics["base_ndcg_at_10"]
    for name in HEADLINE:
        assert name in metrics and f"base_{name}" in metrics
    for dim in (32, 16, 8):
        assert f"ndcg_at_10_dim_{dim}" in metrics
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 4
    assert len(client.get_metric_history(run.info.run_id, "eval_ndcg_at_10")) >= 2  # the demo evaluates twice


def test_runs_log_how_fast_they_trained_and_encoded(demo):
    _, run, _ = train_run(demo)
    metrics = run.data.metrics
    # Wall time per step includes fetching the batch, so it is never below the step's own compute time.
    assert metrics["train_s_per_step"] >= metrics["train_compute_s_per_step"] > 0
    assert metrics["train_pages_per_s"] > 0 and metrics["train_tflops_per_s"] > 0
    for prefix in ("base_", ""):
        assert metrics[f"{prefix}encode_pages_per_s"] > 0 and metrics[f"{prefix}encode_queries_per_s"] > 0
    assert "train_mfu" not in metrics  # a CPU has no known peak: no made-up utilisation
    assert run.data.tags["accelerator"] == "cpu"


def test_demo_training_run_records_config_tags_and_artifacts(demo):
    client, run, run_dir = train_run(demo)
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
        assert (run_dir / name).is_file()
    per_query = pd.read_csv(run_dir / "per_query.csv")
    assert len(per_query) == 64
    assert list(per_query.columns) == [
        "query_id", "query", "relevant_doc_ids", "first_relevant_rank", "ndcg_at_10", "rr_at_10", "recall_at_10",
    ]  # fmt: skip
    assert pd.read_csv(run_dir / "rankings.csv").groupby("query_id").size().eq(100).all()
    assert list(pd.read_csv(run_dir / "matryoshka.csv")["dim"]) == [32, 16, 8]
    assert (run_dir / "model" / "modules.json").is_file()
    assert not (demo / "mlruns").exists()


def test_the_finetuned_model_is_logged_to_mlflow_and_the_demo_reads_it_back_from_there(demo):
    client, run, _ = train_run(demo)
    model_id = run.data.tags["logged_model_id"]
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == run.info.run_id and logged.status == LoggedModelStatus.READY
    assert logged.params["dtype"] == "float32" and logged.params["base_model"] == "tiny_qwen3_vl"
    assert "ndcg_at_10" in {m.key for m in logged.metrics}
    evaluations = runs_in(demo, "evaluate")
    (evaluated,) = [r for r in evaluations if r.data.tags.get("source_run_id") == run.info.run_id]
    assert evaluated.data.tags["model_id"] == f"models:/{model_id}"
    assert evaluated.data.tags["source_run_id"] == run.info.run_id
    # null in its config: the training run's own settings, recorded as the evaluation's params
    assert (
        evaluated.data.params["model.dtype"] == "float32"
        and evaluated.data.params["model.attn_implementation"] == "sdpa"
    )


def test_each_evaluation_logs_its_per_query_table_and_a_gallery_of_worst_and_best_queries(demo):
    from PIL import Image

    client = store_client(demo)
    for run in runs_in(demo, "evaluate"):
        logged = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "per_query_table.json" in logged
        gallery = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id, "gallery")}
        assert set(gallery) == {"gallery/gallery.html", "gallery/gallery.png"}
        assert gallery["gallery/gallery.html"] < 2_000_000  # bounded: 8 queries x 6 thumbnails
        local = Path(client.download_artifacts(run.info.run_id, "gallery", str(demo / "dl" / run.info.run_id)))
        page = (local / "gallery.html").read_text()
        assert page.count('class="row"') == 8 and page.count("<img") == 8 * 6
        assert Image.open(local / "gallery.png").size[1] > 8 * 160


def test_ndcg_from_run_file_matches_trec_eval(demo):
    _, run, run_dir = train_run(demo)
    with open(run_dir / "qrels.tsv") as f:
        qrels = pytrec_eval.parse_qrel(f)
    with open(run_dir / "run.trec") as f:
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


def test_runs_log_their_datasets_as_mlflow_inputs(demo):
    client, run, _ = train_run(demo)
    by_context = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i for i in run.inputs.dataset_inputs}
    assert set(by_context) == {"training", "evaluation"}
    evaluation = by_context["evaluation"]
    tags = {t.key: t.value for t in evaluation.tags}
    assert evaluation.dataset.name == "synthetic_vdr" and evaluation.dataset.source_type == "local"
    assert (tags["queries"], tags["pages"], tags["split"]) == ("64", "320", "eval")
    assert {t.key: t.value for t in by_context["training"].tags}["rows"] == "512"
    (evaluated, *_) = runs_in(demo, "evaluate")
    assert [i.dataset.digest for i in evaluated.inputs.dataset_inputs] == [evaluation.dataset.digest]


def test_a_logged_demo_reads_one_line_per_event(demo):
    """Off a terminal: no progress-bar redraws, no per-step dicts of evaluator keys, each warning once."""
    out, err = (demo / "stdout.txt").read_text(), (demo / "stderr.txt").read_text()
    assert "\r" not in out and "\r" not in err
    assert "{'loss'" not in out and "cosine_accuracy@1" not in out
    assert any(
        line.endswith(tuple("0123456789")) and "step " in line and "train_loss" in line for line in out.splitlines()
    )
    warnings = [line for line in err.splitlines() if "Warning:" in line]
    processes = 1 + len(runs_in(demo, "train"))  # the sweep, and each prerequisite training (one per seed)
    assert all(warnings.count(w) <= processes for w in warnings), warnings


def test_mteb_reads_each_runs_result_file_back_with_the_logged_score(demo):
    from mteb.results import TaskResult

    _, run, run_dir = train_run(demo)
    result = TaskResult.from_disk(run_dir / "mteb_results.json")
    assert result.get_score() == pytest.approx(run.data.metrics["ndcg_at_10"], abs=1e-6)
    assert result.languages == ["eng"]  # mteb reports the language part of eng-Latn
