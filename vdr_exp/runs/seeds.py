"""Training seeds as a sweep axis: ``seeds=N`` repeats every training job of a sweep with N seeds.

A finetune's score varies with its seed (data order, new heads, dropout); one lucky seed looks exactly like a
real gain. With ``seeds=N`` (or ``sweep=seeds``) every training job runs once per seed ``trainer.seed`` =
first, first+1, ... (first: the job's own ``trainer.seed``, 42 by default), and in an evaluation sweep that
trains first, each prerequisite training runs once per seed and every job evaluating a model from those
trainings (``model.from_run``) is repeated once per seed, pointed at that seed's run. Evaluation-only jobs are
deterministic and run once. Runs are tagged ``seed`` and ``seed_group`` (a hash of the config without the seed:
the runs that differ only by seed), which is what leaderboards aggregate over.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

from vdr_exp.config import EvaluateRunConfig, TrainerConfig, TrainRunConfig, keys_with
from vdr_exp.tags import SEED, SEED_GROUP

TRAIN_SEED_KEY = "trainer.seed"
# Where an evaluation of a model from a training run names that run's seed (a tag the run is found by).
FROM_RUN_SEED_KEY = f"model.from_run.tags.{SEED}"
DEFAULT_FIRST_SEED = next(f.default for f in dataclasses.fields(TrainerConfig) if f.name == "seed")


def seed_values(count: int, first: int = DEFAULT_FIRST_SEED) -> list[int]:
    return [first + i for i in range(count)]


def with_seed(overrides: list[str], key: str, seed: int) -> list[str]:
    """``overrides`` with ``key`` set to ``seed`` (any earlier value of the key dropped: Hydra refuses two)."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    prefix = "++" if key == FROM_RUN_SEED_KEY else ""  # a new key in the reference's tags
    return [*kept, f"{prefix}{key}={seed}"]


def first_seed(overrides: list[str], default: int = DEFAULT_FIRST_SEED) -> int:
    """The seed a list of training overrides sets itself, else ``default``."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") == TRAIN_SEED_KEY and value.strip().lstrip("-").isdigit():
            return int(value)
    return default


def seed_in(overrides: list[str]) -> str | None:
    """The seed a job's overrides pick (a seed sweep's job, or ``trainer.seed=7`` given by hand): part of its
    run name, so the seeds of one model are told apart in the runs table."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") in (TRAIN_SEED_KEY, FROM_RUN_SEED_KEY):
            return value
    return None


def _group_hash(tree: dict[str, Any]) -> str:
    canonical = json.dumps(tree, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def seed_tags(cfg: EvaluateRunConfig, values: dict[str, Any]) -> dict[str, str]:
    """``seed`` and ``seed_group`` for a training run (always: it has a seed) and for an evaluation of a model
    from a training run that names a seed; nothing for evaluation-only runs (no seed to vary)."""
    if isinstance(cfg, TrainRunConfig):
        seed = str(cfg.trainer.seed)
    elif cfg.model.from_run is not None and SEED in cfg.model.from_run.tags:
        seed = str(cfg.model.from_run.tags[SEED])
    else:
        return {}
    tree = copy.deepcopy(values)  # the job's resolved config (JobSpec.values); left as it is
    for key in keys_with("volatile"):
        tree.pop(key, None)
    tree.get("trainer", {}).pop("seed", None)
    reference = (tree.get("model") or {}).get("from_run")
    if reference:  # the pinned run and its label differ by seed; the reference's other tags do not
        reference.pop("run_id", None)
        reference.get("tags", {}).pop(SEED, None)
        tree["model"].pop("name", None)
        tree["model"].pop("path", None)
    return {SEED: seed, SEED_GROUP: _group_hash(tree)}
