"""Model config -> SentenceTransformer, with the attention backend, dtype and pixel budget applied."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from vdr_exp.config import ConfigError, ModelConfig, PixelsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    model: SentenceTransformer
    attn_implementation: str
    parameters: int
    embedding_dim: int


def choose_attention(requested: str) -> str:
    """flash_attention_2 only where it can run (package importable and a CUDA device); otherwise sdpa."""
    if requested != "flash_attention_2":
        return requested
    if importlib.util.find_spec("flash_attn") is None:
        log.warning("flash_attention_2 requested but flash-attn is not installed: using sdpa")
        return "sdpa"
    if not torch.cuda.is_available():
        log.warning("flash_attention_2 requested but no CUDA device is present: using sdpa")
        return "sdpa"
    return requested


def pixel_processor_kwargs(pixels: PixelsConfig) -> dict:
    """The processor's pixel budget in the newer ``size`` spelling (shortest/longest edge are pixel counts)."""
    return {"size": {"shortest_edge": pixels.min_pixels, "longest_edge": pixels.max_pixels}}


def _check_local_path(cfg: ModelConfig) -> None:
    path = Path(cfg.path)
    looks_local = cfg.path.startswith((".", "/", "~")) or path.exists() or cfg.fixture
    if looks_local and not path.exists():
        raise ConfigError(
            f"model.path={cfg.path!r} does not exist. Point model.path at a model directory or a hub id"
            + (", or build the fixtures with `make fixtures`." if cfg.fixture else ".")
        )


def load_model(cfg: ModelConfig, pixels: PixelsConfig) -> LoadedModel:
    _check_local_path(cfg)
    attn = choose_attention(cfg.attn_implementation)
    log.info("attention backend: %s (requested %s)", attn, cfg.attn_implementation)
    model_kwargs = {"attn_implementation": attn, "dtype": cfg.dtype, **cfg.model_kwargs}
    processor_kwargs = {**pixel_processor_kwargs(pixels), **cfg.processor_kwargs}
    if cfg.module_stack == "last_token":
        model = _build_last_token_stack(cfg, model_kwargs, processor_kwargs)
    else:
        model = SentenceTransformer(
            cfg.path,
            trust_remote_code=cfg.trust_remote_code,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
        )
    if not model.supports("image"):
        raise ConfigError(
            f"model {cfg.path!r} cannot encode images (modalities: {model.modalities}); pick a multimodal model."
        )
    parameters = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, attn, parameters, int(model.get_embedding_dimension()))


def _build_last_token_stack(cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict) -> SentenceTransformer:
    """Qwen3-VL-Embedding-style stack for checkpoints that ship no Sentence Transformers files."""
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(
        cfg.path,
        model_kwargs={**model_kwargs, "trust_remote_code": cfg.trust_remote_code},
        processor_kwargs=processor_kwargs,
        processing_kwargs={"chat_template": {"add_generation_prompt": True}},
        unpad_inputs=False,
    )
    dim = transformer.get_embedding_dimension()
    return SentenceTransformer(modules=[transformer, Pooling(dim, pooling_mode="lasttoken"), Normalize()])
