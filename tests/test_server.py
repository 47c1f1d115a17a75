"""A shared tracking server: `mlflow server` on PostgreSQL, and a run that round-trips through it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    return found[-1] if found and found[-1] else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; drop to the postgres user where we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """PostgreSQL in a temporary cluster, then `mlflow server` on it; both stopped after the session."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (`apt-get install postgresql`; .ci/run does it)")
    # Not under pytest's tmp folders: those are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="vdr-exp-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]), check=True, capture_output=True
    )
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    log = root / "pg.log"
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]), check=True)
    try:
        subprocess.run(
            _as_postgres(
                ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "CREATE DATABASE mlflow"]
            ),
            check=True,
            capture_output=True,
        )
        http_port = _free_port()
        artifacts = tmp_path_factory.mktemp("server-artifacts")
        server = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow",
                "--artifacts-destination", artifacts.as_uri(),
                "--host", "127.0.0.1", "--port", str(http_port), "--workers", "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for(f"http://127.0.0.1:{http_port}/health", timeout=120)
            yield {"uri": f"http://127.0.0.1:{http_port}", "pg_port": port}
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_run_round_trips_through_the_server(mlflow_server, tmp_path, fixture_paths):
    overrides = [
        "experiment=offline_eval",
        "dataset.max_eval_rows=16",
        "tracking=mlflow_server",
        f"tracking.tracking_uri={mlflow_server['uri']}",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store

    client = MlflowClient(tracking_uri=mlflow_server["uri"])
    experiment = client.get_experiment_by_name("vdr")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["run_kind"] == "evaluate"
    assert run.data.params["dataset.max_eval_rows"] == "16"
    local = pd.read_csv(tmp_path / "run" / "per_query.csv")
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(local["ndcg_at_10"].mean(), abs=1e-9)
    downloaded = Path(client.download_artifacts(run.info.run_id, "per_query.csv", str(tmp_path / "dl")))
    assert pd.read_csv(downloaded).equals(local)

    # The rows really live in PostgreSQL.
    count = subprocess.run(
        _as_postgres(
            ["psql", "-h", "127.0.0.1", "-p", str(mlflow_server["pg_port"]), "-U", "postgres", "-d", "mlflow",
             "-tAc", f"SELECT count(*) FROM runs WHERE run_uuid = '{run.info.run_id}'"]
        ),
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert count == "1"


def test_a_teammate_evaluates_a_model_trained_elsewhere_through_the_server_alone(
    mlflow_server, tmp_path, fixture_paths
):
    """Machine A trains and logs the model; machine B (another folder, A's files gone) evaluates it with
    model=from_run, downloading it through the server's artifact proxy, with A's dtype and attention."""
    server = ["tracking=mlflow_server", f"tracking.tracking_uri={mlflow_server['uri']}"]
    server.append("tracking.experiment_name=handoff")
    train = ["experiment=offline_demo", "trainer.max_steps=2", "tracking.register_as=tiny-vdr", *server]
    result = run_entry("vdr_exp.train", train, tmp_path / "a", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server["uri"])
    experiment = client.get_experiment_by_name("handoff")
    (trained,) = client.search_runs([experiment.experiment_id], "tags.run_kind = 'train'")
    model_id = trained.data.tags["logged_model_id"]
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == trained.info.run_id and logged.name == "model"
    assert {m.key for m in logged.metrics} >= {"ndcg_at_10"}  # the final evaluation is linked to the model
    (version,) = client.search_model_versions("name = 'tiny-vdr'")
    assert version.run_id == trained.info.run_id
    shutil.rmtree(tmp_path / "a")  # nothing of machine A is left on disk: only the server has the model

    evaluate = ["experiment=offline_eval", "model=from_run", f"model.from_run.run_id={trained.info.run_id}", *server]
    result = run_entry("vdr_exp.evaluate", evaluate, tmp_path / "b", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluated,) = client.search_runs([experiment.experiment_id], "tags.run_kind = 'evaluate'")
    assert evaluated.info.status == "FINISHED"
    assert evaluated.data.tags["model_name"] == f"tiny_qwen3_vl-ft-{trained.info.run_id[:8]}"
    assert evaluated.data.tags["source_run_id"] == trained.info.run_id
    assert evaluated.data.tags["model_id"] == f"models:/{model_id}"
    for key in ("model.dtype", "model.attn_implementation"):
        assert evaluated.data.params[key] == trained.data.params[key]
    assert evaluated.data.metrics["ndcg_at_10"] == pytest.approx(trained.data.metrics["ndcg_at_10"], abs=1e-6)


def test_make_server_serves_artifacts_for_tracking_team(tmp_path, fixture_paths):
    """`make server` (what a team runs) answers, and a run with tracking=team sends its artifacts through it."""
    root = Path(__file__).resolve().parents[1]
    port = _free_port()
    outputs = tmp_path / "server"
    server = subprocess.Popen(
        ["make", "-s", "-o", "setup", "server", f"PORT={port}", f"OUTPUTS={outputs}"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", timeout=120)
        env_uri = f"http://127.0.0.1:{port}"
        os.environ["MLFLOW_TRACKING_URI"] = env_uri
        try:
            result = run_entry(
                "vdr_exp.evaluate", ["experiment=offline_eval", "dataset.max_eval_rows=8", "tracking=team"],
                tmp_path / "client", fixture_paths.root,
            )  # fmt: skip
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI")
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(tracking_uri=env_uri)
        (run,) = client.search_runs([client.get_experiment_by_name("vdr").experiment_id])
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server, not a client path
        assert list((outputs / "server-artifacts").rglob("per_query.csv"))  # stored on the server's side
        assert not (tmp_path / "client" / "mlartifacts").exists()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
