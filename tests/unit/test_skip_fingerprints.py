"""Leftovers of the second adversarial round (issue 30): the skip fingerprint ignores what only describes a model
and follows the Hub commit its revision resolves to; a resumed run's MLflow table holds each row once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from vdr_exp.config import TrackingConfig, load_evaluate_config, register_configs
from vdr_exp.runs import completed, tracking


def _composed(*overrides: str):
    register_configs()
    with initialize_config_module(config_module="vdr_exp.conf", version_base="1.3"):
        return compose(config_name="evaluate", overrides=["experiment=offline_eval", *overrides])


def test_editing_what_describes_a_model_is_not_a_new_job():
    base = completed.config_fingerprint(_composed())
    described = _composed(
        "model.published_ndcg_at_10=0.9", "model.published_source=https://example.org", "model.architecture=Qwen3VL"
    )
    assert completed.config_fingerprint(described) == base
    assert completed.config_fingerprint(_composed("eval.top_k=50")) != base  # what it computes still counts


def test_a_hub_revision_is_keyed_by_the_commit_it_resolves_to(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    cfg = load_evaluate_config(_composed("model=custom", "model.path=org/model", "model.revision=main"))
    first = completed.content_keys(cfg)
    assert first["model.revision"] == "a" * 40
    (refs / "main").write_text("b" * 40)  # `main` moved on the Hub and was downloaded again
    assert completed.content_keys(cfg)["model.revision"] == "b" * 40
    cfg.model.revision = "c" * 40  # a pinned commit is its own key, cached or not
    assert completed.content_keys(cfg)["model.revision"] == "c" * 40


def test_a_resumed_run_logs_its_table_once(tmp_path):
    cfg = TrackingConfig(name="t", store=str(tmp_path / "m.db"), artifact_root=str(tmp_path / "art"))
    table = pd.DataFrame({"query_id": ["q1", "q2"], "ndcg_at_10": [0.5, 1.0]})
    with tracking.tracked_run(cfg, "first", {}) as run_id:
        tracking.log_table(table, artifact_file="per_query_table.json")
    with tracking.tracked_run(cfg, None, {}, resume_run_id=run_id):
        tracking.log_table(table, artifact_file="per_query_table.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    logged = json.loads(Path(client.download_artifacts(run_id, "per_query_table.json", str(tmp_path))).read_text())
    assert logged["data"] == [["q1", 0.5], ["q2", 1.0]]
    assert "per_query_table.json" in client.get_run(run_id).data.tags.get("mlflow.loggedArtifacts", "")


def test_no_module_logs_a_table_but_through_tracking():
    root = Path(__file__).resolve().parents[2] / "vdr_exp"
    callers = [p.name for p in root.rglob("*.py") if re.search(r"mlflow\.log_table\(", p.read_text())]
    assert callers == ["tracking.py"]
