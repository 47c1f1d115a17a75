"""A shared tracking server: `mlflow server` on PostgreSQL, a run that round-trips through it, and the team server
with MLflow's basic-auth app (users, per-experiment permissions, host checks) that lets no one in without a login."""

from __future__ import annotations

import base64
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry
from mlflow.tracking import MlflowClient

from vdr_exp.runs.server_auth import ADMIN_PASSWORD_ENV
from vdr_exp.runs.server_login import CREDENTIAL_VARS


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


def _psql(pg_port: int, sql: str, database: str = "postgres") -> str:
    command = ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d", database, "-tAc", sql]
    return subprocess.run(_as_postgres(command), check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def postgres():
    """PostgreSQL in a temporary cluster on loopback, stopped after the session; yields its port."""
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
        yield port
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` on PostgreSQL (no auth, loopback); stopped after the session."""
    _psql(postgres, "CREATE DATABASE mlflow")
    http_port = _free_port()
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"postgresql+psycopg://postgres@127.0.0.1:{postgres}/mlflow",
            "--artifacts-destination", artifacts.as_uri(),
            "--host", "127.0.0.1", "--port", str(http_port), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{http_port}/health", timeout=120)
        yield {"uri": f"http://127.0.0.1:{http_port}", "pg_port": postgres}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_make_server_serves_artifacts_for_tracking_team(tmp_path, fixture_paths):
    """`make server` (what a team runs) answers, and a run with tracking=team sends its artifacts through it."""
    root = Path(__file__).resolve().parents[2]
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
        _wait_for(f"http://127.0.0.1:{port}/health", timeout=240)  # four workers on a busy CI machine
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
        server.wait(timeout=120)


# ---- The team server with users: MLflow's basic-auth app behind `make server` (python -m vdr_exp.server serve) ----

ADMIN, EDITOR, READER = "admin", "editor", "reader"
LOGIN_VARS = ("MLFLOW_TRACKING_URI", *CREDENTIAL_VARS)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*LOGIN_VARS, ADMIN_PASSWORD_ENV)}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def _server_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "vdr_exp.server", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _status(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _login(monkeypatch, server: dict, user: str, password: str | None = None) -> None:
    """This process and the jobs it starts talk to the server as ``user`` (MLflow reads these at each request)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["uri"])
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or server["passwords"][user])


@pytest.fixture(scope="session")
def team_server(postgres, tmp_path_factory):
    """What a team runs: `python -m vdr_exp.server serve` with the admin's password in the environment, the users'
    tables beside the runs in PostgreSQL, served under the name mlflow.test (loopback only). The admin then makes
    an editor and a reader of experiment 'team' with the helper's add-user and grant."""
    _psql(postgres, "CREATE DATABASE mlflow_team")
    root = tmp_path_factory.mktemp("team-server")
    passwords = {name: f"{name}-pw-{secrets.token_hex(8)}" for name in (ADMIN, EDITOR, READER)}
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    with (root / "server.log").open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "vdr_exp.server", "serve",
                "--db", f"postgresql+psycopg://postgres@127.0.0.1:{postgres}/mlflow_team",
                "--artifacts", str(root / "artifacts"), "--folder", str(root / "server"),
                "--port", str(port), "--names", "mlflow.test", "--workers", "1",
            ],
            env=_clean_env(**{ADMIN_PASSWORD_ENV: passwords[ADMIN]}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for(f"{uri}/health", timeout=240)
        admin = _clean_env(
            MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=passwords[ADMIN]
        )
        for name in (EDITOR, READER):
            password_file = _private(root / "secrets" / f"{name}.txt", passwords[name])
            _server_cli(admin, "add-user", name, "--password-file", str(password_file))
        _server_cli(admin, "grant", EDITOR, "--experiment", "team", "--role", "editor")
        _server_cli(admin, "grant", READER, "--experiment", "team", "--role", "reader")
        yield {"uri": uri, "root": root, "passwords": passwords, "pg_port": postgres}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_make_server_beyond_loopback_without_a_password_refuses_to_start(tmp_path):
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        ["make", "-s", "-o", "setup", "server", "HOST=0.0.0.0", f"PORT={_free_port()}", f"OUTPUTS={tmp_path}"],
        cwd=root, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "HOST=0.0.0.0" in line and ADMIN_PASSWORD_ENV in line and "ADMIN_PASSWORD_FILE" in line
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


@pytest.mark.slow
def test_the_team_server_lets_no_one_in_and_answers_only_its_names(team_server):
    uri, passwords = team_server["uri"], team_server["passwords"]
    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(f"{uri}/health") == 200  # probes and load balancers need no login
    assert _status(search) == 401
    assert _status(search, headers=_basic(READER, passwords[EDITOR])) == 401  # someone else's password
    assert _status(search, headers=_basic(READER, passwords[READER])) == 200
    assert _status(search, headers={**_basic(READER, passwords[READER]), "Host": "evil.example"}) == 403
    assert _status(search, headers={**_basic(READER, passwords[READER]), "Host": "mlflow.test"}) == 200
    runs = f"{uri}/api/2.0/mlflow/runs/search"  # a POST that only reads
    body, json_type = b'{"experiment_ids": ["0"]}', {"Content-Type": "application/json"}
    reader = {**_basic(READER, passwords[READER]), **json_type}
    assert _status(runs, "POST", {**reader, "Origin": "https://evil.example"}, body) == 403  # cross-site
    assert _status(runs, "POST", {**reader, "Origin": "https://mlflow.test"}, body) == 200


@pytest.mark.slow
def test_a_wrong_login_a_missing_one_or_a_readers_run_is_one_error_line_before_any_model_loads(
    team_server, tmp_path, fixture_paths, monkeypatch
):
    _login(monkeypatch, team_server, EDITOR, "not-the-password-1")
    overrides = ["experiment=offline_eval", "dataset.max_eval_rows=8", "tracking=team", "tracking.experiment_name=team"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "wrong", fixture_paths.root)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "refused user 'editor'" in line and "MLFLOW_TRACKING_PASSWORD" in line
    assert "NDCG" not in result.stdout + result.stderr  # no model loaded, nothing evaluated
    assert not list((tmp_path / "wrong").rglob("per_query.csv"))

    _login(monkeypatch, team_server, READER)  # logged in, but may only read experiment 'team'
    result = run_entry("vdr_exp.evaluate", ["-m", *overrides], tmp_path / "reader", fixture_paths.root)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "reader may not log runs to experiment 'team'" in line and "--role editor" in line
    assert "NDCG" not in result.stdout + result.stderr

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.mlflow/credentials either
    board = subprocess.run(
        [sys.executable, "-m", "vdr_exp.leaderboard", "--experiment", "team", "--out-dir", str(tmp_path / "lb")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert board.returncode == 2
    (line,) = [line for line in board.stderr.splitlines() if line.startswith("error:")]
    assert "needs a login" in line and "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in line


@pytest.mark.slow
def test_an_editor_sweeps_a_reader_exports_and_no_credential_reaches_any_sink(
    team_server, tmp_path, fixture_paths, monkeypatch
):
    from mlflow.exceptions import MlflowException

    _login(monkeypatch, team_server, EDITOR)
    sweep = ["-m", "experiment=offline_eval", "model=tiny_qwen3_vl", "dataset.max_eval_rows=8", "tracking=team"]
    sweep.append("tracking.experiment_name=team")
    result = run_entry("vdr_exp.evaluate", sweep, tmp_path / "editor", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]

    _login(monkeypatch, team_server, READER)
    client = MlflowClient(tracking_uri=team_server["uri"])
    experiment = client.get_experiment_by_name("team")
    runs = client.search_runs([experiment.experiment_id], "tags.run_kind = 'evaluate'")
    (run,) = [r for r in runs if r.info.status == "FINISHED"]
    downloaded = Path(client.download_artifacts(run.info.run_id, "per_query.csv", str(tmp_path / "dl")))
    assert downloaded.stat().st_size > 0  # the reader reads the editor's artifacts
    for write in (
        lambda: client.create_run(experiment.experiment_id),
        lambda: client.set_tag(run.info.run_id, "x", "y"),
    ):
        with pytest.raises(MlflowException) as refused:
            write()
        assert refused.value.error_code == "PERMISSION_DENIED"  # 403
    board = subprocess.run(
        [sys.executable, "-m", "vdr_exp.leaderboard", "--experiment", "team", "--parent", "latest",
         "--out-dir", str(tmp_path / "leaderboards")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert board.returncode == 0, board.stderr[-3000:]
    assert "tiny_qwen3_vl" in board.stdout and "skipped: reader may read this experiment" in board.stdout
    assert list((tmp_path / "leaderboards").glob("*.csv"))

    dump = subprocess.run(
        _as_postgres(["pg_dump", "-h", "127.0.0.1", "-p", str(team_server["pg_port"]), "-U", "postgres", "mlflow_team"]),
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert run.info.run_id in dump  # the dump holds the runs (and the users' table, hashed)
    credentials = list(team_server["passwords"].values())
    outputs = result.stdout + result.stderr + board.stdout + board.stderr + dump
    assert not [c for c in credentials if c in outputs]
    sinks = [tmp_path, *(p for p in team_server["root"].iterdir() if p.name != "secrets")]
    files = [p for sink in sinks for p in ([sink] if sink.is_file() else sink.rglob("*")) if p.is_file()]
    assert any(p.name == "multirun.yaml" for p in files) and any(p.name == "server.log" for p in files)
    assert not [p for p in files if any(c.encode() in p.read_bytes() for c in credentials)]
