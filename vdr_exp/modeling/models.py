"""Model config -> an embedding model of its family, with attention backend, dtype, pixel budget and adapters.

How each kind is built is :mod:`vdr_exp.modeling.families`; this module adds what all kinds share. LoRA
adapters (PEFT) wrap the Hugging Face model inside each Transformer module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Router, Transformer

from vdr_exp.config import LoraConfig, ModelConfig, PixelsConfig
from vdr_exp.data import hub
from vdr_exp.errors import ConfigError
from vdr_exp.modeling import attention, compiling
from vdr_exp.modeling.families import FAMILIES, Family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    model: SentenceTransformer  # or a MultiVectorEncoder: same encode/similarity interface
    family: Family
    attn_implementation: str
    parameters: int
    embedding_dim: int
    config: ModelConfig  # what it was loaded with (a model named by its training run: the local folder as path)
    compiled: compiling.CompileClock  # model.compile's modules and what compiling them cost (compile_s)


def pixel_processor_kwargs(pixels: PixelsConfig) -> dict:
    """The processor's pixel budget in the newer ``size`` spelling (shortest/longest edge are pixel counts)."""
    return {"size": {"shortest_edge": pixels.min_pixels, "longest_edge": pixels.max_pixels}}


def _check_local_path(cfg: ModelConfig, path_value: str, key: str = "model.path") -> None:
    path = Path(path_value)
    looks_local = path_value.startswith((".", "/", "~")) or path.exists() or cfg.fixture
    if looks_local and not path.exists():
        raise ConfigError(
            f"{key}={path_value!r} does not exist. Point {key} at a model directory or a hub id"
            + (", or build the fixtures with `make fixtures`." if cfg.fixture else ".")
        )


def load_model(cfg: ModelConfig, pixels: PixelsConfig) -> LoadedModel:
    if cfg.unsupported:  # known from its published files: one clear line instead of a loader's traceback
        raise ConfigError(
            f"model {cfg.name} ({cfg.path}) cannot be loaded by Sentence Transformers as published: "
            f"{cfg.unsupported} (set model.unsupported=null to try anyway)."
        )
    family = FAMILIES[cfg.kind]
    for key, value in family.local_paths(cfg):
        _check_local_path(cfg, value, key)
        hub.ensure_available(value, "model", key)
    attn = attention.choose_attention(cfg.attn_implementation, remote_code=cfg.trust_remote_code)
    log.info("attention backend: %s (requested %s)", attn, cfg.attn_implementation)
    compiling.check_available(cfg.compile, _target_device())
    model_kwargs = {"attn_implementation": attn, "dtype": cfg.dtype, **cfg.model_kwargs}
    budget = pixel_processor_kwargs(pixels) if cfg.use_pixel_budget else {}
    processor_kwargs = {**budget, **cfg.processor_kwargs}
    model = family.build(cfg, model_kwargs, processor_kwargs)
    if cfg.adapter:
        load_adapter(model, cfg.adapter)
    if not model.supports("image"):
        raise ConfigError(
            f"model {cfg.path!r} cannot encode images (modalities: {model.modalities}); pick a multimodal model."
        )
    if attn == attention.SDPA_PACKED:
        log.info(
            "sdpa_packed: %d vision attention configs take the packed path", attention.pack_vision_attention(model)
        )
    parameters = sum(p.numel() for p in model.parameters())
    clock = compiling.compile_model(model, cfg.compile)
    return LoadedModel(model, family, attn, parameters, int(model.get_embedding_dimension()), cfg, clock)


def _target_device() -> torch.device:
    """Where Sentence Transformers puts a model it loads (its default): checked before spending the load."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def router_mapping(model: SentenceTransformer, columns: list[str]) -> dict[str, str]:
    """For the trainer: the first column (queries) takes the query route, the others the document route."""
    if not any(isinstance(m, Router) for m in model.modules()):
        return {}
    query, *documents = columns
    return {query: "query", **dict.fromkeys(documents, "document")}


def transformer_modules(model: SentenceTransformer) -> list:
    return [m for m in model.modules() if isinstance(m, Transformer)]


def apply_lora(model: SentenceTransformer, lora: LoraConfig) -> int:
    """Wrap every Transformer's Hugging Face model with LoRA adapters; returns the trainable parameter count.

    PEFT is applied directly (``get_peft_model``) rather than through transformers' adapter integration,
    which demands a newer PEFT than PyPI has for transformers 5.24.
    """
    for module in transformer_modules(model):
        peft_config = PeftLoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules)
        )
        module.model = get_peft_model(module.model, peft_config)
    return trainable_parameters(model)


def trainable_parameters(model: SentenceTransformer) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_adapter(model: SentenceTransformer, out_dir: Path) -> Path:
    """The LoRA adapter alone (a few MB for the 2B model): reload with model.adapter=<this folder>."""
    (module,) = [m for m in transformer_modules(model) if hasattr(m.model, "peft_config")]
    module.model.save_pretrained(str(out_dir))
    return out_dir


def merge_adapters(model: SentenceTransformer) -> None:
    """Fold LoRA weights into the base weights, so the saved model loads like any other."""
    for module in transformer_modules(model):
        if hasattr(module.model, "merge_and_unload"):
            module.model = module.model.merge_and_unload()


def load_adapter(model: SentenceTransformer, adapter_dir: str) -> None:
    if not Path(adapter_dir, "adapter_config.json").is_file():
        raise ConfigError(f"model.adapter={adapter_dir!r} holds no adapter_config.json; point it at a saved adapter.")
    (module, *rest) = transformer_modules(model)
    if rest:
        raise ConfigError("model.adapter applies to models with one Transformer; this model has several.")
    module.model = PeftModel.from_pretrained(module.model, adapter_dir)
