"""``python -m vdr_exp.mine`` (``vdr-mine``): hard negatives from your own documents, as a training dataset."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from vdr_exp.config import load_mine_config, register_configs
from vdr_exp.launch.entrypoint import refuse_unsafe_overrides, run_job
from vdr_exp.runtime.failures import guarded_main

register_configs()


def _job():
    # Imported once the config is valid, so --help and config errors never load torch.
    from vdr_exp.jobs.mine import run_mining

    return run_mining


# The configs ship inside the package (conf/ in a checkout), so this works from any directory.
@hydra.main(config_path="pkg://vdr_exp.conf", config_name="mine", version_base="1.3")
def _main(composed: DictConfig) -> float | None:
    return run_job(composed, load_mine_config, _job)


def main() -> None:
    refuse_unsafe_overrides(sys.argv[1:])
    guarded_main(_main)  # every failure, Hydra's own included: one error line, exit 2 (1 for a bug)


if __name__ == "__main__":
    main()
