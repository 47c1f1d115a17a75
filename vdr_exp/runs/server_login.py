"""The client's side of a team server with users: a login checked before any model loads, and the writes a
read-only user is refused (403) turned into one line naming who grants what, or skipped where they are optional.

Clients log in the way MLflow does: ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` in the environment,
else ``~/.mlflow/credentials``. Nothing here stores or prints a password.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request

from vdr_exp.errors import ConfigError
from vdr_exp.runtime import redact

# What a client reads its login from (MLflow's own names and file); the error messages name them.
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
CREDENTIALS_FILE = Path("~/.mlflow/credentials")


def _credentials_file_is_private() -> None:
    """MLflow reads ``~/.mlflow/credentials`` where the variables are unset; a copy others can read is refused."""
    if all(os.environ.get(v) for v in CREDENTIAL_VARS):
        return
    path = CREDENTIALS_FILE.expanduser()
    if path.is_file() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds MLflow credentials and is readable by others (mode {stat.S_IMODE(path.stat().st_mode):04o})"
            f"; `chmod 600 {path}`, or set {' and '.join(CREDENTIAL_VARS)} instead."
        )


def check_credentials(uri: str, timeout: float) -> None:
    """One authenticated request with the credentials MLflow will send: a server that refuses them (401) is
    reported now, naming the variables to set, instead of as a traceback after a model has loaded."""
    _credentials_file_is_private()
    creds = get_default_host_creds(uri)
    try:
        response = http_request(
            creds, "/api/2.0/mlflow/experiments/search", "GET", max_retries=0, timeout=timeout,
            params={"max_results": 1}, raise_on_status=False,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - reachability was checked; MLflow reports anything else with its retries
        return
    if response.status_code != 401:
        return
    variables, uri = " and ".join(CREDENTIAL_VARS), redact.redact_uri(uri)
    if not (creds.username and creds.password) and not creds.token:
        raise ConfigError(
            f"the MLflow server at {uri} needs a login and none is set: set {variables} (or write them to "
            f"{CREDENTIALS_FILE}, mode 600) to the account its admin made for you (docs/how-to/team-server.md)."
        )
    who = f"user {creds.username!r}" if creds.username else "the token in MLFLOW_TRACKING_TOKEN"
    raise ConfigError(
        f"the MLflow server at {uri} refused {who} (401: wrong password or no such user): "
        f"set {variables} to your account on that server, or ask its admin for one (docs/how-to/team-server.md)."
    )


def is_forbidden(error: BaseException) -> bool:
    """A 403 from the server, through MLflow's REST client or its artifact proxy: the user may not write here."""
    if getattr(error, "error_code", None) == "PERMISSION_DENIED":
        return True
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) == 403


@contextmanager
def unless_read_only(what: str) -> Iterator[None]:
    """Writes a read-only user may skip (a leaderboard logged back to its sweep): a 403 becomes a note."""
    try:
        yield
    except Exception as error:
        if not is_forbidden(error):
            raise
        user = os.environ.get(CREDENTIAL_VARS[0]) or "this user"
        print(f"note: {what} skipped: {user} may read this experiment but not write to it (an owner grants EDIT)")


@contextmanager
def may_log_to(experiment: str, uri: str) -> Iterator[None]:
    """Creating a run where the user may only read (403) is the user's to fix: one line naming who grants what."""
    try:
        yield
    except Exception as error:
        if not is_forbidden(error):
            raise
        user = os.environ.get(CREDENTIAL_VARS[0]) or "this user"
        raise ConfigError(
            f"{user} may not log runs to experiment {experiment!r} at {redact.redact_uri(uri)} (403): ask one of "
            f"its owners or the admin for EDIT (python -m vdr_exp.server grant {user} --experiment {experiment} "
            "--role editor), or log to an experiment of your own with tracking.experiment_name=<new name>."
        ) from None
