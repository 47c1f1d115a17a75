"""Resuming, piece by piece: the newest complete checkpoint is the one resumed (a kill mid-save leaves one that
is skipped), a first SLURM start resumes nothing, and a resumed run's MLflow table holds each row once. A killed
training resumed end to end: tests/e2e/test_interrupted_runs.py; requeued on SLURM: tests/e2e/test_slurm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from vdr_exp.config import TrackingConfig
from vdr_exp.jobs.resume import last_complete_checkpoint
from vdr_exp.runs import preemption, tracking


def _checkpoint(folder: Path, step: int, *, complete: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "optimizer.pt").write_bytes(b"adam")
    if complete:  # the trainer writes these after the weights; a kill while saving leaves them out
        (path / "scheduler.pt").write_bytes(b"sched")
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_resume_takes_the_newest_complete_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    good = _checkpoint(folder, 16)
    _checkpoint(folder, 32, complete=False)  # killed while saving
    assert last_complete_checkpoint(folder) == good
    (folder / "checkpoint-32" / "trainer_state.json").write_text('{"global_st')  # cut mid-write
    assert last_complete_checkpoint(folder) == good
    (folder / "checkpoint-48").mkdir()
    assert last_complete_checkpoint(folder) == good
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_a_first_start_resumes_nothing(monkeypatch, new_store):
    cfg = TrackingConfig(store=str(new_store))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert preemption.requeued_run(cfg, "abc") is None
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert preemption.requeued_run(cfg, "abc") is None  # requeued, but no run of this job in the store


def test_a_resumed_run_logs_its_table_once(tmp_path, new_store):
    cfg = TrackingConfig(name="t", store=str(new_store), artifact_root=str(tmp_path / "art"))
    table = pd.DataFrame({"query_id": ["q1", "q2"], "ndcg_at_10": [0.5, 1.0]})
    with tracking.tracked_run(cfg, "first", {}) as run_id:
        tracking.log_table(table, artifact_file="per_query_table.json")
    with tracking.tracked_run(cfg, None, {}, resume_run_id=run_id):
        tracking.log_table(table, artifact_file="per_query_table.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{new_store}")
    logged = json.loads(Path(client.download_artifacts(run_id, "per_query_table.json", str(tmp_path))).read_text())
    assert logged["data"] == [["q1", 0.5], ["q2", 1.0]]
    assert "per_query_table.json" in client.get_run(run_id).data.tags.get("mlflow.loggedArtifacts", "")
