"""The one object a job receives (vdr_exp.runs.job_spec): built once, a model reference resolved once, nothing
edited in place; and a sweep's failed jobs found on disk instead of in a module-level list."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_module

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs
from vdr_exp.errors import ConfigError
from vdr_exp.runs import job_spec, run_refs
from vdr_exp.runtime import job_context
from vdr_exp.runtime.job_context import JobContext

register_configs()


def _composed(tmp_path: Path, overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name="evaluate", overrides=[f"paths.output_dir={tmp_path}", *overrides])


def _training_run(tmp_path: Path, composed) -> str:
    """A FINISHED training run in the job's own store, as a real training leaves it (model folder, params)."""
    cfg = load_evaluate_config(composed)
    store = Path(cfg.tracking.store)
    store.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    mlflow.set_experiment(cfg.tracking.experiment_name)
    model_dir = tmp_path / "trained" / "model"
    model_dir.mkdir(parents=True)
    with mlflow.start_run() as run:
        mlflow.set_tags({"run_kind": "train", "model_dir": str(model_dir)})
        mlflow.log_params({"model.name": "tiny_qwen3_vl", "model.dtype": "bfloat16", "model.kind": "single_vector"})
    return run.info.run_id


def test_a_plain_model_records_the_config_as_composed(tmp_path):
    composed = _composed(tmp_path, ["model=tiny_qwen3_vl"])
    spec = job_spec.build(load_evaluate_config(composed), composed, JobContext(tmp_path, []))
    assert spec.model_ref is None and spec.model_source is None
    assert spec.recorded["model"]["name"] == "tiny_qwen3_vl"
    assert spec.values["model"]["path"] == spec.cfg.model.path
    assert len(spec.context.fingerprint) == 24


def test_a_model_reference_is_resolved_once_and_applied_to_a_copy(tmp_path, monkeypatch):
    composed = _composed(tmp_path, ["model=from_run"])
    run_id = _training_run(tmp_path, composed)
    cfg = load_evaluate_config(composed)
    calls = []
    resolve = run_refs.resolve
    monkeypatch.setattr(run_refs, "resolve", lambda *a: calls.append(a) or resolve(*a))

    spec = job_spec.build(cfg, composed, JobContext(tmp_path, []))

    assert len(calls) == 1
    assert spec.model_source == run_id
    assert spec.cfg.model.from_run.run_id == run_id and spec.cfg.model.dtype == "bfloat16"
    assert spec.recorded["model"]["from_run"]["run_id"] == run_id
    assert spec.recorded["model"]["name"] == spec.cfg.model.name == f"tiny_qwen3_vl-ft-{run_id[:8]}"
    assert cfg.model.from_run.run_id is None and cfg.model.name == "from_run"  # the loaded config is untouched
    assert composed.model.from_run.run_id is None


def test_a_reference_to_nothing_stops_the_job_before_it_starts(tmp_path):
    composed = _composed(tmp_path, ["model=from_run", "model.from_run.run_id=0123456789abcdef"])
    with pytest.raises(ConfigError, match="not a run in this MLflow store"):
        job_spec.build(load_evaluate_config(composed), composed, JobContext(tmp_path, []))


def test_failed_jobs_of_a_sweep_are_found_in_its_folder_in_job_order(tmp_path):
    for num, message in [(2, "dataset.path missing"), (0, "model.path missing")]:
        job_context.record_failed_job(JobContext(tmp_path / str(num), [], job_num=num), message)
    assert job_context.failed_jobs(tmp_path) == ["job 0: model.path missing", "job 2: dataset.path missing"]
    job_context.clear_failed_jobs(tmp_path)
    assert job_context.failed_jobs(tmp_path) == []
