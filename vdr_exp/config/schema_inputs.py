"""The config groups that say what a run is about: the model (with its run reference, LoRA adapters and
router), the reranker, the dataset (with its evaluation protocol) and the pixel budget.

Part of the schema of :mod:`vdr_exp.config.schema`, which re-exports every name here; kept apart so that
neither module outgrows a read. :func:`bounded` (a numeric field with its valid range) is shared by both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from vdr_exp.config.variants import (
    CheckLevel,
    CompileMode,
    DatasetFormat,
    ModelKind,
    ModuleStack,
    ProtocolType,
    RerankerHead,
)


def bounded(
    default: Any,
    *,
    min: float | None = None,
    gt: float | None = None,
    max: float | None = None,
    below: float | None = None,
    **roles: bool,
) -> Any:
    """A numeric field with its valid range, checked when the config is loaded (every element of a list)."""
    bounds = {k: v for k, v in {"min": min, "gt": gt, "max": max, "below": below}.items() if v is not None}
    return field(default=default, metadata={"bounds": bounds, **roles})


@dataclass
class RunRefConfig:
    """A finetuned model named by the training run that saved it, instead of by a path copied by hand."""

    # An MLflow run id. When null: the latest FINISHED training run in ``experiment`` carrying ``tags``.
    run_id: str | None = None
    # Experiment to search; null means the run's own tracking.experiment_name.
    experiment: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class LoraConfig:
    """LoRA adapters (PEFT) on the transformer's attention projections; only the adapters train."""

    r: int = bounded(16, min=1)
    alpha: int = bounded(32, gt=0)
    dropout: float = bounded(0.05, min=0, below=1)
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class RouterConfig:
    """Two encoders joined by a Router: queries (text) take one, pages (images) the other, each through a
    trainable Dense projection into a shared ``dim``-wide space (the spaces start unaligned: train first)."""

    text_path: str = MISSING
    image_path: str = MISSING
    dim: int = bounded(256, min=1)


@dataclass
class ModelConfig:
    name: str = MISSING
    # "single_vector" (one embedding per input, cosine), "multi_vector" (one per token, MaxSim: ColQwen-style)
    # or "router" (separate text and image encoders, see RouterConfig).
    kind: ModelKind = ModelKind.single_vector
    # A hub id or a local directory. Fixture models point into the fixtures root.
    path: str = MISSING
    # "saved": use the repo's modules.json; "last_token": build Transformer -> last-token Pooling -> Normalize
    # (for raw VLM checkpoints without Sentence Transformers files).
    module_stack: ModuleStack = ModuleStack.saved
    # Figures from the recipe's results table, shown beside measured ones in leaderboards.
    published_params: float | None = field(default=None, metadata={"descriptive": True})
    published_ndcg_at_10: float | None = field(default=None, metadata={"descriptive": True})
    # Where the published figures come from (a URL or a citation); required when either is set.
    published_source: str | None = field(default=None, metadata={"descriptive": True})
    # Published main scores of MTEB tasks (task name -> score, e.g. the MTEB leaderboard's), shown beside the
    # reproduced ones in benchmark suite pivots; published_tasks_source is required with them.
    published_tasks: dict[str, float] = field(default_factory=dict, metadata={"descriptive": True})
    published_tasks_source: str | None = field(default=None, metadata={"descriptive": True})
    trust_remote_code: bool = False
    # A Hub branch, tag, commit or PR ref (``refs/pr/4``); null: main.
    revision: str | None = None
    # Embedding width to load at; null: the model's saved default (a model may save a Matryoshka truncation).
    truncate_dim: int | None = bounded(None, min=1)
    # Pass the ``pixels`` budget to the processor. Only Qwen2-VL-family processors count pixels; CLIP and
    # LLaVA-NeXT processors read ``size`` as an edge length, and some models set their own: false keeps theirs.
    use_pixel_budget: bool = True
    # The transformers architecture it loads as (config.json ``architectures``), for the model table and dry runs.
    architecture: str | None = field(default=None, metadata={"descriptive": True})
    check: CheckLevel = field(default=CheckLevel.desk_checked, metadata={"descriptive": True})
    # Why Sentence Transformers cannot load it as published; a job with it fails with this line, before
    # loading. Set model.unsupported=null to try anyway.
    unsupported: str | None = field(default=None, metadata={"descriptive": True})
    # null (model.from_run only): the training run's own, so a finetuned model is compared like for like.
    # "sdpa_packed": sdpa whose vision towers attend over the whole packed batch at once (torch's varlen attention
    # on CUDA in float16/bfloat16, SDPA over images grouped by size elsewhere). "auto": flash_attention_2 where
    # flash-attn and a CUDA device are present, else sdpa_packed (sdpa for models whose code is from the Hub).
    # Also sdpa, eager, flex_attention, flash_attention_2 (sdpa where it cannot run), flash_attention_3, Hub kernels.
    attn_implementation: str | None = "flash_attention_2"
    # torch.compile: "off", "regional" (each repeated vision block and decoder layer; small compile time) or
    # "full" (the whole model). Compiled on the first forward; runs log compile_s. Embeddings, and so the embedding
    # cache key, are unchanged.
    compile: CompileMode = CompileMode.off
    dtype: str | None = "bfloat16"
    # True for the offline fixture models, which are built on demand when missing.
    fixture: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    # Set for a model saved by an earlier training run; ``path`` is then filled from that run's ``model_dir`` tag.
    from_run: RunRefConfig | None = None
    # multi_vector built from a plain checkpoint (module_stack "build"): width of the per-token projection.
    multi_vector_dim: int = bounded(128, min=1)
    router: RouterConfig | None = None
    # Train LoRA adapters instead of all weights (training runs); null: full finetuning.
    lora: LoraConfig | None = None
    # A saved LoRA adapter folder to apply on load (e.g. a training run's adapter/), for evaluation.
    adapter: str | None = None


