"""The schema of the YAML in ``conf/``: one dataclass per config group, one per entry point.

Registered with Hydra's ConfigStore (:func:`vdr_exp.config.register_configs`), so a misspelled key, a wrongly
typed value or an unknown variant (an Enum of :mod:`vdr_exp.config.variants`) fails at composition time,
before any model loads. Top-level fields carry metadata saying what role they play (a section a dry run
prints, a key that says where things go rather than what runs, ...); :mod:`vdr_exp.config.keys` derives the
key lists from it, so adding a section is one field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from vdr_exp.config.variants import (
    CheckLevel,
    DatasetFormat,
    LossType,
    ModelKind,
    ModuleStack,
    ProtocolType,
    RerankerHead,
    RunKind,
    TrainingPrompts,
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
    attn_implementation: str | None = "flash_attention_2"
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
class LossConfig:
    name: str = MISSING
    # "cmnrl" (CachedMultipleNegativesRankingLoss) or "mnrl" (MultipleNegativesRankingLoss)
    type: LossType = LossType.cmnrl
    scale: float = bounded(20.0, gt=0)
    mini_batch_size: int = bounded(1, min=1)
    # Cached loss only: bound each mini-batch by tokens instead of samples (pages vary a lot in size).
    mini_batch_num_tokens: int | None = bounded(None, min=1)
    matryoshka_dims: list[int] | None = bounded(None, min=1)
    matryoshka_weights: list[float] | None = bounded(None, gt=0)
    # Multi-process training: score each query against every process's pages (all-gather), so in-batch
    # negatives grow with the number of GPUs; false keeps them per process (the per-device batch).
    gather_across_devices: bool = False


@dataclass
class PixelsConfig:
    name: str = MISSING
    min_pixels: int = bounded(MISSING, min=1)
    max_pixels: int = bounded(MISSING, min=1)


@dataclass
class TrainerConfig:
    """Sentence Transformers training arguments, passed by name; fields marked ``ours`` are not among them."""

    name: str = field(default=MISSING, metadata={"ours": True})
    num_train_epochs: float = bounded(1.0, gt=0)
    max_steps: int = -1
    per_device_train_batch_size: int = bounded(64, min=1)
    per_device_eval_batch_size: int = bounded(64, min=1)
    learning_rate: float = bounded(2e-5, gt=0)
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = bounded(0.1, min=0, max=1, ours=True)  # passed as warmup_steps (a ratio below 1)
    optim: str = "adamw_torch_fused"
    weight_decay: float = bounded(0.0, min=0)
    max_grad_norm: float = bounded(1.0, min=0)
    bf16: bool = True
    activation_checkpointing: bool = False
    gradient_accumulation_steps: int = bounded(1, min=1)
    seed: int = 42
    batch_sampler: str = "no_duplicates"
    eval_strategy: str = "steps"
    eval_steps: float = bounded(0.1, gt=0)
    save_strategy: str = "steps"
    save_steps: float = bounded(0.1, gt=0)
    save_total_limit: int | None = bounded(2, min=1)
    logging_steps: float = bounded(0.05, gt=0)
    # Batches (decoded, preprocessed) prepared in DataLoader workers while the model steps. "auto": the cores this
    # process may use minus one (at most 8; none when training on the CPU); 0: in the main process, serially.
    dataloader_num_workers: str = field(default="auto", metadata={"ours": True})
    dataloader_prefetch_factor: int | None = bounded(4, min=1)
    dataloader_persistent_workers: bool = True
    dataloader_pin_memory: bool = True
    use_cpu: bool = False
    # None: no prompts while training (the recipe). "model": the model's own saved query/document prompts.
    prompts: TrainingPrompts | None = field(default=None, metadata={"ours": True})


@dataclass
class TrackingConfig:
    name: str = MISSING
    # Empty: a SQLite store at ``store``; otherwise any MLflow tracking URI (http://..., postgresql://...).
    tracking_uri: str = ""
    store: str = "${paths.mlflow_store}"
    artifact_root: str = "${paths.mlflow_artifacts}"
    experiment_name: str = "vdr"
    # Training runs log the finetuned model as an MLflow model (what model=from_run reads back on any machine).
    log_model: bool = True
    # Also register it in the Model Registry under this name (a new version per run); null: do not register.
    register_as: str | None = None
    # Where model=from_run keeps the models it downloads from the tracking server.
    model_cache: str = "${paths.model_cache}"


def tracking_uri(cfg: TrackingConfig) -> str:
    """The MLflow URI the config names: ``tracking_uri``, else the SQLite file at ``store``."""
    if cfg.tracking_uri:
        return cfg.tracking_uri
    return f"sqlite:///{Path(cfg.store).expanduser().resolve()}"


@dataclass
class PipelineConfig:
    """How pages reach the model when encoding (vdr_exp.modeling.page_encoding): decoded and preprocessed in
    DataLoader worker processes, ``prefetch`` batches ahead of the forward pass."""

    # "auto": the cores this process may use, minus one for the main process (at most 8; none when the model is on
    # the CPU, whose cores torch already uses); 0: in the main process, serially with the model.
    workers: str = "auto"
    prefetch: int = bounded(4, min=1)
    # "workers": the image processor runs in the workers (CPU); "device": in the main process on the model's
    # device (the torchvision backend resizes there), the workers only decode.
    preprocess_on: str = "workers"
    pin_memory: bool = True


@dataclass
class EvalConfig:
    # Matryoshka widths to report; None: the loss's dims in training runs, the full width otherwise.
    dims: list[int] | None = bounded(None, min=1, setting=True)
    batch_size: int = bounded(32, min=1)
    top_k: int = bounded(100, min=10)  # NDCG@10 needs at least the top 10
    # Evaluation embeddings on disk, keyed by model weights, settings and input content (vdr_exp.retrieval.embedding_cache).
    cache: bool = True
    cache_dir: str = "${paths.embedding_cache}"
    cache_max_gb: float = bounded(10.0, min=0)
    # The run's gallery (gallery.html/png): this many worst and as many best queries (0: none), each with its
    # top ``gallery_top_k`` pages and its relevant page, as thumbnails of ``gallery_thumb_px`` on the long side.
    gallery_queries: int = bounded(4, min=0)
    gallery_top_k: int = bounded(5, min=1)
    gallery_thumb_px: int = bounded(160, min=32)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)


@dataclass
class FixturesConfig:
    root: str = "${paths.fixtures}"


@dataclass
class SweepConfig:
    """What a ``sweep=<name>`` preset adds beside Hydra's own sweeper settings."""

    # Tags the MLflow parent run and names the leaderboard; null outside sweeps.
    name: str | None = None
    # Training runs the sweep's jobs depend on (each a list of ``vdr_exp.train`` overrides), run before the jobs.
    train_first: list[list[str]] = field(default_factory=list)
    # The model the leaderboard's delta column is measured against.
    leaderboard_base: str | None = None
    # Dry runs print one line per job (model, hub id, architecture, published NDCG@10, check, pixel budget)
    # instead of every resolved value.
    dry_run_summary: bool = False


