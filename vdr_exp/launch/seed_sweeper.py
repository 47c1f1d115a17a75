"""Hydra's basic sweeper, with every training job repeated once per seed (``seeds=N``, see :mod:`vdr_exp.runs.seeds`).

The basic sweeper runs the cartesian product of its axes; a seed axis there would also repeat the
deterministic evaluation-only jobs. This one takes the product as Hydra does, then repeats only the jobs that
train (or evaluate what a training of this sweep produced). :func:`install` swaps it in for the basic sweeper
when a sweep is given ``seeds``; other sweepers (Optuna) are refused with a message.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf, open_dict

from vdr_exp.errors import ConfigError
from vdr_exp.runs import seeds

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# Hydra instantiates a sweeper only if it is a registered plugin named under ``hydra_plugins.``;
# ``Plugins.register`` is its documented way to add one at run time, without installing a plugin package.
PLUGIN_MODULE = "hydra_plugins.vdr_exp_seeds"
TARGET = f"{PLUGIN_MODULE}.SeedSweeper"


def requested(config: DictConfig) -> int | None:
    count = OmegaConf.select(config, "seeds")
    return int(count) if count else None


def install(config: DictConfig) -> None:
    """Called before Hydra instantiates the sweeper: the basic sweeper becomes this one."""
    target = OmegaConf.select(config, "hydra.sweeper._target_")
    if target not in (BASIC, TARGET):
        raise ConfigError(
            f"seeds={requested(config)} repeats the jobs of Hydra's basic sweeper, not of {target}; "
            "drop seeds=, or sweep the seed yourself (trainer.seed=42,43,44)."
        )

    try:
        import hydra_plugins  # noqa: F401 - Hydra locates the target from here, part by part
    except ImportError:  # no plugin package installed (the lean core): their namespace is made here
        sys.modules["hydra_plugins"] = namespace = types.ModuleType("hydra_plugins")
        namespace.__path__ = []  # a package with nothing in it, as Hydra's plugin scan expects
    sys.modules.setdefault(PLUGIN_MODULE, sys.modules[__name__])  # Hydra imports the target's module by name
    Plugins.instance().register(SeedSweeper)
    with open_dict(config.hydra.sweeper):
        OmegaConf.update(config, "hydra.sweeper._target_", TARGET, force_add=True)


def trains_anything(config: DictConfig) -> bool:
    """A training sweep, or an evaluation sweep with prerequisite trainings: something has a seed to vary."""
    return str(config.get("run_kind")) == "train" or bool(OmegaConf.select(config, "sweep.train_first"))


class SeedSweeper(BasicSweeper):
    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
        count = requested(self.config) or 1
        repeated = [job for one in jobs for job in self._per_seed(one, count)]
        if max_batch_size is None:
            return [repeated]
        return list(BasicSweeper.split_overrides_to_chunks(repeated, max_batch_size))

    def _per_seed(self, job: list[str], count: int) -> list[list[str]]:
        if str(self.config.get("run_kind")) == "train":
            first = seeds.first_seed(job, int(self.config.trainer.seed))
            return [seeds.with_seed(job, seeds.TRAIN_SEED_KEY, s) for s in seeds.seed_values(count, first)]
        if OmegaConf.select(self.config, "sweep.train_first") and self._evaluates_a_training(job):
            return [seeds.with_seed(job, seeds.FROM_RUN_SEED_KEY, s) for s in train_first_seeds(self.config, count)]
        return [job]

    def _evaluates_a_training(self, job: list[str]) -> bool:
        """The job reads the latest training run it finds by tags (not one pinned by run id): one per seed."""
        composed: Any = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        reference = OmegaConf.select(composed, "model.from_run")
        return reference is not None and not reference.get("run_id")


def train_first_seeds(config: DictConfig, count: int) -> list[int]:
    return train_first_seeds_of(OmegaConf.select(config, "sweep.train_first") or [], count)


def train_first_seeds_of(train_first: Any, count: int) -> list[int]:
    """The seeds a sweep's prerequisite trainings run with: from the first training's own seed, if it sets one."""
    first_overrides = [str(o) for o in (list(train_first) or [[]])[0]]
    return seeds.seed_values(count, seeds.first_seed(first_overrides))


SeedSweeper.__module__ = PLUGIN_MODULE  # the name Hydra registers and finds it by (see PLUGIN_MODULE)
