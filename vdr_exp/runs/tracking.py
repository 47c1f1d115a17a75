"""MLflow: where runs go, their lifecycle, params, metrics, artifacts and per-step training logs."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from filelock import FileLock
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

from vdr_exp.config import TrackingConfig, tracking_uri
from vdr_exp.errors import ConfigError
from vdr_exp.runs import server_login, store_reserve
from vdr_exp.runtime import failures, interrupts, redact
from vdr_exp.runtime.names import utf8
from vdr_exp.tags import ERROR, MLFLOW_EXPERIMENT_KIND, TagFilterError, equals

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


# Seconds to wait for a tracking server's answer before saying none is there (MLflow itself retries for minutes).
SERVER_PROBE_TIMEOUT = 5.0


@cache
def check_server(uri: str) -> None:
    """One HTTP request to the server (any answer, even an error status, means it is there), then one with the
    credentials MLflow will send: a missing or wrong login is one clear error before any model loads."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]  # credentials are MLflow's to send, not needed to see a server
    probe = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        urllib.request.urlopen(probe, timeout=SERVER_PROBE_TIMEOUT).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigError(
            f"no MLflow tracking server answers at {redact.redact_uri(uri)} ({reason}); start one "
            "(`mlflow server --host 127.0.0.1 --port 5000`, see docs/how-to/parallel-runs.md), fix "
            "tracking.tracking_uri / $MLFLOW_TRACKING_URI, or log locally with tracking=mlflow_sqlite."
        ) from None
    server_login.check_credentials(uri, SERVER_PROBE_TIMEOUT)


def client_for(cfg: TrackingConfig) -> MlflowClient:
    """A client on the configured store; the SQLite file's folder is created on first use, a server is probed."""
    if cfg.tracking_uri.startswith(("http://", "https://")):
        check_server(cfg.tracking_uri)
    if not cfg.tracking_uri:
        store = Path(cfg.store).expanduser().resolve()
        try:
            if store.is_dir():
                raise IsADirectoryError(f"{store} is a folder")
            store.parent.mkdir(parents=True, exist_ok=True)
            # Parallel jobs on a store that does not exist yet would all create its tables at once; the first
            # creates them under a lock, the others wait and find them.
            with FileLock(f"{store}.lock", timeout=120):
                _write_ahead_log(store)
                client = MlflowClient(tracking_uri=tracking_uri(cfg))
                client.search_experiments(max_results=1)  # creates or migrates the tables now, under the lock
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(
                f"tracking.store={cfg.store} cannot hold an MLflow SQLite store ({error}); point it at a file "
                "path in a writable folder (or move everything with paths.output_dir=...)."
            ) from None
        store_reserve.keep(store)  # room to end the runs in when the disk fills up
        return client
    return MlflowClient(tracking_uri=tracking_uri(cfg))


def _write_ahead_log(store: Path) -> None:
    """WAL journal: parallel jobs (joblib, submitit_local) read while one writes, and wait up to 30 s for a
    write lock instead of failing. Persistent in the file; set once. Many writers: use a server."""
    with sqlite3.connect(store, timeout=30) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")


# MLflow 3's UI opens an experiment by its kind: without it, on the GenAI (traces) page; with it, on the runs table.
EXPERIMENT_KIND = "custom_model_development"  # the value of the mlflow.experimentKind tag


def ensure_experiment(client: MlflowClient, cfg: TrackingConfig) -> str:
    found = client.get_experiment_by_name(cfg.experiment_name)
    if found is not None:
        if MLFLOW_EXPERIMENT_KIND not in found.tags:  # stores made before this tag; a user's own choice stays
            client.set_experiment_tag(found.experiment_id, MLFLOW_EXPERIMENT_KIND, EXPERIMENT_KIND)
        return found.experiment_id
    artifact_location = None
    if not cfg.tracking_uri:  # local store: keep artifacts beside it, never in ./mlruns
        artifact_location = Path(cfg.artifact_root).expanduser().resolve().as_uri()
    try:
        return client.create_experiment(
            cfg.experiment_name, artifact_location=artifact_location, tags={MLFLOW_EXPERIMENT_KIND: EXPERIMENT_KIND}
        )
    except MlflowException:  # a parallel job created it first
        found = client.get_experiment_by_name(cfg.experiment_name)
        if found is None:
            raise
        return found.experiment_id


def log_params(params: Mapping[str, str]) -> None:
    """In batches MLflow accepts; over-long values are shortened and text UTF-8 cannot hold is escaped
    (:func:`vdr_exp.runtime.names.utf8`) rather than failing the run."""
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id
    items = [
        Param(k, v if len(v) <= MAX_PARAM_VAL_LENGTH else v[: MAX_PARAM_VAL_LENGTH - 3] + "...")
        for k, v in sorted((utf8(k), utf8(v)) for k, v in params.items())
    ]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + MAX_PARAMS_TAGS_PER_BATCH])


def log_table(table: pd.DataFrame, artifact_file: str) -> None:
    """An MLflow table (the UI shows it as one) that holds ``table`` once: MLflow's own ``log_table`` appends to
    a table of that name already in the run, so a resumed run would list every row twice. The second time the
    file is replaced, in the same JSON layout."""
    run_id = mlflow.active_run().info.run_id
    folder = posixpath.dirname(artifact_file) or None
    if artifact_file not in {f.path for f in MlflowClient().list_artifacts(run_id, folder)}:
        mlflow.log_table(table, artifact_file=artifact_file)
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / posixpath.basename(artifact_file)
        table.to_json(path, orient="split", index=False, date_format="iso")
        mlflow.log_artifact(str(path), artifact_path=folder)


