"""The training job, the recipe end to end: evaluate the base model, finetune, evaluate the result, save it.

Linear on purpose, like Sentence Transformers' own training examples: each step reads top to bottom.
Under torchrun or ``accelerate launch`` every process runs this module and builds the same training
(:func:`load_training`, :func:`build_trainer`); rank 0 records, the other ranks train in step without a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import torch

from vdr_exp import data
from vdr_exp.config import TrainerConfig, TrainingPrompts, TrainRunConfig
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.jobs import inputs, steps
from vdr_exp.jobs.resume import ResumePoint, drop_if_empty, requeued_resume_point, resume_point
from vdr_exp.modeling import loader_timeouts, losses, mini_batch, models, page_encoding, train_batches
from vdr_exp.retrieval import reranking, step_evaluation
from vdr_exp.runs import logged_models, step_metrics
from vdr_exp.runs.job_spec import JobSpec
from vdr_exp.runtime import console
from vdr_exp.tags import ADAPTER_DIR, MODEL_DIR, PREEMPTED, RERANKER_DIR, RESUMED_FROM

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from torch import nn
    from transformers import Trainer

    from vdr_exp.retrieval.scoring import EvaluationResult

log = logging.getLogger(__name__)


def _prompts(cfg: TrainRunConfig, model: SentenceTransformer) -> dict[str, str] | None:
    """trainer.prompts=model: the model's saved query prompt on the first column, its document prompt on the rest."""
    if cfg.trainer.prompts != TrainingPrompts.model:
        return None
    query_column, *document_columns = cfg.dataset.train_columns
    prompts = {query_column: model.prompts.get("query", "")}
    prompts.update({c: model.prompts["document"] for c in document_columns if model.prompts.get("document")})
    return prompts


def training_args(cfg: TrainRunConfig, model: SentenceTransformer, out_dir: Path, args_class: type):
    """``trainer.*`` passed by name to the library's training arguments (fields marked ``ours`` aside)."""
    trainer = cfg.trainer
    passed = {f.name: getattr(trainer, f.name) for f in dataclasses.fields(trainer) if not f.metadata.get("ours")}
    return args_class(
        output_dir=str(out_dir / "checkpoints"),
        warmup_steps=trainer.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        prompts=_prompts(cfg, model),
        router_mapping=models.router_mapping(model, list(cfg.dataset.train_columns)),
        report_to="none",  # MLflow logging is ours (StepMetricsCallback), into the run we already opened
        disable_tqdm=not console.interactive(),  # a log file gets one line per logging step instead
        run_name=cfg.run_name,
        **{**passed, **dataloader_args(trainer)},
    )


def dataloader_args(trainer: TrainerConfig) -> dict:
    """Batches decoded and preprocessed (the collator runs the processor) in worker processes, so a step never
    waits for its batch; ``auto`` counts the cores this process may use (none when training on the CPU, which
    has no accelerator to keep busy). Without workers, the library refuses prefetch and persistence settings,
    so they are dropped."""
    accelerator = torch.cuda.is_available() and not trainer.use_cpu
    workers = page_encoding.resolve_workers(
        trainer.dataloader_num_workers, batches=page_encoding.MAX_AUTO_WORKERS, accelerator=accelerator
    )
    if workers == 0:
        return {"dataloader_num_workers": 0, "dataloader_prefetch_factor": None, "dataloader_persistent_workers": False}
    return {"dataloader_num_workers": workers}


@dataclasses.dataclass
class Training:
    """What a training is made of, the same on every rank: model, rows, protocol, loss."""

    loaded: models.LoadedModel
    train_rows: Dataset
    protocol: RetrievalProtocol
    loss: nn.Module


def load_training(spec: JobSpec[TrainRunConfig], load: Callable[[JobSpec], models.LoadedModel]) -> Training:
    """Model, data and loss, built by one function for every rank (rank 0 loads through :func:`steps.load_model`,
    which also tags the run; the others load the same config without a run)."""
    cfg = spec.cfg
    steps.prepare_fixtures(cfg)
    loaded = load(spec)
    train_rows, protocol = data.load_train_and_eval(cfg.dataset)
    return Training(loaded, train_rows, protocol, losses.build_loss(loaded.model, cfg.loss, loaded.family))


