"""``python -m vdr_exp.mine`` (``vdr-mine``): hard negatives from your own documents, as a training dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from vdr_exp.config import load_mine_config, register_configs
from vdr_exp.entrypoint import run_job

register_configs()


def _job():
    from vdr_exp.pipeline import run_mining

    return run_mining


@hydra.main(config_path="../conf", config_name="mine", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg, load_mine_config, _job)


if __name__ == "__main__":
    main()
