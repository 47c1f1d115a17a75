"""Faults a run meets in the wild end in a known state: a kill mid-save, SIGTERM, a tracking server that is down."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from entrypoints import run_entry, runs_in, start_entry

from vdr_exp.jobs.train import last_complete_checkpoint


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


@pytest.mark.slow
def test_sigterm_ends_the_run_killed(tmp_path, fixture_paths):
    process = start_entry("vdr_exp.train", ["experiment=offline_demo"], tmp_path, fixture_paths.root)
    deadline = time.time() + 180
    while time.time() < deadline and not (tmp_path / "run" / "base" / "metrics.csv").exists():
        time.sleep(0.5)
    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
    process.send_signal(signal.SIGTERM)  # what timeout, docker stop, Kubernetes and SLURM send first
    process.wait(timeout=120)
    assert process.returncode != 0
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["error"]


def test_a_tracking_server_that_is_down_fails_in_seconds(tmp_path, fixture_paths):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    overrides = [
        "experiment=offline_eval",
        "tracking=mlflow_server",
        f"tracking.tracking_uri=http://u:s3cr3tpw@127.0.0.1:{port}",
    ]
    started = time.time()
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert time.time() - started < 90  # MLflow's own retries would take minutes
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"no MLflow tracking server answers at http://***@127.0.0.1:{port}" in line and "mlflow server" in line
    assert "s3cr3tpw" not in result.stderr + result.stdout
    sweep = run_entry("vdr_exp.evaluate", ["-m", *overrides], tmp_path / "sweep", fixture_paths.root)
    assert sweep.returncode == 2 and "no MLflow tracking server answers" in sweep.stderr


def test_parallel_jobs_on_a_new_store_lose_nothing(tmp_path):
    """Four processes open the same store that does not exist yet, each logs a run: all four are there."""
    script = (
        "import sys\n"
        "from vdr_exp.config import TrackingConfig\n"
        "from vdr_exp.runs import tracking\n"
        f"cfg = TrackingConfig(name='t', store='{tmp_path / 'store' / 'mlflow.db'}', artifact_root='{tmp_path / 'art'}')\n"
        "client = tracking.client_for(cfg)\n"
        "experiment = tracking.ensure_experiment(client, cfg)\n"
        "run = client.create_run(experiment, run_name=sys.argv[1])\n"
        "client.log_metric(run.info.run_id, 'x', 1.0)\n"
        "client.set_terminated(run.info.run_id)\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, f"job{i}"], stderr=subprocess.PIPE) for i in range(4)]
    errors = [p.communicate(timeout=300)[1].decode() for p in processes]
    assert all(p.returncode == 0 for p in processes), errors
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("vdr").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["job0", "job1", "job2", "job3"]