def build_trainer(cfg: TrainRunConfig, parts: Training, out_dir: Path, callbacks: list):
    """LoRA adapters (when configured) and the library's trainer for the model's family, its step evaluations
    (eval_ndcg_at_10 by step) on the input pipeline like every other evaluation, its DataLoader timed; every
    rank builds it here, so all take part in the same collectives."""
    if cfg.model.lora is not None:
        models.apply_lora(parts.loaded.model, cfg.model.lora)
    classes = parts.loaded.family.training_classes()
    protocol, model = parts.protocol, parts.loaded.model
    step_evaluator = step_evaluation.StepEvaluator(
        protocol,  # pages stay lazy: decoded batch by batch in eval.pipeline's workers at each evaluation
        batch_size=cfg.trainer.per_device_eval_batch_size,
        pipeline=steps.pipeline_settings(cfg, len(protocol.corpus), model.device),
        late_interaction=parts.loaded.family.late_interaction,
        name=protocol.name,
    )
    train_batches.card_stats_undecoded(model)  # the model card's page stats, computed while the trainer is built
    trainer = classes.trainer(
        model=model,
        args=training_args(cfg, model, out_dir, classes.arguments),
        train_dataset=parts.train_rows,
        loss=parts.loss,
        evaluator=step_evaluator,
        callbacks=callbacks,
    )
    loader_timeouts.time_train_loader(trainer, cfg.trainer.dataloader_timeout_s)
    zero_grad = lambda: model.zero_grad(set_to_none=True)  # noqa: E731
    trainer.training_step = mini_batch.guard_out_of_memory(trainer.training_step, parts.loss, cfg.loss, zero_grad)
    train_batches.sample_undecoded(trainer)
    if cfg.trainer.preprocess_on == "device":  # around the guarded step: a retried step reuses the features
        train_batches.defer_images(trainer, model)
    return step_metrics.one_line_per_log(trainer)


def fit(trainer: Trainer, cfg: TrainRunConfig, checkpoint: str | None = None) -> None:
    """``trainer.train()``; a training DataLoader worker that stops sending batches is one line naming its key."""
    timeout = cfg.trainer.dataloader_timeout_s
    with loader_timeouts.hung_workers_named("trainer.dataloader_timeout_s", timeout, "trainer.dataloader_num_workers"):
        trainer.train(resume_from_checkpoint=checkpoint)


def is_main_process() -> bool:
    """Under torchrun / accelerate launch every process runs the entry point; rank 0 is the one that records."""
    return int(os.environ.get("RANK", "0")) == 0


def _train_in_step(spec: JobSpec[TrainRunConfig]) -> dict[str, float]:
    """A non-zero rank of a multi-process training: the same model, data, loss and trainer as rank 0 (a model
    named by its training run included), trained in step under DDP; no MLflow run, no results: rank 0 records."""
    cfg = spec.cfg
    parts = load_training(spec, lambda job: models.load_model(steps.model_config(job), job.cfg.pixels))
    scratch = spec.out_dir / f"rank{os.environ.get('RANK', '?')}"
    fit(build_trainer(cfg, parts, scratch, callbacks=[]), cfg)
    return {}


def _save(cfg: TrainRunConfig, model: SentenceTransformer, out_dir: Path) -> str | None:
    """What the user asked for: with ``trainer.save_model``, model/ (adapters merged in, so it loads like any
    checkpoint) and adapter/; with ``tracking.log_model`` an MLflow model (the one ``model=from_run`` reads
    back; its id is returned) and the adapters beside it."""
    keep = cfg.trainer.save_model
    if cfg.model.lora is not None:
        with contextlib.nullcontext(out_dir) if keep else tempfile.TemporaryDirectory() as folder:
            adapter_dir = models.save_adapter(model, Path(folder) / "adapter")
            if keep:
                mlflow.set_tag(ADAPTER_DIR, str(adapter_dir.resolve()))
            if cfg.tracking.log_model:
                mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        models.merge_adapters(model)
    if keep:
        model.save(str(out_dir / "model"))
        mlflow.set_tag(MODEL_DIR, str((out_dir / "model").resolve()))
    if cfg.tracking.log_model:
        return logged_models.log_finetuned(model, cfg.model, cfg.tracking)
    return None


