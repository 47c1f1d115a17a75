"""The variants a config chooses between, as Enums: a wrong value fails when Hydra composes the config,
with the valid choices in the message, before anything loads.

Member names equal their values, so YAML, MLflow params and dry runs show the same plain word. Each Enum has
one dispatch point in the code (named below), where adding a member means adding one registry line.
"""

from __future__ import annotations

from enum import StrEnum

from vdr_exp.tags import RunKind as RunKind  # the run kinds are part of the tag contract (vdr_exp.tags)


class ModelKind(StrEnum):
    """How a model embeds (dispatched in :mod:`vdr_exp.modeling.families`)."""

    single_vector = "single_vector"  # one embedding per input, cosine
    multi_vector = "multi_vector"  # one embedding per token, MaxSim (ColQwen-style)
    router = "router"  # separate text and image encoders joined by a Router


class ModuleStack(StrEnum):
    """Which modules a model is built from (checked against the kind in :mod:`vdr_exp.modeling.families`)."""

    saved = "saved"  # the checkpoint's own modules.json
    last_token = "last_token"  # Transformer -> last-token Pooling -> Normalize, for raw VLM checkpoints
    build = "build"  # built here from plain checkpoints (multi-vector projection, router)


class CheckLevel(StrEnum):
    """How far a model config has been verified (the docs' model table and the dry run print it)."""

    load_tested = "load_tested"  # its architecture, built tiny offline, loads through this very config (tests)
    desk_checked = "desk_checked"  # its values compared with the published files; never loaded here
    remote_code = "remote_code"  # desk-checked; its modelling code lives only on the Hub, so no offline test
    fixture = "fixture"  # an offline fixture model, loaded by every test


class DatasetFormat(StrEnum):
    """A dataset's layout on disk or on the Hub (dispatched in :mod:`vdr_exp.data.layouts`)."""

    pairs = "pairs"  # rows of query, image, negative_0.. (the recipe's layout)
    local_docs = "local_docs"  # a folder of PDFs and page images plus a queries file
    beir = "beir"  # corpus/queries/qrels configs (ViDoRe, MTEB *_beir datasets)


class ProtocolType(StrEnum):
    """How a pairs dataset becomes an evaluation protocol."""

    hard_negatives = "hard_negatives"  # corpus = every eval row's positive plus its negatives


class RerankerHead(StrEnum):
    """How a reranker scores a (query, page) pair (dispatched in :mod:`vdr_exp.retrieval.reranking`)."""

    saved = "saved"  # a CrossEncoder checkpoint
    dense = "dense"  # feature-extraction transformer + last-token pooling + a trained Dense head
    logit = "logit"  # any-to-any transformer + LogitScore of two answer tokens


class LossType(StrEnum):
    """The in-batch contrastive loss (dispatched in :mod:`vdr_exp.modeling.losses`)."""

    cmnrl = "cmnrl"  # CachedMultipleNegativesRankingLoss (GradCache: large batches in little memory)
    mnrl = "mnrl"  # MultipleNegativesRankingLoss


class CompileMode(StrEnum):
    """Which of a model's modules run under torch.compile (dispatched in :mod:`vdr_exp.modeling.compiling`)."""

    off = "off"  # eager, as loaded
    regional = "regional"  # each repeated vision block and language decoder layer: small compile time
    full = "full"  # each Transformer module's whole Hugging Face model


class TrainingPrompts(StrEnum):
    """Prompts while training; null in the config means none (the recipe)."""

    model = "model"  # the model's own saved query/document prompts


# The module stacks each kind can be built from (checked when the config is loaded).
MODULE_STACKS: dict[ModelKind, tuple[ModuleStack, ...]] = {
    ModelKind.single_vector: (ModuleStack.saved, ModuleStack.last_token),
    ModelKind.multi_vector: (ModuleStack.saved, ModuleStack.build),
    ModelKind.router: (ModuleStack.build,),
}
