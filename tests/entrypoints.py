"""Running the entry points as users do (real subprocesses) with every output inside one work directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient


def entry_command(module: str, overrides: list[str], workdir: Path, fixtures_root: Path) -> list[str]:
    """``python -m module overrides...`` with store, artifacts, run and sweep dirs all inside ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        module,
        *overrides,
        f"fixtures.root={fixtures_root}",
        f"tracking.store={workdir / 'mlflow.db'}",
        f"tracking.artifact_root={workdir / 'mlartifacts'}",
        f"hydra.run.dir={workdir / 'run'}",
        f"hydra.sweep.dir={workdir / 'sweep'}",
    ]


def tiny_eval_sweep(launcher: str, *overrides: str) -> list[str]:
    """A `-m` sweep evaluating tiny and tiny-4x on 16 queries with Hydra ``launcher`` (jobs in other
    processes); ``overrides`` add sweep axes or launcher settings."""
    return [
        "-m",
        "experiment=offline_eval",
        "model=tiny_qwen3_vl,tiny_qwen3_vl_4x",
        "dataset.max_eval_rows=16",
        f"hydra/launcher={launcher}",
        *overrides,
    ]


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("VDR_EXP_PARENT_RUN_ID", None)
    return env


def run_entry(module: str, overrides: list[str], workdir: Path, fixtures_root: Path) -> subprocess.CompletedProcess:
    """Run an entry point from ``workdir`` to completion, as a user would from a shell."""
    cmd = entry_command(module, overrides, workdir, fixtures_root)
    return subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=900)


def start_entry(module: str, overrides: list[str], workdir: Path, fixtures_root: Path) -> subprocess.Popen:
    """Start an entry point in the background, to interrupt or kill it while it runs; its stderr goes to
    ``workdir/stderr.txt`` (a pipe nobody reads would fill up and stall the run)."""
    command = entry_command(module, overrides, workdir, fixtures_root)
    with (workdir / "stderr.txt").open("w") as stderr:
        return subprocess.Popen(
            command,
            cwd=workdir,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            # A shell that started pytest in the background may ignore SIGINT, and children inherit that:
            # give the run the default disposition a terminal gives it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def store_client(workdir: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")


def runs_in(workdir: Path, kind: str | None = None) -> list[Run]:
    """Runs of the ``vdr`` experiment, oldest first, optionally only one run_kind (train, evaluate, sweep)."""
    client = store_client(workdir)
    experiment = client.get_experiment_by_name("vdr")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if kind is None or r.data.tags.get("run_kind") == kind]


def only_run(workdir: Path) -> tuple[MlflowClient, Run]:
    runs = runs_in(workdir)
    assert len(runs) == 1, f"expected one run, found {len(runs)}"
    return store_client(workdir), runs[0]
