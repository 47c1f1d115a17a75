"""The one typed seam between the YAML in ``conf/`` and the code.

The dataclasses below are registered with Hydra's ConfigStore as the schema of the primary configs,
so a misspelled key or a wrongly typed value fails at composition time, before any model loads.
Code never reads a DictConfig directly: it calls :func:`load_train_config` or
:func:`load_evaluate_config` and works with these objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration that composes but cannot run; the message names the key and the fix."""


class InputError(ConfigError):
    """Bad input data (a queries file, a PDF, a dataset's columns); the message names the file, line and fix."""


# conf/ and sweeps/ sit beside the package in a checkout; the primary configs put sweeps/ on Hydra's search
# path through this resolver, so presets are found whatever the working directory is.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
if not OmegaConf.has_resolver("vdr_project_root"):
    OmegaConf.register_new_resolver("vdr_project_root", lambda: PROJECT_ROOT.as_posix())


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

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class RouterConfig:
    """Two encoders joined by a Router: queries (text) take one, pages (images) the other, each through a
    trainable Dense projection into a shared ``dim``-wide space (the spaces start unaligned: train first)."""

    text_path: str = MISSING
    image_path: str = MISSING
    dim: int = 256


@dataclass
class ModelConfig:
    name: str = MISSING
    # "single_vector" (one embedding per input, cosine), "multi_vector" (one per token, MaxSim: ColQwen-style)
    # or "router" (separate text and image encoders, see RouterConfig).
    kind: str = "single_vector"
    # A hub id or a local directory. Fixture models point into the fixtures root.
    path: str = MISSING
    # "saved": use the repo's modules.json; "last_token": build Transformer -> last-token Pooling -> Normalize
    # (for raw VLM checkpoints without Sentence Transformers files).
    module_stack: str = "saved"
    # Figures from the recipe's results table, shown beside measured ones in leaderboards.
    published_params: float | None = None
    published_ndcg_at_10: float | None = None
    trust_remote_code: bool = False
    attn_implementation: str = "flash_attention_2"
    dtype: str = "bfloat16"
    # True for the offline fixture models, which are built on demand when missing.
    fixture: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    # Set for a model saved by an earlier training run; ``path`` is then filled from that run's ``model_dir`` tag.
    from_run: RunRefConfig | None = None
    # multi_vector built from a plain checkpoint (module_stack "build"): width of the per-token projection.
    multi_vector_dim: int = 128
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
    head: str = "saved"
    true_token: str = "yes"
    false_token: str = "no"
    top_k: int = 20
    # Training runs: also train the reranker (binary cross-entropy on query/positive vs query/negative pairs).
    train: bool = False
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 16
    learning_rate: float = 2e-5
    fixture: bool = False


@dataclass
class ProtocolConfig:
    # "hard_negatives" (format "pairs" only): corpus = every eval row's positive plus its negatives; one
    # relevant page per query. The "local_docs" and "beir" formats bring their own corpus and qrels.
    type: str = "hard_negatives"
    num_negatives: int = 4
    name: str = "vdr-eval-hard"


@dataclass
class DatasetConfig:
    name: str = MISSING
    # "pairs": rows of query, image, negative_0.. (the recipe's layout); "local_docs": a folder of PDFs and
    # page images plus a queries file; "beir": corpus/queries/qrels configs (ViDoRe, MTEB *_beir datasets).
    format: str = "pairs"
    path: str = MISSING
    train_config: str = "train"
    eval_config: str = "eval"
    split: str = "train"
    train_columns: list[str] = field(default_factory=lambda: ["query", "image", "negative_0"])
    max_train_rows: int | None = None
    max_eval_rows: int | None = None
    fixture: bool = False
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    # local_docs: the queries file (relative to path), PDF render resolution and the rendered-page cache.
    queries_file: str = "queries.jsonl"
    dpi: int = 100
    page_cache: str = "outputs/page_cache"
    # local_docs and beir: the share of queries held out for evaluation (seeded); training gets the rest.
    eval_fraction: float = 1.0
    split_seed: int = 42
    # beir: the three configs of the layout (their split is ``split``).
    corpus_config: str = "corpus"
    queries_config: str = "queries"
    qrels_config: str = "qrels"


