"""Faults a run meets in the wild end in a known state: a tracking server that is down fails in seconds, and
parallel jobs opening a new store lose nothing (a kill mid-save: tests/unit/test_resume.py; signals:
test_interrupted_runs.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from entrypoints import run_entry


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
