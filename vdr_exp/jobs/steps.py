"""Steps every job shares: open the MLflow run, record the config, load the model, evaluate, rerank, log.

Retrieval returns data (:mod:`vdr_exp.retrieval`); these steps are where it meets tracking.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import torch
from omegaconf import OmegaConf

from vdr_exp import data
from vdr_exp.config import EvaluateRunConfig, ModelConfig, TrainRunConfig, flatten
from vdr_exp.data import content
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.fixtures import ensure_fixtures
from vdr_exp.modeling import models, page_encoding, throughput
from vdr_exp.reports import gallery
from vdr_exp.retrieval import embedding_cache, mteb_results, reranking, scoring
from vdr_exp.runs import run_refs, seeds, tracking
from vdr_exp.runs.job_spec import JobSpec
from vdr_exp.runtime import redact
from vdr_exp.runtime.job_context import JobContext, override_key
from vdr_exp.tags import (
    ACCELERATOR,
    ATTN_IMPLEMENTATION,
    CONFIG_FINGERPRINT,
    DATASET,
    EMBEDDING_CACHE,
    EMBEDDING_DIM,
    EXPERIMENT_PRESET,
    FAMILY,
    GIT_COMMIT,
    HYDRA_JOB_NUM,
    HYDRA_OVERRIDES,
    KIND_LABELS,
    MODEL_ID,
    MODEL_NAME,
    PARAM_COUNT,
    PIXEL_BUDGET,
    RERANK_TOP_K,
    RERANKER,
    RUN_DIR,
    RUN_KIND,
    SLURM_JOB_ID,
    SOURCE_RUN_ID,
    SWEEP,
    SWEEP_PARAMS,
    RunKind,
)

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

log = logging.getLogger(__name__)


def prepare_fixtures(cfg: EvaluateRunConfig) -> None:
    """Offline fixture models and datasets are built on first use, like a hub download would be."""
    if cfg.model.fixture or cfg.dataset.fixture:
        ensure_fixtures(Path(cfg.fixtures.root))


def family(cfg: EvaluateRunConfig) -> str:
    """The design a run measures, for the leaderboard's ``kind`` column."""
    if isinstance(cfg, TrainRunConfig) and cfg.model.lora is not None:
        return "lora"
    return cfg.model.kind.replace("_", "-")


def _tags(cfg: EvaluateRunConfig, job: JobContext, cwd: Path) -> dict[str, str]:
    tags = {
        RUN_KIND: str(cfg.run_kind),
        MODEL_ID: cfg.model.path,
        MODEL_NAME: cfg.model.name,
        DATASET: cfg.dataset.name,
        PIXEL_BUDGET: cfg.pixels.name,
        FAMILY: family(cfg),
        GIT_COMMIT: tracking.git_commit(cwd),
        HYDRA_OVERRIDES: " ".join(redact.redact_overrides(job.overrides)) or "(none)",
        RUN_DIR: str(job.out_dir.resolve()),
    }
    if "experiment" in job.choices:
        tags[EXPERIMENT_PRESET] = job.choices["experiment"]
    if cfg.sweep.name:
        tags[SWEEP] = cfg.sweep.name
    if job.job_num is not None:
        tags[HYDRA_JOB_NUM] = str(job.job_num)
    if job.sweep_params:
        tags[SWEEP_PARAMS] = " ".join(redact.redact_overrides(job.sweep_params.split()))
    if job.fingerprint:
        tags[CONFIG_FINGERPRINT] = job.fingerprint
    if os.environ.get("SLURM_JOB_ID"):  # a cluster job: find its logs and accounting by this id
        tags[SLURM_JOB_ID] = os.environ["SLURM_JOB_ID"]
    return tags


def _write_config(spec: JobSpec) -> None:
    out_dir = spec.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(spec.recorded)))
    overrides = redact.redact_overrides(spec.context.overrides)
    (out_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))


def start_run(spec: JobSpec, resume_run_id: str | None = None):
    """The job's MLflow run (a context manager), with its config written to the job folder first."""
    cfg, job = spec.cfg, spec.context
    _write_config(spec)
    tags = {**_tags(cfg, job, Path.cwd()), **seeds.seed_tags(cfg, spec.values)}
    return tracking.tracked_run(
        cfg.tracking, cfg.run_name or run_name(cfg, job), tags, job.parent_run_id, resume_run_id
    )