@dataclass
class LossConfig:
    name: str = MISSING
    # "cmnrl" (CachedMultipleNegativesRankingLoss) or "mnrl" (MultipleNegativesRankingLoss)
    type: str = "cmnrl"
    scale: float = 20.0
    mini_batch_size: int = 1
    # Cached loss only: bound each mini-batch by tokens instead of samples (pages vary a lot in size).
    mini_batch_num_tokens: int | None = None
    matryoshka_dims: list[int] | None = None
    matryoshka_weights: list[float] | None = None
    # Multi-process training: score each query against every process's pages (all-gather), so in-batch
    # negatives grow with the number of GPUs; false keeps them per process (the per-device batch).
    gather_across_devices: bool = False


@dataclass
class PixelsConfig:
    name: str = MISSING
    min_pixels: int = MISSING
    max_pixels: int = MISSING


@dataclass
class TrainerConfig:
    name: str = MISSING
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 64
    per_device_eval_batch_size: int = 64
    learning_rate: float = 2e-5
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.1
    optim: str = "adamw_torch_fused"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = True
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    seed: int = 42
    batch_sampler: str = "no_duplicates"
    eval_strategy: str = "steps"
    eval_steps: float = 0.1
    save_strategy: str = "steps"
    save_steps: float = 0.1
    save_total_limit: int | None = 2
    logging_steps: float = 0.05
    dataloader_num_workers: int = 0
    use_cpu: bool = False
    # None: no prompts while training (the recipe). "model": the model's own saved query/document prompts.
    prompts: str | None = None


@dataclass
class TrackingConfig:
    name: str = MISSING
    # Empty: a SQLite store at ``store``; otherwise any MLflow tracking URI (http://..., postgresql://...).
    tracking_uri: str = ""
    store: str = "outputs/mlflow.db"
    artifact_root: str = "outputs/mlartifacts"
    experiment_name: str = "vdr"
    log_model: bool = False


@dataclass
class EvalConfig:
    # Matryoshka widths to report; None: the loss's dims in training runs, the full width otherwise.
    dims: list[int] | None = None
    batch_size: int = 32
    top_k: int = 100
    # Evaluation embeddings on disk, keyed by model weights, settings and input content (vdr_exp.embedding_cache).
    cache: bool = True
    cache_dir: str = "outputs/embedding_cache"
    cache_max_gb: float = 10.0


@dataclass
class FixturesConfig:
    root: str = "outputs/fixtures"


@dataclass
class SweepConfig:
    """What a ``sweep=<name>`` preset adds beside Hydra's own sweeper settings."""

    # Tags the MLflow parent run and names the leaderboard; null outside sweeps.
    name: str | None = None
    # Training runs the sweep's jobs depend on (each a list of ``vdr_exp.train`` overrides), run before the jobs.
    train_first: list[list[str]] = field(default_factory=list)
    # The model the leaderboard's delta column is measured against.
    leaderboard_base: str | None = None


