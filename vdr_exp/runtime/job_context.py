"""What a job learns from Hydra and from the sweep around it, gathered once for the pipeline.

A sweep's parent MLflow run and the keys it varies reach the jobs through environment variables set by
:mod:`vdr_exp.launch.sweep_callbacks`: they survive every launcher (in-process, joblib workers, submitit/SLURM
jobs inherit the launching environment), unlike anything held in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

PARENT_RUN_ENV = "VDR_EXP_PARENT_RUN_ID"
SWEEP_KEYS_ENV = "VDR_EXP_SWEEP_KEYS"

# A multirun job that stopped on an error leaves this file in its folder ("job N: message"). The sweep goes on
# with its other jobs and reports them at its end (:func:`failed_jobs`): a dry run has no MLflow runs to find
# FAILED, and a file in the sweep's folder reaches the sweep from any launcher's process, unlike a variable.
FAILED_JOB_FILE = "job_failed.txt"


@dataclass(frozen=True)
class JobContext:
    out_dir: Path
    overrides: list[str]
    parent_run_id: str | None = None
    job_num: int | None = None
    # The group options Hydra chose (model, dataset, experiment, sweep, ...).
    choices: dict[str, str] = field(default_factory=dict)
    # The overrides this job differs by from its sibling jobs, e.g. "loss=mnrl trainer.learning_rate=3e-05".
    sweep_params: str = ""
    # Hash of the resolved config without volatile keys (vdr_exp.runs.completed); tagged on the run.
    fingerprint: str = ""


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def from_hydra() -> JobContext:
    hydra = HydraConfig.get()
    overrides = OmegaConf.to_container(hydra.overrides.task, resolve=False)  # ${oc.env:...} stays as written
    multirun = hydra.mode == RunMode.MULTIRUN
    sweep_keys = {k for k in os.environ.get(SWEEP_KEYS_ENV, "").split(",") if k}
    sweeper_params = OmegaConf.select(hydra, "sweeper.params", default=None)
    if multirun and sweeper_params:
        sweep_keys |= set(sweeper_params.keys())
    return JobContext(
        out_dir=Path(hydra.runtime.output_dir),
        overrides=overrides,
        parent_run_id=os.environ.get(PARENT_RUN_ENV) or None,
        job_num=hydra.job.num if multirun else None,
        choices={k: str(v) for k, v in hydra.runtime.choices.items() if not k.startswith("hydra/") and v},
        sweep_params=" ".join(o for o in overrides if override_key(o) in sweep_keys) if multirun else "",
    )


def record_failed_job(context: JobContext, message: str) -> None:
    """Leave the job's failure where the end of its sweep finds it (:func:`failed_jobs`)."""
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / FAILED_JOB_FILE).write_text(f"job {context.job_num}: {message}\n")


def failed_jobs(sweep_dir: Path) -> list[str]:
    """The failures the jobs of the sweep in ``sweep_dir`` recorded, in job order."""
    found = [(path.parent, path.read_text().strip()) for path in Path(sweep_dir).rglob(FAILED_JOB_FILE)]
    return [text for _, text in sorted(found, key=lambda item: _job_order(item[1]))]


def clear_failed_jobs(sweep_dir: Path) -> None:
    """A sweep started again in the same folder (a fixed ``hydra.sweep.dir``) reports only its own failures."""
    for path in Path(sweep_dir).rglob(FAILED_JOB_FILE):
        path.unlink(missing_ok=True)


def _job_order(text: str) -> int:
    number = text.removeprefix("job ").split(":", 1)[0]
    return int(number) if number.isdigit() else -1
