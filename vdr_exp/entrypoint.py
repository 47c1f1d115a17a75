"""What both entry points share: the Hydra context a run needs, and clean exits on config errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vdr_exp.config import ConfigError
from vdr_exp.pipeline import quiet_libraries

RunConfig = TypeVar("RunConfig")

log = logging.getLogger(__name__)


def run_job(
    cfg: DictConfig,
    load: Callable[[DictConfig], RunConfig],
    job: Callable[[RunConfig, DictConfig, list[str], Path], dict[str, float]],
) -> float | None:
    """Validate ``cfg`` with ``load``, run ``job`` in Hydra's run directory; return NDCG@10 for sweepers."""
    quiet_libraries()
    hydra = HydraConfig.get()
    out_dir = Path(hydra.runtime.output_dir)
    overrides = list(hydra.overrides.task)
    try:
        metrics = job(load(cfg), cfg, overrides, out_dir)
    except ConfigError as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return metrics.get("ndcg_at_10")
