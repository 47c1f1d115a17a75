"""What both entry points share: the Hydra context a run needs, and clean exits on config errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vdr_exp.config import ConfigError

log = logging.getLogger(__name__)


def run_job(cfg: DictConfig, job: Callable[[DictConfig, list[str], Path], dict[str, float]]) -> float | None:
    """Call ``job`` with the run directory and overrides; return NDCG@10 for Hydra sweepers."""
    hydra = HydraConfig.get()
    out_dir = Path(hydra.runtime.output_dir)
    overrides = list(hydra.overrides.task)
    try:
        metrics = job(cfg, overrides, out_dir)
    except ConfigError as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("ndcg_at_10")