def run_training(spec: JobSpec[TrainRunConfig]) -> dict[str, float]:
    """The recipe on rank 0 (the only rank under a single process); other ranks train in step without a run."""
    if not is_main_process():
        return _train_in_step(spec)
    cfg = spec.cfg
    resume = resume_point(cfg, spec.context) if cfg.resume else requeued_resume_point(cfg, spec.context)
    if resume is not None:  # continue in the interrupted run's folder and MLflow run
        spec = spec.with_context(out_dir=resume.out_dir)
        log.info("resuming run %s from %s", resume.run_id, resume.checkpoint)
    with steps.start_run(spec, resume.run_id if resume else None):
        steps.log_config(spec, resumed=resume is not None)
        if resume is not None:
            mlflow.set_tag(RESUMED_FROM, str(resume.checkpoint))
        parts = load_training(spec, steps.load_model)
        if resume is None:  # a resumed run logged its inputs already
            inputs.log_dataset(cfg, protocol=parts.protocol, train_rows=parts.train_rows)
        dims = cfg.eval.dims or cfg.loss.matryoshka_dims
        cache = steps.embedding_cache_for(cfg)
        # 1. The model as it comes, on the same protocol the final model will face (once per run).
        if resume is None or not resume.has_base:
            base = steps.evaluate(cfg, parts.loaded, parts.protocol, dims=dims, cache=cache, prefix="base_")
            steps.log_evaluation(base, cfg, parts.protocol.name, spec.out_dir / "base", prefix="base_")
            log.info("before training: NDCG@10 %.4f", base.metrics["ndcg_at_10"])
        # 2. Train (all weights, or LoRA adapters only), with step evaluations along the way.
        model_id = _train(cfg, parts, spec.out_dir, resume)
        # 3. The final model, every metric and artifact (metrics linked to the logged model, if any).
        final = steps.evaluate(cfg, parts.loaded, parts.protocol, dims=dims, cache=cache)
        with mlflow.set_active_model(model_id=model_id) if model_id else contextlib.nullcontext():
            steps.log_evaluation(final, cfg, parts.protocol.name, spec.out_dir)
        steps.log_gallery(final, cfg, parts.protocol, spec.out_dir)
        log.info("NDCG@10 %.4f after training on %s", final.metrics["ndcg_at_10"], parts.protocol.name)
        # 4. Optionally a reranker on top: trained here on the same rows, then retrieve-then-rerank.
        if cfg.reranker.path is not None:
            _train_and_rerank(cfg, parts.train_rows, parts.protocol, final, spec.out_dir)
        return final.metrics


def _train(cfg: TrainRunConfig, parts: Training, out_dir: Path, resume: ResumePoint | None) -> str | None:
    """Train with the per-step callbacks (metrics, divergence, interrupts, throughput, preemption) and save;
    returns the logged model's id, if one was logged."""
    guard = step_metrics.DivergenceGuard()
    preempted = step_metrics.CheckpointOnPreemption()
    callbacks = [
        step_metrics.StepMetricsCallback(),
        guard,
        step_metrics.StopOnInterrupt(),
        step_metrics.TrainingThroughput(),
        preempted,
        setup := step_metrics.SetupTiming(),
    ]
    setup.mark("start")
    trainer = build_trainer(cfg, parts, out_dir, callbacks)
    mlflow.log_metric("trainable_params", models.trainable_parameters(parts.loaded.model))
    setup.mark("built")
    try:
        fit(trainer, cfg, str(resume.checkpoint) if resume else None)
    finally:
        preempted.restore_handlers()  # also when training raised: SIGTERM must not stay swallowed
        drop_if_empty(out_dir / "checkpoints")  # the trainer makes it whether or not it saves a checkpoint
    if preempted.signum is not None:
        mlflow.set_tag(PREEMPTED, f"step {preempted.step}")
    preempted.raise_if_preempted()
    guard.raise_if_diverged()
    return _save(cfg, parts.loaded.model, out_dir)


def _train_and_rerank(
    cfg: TrainRunConfig, train_rows: Dataset, protocol: RetrievalProtocol, final: EvaluationResult, out_dir: Path
) -> None:
    reranker = reranking.load_reranker(cfg.reranker, cfg.pixels)
    if cfg.reranker.train:
        reranker_dir = reranking.train_reranker(
            reranker,
            data.train_rows_with_negatives(cfg.dataset, train_rows),
            cfg=cfg.reranker,
            out_dir=out_dir,
            seed=cfg.trainer.seed,
            use_cpu=cfg.trainer.use_cpu,
            callbacks=[step_metrics.StepMetricsCallback(prefix="reranker_"), step_metrics.StopOnInterrupt()],
        )
        mlflow.set_tag(RERANKER_DIR, str(reranker_dir.resolve()))
        if cfg.tracking.log_model:
            mlflow.log_artifacts(str(reranker_dir), artifact_path="reranker")
    steps.rerank(cfg, protocol, final, out_dir, reranker)
