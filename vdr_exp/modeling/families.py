"""Model families: how each ``model.kind`` is built, which trainer trains it, how it scores.

Three kinds share one interface (``encode_query`` / ``encode_document`` / ``similarity``): single-vector
Sentence Transformers, multi-vector (late interaction, MaxSim) encoders, and Router models joining a text and
an image encoder. :data:`FAMILIES` is the one dispatch point: a new kind is one builder and one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Normalize, Router, Transformer
from sentence_transformers.multi_vector_encoder import (
    MultiVectorEncoder,
    MultiVectorEncoderTrainer,
    MultiVectorEncoderTrainingArguments,
)
from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
from sentence_transformers.sentence_transformer.modules import Pooling
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

from vdr_exp.config import ModelConfig, ModelKind, ModuleStack


@dataclass(frozen=True)
class TrainingClasses:
    trainer: type
    arguments: type


def _sentence_transformer_classes() -> TrainingClasses:
    return TrainingClasses(SentenceTransformerTrainer, SentenceTransformerTrainingArguments)


def _multi_vector_classes() -> TrainingClasses:
    """Multi-vector encoders have their own trainer (MaxSim-aware collation); step evaluations are the same for
    every family (vdr_exp.retrieval.step_evaluation)."""
    return TrainingClasses(MultiVectorEncoderTrainer, MultiVectorEncoderTrainingArguments)


def transformer(path: str, cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict, **kwargs):
    return Transformer(
        path,
        model_kwargs={**model_kwargs, "trust_remote_code": cfg.trust_remote_code},
        processor_kwargs=processor_kwargs,
        unpad_inputs=False,
        **kwargs,
    )


def _single_vector(cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict) -> SentenceTransformer:
    if cfg.module_stack == ModuleStack.last_token:
        return _last_token_stack(cfg, model_kwargs, processor_kwargs)
    return SentenceTransformer(
        cfg.path,
        trust_remote_code=cfg.trust_remote_code,
        revision=cfg.revision,
        truncate_dim=cfg.truncate_dim,
        model_kwargs=model_kwargs,
        processor_kwargs=processor_kwargs,
    )


def _last_token_stack(cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict) -> SentenceTransformer:
    """Qwen3-VL-Embedding-style stack for checkpoints that ship no Sentence Transformers files."""
    chat = {"chat_template": {"add_generation_prompt": True}}
    encoder = transformer(cfg.path, cfg, model_kwargs, processor_kwargs, processing_kwargs=chat)
    dim = encoder.get_embedding_dimension()
    return SentenceTransformer(modules=[encoder, Pooling(dim, pooling_mode="lasttoken"), Normalize()])


def _multi_vector(cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict):
    """ColQwen-style: every token's hidden state, projected and normalised; scored with MaxSim."""
    if cfg.module_stack == ModuleStack.saved:
        return MultiVectorEncoder(
            cfg.path,
            trust_remote_code=cfg.trust_remote_code,
            revision=cfg.revision,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
        )
    encoder = transformer(cfg.path, cfg, model_kwargs, processor_kwargs)
    projection = Dense(
        encoder.get_embedding_dimension(),
        cfg.multi_vector_dim,
        bias=False,
        activation_function=torch.nn.Identity(),
        module_input_name="token_embeddings",
    )
    return MultiVectorEncoder(
        modules=[encoder, projection, MultiVectorMask(), Normalize(module_input_name="token_embeddings")]
    )


def _router(cfg: ModelConfig, model_kwargs: dict, processor_kwargs: dict) -> SentenceTransformer:
    """Text to one encoder, images to another, each projected by a trainable Dense into one space."""
    routes = {}
    # Routed by task: queries are text, pages are images, so the query route is the text encoder.
    for task, path in (("query", cfg.router.text_path), ("document", cfg.router.image_path)):
        encoder = transformer(path, cfg, model_kwargs, processor_kwargs)
        width = encoder.get_embedding_dimension()
        pooling = Pooling(width, pooling_mode="lasttoken")
        routes[task] = [encoder, pooling, Dense(width, cfg.router.dim, activation_function=torch.nn.Identity())]
    return SentenceTransformer(modules=[Router(sub_modules=routes), Normalize()])


@dataclass(frozen=True)
class Family:
    kind: ModelKind
    build: Callable[[ModelConfig, dict, dict], SentenceTransformer]
    training_classes: Callable[[], TrainingClasses]
    # Per-token embeddings scored with the model's MaxSim (no Matryoshka truncation, no embedding cache).
    late_interaction: bool = False
    # The model config keys naming the checkpoints this family loads (checked before loading).
    path_keys: tuple[str, ...] = ("path",)

    def local_paths(self, cfg: ModelConfig) -> list[tuple[str, str]]:
        """(config key, path) of every checkpoint this family loads."""
        return [(f"model.{key}", attrgetter(key)(cfg)) for key in self.path_keys]


FAMILIES: dict[ModelKind, Family] = {
    ModelKind.single_vector: Family(ModelKind.single_vector, _single_vector, _sentence_transformer_classes),
    ModelKind.multi_vector: Family(ModelKind.multi_vector, _multi_vector, _multi_vector_classes, late_interaction=True),
    ModelKind.router: Family(
        ModelKind.router, _router, _sentence_transformer_classes, path_keys=("router.text_path", "router.image_path")
    ),
}
