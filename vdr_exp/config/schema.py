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

from omegaconf import MISSING

from vdr_exp.config.schema_inputs import (  # noqa: F401 - re-exported: the schema is one module to its readers
    DatasetConfig,
    LoraConfig,
    ModelConfig,
    PixelsConfig,
    ProtocolConfig,
    RerankerConfig,
    RouterConfig,
    RunRefConfig,
    bounded,
)
from vdr_exp.config.variants import LossType, RunKind, TrainingPrompts


@dataclass
class LossConfig:
    name: str = MISSING
    # "cmnrl" (CachedMultipleNegativesRankingLoss) or "mnrl" (MultipleNegativesRankingLoss)
    type: LossType = LossType.cmnrl
    scale: float = bounded(20.0, gt=0)
    mini_batch_size: int = bounded(1, min=1)
    # Cached loss only: the largest mini-batch that fits. On an accelerator out-of-memory error the step is run
    # again at half the mini-batch (one log line each time), starting from mini_batch_size, down to 1. Off: that
    # error ends the run with one line naming loss.mini_batch_size.
    mini_batch_auto: bool = False
    # Cached loss only: bound each mini-batch by tokens instead of samples (pages vary a lot in size).
    mini_batch_num_tokens: int | None = bounded(None, min=1)
    matryoshka_dims: list[int] | None = bounded(None, min=1)
    matryoshka_weights: list[float] | None = bounded(None, gt=0)
    # Multi-process training: score each query against every process's pages (all-gather), so in-batch
    # negatives grow with the number of GPUs; false keeps them per process (the per-device batch).
    gather_across_devices: bool = False


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
    # Seconds to wait for one batch from a DataLoader worker before the worker counts as hung (stuck on a full
    # /dev/shm or a hung file system) and the run ends with an error naming this key; without it such a run
    # waits forever. Ten minutes: a batch of the slowest pages (big scans, dense PDF renders) on a loaded machine
    # takes seconds to a minute, so only a worker that stopped trips it. 0: wait forever. Only with workers.
    dataloader_timeout_s: float = bounded(600.0, min=0, max=86400, ours=True)
    # Where the page images meet the image processor. "workers": in the DataLoader workers, with the rest of the
    # batch (CPU). "device": the workers only decode the pages (uint8 tensors, cheap to pass on) and tokenize the
    # text; the processor runs in the main process on the model's device right before each step (its torchvision
    # backend resizes there), as eval.pipeline.preprocess_on does for evaluation. The same features either way.
    preprocess_on: str = field(default="workers", metadata={"ours": True})
    use_cpu: bool = False
    # None: no prompts while training (the recipe). "model": the model's own saved query/document prompts.
    prompts: TrainingPrompts | None = field(default=None, metadata={"ours": True})
    # The finetuned model in the run's folder (model/, and adapter/ with LoRA; model.from_run reads it on this
    # machine when no MLflow model was logged). false: no folder; tracking.log_model alone decides whether an
    # MLflow model is logged. Checkpoints during training are save_strategy's (no: none, except the one a SLURM
    # preemption saves so that the requeued job continues).
    save_model: bool = field(default=True, metadata={"ours": True})


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
    # Seconds to wait for one batch from a worker before it counts as hung (stuck on a full /dev/shm or a hung
    # file system) and the run ends with an error naming this key; without it such a run waits forever. Ten
    # minutes: a batch of the slowest pages (big scans, dense PDF renders) on a loaded machine takes seconds to a
    # minute, so only a worker that stopped trips it. 0: wait forever. Only with workers.
    timeout_s: float = bounded(600.0, min=0, max=86400)


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
