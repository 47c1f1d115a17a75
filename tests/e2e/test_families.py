"""Every model family in one offline sweep: single-vector, reranked, router, multi-vector and LoRA."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry, runs_in, store_client

pytestmark = pytest.mark.slow  # about 2.5 minutes: CI runs it, `make test` leaves it out

FAMILIES = {
    "experiment=offline_demo": "single-vector",
    "experiment=offline_reranked": "single-vector",
    "experiment=offline_router": "router",
    "experiment=offline_multi_vector": "multi-vector",
    "experiment=offline_lora": "lora",
}


@pytest.fixture(scope="session")
def families(tmp_path_factory, fixture_paths) -> Path:
    """`python -m vdr_exp.train sweep=offline_families`: 8 training steps per family on CPU."""
    workdir = tmp_path_factory.mktemp("families")
    result = run_entry("vdr_exp.train", ["sweep=offline_families"], workdir, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def _by_family(workdir: Path) -> dict:
    return {r.data.tags["sweep_params"]: r for r in runs_in(workdir, "train")}


def test_each_family_trains_evaluates_and_logs(families):
    runs = _by_family(families)
    assert set(runs) == set(FAMILIES)
    client = store_client(families)
    for params, run in runs.items():
        assert run.info.status == "FINISHED", params
        assert run.data.tags["family"] == FAMILIES[params]
        assert {"ndcg_at_10", "base_ndcg_at_10", "param_count", "trainable_params"} <= set(run.data.metrics), params
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 2, params
        logged = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.csv", "per_query.csv", "rankings.csv", "run.trec", "mteb_results.json"} <= logged, params
        assert Path(run.data.tags["model_dir"], "modules.json").is_file(), params


def test_family_specifics(families):
    runs = _by_family(families)
    lora = runs["experiment=offline_lora"].data
    assert lora.metrics["trainable_params"] < lora.metrics["param_count"] / 20
    assert Path(lora.tags["adapter_dir"], "adapter_config.json").is_file()
    multi = runs["experiment=offline_multi_vector"].data
    assert not any(k.startswith("ndcg_at_10_dim_") and not k.endswith("_16") for k in multi.metrics)  # full only
    router = runs["experiment=offline_router"].data
    assert router.metrics["param_count"] > runs["experiment=offline_demo"].data.metrics["param_count"] * 4
    reranked = runs["experiment=offline_reranked"].data
    assert 0.0 <= reranked.metrics["rerank_ndcg_at_10"] <= 1.0 and reranked.tags["rerank_top_k"] == "20"
    assert Path(reranked.tags["reranker_dir"], "modules.json").is_file()
    assert "reranker_train_loss" in reranked.metrics
    client = store_client(families)
    assert {"rerank/per_query.csv", "rerank/run.trec"} <= {
        a.path for a in client.list_artifacts(runs["experiment=offline_reranked"].info.run_id, "rerank")
    }


def test_leaderboard_lists_every_kind(families):
    board = pd.read_csv(families / "outputs" / "leaderboards" / "offline_families.csv")
    full = board[board["width"] == "full"]
    assert set(full["kind"]) == {"single-vector", "reranked", "router", "multi-vector", "lora"}
    lora = full[full["kind"] == "lora"].iloc[0]
    assert lora["trainable_params"] < lora["params"]
    assert full[full["kind"] == "reranked"]["model"].str.contains("reranker").all()


def test_saved_adapter_and_reranker_reload_for_evaluation(families, tmp_path, fixture_paths):
    runs = _by_family(families)
    lora = runs["experiment=offline_lora"].data
    # The sweep's evaluation protocol (offline_families caps it at 32 queries).
    overrides = ["experiment=offline_eval", "dataset.max_eval_rows=32", f"model.adapter={lora.tags['adapter_dir']}"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "adapter", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluated,) = runs_in(tmp_path / "adapter")
    assert evaluated.data.metrics["ndcg_at_10"] == pytest.approx(lora.metrics["ndcg_at_10"], abs=1e-6)

    reranker_dir = runs["experiment=offline_reranked"].data.tags["reranker_dir"]
    overrides = ["experiment=offline_eval", "reranker=custom", f"reranker.path={reranker_dir}"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "rerank", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluated,) = runs_in(tmp_path / "rerank")
    assert "rerank_ndcg_at_10" in evaluated.data.metrics and evaluated.data.tags["family"] == "single-vector"


def test_logit_head_reranker_trains_reranks_and_reloads(tmp_path, fixture_paths):
    """The any-to-any design: the VLM's answer-token logits score a pair (LogitScore); trained with BCE too."""
    overrides = [
        "experiment=offline_reranked", "reranker=tiny_logit", "trainer.max_steps=4", "reranker.max_steps=4",
        "dataset.max_eval_rows=16",
    ]  # fmt: skip
    result = run_entry("vdr_exp.train", overrides, tmp_path / "train", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (trained,) = runs_in(tmp_path / "train")
    assert trained.info.status == "FINISHED" and 0.0 <= trained.data.metrics["rerank_ndcg_at_10"] <= 1.0
    assert "reranker_train_loss" in trained.data.metrics
    reranker_dir = Path(trained.data.tags["reranker_dir"])
    assert "LogitScore" in (reranker_dir / "modules.json").read_text()

    overrides = [
        "experiment=offline_eval",
        "dataset.max_eval_rows=16",
        "reranker=custom",
        f"reranker.path={reranker_dir}",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "evaluate", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluated,) = runs_in(tmp_path / "evaluate")
    assert "rerank_ndcg_at_10" in evaluated.data.metrics