@dataclass
class PathsConfig:
    """Where everything a run writes goes (``conf/paths/default.yaml``); every default path interpolates these."""

    output_dir: str = MISSING
    fixtures: str = MISSING
    mlflow_store: str = MISSING
    mlflow_artifacts: str = MISSING
    embedding_cache: str = MISSING
    model_cache: str = MISSING
    page_cache: str = MISSING
    leaderboards: str = MISSING
    mined: str = MISSING
    mteb_results: str = MISSING


@dataclass
class BenchmarkConfig:
    """A suite of MTEB tasks (``conf/benchmark/``); its tasks, datasets, revisions and main scores come from mteb."""

    name: str = "none"
    # An MTEB benchmark name ("ViDoRe(v1)", "ViDoRe(v2)", "ViDoRe(v3)"); null: no suite, evaluate ``dataset``.
    suite: str | None = None
    # Only these of the suite's task names; null: every public task.
    tasks: list[str] | None = None
    # Only these subsets (languages as mteb names them: english, french, ...) of multilingual tasks; null: all.
    subsets: list[str] | None = None
    # Task name -> a local folder in the task's Hub layout, loaded by mteb in place of the Hub id (a mirror on
    # a cluster without Hub access, or the offline miniatures).
    local_paths: dict[str, str] = field(default_factory=dict)
    # Build the offline miniature of each task (vdr_exp.fixtures.mini_vidore) under fixtures.root and use it.
    fixture: bool = False
    # MTEB's result layout is written here: <results_dir>/results/<model>/<revision>/<TaskName>.json.
    results_dir: str = "${paths.mteb_results}"
    # The suite pivot with one column per task and language subset (v2/v3) instead of one per task.
    by_language: bool = False
    # With a reranker configured: also rerank each retrieval task's top reranker.top_k pages (the retriever +
    # reranker pipeline, logged as rerank_*). Reranking tasks always use the reranker.
    rerank_retrieval: bool = True

    @property
    def active(self) -> bool:
        """A suite run rather than one dataset's evaluation."""
        return bool(self.suite or self.tasks)


