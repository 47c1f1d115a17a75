"""DictConfig -> typed run config, with the checks a type alone cannot express (ranges, combinations).

Hydra has already refused unknown keys, wrong types and unknown variants; what is left here is what
depends on two values at once or on a range. Each message names the key and the fix.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from vdr_exp.config.schema import EvaluateRunConfig, MineRunConfig, TrainRunConfig
from vdr_exp.config.variants import MODULE_STACKS, DatasetFormat, ModelKind
from vdr_exp.errors import ConfigError
from vdr_exp.tags import JOB_KINDS


def _check_bounds(node: object, prefix: str = "") -> None:
    """Every field declared with a range (``bounded`` in the schema), recursively; lists element by element."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_bounds(value, f"{key}.")
            continue
        bounds = f.metadata.get("bounds")
        if not bounds or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if not _within(item, bounds):
                raise ConfigError(f"{key}={value} is out of range: it must be {_describe(bounds)}; fix the override.")


def _within(value: float, bounds: dict[str, float]) -> bool:
    return (
        value >= bounds.get("min", float("-inf"))
        and value > bounds.get("gt", float("-inf"))
        and value <= bounds.get("max", float("inf"))
        and value < bounds.get("below", float("inf"))
    )


def _describe(bounds: dict[str, float]) -> str:
    words = {"min": ">=", "gt": ">", "max": "<=", "below": "<"}
    return " and ".join(f"{words[k]} {v:g}" for k, v in bounds.items())


def _check(cfg: EvaluateRunConfig) -> None:
    if cfg.run_kind not in JOB_KINDS:
        raise ConfigError(
            f"run_kind={cfg.run_kind} is a run the commands make themselves (a sweep's parent, a suite, a suite "
            f"task); leave run_kind as the command sets it ({', '.join(JOB_KINDS)})."
        )
    _check_bounds(cfg)
    _check_pipeline(cfg)
    if cfg.pixels.min_pixels > cfg.pixels.max_pixels:
        raise ConfigError(
            f"pixels.min_pixels ({cfg.pixels.min_pixels}) must be at most pixels.max_pixels "
            f"({cfg.pixels.max_pixels}); pick another pixels=... budget or fix the override."
        )
    stacks = MODULE_STACKS[cfg.model.kind]
    if cfg.model.module_stack not in stacks:
        raise ConfigError(
            f"model.module_stack={cfg.model.module_stack} does not fit model.kind={cfg.model.kind}; "
            f"use one of {[str(s) for s in stacks]}."
        )
    if cfg.model.kind == ModelKind.router and cfg.model.router is None:
        raise ConfigError("model.kind=router needs model.router.text_path and model.router.image_path.")
    published = [k for k in ("published_params", "published_ndcg_at_10") if getattr(cfg.model, k) is not None]
    if published and not (cfg.model.published_source or "").strip():
        raise ConfigError(
            f"model {cfg.model.name!r} sets {' and '.join(published)} without model.published_source; "
            "name where the figure comes from (a URL or citation) or drop the figure."
        )
    if cfg.model.published_tasks and not (cfg.model.published_tasks_source or "").strip():
        raise ConfigError(
            f"model {cfg.model.name!r} sets model.published_tasks without model.published_tasks_source; "
            "name where the task scores come from (a URL or citation) or drop them."
        )
    if cfg.model.from_run is None and not cfg.model.path:
        raise ConfigError(f"model {cfg.model.name!r} has an empty path; set model.path or model.from_run.")
    for key in ("dtype", "attn_implementation"):
        if cfg.model.from_run is None and getattr(cfg.model, key) is None:
            raise ConfigError(
                f"model.{key} is null, which only model.from_run fills (from its training run); set it, "
                "e.g. model.dtype=bfloat16 model.attn_implementation=sdpa."
            )


def check_workers(value: str, key: str) -> None:
    """``auto`` or a non-negative whole number of DataLoader workers."""
    if str(value) != "auto" and not str(value).isdigit():
        raise ConfigError(f"{key}={value!r}: use auto (the cores this process may use, minus one) or a number >= 0.")


def check_preprocess_on(value: str, key: str) -> None:
    """Where the image processor runs: ``workers`` or ``device``."""
    if value not in ("workers", "device"):
        raise ConfigError(
            f"{key}={value!r}: use workers (the image processor in the DataLoader workers) or device (on the "
            "model's device, the workers only decode)."
        )


def _check_pipeline(cfg: EvaluateRunConfig) -> None:
    check_workers(cfg.eval.pipeline.workers, "eval.pipeline.workers")
    check_preprocess_on(cfg.eval.pipeline.preprocess_on, "eval.pipeline.preprocess_on")


def _check_train(cfg: TrainRunConfig) -> None:
    check_workers(cfg.trainer.dataloader_num_workers, "trainer.dataloader_num_workers")
    check_preprocess_on(cfg.trainer.preprocess_on, "trainer.preprocess_on")
    if cfg.trainer.max_steps == 0 or cfg.trainer.max_steps < -1:
        raise ConfigError(f"trainer.max_steps={cfg.trainer.max_steps}: use -1 (train for num_train_epochs) or >= 1.")
    if cfg.loss.mini_batch_auto and cfg.trainer.gradient_accumulation_steps > 1:
        raise ConfigError(
            "loss.mini_batch_auto retries a step after an out-of-memory error, which would drop the gradients "
            f"accumulated so far (trainer.gradient_accumulation_steps={cfg.trainer.gradient_accumulation_steps}); "
            "set one of them back (loss.mini_batch_auto=false or trainer.gradient_accumulation_steps=1)."
        )
    dims, weights = cfg.loss.matryoshka_dims, cfg.loss.matryoshka_weights
    if weights is not None and (dims is None or len(weights) != len(dims)):
        raise ConfigError("loss.matryoshka_weights needs one weight per entry of loss.matryoshka_dims.")


def _check_mine(cfg: MineRunConfig) -> None:
    if cfg.dataset.format == DatasetFormat.pairs:
        raise ConfigError(
            f"dataset {cfg.dataset.name!r} already holds mined negatives (format 'pairs'); mine from "
            "dataset=local_docs or dataset=beir."
        )


def _to_object(composed: DictConfig, schema: type, primary: str):
    typed = OmegaConf.to_object(composed)
    if not isinstance(typed, schema):
        raise ConfigError(f"conf/{primary}.yaml must list {primary}_schema first in its defaults.")
    return typed


def load_evaluate_config(composed: DictConfig) -> EvaluateRunConfig:
    cfg = _to_object(composed, EvaluateRunConfig, "evaluate")
    _check(cfg)
    return cfg


def load_train_config(composed: DictConfig) -> TrainRunConfig:
    cfg = _to_object(composed, TrainRunConfig, "train")
    _check(cfg)
    _check_train(cfg)
    return cfg


def load_mine_config(composed: DictConfig) -> MineRunConfig:
    cfg = _to_object(composed, MineRunConfig, "mine")
    _check(cfg)
    _check_mine(cfg)
    return cfg