@dataclass
class RerankerConfig:
    """Retrieve-then-rerank: a multimodal CrossEncoder re-scores the retriever's top ``top_k`` pages."""

    name: str = "none"
    # null: no reranking (the default). A hub id or folder of a CrossEncoder, or a VLM to build one from.
    path: str | None = None
    # "saved": a CrossEncoder checkpoint. "dense": feature-extraction transformer + last-token pooling + a
    # Dense score head (built on ``path``; needs training). "logit": any-to-any transformer + LogitScore of
    # the ``true_token``/``false_token`` answer tokens.
    head: RerankerHead = RerankerHead.saved
    true_token: str = "yes"
    false_token: str = "no"
    top_k: int = bounded(20, min=10)  # NDCG@10 needs the top 10 reranked
    # Training runs: also train the reranker (binary cross-entropy on query/positive vs query/negative pairs).
    train: bool = False
    epochs: float = bounded(1.0, gt=0)
    max_steps: int = -1
    batch_size: int = bounded(16, min=1)
    learning_rate: float = bounded(2e-5, gt=0)
    fixture: bool = False


@dataclass
class ProtocolConfig:
    # "hard_negatives" (format "pairs" only): corpus = every eval row's positive plus its negatives; one
    # relevant page per query. The "local_docs" and "beir" formats bring their own corpus and qrels.
    type: ProtocolType = ProtocolType.hard_negatives
    num_negatives: int = bounded(4, min=0)
    name: str = "vdr-eval-hard"


@dataclass
class DatasetConfig:
    name: str = MISSING
    # "pairs": rows of query, image, negative_0.. (the recipe's layout); "local_docs": a folder of PDFs and
    # page images plus a queries file; "beir": corpus/queries/qrels configs (ViDoRe, MTEB *_beir datasets).
    format: DatasetFormat = DatasetFormat.pairs
    path: str = MISSING
    # Query languages as MTEB spells them (ISO 639-3 + script), written into each run's mteb_results.json.
    languages: list[str] = field(default_factory=lambda: ["eng-Latn"])
    train_config: str = "train"
    eval_config: str = "eval"
    split: str = "train"
    train_columns: list[str] = field(default_factory=lambda: ["query", "image", "negative_0"])
    max_train_rows: int | None = bounded(None, min=1)
    max_eval_rows: int | None = bounded(None, min=1)
    fixture: bool = False
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    # local_docs: the queries file (relative to path), PDF render resolution and the rendered-page cache.
    queries_file: str = "queries.jsonl"
    dpi: int = bounded(100, min=10, max=1200)
    page_cache: str = "${paths.page_cache}"
    # local_docs and beir: the share of queries held out for evaluation (seeded); training gets the rest.
    eval_fraction: float = bounded(1.0, gt=0, max=1)
    split_seed: int = 42
    # beir: the three configs of the layout (their split is ``split``).
    corpus_config: str = "corpus"
    queries_config: str = "queries"
    qrels_config: str = "qrels"


@dataclass
class PixelsConfig:
    name: str = MISSING
    min_pixels: int = bounded(MISSING, min=1)
    max_pixels: int = bounded(MISSING, min=1)