def run_name(cfg: EvaluateRunConfig, job: JobContext) -> str:
    """What tells runs apart in the UI's table, within its first 20 characters (the table cuts names at about
    24): the kind, short, then what this sweep job varies, its seed first, then the model
    (``eval seed=43 tiny_qwen3_vl_finetuned``, ``eval pixels=side_256 tiny_qwen3_vl_4x``). Dataset and budget
    are tags and columns."""
    swept = redact.redact_overrides(job.sweep_params.split())
    seed = seeds.seed_in(swept) or seeds.seed_in(job.overrides)  # swept, or given to this job by its seed sweep
    varied = [o for o in swept if override_key(o) != "model" and seeds.seed_in([o]) is None]
    kind = KIND_LABELS[RunKind(cfg.run_kind)]
    return " ".join([kind, *([f"seed={seed}"] if seed else []), *varied, cfg.model.name])


def log_config(spec: JobSpec, *, resumed: bool = False) -> None:
    if not resumed:  # a resumed run keeps its params (MLflow params are write-once; the config is the same)
        tracking.log_params(flatten(spec.recorded))
    mlflow.log_artifact(str(spec.out_dir / "config.yaml"))
    mlflow.log_artifact(str(spec.out_dir / "overrides.yaml"))


def model_config(spec: JobSpec) -> ModelConfig:
    """The model section to load: a model named by its training run gets that run's logged model, downloaded
    through the tracking server once (or the folder it saved to), as its path."""
    cfg = spec.cfg
    if spec.model_ref is None:
        return cfg.model
    return dataclasses.replace(cfg.model, path=run_refs.local_path(spec.model_ref, cfg.tracking))


def load_model(spec: JobSpec) -> models.LoadedModel:
    cfg = spec.cfg
    loaded = models.load_model(model_config(spec), cfg.pixels)
    tags = {
        ATTN_IMPLEMENTATION: loaded.attn_implementation,
        PARAM_COUNT: str(loaded.parameters),
        EMBEDDING_DIM: str(loaded.embedding_dim),
    }
    if spec.model_ref is not None:
        ref = spec.model_ref
        source = f"models:/{ref.logged_model_id}" if ref.logged_model_id else loaded.config.path
        tags.update({MODEL_ID: source, SOURCE_RUN_ID: ref.run_id})
        log.info("model %s: %s (trained by run %s)", cfg.model.name, source, ref.run_id)
    mlflow.set_tags(tags)
    mlflow.log_metric("param_count", loaded.parameters)
    return loaded


def embedding_cache_for(cfg: EvaluateRunConfig) -> embedding_cache.EmbeddingCache | None:
    if not cfg.eval.cache:
        return None
    return embedding_cache.EmbeddingCache(Path(cfg.eval.cache_dir).expanduser(), int(cfg.eval.cache_max_gb * 1024**3))


def cache_key(cfg: EvaluateRunConfig, loaded: models.LoadedModel) -> str:
    """The embedding cache's key for this model as loaded now: weights, settings and small config files."""
    budget = f"{cfg.pixels.min_pixels}-{cfg.pixels.max_pixels}" if cfg.model.use_pixel_budget else "own"
    settings = f"{budget}|{cfg.model.dtype}|{cfg.model.processor_kwargs}|{cfg.model.truncate_dim}"
    # Tokenizer, chat template, processor and module configs change embeddings without touching weights.
    files = [content.small_files_digest(p) for _, p in loaded.family.local_paths(loaded.config)]
    return embedding_cache.model_fingerprint(loaded.model, f"{settings}|{files}")