# Roles of the top-level fields (dataclass metadata), read by vdr_exp.config.keys:
#   section  - printed by dry runs (what decides the result)
#   volatile - left out of the config fingerprint (where results are logged, how the job was launched)
#   descriptive - what describes a model (published figures, check level), not what it computes: also left out
#                 of the fingerprint, so editing a description does not re-run finished jobs
#   location - where things are stored; a sweep passes these on to its prerequisite training runs
#   setting  - an evaluation setting, a leaderboard column rather than part of a model's label
SECTION = {"section": True}


@dataclass
class EvaluateRunConfig:
    model: ModelConfig = field(default=MISSING, metadata=SECTION)
    dataset: DatasetConfig = field(default=MISSING, metadata={"section": True, "setting": True})
    pixels: PixelsConfig = field(default=MISSING, metadata={"section": True, "setting": True})
    tracking: TrackingConfig = field(default=MISSING, metadata={"section": True, "volatile": True, "location": True})
    paths: PathsConfig = field(default_factory=PathsConfig, metadata={"volatile": True, "location": True})
    reranker: RerankerConfig = field(default_factory=RerankerConfig, metadata=SECTION)
    eval: EvalConfig = field(default_factory=EvalConfig, metadata=SECTION)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig, metadata=SECTION)
    fixtures: FixturesConfig = field(default_factory=FixturesConfig, metadata={"location": True})
    sweep: SweepConfig = field(default_factory=SweepConfig, metadata={"section": True, "volatile": True})
    # The metric a sweeper optimises and the entry point returns (e.g. ndcg_at_5 for ViDoRe v1/v2).
    optimized_metric: str = "ndcg_at_10"
    # Print what would run (every job of a sweep, with resolved values) and load nothing.
    dry_run: bool = field(default=False, metadata={"volatile": True})
    # Sweeps skip jobs whose identical config already has a FINISHED run; force=true runs them anyway.
    force: bool = field(default=False, metadata={"volatile": True})
    run_name: str | None = field(default=None, metadata={"volatile": True})
    # In a sweep: repeat every training job with this many seeds (trainer.seed, +1, ...; vdr_exp.runs.seeds).
    seeds: int | None = bounded(None, min=1, volatile=True)
    # Each job's process on a GPU of its own (with hydra/launcher=joblib, n_jobs = number of GPUs).
    gpu_per_job: bool = field(default=False, metadata={"volatile": True})
    run_kind: RunKind = RunKind.evaluate


@dataclass
class TrainRunConfig(EvaluateRunConfig):
    loss: LossConfig = field(default=MISSING, metadata=SECTION)
    trainer: TrainerConfig = field(default=MISSING, metadata=SECTION)
    run_kind: RunKind = RunKind.train
    # The MLflow run id of an interrupted training run to continue from its last checkpoint, in that run.
    resume: str | None = field(default=None, metadata={"volatile": True})


@dataclass
class MineConfig:
    num_negatives: int = bounded(4, min=1)
    # Skip this many of the best-scoring non-relevant pages (likely unlabelled positives) before taking negatives.
    range_min: int = bounded(0, min=0)
    # Keep a negative only if it scores at most this ratio of the positive (e.g. 0.95); null: no ceiling.
    max_score_ratio: float | None = bounded(None, gt=0, max=1)
    batch_size: int = bounded(32, min=1)
    # Folder the mined dataset is written to (configs train and eval, the recipe's columns). null: a folder of
    # its own per source under paths.mined (<source folder name>-<hash of its path>). An existing folder is
    # only ever replaced when it is a dataset mined earlier; never the source folder or one of its parents.
    out: str | None = None


@dataclass
class MineRunConfig(EvaluateRunConfig):
    mine: MineConfig = field(default_factory=MineConfig, metadata=SECTION)
    run_kind: RunKind = RunKind.mine