def tag_equals(key: str, value: str) -> str:
    """One ``tags.`key` = 'value'`` clause of an MLflow search filter (:func:`vdr_exp.tags.equals`). Keys and
    values come from the user too (``--tag``, ``model.from_run.tags``), so one a filter cannot express is a
    :class:`ConfigError`, said in one line like any other."""
    try:
        return equals(key, value)
    except TagFilterError as error:
        raise ConfigError(str(error)) from None


def git_commit(cwd: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


# Where `make ui` serves a local store (its default PORT); a tracking server serves its own UI.
LOCAL_UI = "http://127.0.0.1:5000"


def ui_url(cfg: TrackingConfig) -> str:
    """The MLflow UI a person opens for this store, without credentials (a browser asks for them)."""
    if cfg.tracking_uri.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(cfg.tracking_uri)
        netloc = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return LOCAL_UI


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_name: str | None,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    resume_run_id: str | None = None,
    *,
    nested: bool = False,
) -> Iterator[str]:
    """Start a run and always end it: FINISHED, FAILED (with the error recorded) or KILLED on Ctrl-C.

    With ``parent_run_id`` (a sweep's parent) the run is its child: MLflow's UI nests it under the parent.
    With ``resume_run_id`` an earlier run is reopened, so a resumed training continues the same run.
    ``nested`` opens a child of the run that is active in this process (a suite's task runs).
    """
    experiment_id = ensure_experiment(client_for(cfg), cfg)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    tags = {key: utf8(value) for key, value in tags.items()}  # e.g. overrides naming a folder's odd bytes
    with server_login.may_log_to(cfg.experiment_name, tracking_uri(cfg)):  # a reader's run: one line, not a 403
        if resume_run_id:
            client = client_for(cfg)
            if ERROR in client.get_run(resume_run_id).data.tags:
                client.delete_tag(resume_run_id, ERROR)  # the interruption it recorded is over
            run = mlflow.start_run(run_id=resume_run_id, tags=dict(tags))
        else:
            run = mlflow.start_run(
                experiment_id=experiment_id,
                run_name=run_name,
                tags=dict(tags),
                parent_run_id=parent_run_id,
                nested=nested,
            )
    where = redact.redact_uri(tracking_uri(cfg))
    log.info("MLflow run %s in experiment %r at %s", run.info.run_id, cfg.experiment_name, where)
    try:
        with interrupts.watched():
            yield run.info.run_id
            interrupts.raise_if_interrupted()
    except BaseException as error:
        _record_error(run.info.run_id, error)
        raise
    else:
        _end_active(run.info.run_id, "FINISHED")


# A run's end status after a failed write (a full disk, a file-size limit): tried again on fresh connections, a
# moment apart. The status is one small UPDATE; the failed write's rollback gave back the room it had taken.
END_TRIES = 3


def terminate(run_id: str, status: str, client: MlflowClient | None = None) -> bool:
    """Record the run's end (FINISHED, FAILED, KILLED) whatever failed before it; True when it is recorded. A run
    is never left RUNNING while a write of its status can still succeed."""
    client = client or MlflowClient()
    for attempt in range(END_TRIES):
        try:
            client.set_terminated(run_id, status=status)
            return True
        except Exception as failure:  # noqa: BLE001 - each try is the last word on this run's status
            log.info("could not end run %s as %s (try %d of %d): %s", run_id, status, attempt + 1, END_TRIES, failure)
            store = _local_store(client.tracking_uri)
            if store is not None and failures.storage(failure) is not None:
                store_reserve.release(store)  # the disk is full: the room kept for this
            _reconnect()
            time.sleep(0.2 * (attempt + 1))
    return False


def _local_store(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _reconnect() -> None:
    """Drop MLflow's pooled SQLite connections: the next write opens a fresh one (a connection that met a disk
    I/O error may keep failing). MLflow keeps one engine per database URI."""
    for engine in list(SqlAlchemyStore._engine_map.values()):
        engine.dispose()


def _end_active(run_id: str, status: str) -> None:
    """End this process's active run (MLflow pops it even when its status write fails), retrying the status."""
    try:
        mlflow.end_run(status=status)
    except Exception as failure:
        if not terminate(run_id, status):
            raise failure from None


def _record_error(run_id: str, error: BaseException) -> None:
    """The run ends FAILED (KILLED on a signal) with the error's one line as its ``error`` tag and error.txt,
    secrets masked. Recording is best effort: a full disk or a lost server must not replace the job's own error
    with a traceback of its own. The error is marked with the run, so the entry point does not record it again."""
    with contextlib.suppress(AttributeError):  # exceptions with __slots__ stay unmarked
        error.vdr_run_id = run_id

    full_disk = failures.storage(error)  # said plainly, not as the library's wrapper ("error generating ...")
    message = utf8(redact.redact_text(f"{type(error).__name__}: {full_disk.message if full_disk else error}"))
    status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    try:
        mlflow.set_tag(ERROR, message[:5000])
        mlflow.log_text(message, "error.txt")
    except Exception as failure:  # noqa: BLE001
        log.info("could not record the error on run %s: %s", run_id, failure)
    try:
        _end_active(run_id, status)
    except Exception as failure:  # noqa: BLE001
        log.warning("run %s is left RUNNING: its end (%s) could not be written: %s", run_id, status, failure)
