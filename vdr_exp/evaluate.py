"""``python -m vdr_exp.evaluate`` (``vdr-eval``): evaluate any model on a dataset's protocol."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from vdr_exp.config import load_evaluate_config, register_configs
from vdr_exp.entrypoint import run_job

register_configs()


def _job():
    from vdr_exp.pipeline import run_evaluation

    return run_evaluation


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg, load_evaluate_config, _job)


if __name__ == "__main__":
    main()