@dataclass
class EvaluateRunConfig:
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    pixels: PixelsConfig = MISSING
    tracking: TrackingConfig = MISSING
    reranker: RerankerConfig = field(default_factory=RerankerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    fixtures: FixturesConfig = field(default_factory=FixturesConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # Print what would run (every job of a sweep, with resolved values) and load nothing.
    dry_run: bool = False
    # Sweeps skip jobs whose identical config already has a FINISHED run; force=true runs them anyway.
    force: bool = False
    run_name: str | None = None
    run_kind: str = "evaluate"


@dataclass
class TrainRunConfig(EvaluateRunConfig):
    loss: LossConfig = MISSING
    trainer: TrainerConfig = MISSING
    run_kind: str = "train"
    # The MLflow run id of an interrupted training run to continue from its last checkpoint, in that run.
    resume: str | None = None


@dataclass
class MineConfig:
    num_negatives: int = 4
    # Skip this many of the best-scoring non-relevant pages (likely unlabelled positives) before taking negatives.
    range_min: int = 0
    # Keep a negative only if it scores at most this ratio of the positive (e.g. 0.95); null: no ceiling.
    max_score_ratio: float | None = None
    batch_size: int = 32
    # Folder the mined dataset is written to (configs train and eval, the recipe's columns).
    out: str = MISSING


@dataclass
class MineRunConfig(EvaluateRunConfig):
    mine: MineConfig = field(default_factory=MineConfig)
    run_kind: str = "mine"


def register_configs() -> None:
    """Make the schemas available to the defaults lists of the primary configs in ``conf/``."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainRunConfig)
    store.store(name="evaluate_schema", node=EvaluateRunConfig)
    store.store(name="mine_schema", node=MineRunConfig)


def _validate(run: EvaluateRunConfig) -> None:
    if run.pixels.min_pixels <= 0 or run.pixels.min_pixels > run.pixels.max_pixels:
        raise ConfigError(
            f"pixels.min_pixels ({run.pixels.min_pixels}) must be positive and at most pixels.max_pixels "
            f"({run.pixels.max_pixels}); pick another pixels=... budget or fix the override."
        )
    if run.model.kind not in ("single_vector", "multi_vector", "router"):
        raise ConfigError(f"model.kind={run.model.kind!r}: use 'single_vector', 'multi_vector' or 'router'.")
    stacks = {"single_vector": ("saved", "last_token"), "multi_vector": ("saved", "build"), "router": ("build",)}
    if run.model.module_stack not in stacks[run.model.kind]:
        raise ConfigError(
            f"model.module_stack={run.model.module_stack!r} does not fit model.kind={run.model.kind!r}; "
            f"use one of {list(stacks[run.model.kind])}."
        )
    if run.model.kind == "router" and run.model.router is None:
        raise ConfigError("model.kind=router needs model.router.text_path and model.router.image_path.")
    if run.reranker.path is not None and run.reranker.head not in ("saved", "dense", "logit"):
        raise ConfigError(f"reranker.head={run.reranker.head!r}: use 'saved', 'dense' or 'logit'.")
    if run.reranker.path is not None and run.reranker.top_k < 10:
        raise ConfigError(f"reranker.top_k={run.reranker.top_k} is below 10; NDCG@10 needs the top 10 reranked.")
    if run.dataset.format not in ("pairs", "local_docs", "beir"):
        raise ConfigError(f"dataset.format={run.dataset.format!r} is unknown; use 'pairs', 'local_docs' or 'beir'.")
    if run.dataset.format == "pairs" and run.dataset.protocol.type != "hard_negatives":
        raise ConfigError(f"dataset.protocol.type={run.dataset.protocol.type!r} is unknown; use 'hard_negatives'.")
    if not 0.0 < run.dataset.eval_fraction <= 1.0:
        raise ConfigError(f"dataset.eval_fraction={run.dataset.eval_fraction} must be in (0, 1].")
    if run.dataset.dpi < 10:
        raise ConfigError(f"dataset.dpi={run.dataset.dpi} is too low to read a page; use 72-300.")
    ref = run.model.from_run
    if ref is None and not run.model.path:
        raise ConfigError(f"model {run.model.name!r} has an empty path; set model.path or model.from_run.")
    if run.eval.top_k < 10:
        raise ConfigError(f"eval.top_k={run.eval.top_k} is below 10; NDCG@10 needs at least the top 10.")


def _validate_train(run: TrainRunConfig) -> None:
    if run.loss.type not in ("cmnrl", "mnrl"):
        raise ConfigError(f"loss.type={run.loss.type!r} is unknown; use 'cmnrl' or 'mnrl'.")
    dims, weights = run.loss.matryoshka_dims, run.loss.matryoshka_weights
    if weights is not None and (dims is None or len(weights) != len(dims)):
        raise ConfigError("loss.matryoshka_weights needs one weight per entry of loss.matryoshka_dims.")
    if run.trainer.prompts not in (None, "model"):
        raise ConfigError(f"trainer.prompts={run.trainer.prompts!r}: use null (none) or 'model'.")


def load_evaluate_config(cfg: DictConfig) -> EvaluateRunConfig:
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, EvaluateRunConfig), "conf/evaluate.yaml must list evaluate_schema first"
    _validate(run)
    return run


def load_mine_config(cfg: DictConfig) -> MineRunConfig:
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, MineRunConfig), "conf/mine.yaml must list mine_schema first"
    _validate(run)
    if run.dataset.format == "pairs":
        raise ConfigError(
            f"dataset {run.dataset.name!r} already holds mined negatives (format 'pairs'); mine from "
            "dataset=local_docs or dataset=beir."
        )
    ratio = run.mine.max_score_ratio
    if run.mine.num_negatives < 1 or run.mine.range_min < 0 or (ratio is not None and not 0 < ratio <= 1):
        raise ConfigError("mine: need num_negatives >= 1, range_min >= 0 and max_score_ratio null or in (0, 1].")
    return run


def load_train_config(cfg: DictConfig) -> TrainRunConfig:
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, TrainRunConfig), "conf/train.yaml must list train_schema first"
    _validate(run)
    _validate_train(run)
    return run


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for nested config; lists stay one value so a param reads like the YAML."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
