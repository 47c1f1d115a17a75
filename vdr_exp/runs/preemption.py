"""Preemption and time limits on SLURM: checkpoint, requeue, and resume into the same MLflow run.

SLURM announces the end of a job with a signal: SIGTERM on preemption (then SIGKILL after the partition's
GraceTime / KillWait), and, with submitit's ``signal_delay_s``, SIGUSR2 that many seconds before the time
limit. In a training job under SLURM either signal means the same thing:

1. :class:`~vdr_exp.runs.step_metrics.CheckpointOnPreemption` lets the current step finish, has the trainer save a checkpoint at that
   step and stops training (nothing is lost but the interrupted step's own time);
2. the job raises :class:`Preempted`: the MLflow run ends KILLED, tagged ``preempted=<step>``;
3. :func:`requeue` puts the job back in the queue with ``scontrol requeue`` (what submitit's own handler does),
   and the process exits without a result, so the launcher waits for the requeued job;
4. SLURM starts the job again (``SLURM_RESTART_COUNT`` > 0) and submitit runs the same Hydra job with the same
   overrides; :func:`requeued_run` finds the preempted run by its SLURM job id and config fingerprint, and the
   training resumes from its last complete checkpoint into that run, which ends FINISHED.

Outside SLURM nothing here is active: SIGTERM ends the run KILLED at once (:mod:`vdr_exp.runtime.interrupts`), and
``resume=<run id>`` continues it by hand.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess

from vdr_exp.config import TrackingConfig
from vdr_exp.runs import tracking
from vdr_exp.runtime import interrupts
from vdr_exp.tags import CONFIG_FINGERPRINT, RUN_KIND, SLURM_JOB_ID, RunKind

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class Preempted(interrupts.Terminated):
    """SLURM asked the job to stop; a checkpoint was saved at ``step``."""

    def __init__(self, step: int, signum: int) -> None:
        super().__init__(f"preempted by SLURM ({signal.Signals(signum).name}); checkpoint saved at step {step}")
        self.step = step


def on_slurm() -> bool:
    """A SLURM job that can requeue itself."""
    return bool(os.environ.get("SLURM_JOB_ID")) and shutil.which("scontrol") is not None


def requeue() -> bool:
    """Put this SLURM job back in the queue; False (with the reason logged) when SLURM refuses."""
    job = os.environ["SLURM_JOB_ID"]
    try:
        subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, text=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", "") or error
        log.error("could not requeue SLURM job %s (%s); resume by hand with resume=<run id>", job, detail)
        return False
    log.warning("SLURM job %s requeued; it resumes from the checkpoint into the same MLflow run", job)
    return True


def requeued_run(cfg: TrackingConfig, fingerprint: str | None) -> str | None:
    """The run this job was training before SLURM requeued it: same SLURM job id, same config, not FINISHED.
    None on a first start, outside SLURM, or when no such run exists."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) < 1 or not fingerprint:
        return None
    client = tracking.client_for(cfg)
    experiment = client.get_experiment_by_name(cfg.experiment_name)
    if experiment is None:
        return None
    clauses = [
        tracking.tag_equals(SLURM_JOB_ID, job),
        tracking.tag_equals(RUN_KIND, RunKind.train),
        tracking.tag_equals(CONFIG_FINGERPRINT, fingerprint),
    ]
    runs = client.search_runs(
        [experiment.experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"], max_results=5
    )
    earlier = next((run for run in runs if run.info.status != "FINISHED"), None)
    return earlier.info.run_id if earlier is not None else None
