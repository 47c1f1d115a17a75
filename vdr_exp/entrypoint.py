"""What both entry points share: the Hydra context a job needs, dry runs, and clean exits on config errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

from vdr_exp import job_context
from vdr_exp.config import ConfigError
from vdr_exp.job_context import JobContext
from vdr_exp.pipeline import quiet_libraries

RunConfig = TypeVar("RunConfig")

log = logging.getLogger(__name__)

# Sections a dry run prints: what decides the result; the rest is in `--cfg job`.
DRY_RUN_SECTIONS = ("model", "dataset", "pixels", "loss", "trainer", "eval", "tracking", "sweep")


def describe_job(cfg: DictConfig, job: JobContext) -> str:
    """The resolved values of one job, one ``key=value`` per line, for dry runs and logs."""
    from vdr_exp.tracking import flatten

    header = "[dry run] job" + (f" #{job.job_num}" if job.job_num is not None else "")
    header += f": {' '.join(job.overrides) or '(no overrides)'}"
    tree = OmegaConf.to_container(cfg, resolve=True)
    lines = [header]
    for section in DRY_RUN_SECTIONS:
        if section in tree:
            lines += [f"  {key}={value}" for key, value in flatten({section: tree[section]}).items()]
    return "\n".join(lines)


def run_job(
    cfg: DictConfig,
    load: Callable[[DictConfig], RunConfig],
    job: Callable[[RunConfig, DictConfig, JobContext], dict[str, float]],
) -> float | None:
    """Validate ``cfg`` with ``load``, run ``job`` in Hydra's run directory; return NDCG@10 for sweepers."""
    quiet_libraries()
    context = job_context.from_hydra()
    try:
        run = load(cfg)
        if cfg.dry_run:
            print(describe_job(cfg, context), flush=True)
            return 0.0  # optimising sweepers (Optuna) need a finite number to go on proposing trials
        metrics = job(run, cfg, context)
    except ConfigError as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("ndcg_at_10")
