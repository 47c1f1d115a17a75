"""``python -m vdr_exp.generate docs=<folder> generator=<option>`` (``vdr-generate``): training queries for your
own pages written by a vision-language model, filtered for hallucinations and copies (vdr_exp.generation)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from vdr_exp.config import register_configs
from vdr_exp.generation.config import load_generate_config, register
from vdr_exp.launch.entrypoint import refuse_unsafe_overrides, run_job

register_configs()
register()


def _job():
    # Imported once the config is valid, so --help and config errors never load torch.
    from vdr_exp.generation.job import run_generation

    return run_generation


@hydra.main(config_path="pkg://vdr_exp.conf", config_name="generate", version_base="1.3")
def _main(composed: DictConfig) -> float | None:
    return run_job(composed, load_generate_config, _job)


def main() -> None:
    # `docs=<folder>` is the folder of your documents: dataset.path, as the other entry points call it.
    argv = [f"dataset.path={a.split('=', 1)[1]}" if a.startswith("docs=") else a for a in sys.argv[1:]]
    refuse_unsafe_overrides(argv)
    sys.argv[1:] = argv
    _main()


if __name__ == "__main__":
    main()
