"""What `make server` decides before MLflow starts: whether auth is on, where its config and users live, which
host names and origins it answers, and the `mlflow server` command with secrets kept off its command line.

A tracking server reachable from other machines without authentication lets anyone read, download, rename or
delete every run, so a non-loopback ``--host`` is refused unless an admin password is configured. The password
comes from MLflow's own ``MLFLOW_AUTH_ADMIN_PASSWORD`` or from a file only its owner can read; it reaches the
server through the environment, never argv (``ps`` shows argv to every user) and never a file we write.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from vdr_exp.errors import ConfigError

ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's own name: its auth app reads it at first start
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # signs the UI's CSRF tokens (basic-auth app)
AUTH_INI = "basic_auth.ini"
AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
# What each team role may do in one experiment (MLflow's permission names).
ROLES = {"reader": "READ", "editor": "EDIT", "owner": "MANAGE", "none": "NO_PERMISSIONS"}
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
LOCAL_HOSTS = ("localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", "[::1]", "[[]::1]:*")


@dataclass(frozen=True)
class ServerSettings:
    """One `make server` invocation's settings (the Makefile's variables)."""

    db: str
    artifacts: str
    host: str = "127.0.0.1"
    port: int = 5000
    folder: Path = Path("outputs/server")  # the server's own files: the generated auth config, 0700
    auth_db: str = ""  # empty: beside the tracking database
    admin_username: str = "admin"
    admin_password_file: str = ""
    default_permission: str = "READ"
    names: str = ""  # host names clients use (mlflow.example.org); derive allowed hosts and CORS origins
    allowed_hosts: str = ""
    cors_origins: str = ""
    workers: int | None = None


def is_loopback(host: str) -> bool:
    """Only this machine can connect: ``localhost`` or a loopback address (``0.0.0.0`` is every interface)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a public address


def private_file_text(path: Path, what: str) -> str:
    """A secret's file, refused when others may read it (like ssh with its keys): its first line, stripped."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"{what} {path} cannot be read ({error.strerror}); point it at a readable file.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} {path} is readable by others (mode {stat.S_IMODE(mode):04o}); `chmod 600 {path}` so only "
            "its owner can read it."
        )
    if not text or not text[0].strip():
        raise ConfigError(f"{what} {path} is empty; write the password on its first line.")
    return text[0].strip()


def admin_password(settings: ServerSettings) -> str | None:
    """The admin password from ``$MLFLOW_AUTH_ADMIN_PASSWORD`` or ``ADMIN_PASSWORD_FILE``; None: not configured."""
    if settings.admin_password_file:
        return private_file_text(Path(settings.admin_password_file).expanduser(), "ADMIN_PASSWORD_FILE")
    return os.environ.get(ADMIN_PASSWORD_ENV) or None


def refuse_open_server(settings: ServerSettings, password: str | None) -> None:
    if password is None and not is_loopback(settings.host):
        raise ConfigError(
            f"HOST={settings.host} lets other machines reach the tracking server, and no authentication is "
            f"configured: anyone could read, download or delete every run. Set {ADMIN_PASSWORD_ENV} (or "
            "ADMIN_PASSWORD_FILE=<file, mode 600>) to the admin's password to start it with MLflow's basic-auth "
            "app, or serve on HOST=127.0.0.1 (see docs/how-to/team-server.md)."
        )
    if password is not None and importlib.util.find_spec("flask_wtf") is None:
        raise ConfigError(
            "MLflow's basic-auth app needs Flask-WTF, which is not installed: pip install -e '.[server]' "
            "(or pip install 'mlflow[auth]')."
        )
    if password is not None and len(password) < 12:
        raise ConfigError(f"the admin password is {len(password)} characters; MLflow needs at least 12.")
    if settings.default_permission not in PERMISSIONS:
        raise ConfigError(f"DEFAULT_PERMISSION={settings.default_permission} is not one of {', '.join(PERMISSIONS)}.")


def auth_database(db: str) -> str:
    """The users' database beside the tracking one: ``server.db`` -> ``server-auth.db`` for SQLite; a server
    database (PostgreSQL, MySQL) holds both, MLflow's auth tables and their own migration table beside the runs."""
    if db.startswith("sqlite:///"):
        path = Path(db.removeprefix("sqlite:///"))
        return f"sqlite:///{path.with_name(path.stem + '-auth' + (path.suffix or '.db'))}"
    return db