def pipeline_settings(cfg: EvaluateRunConfig, pages: int, device: torch.device) -> page_encoding.PipelineSettings:
    """``eval.pipeline`` with ``auto`` resolved for this many pages on this device."""
    options = cfg.eval.pipeline
    batches = -(-pages // cfg.eval.batch_size)
    return page_encoding.PipelineSettings(
        workers=page_encoding.resolve_workers(options.workers, batches, accelerator=device.type != "cpu"),
        prefetch=options.prefetch,
        preprocess_on=options.preprocess_on,
        pin_memory=options.pin_memory,
        timeout_s=options.timeout_s,
    )


def evaluate(
    cfg: EvaluateRunConfig,
    loaded: models.LoadedModel,
    protocol: RetrievalProtocol,
    *,
    dims: list[int] | None,
    cache: embedding_cache.EmbeddingCache | None,
    prefix: str = "",
    model_key: str | None = None,
) -> scoring.EvaluationResult:
    """One evaluation, through the embedding cache when it is on (the key is computed from the weights now,
    unless ``model_key`` gives it: a suite evaluates one unchanged model many times). Its encoding speed is
    logged under ``prefix`` (``base_`` for a training run's first evaluation)."""
    key = ""
    if cache is not None:
        key = model_key or cache_key(cfg, loaded)
    result = scoring.evaluate(
        loaded.model,
        protocol,
        dims=dims,
        batch_size=cfg.eval.batch_size,
        top_k=cfg.eval.top_k,
        late_interaction=loaded.family.late_interaction,
        cache=cache,
        model_key=key,
        pipeline=pipeline_settings(cfg, len(protocol.corpus), loaded.model.device),
    )
    if result.throughput:
        mlflow.log_metrics({f"{prefix}{name}": value for name, value in result.throughput.items()})
        mlflow.set_tag(ACCELERATOR, throughput.device_name(loaded.model.device))
    if compile_metrics := loaded.compiled.metrics():  # so far: a training run's last value includes its steps'
        mlflow.log_metrics(compile_metrics)
    if cache is not None:
        mlflow.log_metrics({"embedding_cache_hits": cache.hits, "embedding_cache_misses": cache.misses})
        mlflow.set_tag(EMBEDDING_CACHE, "; ".join(cache.events))
    return result


def log_evaluation(
    result: scoring.EvaluationResult, cfg: EvaluateRunConfig, task: str, out_dir: Path, prefix: str = ""
) -> None:
    """Metrics (every width) on the open run; CSVs, TREC run, qrels and the MTEB-style result as artifacts."""
    paths = scoring.write_artifacts(result, out_dir)
    split = data.eval_split_name(cfg.dataset)
    paths.append(
        mteb_results.write(
            out_dir / "mteb_results.json", result, task, split, dataset_revision="n/a", languages=cfg.dataset.languages
        )
    )
    mlflow.log_metrics(result.metrics_with_dims(prefix))
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=prefix.rstrip("_") or None)


def log_gallery(result: scoring.EvaluationResult, cfg: EvaluateRunConfig, protocol: RetrievalProtocol, out_dir: Path):
    """Per-query results as an MLflow table (the UI shows it as one) and the gallery of worst and best queries."""
    tracking.log_table(result.per_query, artifact_file="per_query_table.json")  # once, also when resumed
    title = f"{cfg.model.name} on {protocol.name}: worst and best queries by NDCG@10"
    paths = gallery.write_gallery(
        result.per_query,
        result.rankings,
        protocol,
        out_dir / "gallery",
        title=title,
        queries=cfg.eval.gallery_queries,
        top_k=cfg.eval.gallery_top_k,
        thumb_px=cfg.eval.gallery_thumb_px,
    )
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path="gallery")


def rerank(
    cfg: EvaluateRunConfig,
    protocol: RetrievalProtocol,
    retrieved: scoring.EvaluationResult,
    out_dir: Path,
    reranker: CrossEncoder | None = None,
) -> scoring.EvaluationResult:
    """Retriever-only metrics stay as they are; the reranked order is logged beside them as rerank_*."""
    if reranker is None:
        reranker = reranking.load_reranker(cfg.reranker, cfg.pixels)
    result = reranking.rerank(reranker, protocol, retrieved, top_k=cfg.reranker.top_k, batch_size=cfg.eval.batch_size)
    log_evaluation(result, cfg, protocol.name, out_dir / "rerank", prefix="rerank_")
    mlflow.set_tags({RERANKER: cfg.reranker.path, RERANK_TOP_K: str(cfg.reranker.top_k)})
    log.info("NDCG@10 %.4f retrieved -> %.4f reranked", retrieved.metrics["ndcg_at_10"], result.metrics["ndcg_at_10"])
    return result
