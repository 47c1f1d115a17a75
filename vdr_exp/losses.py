"""Loss config -> Sentence Transformers loss objects."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
)
from torch import nn

from vdr_exp.config import ConfigError, LossConfig


def build_loss(model: SentenceTransformer, cfg: LossConfig) -> nn.Module:
    if type(model).__name__ == "MultiVectorEncoder":
        return _multi_vector_loss(model, cfg)
    if cfg.type == "cmnrl":
        base = CachedMultipleNegativesRankingLoss(
            model,
            scale=cfg.scale,
            mini_batch_size=cfg.mini_batch_size,
            mini_batch_num_tokens=cfg.mini_batch_num_tokens,
            gather_across_devices=cfg.gather_across_devices,
        )
    else:
        base = MultipleNegativesRankingLoss(model, scale=cfg.scale, gather_across_devices=cfg.gather_across_devices)
    if not cfg.matryoshka_dims:
        return base
    width = model.get_embedding_dimension()
    too_wide = [d for d in cfg.matryoshka_dims if d > width]
    if too_wide:
        raise ConfigError(
            f"loss.matryoshka_dims {too_wide} exceed the model's embedding width {width}; "
            f"override loss.matryoshka_dims with widths up to {width}."
        )
    return MatryoshkaLoss(
        model, base, matryoshka_dims=list(cfg.matryoshka_dims), matryoshka_weights=cfg.matryoshka_weights
    )


def _multi_vector_loss(model, cfg: LossConfig) -> nn.Module:
    """The same in-batch objective over MaxSim scores; Matryoshka has no meaning for per-token vectors."""
    from sentence_transformers.multi_vector_encoder.losses import (
        CachedMultiVectorMultipleNegativesRankingLoss,
        MultiVectorMultipleNegativesRankingLoss,
    )

    if cfg.matryoshka_dims:
        raise ConfigError(
            "loss.matryoshka_dims is set but the model is multi-vector; use loss=cmnrl or loss=mnrl with it."
        )
    if cfg.type == "cmnrl":
        return CachedMultiVectorMultipleNegativesRankingLoss(
            model,
            scale=cfg.scale,
            mini_batch_size=cfg.mini_batch_size,
            mini_batch_num_tokens=cfg.mini_batch_num_tokens,
            gather_across_devices=cfg.gather_across_devices,
        )
    return MultiVectorMultipleNegativesRankingLoss(
        model, scale=cfg.scale, gather_across_devices=cfg.gather_across_devices
    )
