"""What both entry points share: the Hydra context a job needs, dry runs, and clean exits on config errors."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

from vdr_exp import job_context
from vdr_exp.config import ConfigError, flatten
from vdr_exp.job_context import JobContext

RunConfig = TypeVar("RunConfig")

log = logging.getLogger(__name__)

# Sections a dry run prints: what decides the result; the rest is in `--cfg job`.
DRY_RUN_SECTIONS = ("model", "dataset", "pixels", "loss", "trainer", "reranker", "mine", "eval", "tracking", "sweep")


def describe_job(cfg: DictConfig, job: JobContext) -> str:
    """The resolved values of one job, one ``key=value`` per line, for dry runs and logs."""
    header = "[dry run] job" + (f" #{job.job_num}" if job.job_num is not None else "")
    header += f": {' '.join(job.overrides) or '(no overrides)'}"
    tree = OmegaConf.to_container(cfg, resolve=True)
    lines = [header]
    for section in DRY_RUN_SECTIONS:
        if section in tree:
            lines += [f"  {key}={value}" for key, value in flatten({section: tree[section]}).items()]
    return "\n".join(lines)


Job = Callable[[RunConfig, DictConfig, JobContext], dict[str, float]]


def quiet_libraries() -> None:
    """Progress bars of every library would drown the run log; metrics go to MLflow instead."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def run_job(cfg: DictConfig, load: Callable[[DictConfig], RunConfig], import_job: Callable[[], Job]) -> float | None:
    """Validate ``cfg`` with ``load``, then run the job in Hydra's run directory; return NDCG@10 for sweepers.

    ``import_job`` imports the pipeline only when there is something to run: dry runs and config errors
    answer in seconds instead of paying for torch and Sentence Transformers.
    """
    quiet_libraries()
    context = job_context.from_hydra()
    try:
        run = load(cfg)
        if cfg.dry_run:
            print(describe_job(cfg, context), flush=True)
            return 0.0  # optimising sweepers (Optuna) need a finite number to go on proposing trials
        metrics = import_job()(run, cfg, context)
    except ConfigError as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("ndcg_at_10")
