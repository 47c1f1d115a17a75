"""``python -m vdr_exp.train`` (``vdr-train``): finetune and evaluate, logged to MLflow."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from vdr_exp.config import load_train_config, register_configs
from vdr_exp.entrypoint import run_job

register_configs()


def _job():
    from vdr_exp.pipeline import is_main_process, run_training, run_training_worker

    return run_training if is_main_process() else run_training_worker


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg, load_train_config, _job)


if __name__ == "__main__":
    main()
