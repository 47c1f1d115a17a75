"""The team server's secrets, before anything starts: an admin password or credentials file others can read is
refused, and the admin password reaches the server only through its environment (the servers themselves, on
PostgreSQL: tests/e2e/test_server.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from vdr_exp.errors import ConfigError
from vdr_exp.runs import server_auth, server_login
from vdr_exp.runs.server_auth import ADMIN_PASSWORD_ENV
from vdr_exp.runs.server_login import CREDENTIAL_VARS


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_an_admin_password_file_others_can_read_is_refused(tmp_path):
    password_file = _private(tmp_path / "admin.txt", "a-long-enough-password")
    password_file.chmod(0o644)
    settings = server_auth.ServerSettings(db="sqlite:///x.db", artifacts="a", admin_password_file=str(password_file))
    with pytest.raises(ConfigError, match="chmod 600"):
        server_auth.admin_password(settings)
    password_file.chmod(0o600)
    assert server_auth.admin_password(settings) == "a-long-enough-password"


def test_the_admin_password_reaches_the_server_only_through_its_environment(tmp_path, monkeypatch):
    password = "admin-pw-" + secrets.token_hex(8)
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, password)
    settings = server_auth.ServerSettings(
        db=f"sqlite:///{tmp_path / 'server.db'}", artifacts=str(tmp_path / "art"), host="0.0.0.0",
        folder=tmp_path / "server", names="mlflow.example.org",
    )  # fmt: skip
    assert server_auth.admin_password(settings) == password
    server_auth.refuse_open_server(settings, password)  # configured: may serve beyond loopback
    command = server_auth.server_command(settings, auth=True)
    env = server_auth.server_environment(settings, password)
    assert password not in " ".join(command) and env[ADMIN_PASSWORD_ENV] == password
    assert command[command.index("--app-name") + 1] == "basic-auth"
    ini = Path(env[server_auth.AUTH_CONFIG_ENV])
    assert ini.parent == (tmp_path / "server").resolve()
    assert oct(ini.stat().st_mode & 0o777) == "0o600" and oct(ini.parent.stat().st_mode & 0o777) == "0o700"
    assert password not in ini.read_text()
    assert f"database_uri = sqlite:///{tmp_path / 'server-auth.db'}" in ini.read_text()  # beside the runs
    assert oct((tmp_path / "server-auth.db").stat().st_mode & 0o777) == "0o600"
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow.example.org", "mlflow.example.org:*", "127.0.0.1:*"} <= set(hosts)
    origins = command[command.index("--cors-allowed-origins") + 1].split(",")
    assert origins == ["https://mlflow.example.org", "http://mlflow.example.org:*"]


def test_a_credentials_file_others_can_read_is_refused_before_any_request(tmp_path, monkeypatch):
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    credentials = _private(tmp_path / ".mlflow" / "credentials", "[mlflow]\nmlflow_tracking_username = bob")
    credentials.chmod(0o644)
    # Port 9 (discard) on loopback: no server; the refusal must come first, without a request.
    with pytest.raises(ConfigError, match=r"chmod 600 .*MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"):
        server_login.check_credentials("http://127.0.0.1:9", timeout=1)
