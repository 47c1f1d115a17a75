"""DictConfig -> typed run config, with the checks a type alone cannot express (ranges, combinations).

Hydra has already refused unknown keys, wrong types and unknown variants; what is left here is what
depends on two values at once or on a range. Each message names the key and the fix.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from vdr_exp.config.schema import EvaluateRunConfig, MineRunConfig, TrainRunConfig
from vdr_exp.config.variants import MODULE_STACKS, DatasetFormat, ModelKind
from vdr_exp.errors import ConfigError


def _check(cfg: EvaluateRunConfig) -> None:
    if cfg.pixels.min_pixels <= 0 or cfg.pixels.min_pixels > cfg.pixels.max_pixels:
        raise ConfigError(
            f"pixels.min_pixels ({cfg.pixels.min_pixels}) must be positive and at most pixels.max_pixels "
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
    if cfg.reranker.path is not None and cfg.reranker.top_k < 10:
        raise ConfigError(f"reranker.top_k={cfg.reranker.top_k} is below 10; NDCG@10 needs the top 10 reranked.")
    if not 0.0 < cfg.dataset.eval_fraction <= 1.0:
        raise ConfigError(f"dataset.eval_fraction={cfg.dataset.eval_fraction} must be in (0, 1].")
    if cfg.dataset.dpi < 10:
        raise ConfigError(f"dataset.dpi={cfg.dataset.dpi} is too low to read a page; use 72-300.")
    if cfg.model.from_run is None and not cfg.model.path:
        raise ConfigError(f"model {cfg.model.name!r} has an empty path; set model.path or model.from_run.")
    if cfg.eval.top_k < 10:
        raise ConfigError(f"eval.top_k={cfg.eval.top_k} is below 10; NDCG@10 needs at least the top 10.")
    if cfg.eval.batch_size < 1:
        raise ConfigError(f"eval.batch_size={cfg.eval.batch_size} must be at least 1.")


def _check_train(cfg: TrainRunConfig) -> None:
    dims, weights = cfg.loss.matryoshka_dims, cfg.loss.matryoshka_weights
    if weights is not None and (dims is None or len(weights) != len(dims)):
        raise ConfigError("loss.matryoshka_weights needs one weight per entry of loss.matryoshka_dims.")
    if cfg.trainer.per_device_train_batch_size < 1 or cfg.loss.mini_batch_size < 1:
        raise ConfigError("trainer.per_device_train_batch_size and loss.mini_batch_size must be at least 1.")


def _check_mine(cfg: MineRunConfig) -> None:
    if cfg.dataset.format == DatasetFormat.pairs:
        raise ConfigError(
            f"dataset {cfg.dataset.name!r} already holds mined negatives (format 'pairs'); mine from "
            "dataset=local_docs or dataset=beir."
        )
    ratio = cfg.mine.max_score_ratio
    if cfg.mine.num_negatives < 1 or cfg.mine.range_min < 0 or (ratio is not None and not 0 < ratio <= 1):
        raise ConfigError("mine: need num_negatives >= 1, range_min >= 0 and max_score_ratio null or in (0, 1].")


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
