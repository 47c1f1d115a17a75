"""The training job, the recipe end to end: evaluate the base model, finetune, evaluate the result, save it.

Linear on purpose, like Sentence Transformers' own training examples: each step reads top to bottom.
Under torchrun or ``accelerate launch`` every process runs this module; rank 0 records (:func:`run_training`),
the other ranks train in step without a run (:func:`run_training_worker`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import torch
from omegaconf import DictConfig

from vdr_exp import data
from vdr_exp.config import TrainerConfig, TrainingPrompts, TrainRunConfig
from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError
from vdr_exp.jobs import steps
from vdr_exp.modeling import losses, models, page_encoding
from vdr_exp.modeling.families import Family
from vdr_exp.retrieval import reranking
from vdr_exp.runs import logged_models, preemption, step_metrics, tracking
from vdr_exp.runtime import console
from vdr_exp.runtime.job_context import JobContext
from vdr_exp.tags import (
    ADAPTER_DIR,
    CONFIG_FINGERPRINT,
    HYDRA_OVERRIDES,
    MODEL_DIR,
    PREEMPTED,
    RERANKER_DIR,
    RESUMED_FROM,
    RUN_DIR,
    RUN_KIND,
    RunKind,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from torch import nn

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


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    run_id: str
    out_dir: Path
    checkpoint: Path
    has_base: bool


def resume_point(cfg: TrainRunConfig, job: JobContext) -> ResumePoint:
    """Where an interrupted training run stopped: its folder and last checkpoint; checked to be the same job."""
    client = tracking.client_for(cfg.tracking)
    try:
        earlier = client.get_run(cfg.resume)
    except Exception:  # noqa: BLE001 - any lookup failure means the id is not usable here
        raise ConfigError(
            f"resume={cfg.resume!r} is not a run in this MLflow store; copy the run id from the UI."
        ) from None
    tags = earlier.data.tags
    if tags.get(RUN_KIND) != RunKind.train or earlier.info.status == "FINISHED":
        raise ConfigError(
            f"resume={cfg.resume!r} is a {earlier.info.status} {tags.get(RUN_KIND)} run; resume an interrupted training run."
        )
    if tags.get(CONFIG_FINGERPRINT) not in (None, job.fingerprint):
        raise ConfigError(
            f"resume={cfg.resume!r} was started with another config ({tags.get(HYDRA_OVERRIDES)}); "
            "resume with the same overrides."
        )
    out_dir = Path(tags[RUN_DIR])
    checkpoint = last_complete_checkpoint(out_dir / "checkpoints")
    if checkpoint is None:
        raise ConfigError(
            f"run {cfg.resume} saved no complete checkpoint in {out_dir / 'checkpoints'}; nothing to resume from "
            "(trainer.save_strategy=steps saves them)."
        )
    return ResumePoint(earlier.info.run_id, out_dir, checkpoint, "base_ndcg_at_10" in earlier.data.metrics)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint the trainer finished writing; newer ones cut short by a kill are skipped."""
    checkpoints = [p for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    complete = sorted(filter(_is_complete, checkpoints), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if len(complete) < len(checkpoints):
        log.warning("skipping %d incomplete checkpoint(s) (killed while saving)", len(checkpoints) - len(complete))
    return complete[-1] if complete else None


def _is_complete(checkpoint: Path) -> bool:
    """A checkpoint the trainer finished writing: its state file parses and names this step, and the model,
    optimizer and scheduler states are there (a kill while saving leaves some of them missing or cut short)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    needed = ("optimizer.pt", "scheduler.pt")
    has_weights = any(checkpoint.rglob("*.safetensors")) or any(checkpoint.rglob("pytorch_model*.bin"))
    return (
        state.get("global_step") == int(checkpoint.name.rsplit("-", 1)[1])
        and has_weights
        and all((checkpoint / name).is_file() and (checkpoint / name).stat().st_size > 0 for name in needed)
    )


def _trainer(
    cfg: TrainRunConfig,
    model: SentenceTransformer,
    *,
    family: Family,
    train_rows: Dataset,
    protocol: RetrievalProtocol,
    loss: nn.Module,
    out_dir: Path,
    callbacks: list,
):
    """The library's trainer for the model's family, with its IR evaluator giving eval_ndcg_at_10 by step."""
    classes = family.training_classes()
    step_evaluator = classes.evaluator(
        protocol.queries,
        # The library's evaluator encodes PIL images (decoded here, all at once): keep step evaluations small.
        {doc: as_image(page) for doc, page in protocol.corpus.items()},
        protocol.relevant_docs,
        name=protocol.name,
        batch_size=cfg.trainer.per_device_eval_batch_size,
        write_csv=False,
    )
    trainer = classes.trainer(
        model=model,
        args=training_args(cfg, model, out_dir, classes.arguments),
        train_dataset=train_rows,
        loss=loss,
        evaluator=step_evaluator,
        callbacks=callbacks,
    )
    return step_metrics.one_line_per_log(trainer)


def is_main_process() -> bool:
    """Under torchrun / accelerate launch every process runs the entry point; rank 0 is the one that records."""
    return int(os.environ.get("RANK", "0")) == 0


def run_training_worker(cfg: TrainRunConfig, composed: DictConfig, job: JobContext) -> dict[str, float]:
    """A non-zero rank of a multi-process training. It builds the same model, data, loss and trainer (step
    evaluation included, so every rank takes part in the same collective operations) and trains in step
    with rank 0 under DDP; it opens no MLflow run and writes no results: rank 0 does all of that."""
    steps.prepare_fixtures(cfg)
    loaded = models.load_model(cfg.model, cfg.pixels)
    if cfg.model.lora is not None:
        models.apply_lora(loaded.model, cfg.model.lora)
    train_rows, protocol = data.load_train_and_eval(cfg.dataset)
    loss = losses.build_loss(loaded.model, cfg.loss, loaded.family)
    scratch = job.out_dir / f"rank{os.environ.get('RANK', '?')}"
    trainer = _trainer(
        cfg,
        loaded.model,
        family=loaded.family,
        train_rows=train_rows,
        protocol=protocol,
        loss=loss,
        out_dir=scratch,
        callbacks=[],
    )
    trainer.train()
    return {}


def _save(cfg: TrainRunConfig, model: SentenceTransformer, out_dir: Path) -> str | None:
    """model/ (adapters merged in, so it loads like any checkpoint) and adapter/; with ``tracking.log_model``
    also an MLflow model (the one ``model=from_run`` reads back); returns its id."""
    if cfg.model.lora is not None:
        adapter_dir = models.save_adapter(model, out_dir / "adapter")
        mlflow.set_tag(ADAPTER_DIR, str(adapter_dir.resolve()))
        if cfg.tracking.log_model:
            mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        models.merge_adapters(model)
    model_dir = out_dir / "model"
    model.save(str(model_dir))
    mlflow.set_tag(MODEL_DIR, str(model_dir.resolve()))
    if cfg.tracking.log_model:
        return logged_models.log_finetuned(model, cfg.model, cfg.tracking)
    return None


def _requeued_resume_point(cfg: TrainRunConfig, job: JobContext) -> ResumePoint | None:
    """After a SLURM requeue: the preempted run to continue, if it saved a checkpoint (else a fresh start)."""
    earlier = preemption.requeued_run(cfg.tracking, job.fingerprint)
    if earlier is None:
        return None
    try:
        return resume_point(dataclasses.replace(cfg, resume=earlier), job)
    except ConfigError as error:
        log.warning("requeued job: not resuming run %s (%s); starting a new run", earlier, error)
        return None


def run_training(cfg: TrainRunConfig, composed: DictConfig, job: JobContext) -> dict[str, float]:
    resume = resume_point(cfg, job) if cfg.resume else _requeued_resume_point(cfg, job)
    if resume is not None:  # continue in the interrupted run's folder and MLflow run
        job = dataclasses.replace(job, out_dir=resume.out_dir)
        log.info("resuming run %s from %s", resume.run_id, resume.checkpoint)
    out_dir = job.out_dir
    with steps.start_run(cfg, composed, job, resume.run_id if resume else None):
        steps.log_config(composed, out_dir, resumed=resume is not None)
        if resume is not None:
            mlflow.set_tag(RESUMED_FROM, str(resume.checkpoint))
        steps.prepare_fixtures(cfg)
        loaded = steps.load_model(cfg)
        model = loaded.model
        train_rows, protocol = data.load_train_and_eval(cfg.dataset)
        if resume is None:  # a resumed run logged its inputs already
            steps.log_dataset(cfg, protocol=protocol, train_rows=train_rows)
        loss = losses.build_loss(model, cfg.loss, loaded.family)
        dims = cfg.eval.dims or cfg.loss.matryoshka_dims
        cache = steps.embedding_cache_for(cfg)

        # 1. The model as it comes, on the same protocol the final model will face (once per run).
        if resume is None or not resume.has_base:
            base = steps.evaluate(cfg, loaded, protocol, dims=dims, cache=cache, prefix="base_")
            steps.log_evaluation(base, cfg, protocol.name, out_dir / "base", prefix="base_")
            log.info("before training: NDCG@10 %.4f", base.metrics["ndcg_at_10"])

        # 2. Train (all weights, or LoRA adapters only), with the library's IR evaluator along the way.
        if cfg.model.lora is not None:
            models.apply_lora(model, cfg.model.lora)
        mlflow.log_metric("trainable_params", models.trainable_parameters(model))
        guard = step_metrics.DivergenceGuard()
        preempted = step_metrics.CheckpointOnPreemption()
        trainer = _trainer(
            cfg,
            model,
            family=loaded.family,
            train_rows=train_rows,
            protocol=protocol,
            loss=loss,
            out_dir=out_dir,
            callbacks=[
                step_metrics.StepMetricsCallback(),
                guard,
                step_metrics.StopOnInterrupt(),
                step_metrics.TrainingThroughput(),
                preempted,
            ],
        )
        try:
            trainer.train(resume_from_checkpoint=str(resume.checkpoint) if resume else None)
        finally:
            preempted.restore_handlers()  # also when training raised: SIGTERM must not stay swallowed
        if preempted.signum is not None:
            mlflow.set_tag(PREEMPTED, f"step {preempted.step}")
        preempted.raise_if_preempted()
        guard.raise_if_diverged()
        model_id = _save(cfg, model, out_dir)

        # 3. The final model, every metric and artifact (metrics linked to the logged model, if any).
        final = steps.evaluate(cfg, loaded, protocol, dims=dims, cache=cache)
        with mlflow.set_active_model(model_id=model_id) if model_id else contextlib.nullcontext():
            steps.log_evaluation(final, cfg, protocol.name, out_dir)
        steps.log_gallery(final, cfg, protocol, out_dir)
        log.info("NDCG@10 %.4f after training on %s", final.metrics["ndcg_at_10"], protocol.name)

        # 4. Optionally a reranker on top: trained here on the same rows, then retrieve-then-rerank.
        if cfg.reranker.path is not None:
            _train_and_rerank(cfg, train_rows, protocol, final, out_dir)
        return final.metrics


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
