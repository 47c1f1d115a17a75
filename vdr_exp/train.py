"""``python -m vdr_exp.train`` (``vdr-train``): finetune and evaluate, logged to MLflow."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from vdr_exp.config import load_train_config, register_configs
from vdr_exp.entrypoint import run_job
from vdr_exp.pipeline import quiet_libraries, run_training

register_configs()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    quiet_libraries()
    return run_job(cfg, lambda raw, overrides, out: run_training(load_train_config(raw), raw, overrides, out))


if __name__ == "__main__":
    main()
