"""Loss config -> Sentence Transformers loss objects, for the model's family (single- or multi-vector)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss
from torch import nn

from vdr_exp.config import LossConfig, LossType
from vdr_exp.errors import ConfigError
from vdr_exp.modeling.families import Family

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class LossSpec:
    single_vector: str  # class in sentence_transformers.sentence_transformer.losses
    multi_vector: str  # class in sentence_transformers.multi_vector_encoder.losses
    cached: bool  # GradCache: takes mini_batch_size / mini_batch_num_tokens

    def build(self, model: SentenceTransformer, cfg: LossConfig, *, late_interaction: bool) -> nn.Module:
        module = "multi_vector_encoder" if late_interaction else "sentence_transformer"
        name = self.multi_vector if late_interaction else self.single_vector
        loss_class = getattr(importlib.import_module(f"sentence_transformers.{module}.losses"), name)
        kwargs = {"scale": cfg.scale, "gather_across_devices": cfg.gather_across_devices}
        if self.cached:
            kwargs |= {"mini_batch_size": cfg.mini_batch_size, "mini_batch_num_tokens": cfg.mini_batch_num_tokens}
        return loss_class(model, **kwargs)


# The one dispatch point of loss.type: a new loss is one line here and one member of LossType.
LOSSES: dict[LossType, LossSpec] = {
    LossType.cmnrl: LossSpec(
        "CachedMultipleNegativesRankingLoss", "CachedMultiVectorMultipleNegativesRankingLoss", cached=True
    ),
    LossType.mnrl: LossSpec("MultipleNegativesRankingLoss", "MultiVectorMultipleNegativesRankingLoss", cached=False),
}


def build_loss(model: SentenceTransformer, cfg: LossConfig, family: Family) -> nn.Module:
    """The in-batch contrastive loss, wrapped in MatryoshkaLoss when ``loss.matryoshka_dims`` is set."""
    if family.late_interaction and cfg.matryoshka_dims:
        # Matryoshka has no meaning for per-token vectors scored with MaxSim.
        raise ConfigError(
            "loss.matryoshka_dims is set but the model is multi-vector; use loss=cmnrl or loss=mnrl with it."
        )
    base = LOSSES[cfg.type].build(model, cfg, late_interaction=family.late_interaction)
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