def write_auth_config(settings: ServerSettings) -> Path:
    """MLflow's auth config in the server's folder (0700), itself 0600 and written atomically: it names the
    users' database, which may carry a database password. The admin password is not in it (environment only)."""
    folder = settings.folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    users = settings.auth_db or auth_database(settings.db)
    if users.startswith("sqlite:///"):  # password hashes: created private, SQLite keeps the mode
        Path(users.removeprefix("sqlite:///")).touch(mode=0o600, exist_ok=True)
    lines = [
        "[mlflow]",
        f"default_permission = {settings.default_permission}",
        f"database_uri = {users.replace('%', '%%')}",  # configparser reads % as interpolation
        f"admin_username = {settings.admin_username}",
        f"authorization_function = {AUTH_FUNCTION}",
    ]
    path, scratch = folder / AUTH_INI, folder / f".{AUTH_INI}.tmp"
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    scratch.replace(path)
    return path


def secret_key(settings: ServerSettings) -> str:
    """The key Flask signs the UI's CSRF tokens with: ``$MLFLOW_FLASK_SERVER_SECRET_KEY``, else one generated at
    the first start and kept in the server's folder (0600), so tokens survive restarts and all workers agree."""
    if os.environ.get(SECRET_KEY_ENV):
        return os.environ[SECRET_KEY_ENV]
    path = settings.folder.expanduser().resolve() / "flask_secret_key"
    if not path.exists():
        scratch = path.with_name(f".{path.name}.tmp")
        scratch.unlink(missing_ok=True)
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        scratch.replace(path)
    return private_file_text(path, "the server's Flask secret key")


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def host_checks(settings: ServerSettings) -> tuple[str, str]:
    """``--allowed-hosts`` and ``--cors-allowed-origins`` for the names the server is served under (any port,
    and the origins a browser sends from them); this machine's loopback names stay allowed. Empty: MLflow's
    defaults (localhost and private addresses)."""
    names = _split(settings.names)
    hosts = _split(settings.allowed_hosts) or [h for n in names for h in (n, f"{n}:*")]
    origins = _split(settings.cors_origins) or [o for n in names for o in (f"https://{n}", f"http://{n}:*")]
    if hosts:
        hosts += [h for h in LOCAL_HOSTS if h not in hosts]
    return ",".join(hosts), ",".join(origins)


def server_command(settings: ServerSettings, auth: bool) -> list[str]:
    """The `mlflow server` argv: nothing secret in it (the admin password travels in the environment)."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.db,
        "--artifacts-destination", settings.artifacts,
        "--serve-artifacts",
        "--host", settings.host,
        "--port", str(settings.port),
    ]  # fmt: skip
    if auth:
        command += ["--app-name", "basic-auth"]
    hosts, origins = host_checks(settings)
    if hosts:
        command += ["--allowed-hosts", hosts]
    if origins:
        command += ["--cors-allowed-origins", origins]
    if settings.workers:
        command += ["--workers", str(settings.workers)]
    return command


def server_environment(settings: ServerSettings, password: str | None) -> dict[str, str]:
    """The server's environment: with auth, where its config is and the admin password (read at first start)."""
    env = dict(os.environ)
    env.pop(AUTH_CONFIG_ENV, None)
    env.pop(ADMIN_PASSWORD_ENV, None)
    if password is not None:
        env[AUTH_CONFIG_ENV] = str(write_auth_config(settings))
        env[ADMIN_PASSWORD_ENV] = password
        env[SECRET_KEY_ENV] = secret_key(settings)
    return env
