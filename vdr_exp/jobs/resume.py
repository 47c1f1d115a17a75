"""Where an interrupted training continues: the run it resumes (``resume=<run id>``, or the preempted run after
a SLURM requeue), its folder and its last complete checkpoint, checked to be the same job."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

from vdr_exp.config import TrainRunConfig
from vdr_exp.errors import ConfigError
from vdr_exp.runs import preemption, tracking
from vdr_exp.runtime.job_context import JobContext
from vdr_exp.tags import CONFIG_FINGERPRINT, HYDRA_OVERRIDES, RUN_DIR, RUN_KIND, RunKind

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    run_id: str
    out_dir: Path
    checkpoint: Path
    has_base: bool


def resume_point(cfg: TrainRunConfig, job: JobContext) -> ResumePoint:
    """Where an interrupted training run stopped: its folder and last checkpoint; checked to be the same job."""
    client = tracking.client_for(cfg.tracking)
    try:
        earlier = client.get_run(cfg.resume)
    except Exception:  # noqa: BLE001 - any lookup failure means the id is not usable here
        raise ConfigError(
            f"resume={cfg.resume!r} is not a run in this MLflow store; copy the run id from the UI."
        ) from None
    tags = earlier.data.tags
    if tags.get(RUN_KIND) != RunKind.train or earlier.info.status == "FINISHED":
        raise ConfigError(
            f"resume={cfg.resume!r} is a {earlier.info.status} {tags.get(RUN_KIND)} run; resume an interrupted training run."
        )
    if tags.get(CONFIG_FINGERPRINT) not in (None, job.fingerprint):
        raise ConfigError(
            f"resume={cfg.resume!r} was started with another config ({tags.get(HYDRA_OVERRIDES)}); "
            "resume with the same overrides."
        )
    out_dir = Path(tags[RUN_DIR])
    checkpoint = last_complete_checkpoint(out_dir / "checkpoints")
    if checkpoint is None:
        raise ConfigError(
            f"run {cfg.resume} saved no complete checkpoint in {out_dir / 'checkpoints'}; nothing to resume from "
            "(trainer.save_strategy=steps saves them)."
        )
    return ResumePoint(earlier.info.run_id, out_dir, checkpoint, "base_ndcg_at_10" in earlier.data.metrics)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint the trainer finished writing; newer ones cut short by a kill are skipped."""
    checkpoints = [p for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    complete = sorted(filter(_is_complete, checkpoints), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if len(complete) < len(checkpoints):
        log.warning("skipping %d incomplete checkpoint(s) (killed while saving)", len(checkpoints) - len(complete))
    return complete[-1] if complete else None


def _is_complete(checkpoint: Path) -> bool:
    """A checkpoint the trainer finished writing: its state file parses and names this step, and the model,
    optimizer and scheduler states are there (a kill while saving leaves some of them missing or cut short)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    needed = ("optimizer.pt", "scheduler.pt")
    has_weights = any(checkpoint.rglob("*.safetensors")) or any(checkpoint.rglob("pytorch_model*.bin"))
    return (
        state.get("global_step") == int(checkpoint.name.rsplit("-", 1)[1])
        and has_weights
        and all((checkpoint / name).is_file() and (checkpoint / name).stat().st_size > 0 for name in needed)
    )


def requeued_resume_point(cfg: TrainRunConfig, job: JobContext) -> ResumePoint | None:
    """After a SLURM requeue: the preempted run to continue, if it saved a checkpoint (else a fresh start)."""
    earlier = preemption.requeued_run(cfg.tracking, job.fingerprint)
    if earlier is None:
        return None
    try:
        return resume_point(dataclasses.replace(cfg, resume=earlier), job)
    except ConfigError as error:
        log.warning("requeued job: not resuming run %s (%s); starting a new run", earlier, error)
        return None


def drop_if_empty(folder: Path) -> None:
    """The checkpoints folder, removed when training left nothing in it: the trainer creates it (and an eval/
    folder for step evaluations) even with ``trainer.save_strategy=no``, which then looks like a run that
    saved checkpoints."""
    if folder.is_dir() and not any(path.is_file() for path in folder.rglob("*")):
        shutil.rmtree(folder)
