"""One run, start to finish: build from config, evaluate (and train), hand results to tracking.

Linear on purpose, like Sentence Transformers' own training examples: each step reads top to bottom.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from vdr_exp import (
    data,
    dataset_folder,
    embedding_cache,
    evaluation,
    families,
    losses,
    mining,
    models,
    mteb_results,
    redact,
    reranking,
    run_refs,
    step_metrics,
    tracking,
)
from vdr_exp.config import ConfigError, EvaluateRunConfig, MineRunConfig, TrainRunConfig, flatten
from vdr_exp.fixtures import ensure_fixtures
from vdr_exp.job_context import JobContext

log = logging.getLogger(__name__)


def _prepare_fixtures(run: EvaluateRunConfig) -> None:
    """Offline fixture models and datasets are built on first use, like a hub download would be."""
    if run.model.fixture or run.dataset.fixture:
        ensure_fixtures(Path(run.fixtures.root))


def _tags(run: EvaluateRunConfig, job: JobContext, cwd: Path) -> dict[str, str]:
    tags = {
        "run_kind": run.run_kind,
        "model_id": run.model.path,
        "model_name": run.model.name,
        "dataset": run.dataset.name,
        "pixel_budget": run.pixels.name,
        "family": family(run),
        "git_commit": tracking.git_commit(cwd),
        "hydra_overrides": " ".join(redact.redact_overrides(job.overrides)) or "(none)",
        "run_dir": str(job.out_dir.resolve()),
    }
    if "experiment" in job.choices:
        tags["experiment_preset"] = job.choices["experiment"]
    if run.sweep.name:
        tags["sweep"] = run.sweep.name
    if job.job_num is not None:
        tags["hydra_job_num"] = str(job.job_num)
    if job.sweep_params:
        tags["sweep_params"] = " ".join(redact.redact_overrides(job.sweep_params.split()))
    if job.fingerprint:
        tags["config_fingerprint"] = job.fingerprint
    return tags


def _write_config(raw: DictConfig, overrides: list[str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = redact.redact_tree(OmegaConf.to_container(raw, resolve=True))
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    (out_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(redact.redact_overrides(overrides))))


def _log_evaluation(
    result: evaluation.EvaluationResult, run: EvaluateRunConfig, task: str, out_dir: Path, prefix: str = ""
) -> None:
    paths = evaluation.write_artifacts(result, out_dir)
    split = data.eval_split_name(run.dataset)
    paths.append(mteb_results.write(out_dir / "mteb_results.json", result, task, split, dataset_revision="n/a"))
    mlflow.log_metrics(result.metrics_with_dims(prefix))
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=prefix.rstrip("_") or None)


def _start(run: EvaluateRunConfig, raw: DictConfig, job: JobContext, resume_run_id: str | None = None):
    _write_config(raw, job.overrides, job.out_dir)
    run_name = run.run_name or f"{run.run_kind}-{run.model.name}-{run.dataset.name}-{run.pixels.name}"
    tags = _tags(run, job, Path.cwd())
    return tracking.tracked_run(run.tracking, run_name, tags, job.parent_run_id, resume_run_id)


def _log_config(raw: DictConfig, out_dir: Path, resumed: bool = False) -> None:
    if not resumed:  # a resumed run keeps its params (MLflow params are write-once; the config is the same)
        tracking.log_params(flatten(redact.redact_tree(OmegaConf.to_container(raw, resolve=True))))
    mlflow.log_artifact(str(out_dir / "config.yaml"))
    mlflow.log_artifact(str(out_dir / "overrides.yaml"))


def _resolve_model_path(run: EvaluateRunConfig) -> None:
    """A model named by its training run gets that run's saved directory as its path (tagged on this run)."""
    if run.model.from_run is None:
        return
    client = tracking.client_for(run.tracking)
    resolved = run_refs.resolve(run.model.from_run, client, run.tracking.experiment_name)
    run.model.path = resolved.path
    mlflow.set_tags({"model_id": resolved.path, "source_run_id": resolved.run_id})
    log.info("model %s: %s (from run %s)", run.model.name, resolved.path, resolved.run_id)


def _load_model(run: EvaluateRunConfig) -> models.LoadedModel:
    _resolve_model_path(run)
    loaded = models.load_model(run.model, run.pixels)
    mlflow.set_tags(
        {
            "attn_implementation": loaded.attn_implementation,
            "param_count": str(loaded.parameters),
            "embedding_dim": str(loaded.embedding_dim),
        }
    )
    mlflow.log_metric("param_count", loaded.parameters)
    return loaded


def family(run: EvaluateRunConfig) -> str:
    """The design a run measures, for the leaderboard's ``kind`` column."""
    if isinstance(run, TrainRunConfig) and run.model.lora is not None:
        return "lora"
    return run.model.kind.replace("_", "-")


def _rerank(run: EvaluateRunConfig, protocol, retrieved: evaluation.EvaluationResult, out_dir: Path, reranker=None):
    """Retriever-only metrics stay as they are; the reranked order is logged beside them as rerank_*."""
    if reranker is None:
        reranker = reranking.load_reranker(run.reranker, run.pixels)
    result = reranking.rerank(reranker, protocol, retrieved, run.reranker.top_k, run.eval.batch_size)
    _log_evaluation(result, run, protocol.name, out_dir / "rerank", prefix="rerank_")
    mlflow.set_tags({"reranker": run.reranker.path, "rerank_top_k": str(run.reranker.top_k)})
    log.info("NDCG@10 %.4f retrieved -> %.4f reranked", retrieved.metrics["ndcg_at_10"], result.metrics["ndcg_at_10"])
    return result


def _cache(run: EvaluateRunConfig) -> embedding_cache.EmbeddingCache | None:
    if not run.eval.cache:
        return None
    return embedding_cache.EmbeddingCache(Path(run.eval.cache_dir).expanduser(), int(run.eval.cache_max_gb * 1024**3))


def _evaluate(run: EvaluateRunConfig, model, protocol, dims, cache) -> evaluation.EvaluationResult:
    """One evaluation, through the embedding cache when it is on (the key is computed from the weights now)."""
    key = ""
    if cache is not None:
        settings = f"{run.pixels.min_pixels}-{run.pixels.max_pixels}|{run.model.dtype}|{run.model.processor_kwargs}"
        key = embedding_cache.model_fingerprint(model, settings)
    result = evaluation.evaluate(model, protocol, dims, run.eval.batch_size, run.eval.top_k, cache, key)
    if cache is not None:
        mlflow.log_metrics({"embedding_cache_hits": cache.hits, "embedding_cache_misses": cache.misses})
        mlflow.set_tag("embedding_cache", "; ".join(cache.events))
    return result


def run_evaluation(run: EvaluateRunConfig, raw: DictConfig, job: JobContext) -> dict[str, float]:
    out_dir = job.out_dir
    with _start(run, raw, job):
        _log_config(raw, out_dir)
        _prepare_fixtures(run)
        loaded = _load_model(run)
        protocol = data.load_eval_protocol(run.dataset)
        result = _evaluate(run, loaded.model, protocol, run.eval.dims, _cache(run))
        _log_evaluation(result, run, protocol.name, out_dir)
        log.info("NDCG@10 %.4f on %s", result.metrics["ndcg_at_10"], protocol.name)
        if run.reranker.path is not None:
            _rerank(run, protocol, result, out_dir)
        return result.metrics


def _training_args(run: TrainRunConfig, model, out_dir: Path, args_class):
    t = run.trainer
    prompts = None
    if t.prompts == "model":
        query_column, *document_columns = run.dataset.train_columns
        prompts = {query_column: model.prompts.get("query", "")}
        prompts.update({c: model.prompts["document"] for c in document_columns if model.prompts.get("document")})
    return args_class(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        optim=t.optim,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        bf16=t.bf16,
        gradient_checkpointing=t.gradient_checkpointing,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        seed=t.seed,
        batch_sampler=t.batch_sampler,
        eval_strategy=t.eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy=t.save_strategy,
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=t.logging_steps,
        dataloader_num_workers=t.dataloader_num_workers,
        use_cpu=t.use_cpu,
        prompts=prompts,
        router_mapping=models.router_mapping(model, list(run.dataset.train_columns)),
        report_to="none",  # MLflow logging is ours (StepMetricsCallback), into the run we already opened
        run_name=run.run_name,
    )


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    run_id: str
    out_dir: Path
    checkpoint: Path
    has_base: bool


def resume_point(run: TrainRunConfig, job: JobContext) -> ResumePoint:
    """Where an interrupted training run stopped: its folder and last checkpoint; checked to be the same job."""
    client = tracking.client_for(run.tracking)
    try:
        earlier = client.get_run(run.resume)
    except Exception:  # noqa: BLE001 - any lookup failure means the id is not usable here
        raise ConfigError(
            f"resume={run.resume!r} is not a run in this MLflow store; copy the run id from the UI."
        ) from None
    tags = earlier.data.tags
    if tags.get("run_kind") != "train" or earlier.info.status == "FINISHED":
        raise ConfigError(
            f"resume={run.resume!r} is a {earlier.info.status} {tags.get('run_kind')} run; resume an interrupted training run."
        )
    if tags.get("config_fingerprint") not in (None, job.fingerprint):
        raise ConfigError(
            f"resume={run.resume!r} was started with another config ({tags.get('hydra_overrides')}); "
            "resume with the same overrides."
        )
    out_dir = Path(tags["run_dir"])
    checkpoints = sorted(out_dir.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if not checkpoints:
        raise ConfigError(
            f"run {run.resume} saved no checkpoint in {out_dir / 'checkpoints'}; nothing to resume from "
            "(trainer.save_strategy=steps saves them)."
        )
    return ResumePoint(earlier.info.run_id, out_dir, checkpoints[-1], "base_ndcg_at_10" in earlier.data.metrics)


def _trainer(run: TrainRunConfig, model, train_rows, protocol, loss, out_dir: Path, callbacks: list):
    """The library's trainer for the model's family, with its IR evaluator giving eval_ndcg_at_10 by step."""
    classes = families.classes_for(model)
    step_evaluator = classes.evaluator(
        protocol.queries,
        protocol.corpus,
        protocol.relevant_docs,
        name=protocol.name,
        batch_size=run.trainer.per_device_eval_batch_size,
        write_csv=False,
    )
    return classes.trainer(
        model=model,
        args=_training_args(run, model, out_dir, classes.arguments),
        train_dataset=train_rows,
        loss=loss,
        evaluator=step_evaluator,
        callbacks=callbacks,
    )


def is_main_process() -> bool:
    """Under torchrun / accelerate launch every process runs the entry point; rank 0 is the one that records."""
    return int(os.environ.get("RANK", "0")) == 0


def run_training_worker(run: TrainRunConfig, raw: DictConfig, job: JobContext) -> dict[str, float]:
    """A non-zero rank of a multi-process training. It builds the same model, data, loss and trainer (step
    evaluation included, so every rank takes part in the same collective operations) and trains in step
    with rank 0 under DDP; it opens no MLflow run and writes no results: rank 0 does all of that."""
    _prepare_fixtures(run)
    model = models.load_model(run.model, run.pixels).model
    if run.model.lora is not None:
        models.apply_lora(model, run.model.lora)
    train_rows, protocol = data.load_train_and_eval(run.dataset)
    loss = losses.build_loss(model, run.loss)
    scratch = job.out_dir / f"rank{os.environ.get('RANK', '?')}"
    _trainer(run, model, train_rows, protocol, loss, scratch, []).train()
    return {}


def run_training(run: TrainRunConfig, raw: DictConfig, job: JobContext) -> dict[str, float]:
    resume = resume_point(run, job) if run.resume else None
    if resume is not None:  # continue in the interrupted run's folder and MLflow run
        job = dataclasses.replace(job, out_dir=resume.out_dir)
        log.info("resuming run %s from %s", resume.run_id, resume.checkpoint)
    out_dir = job.out_dir
    with _start(run, raw, job, resume.run_id if resume else None):
        _log_config(raw, out_dir, resumed=resume is not None)
        if resume is not None:
            mlflow.set_tag("resumed_from", str(resume.checkpoint))
        _prepare_fixtures(run)
        loaded = _load_model(run)
        model = loaded.model
        train_rows, protocol = data.load_train_and_eval(run.dataset)
        loss = losses.build_loss(model, run.loss)
        dims = run.eval.dims or run.loss.matryoshka_dims
        cache = _cache(run)

        # 1. The model as it comes, on the same protocol the final model will face (once per run).
        if resume is None or not resume.has_base:
            base = _evaluate(run, model, protocol, dims, cache)
            _log_evaluation(base, run, protocol.name, out_dir / "base", prefix="base_")
            log.info("before training: NDCG@10 %.4f", base.metrics["ndcg_at_10"])

        # 2. Train (all weights, or LoRA adapters only), with the library's IR evaluator along the way.
        if run.model.lora is not None:
            models.apply_lora(model, run.model.lora)
        mlflow.log_metric("trainable_params", models.trainable_parameters(model))
        guard = step_metrics.DivergenceGuard()
        callbacks = [step_metrics.StepMetricsCallback(), guard, step_metrics.StopOnInterrupt()]
        trainer = _trainer(run, model, train_rows, protocol, loss, out_dir, callbacks)
        trainer.train(resume_from_checkpoint=str(resume.checkpoint) if resume else None)
        guard.raise_if_diverged()
        if run.model.lora is not None:
            adapter_dir = models.save_adapter(model, out_dir / "adapter")
            mlflow.set_tag("adapter_dir", str(adapter_dir.resolve()))
            models.merge_adapters(model)  # model/ then loads like any checkpoint, e.g. through model.from_run
        model_dir = out_dir / "model"
        model.save(str(model_dir))
        mlflow.set_tag("model_dir", str(model_dir.resolve()))
        if run.tracking.log_model:
            mlflow.log_artifacts(str(model_dir), artifact_path="model")

        # 3. The final model, every metric and artifact.
        final = _evaluate(run, model, protocol, dims, cache)
        _log_evaluation(final, run, protocol.name, out_dir)
        log.info("NDCG@10 %.4f after training on %s", final.metrics["ndcg_at_10"], protocol.name)

        # 4. Optionally a reranker on top: trained here on the same rows, then retrieve-then-rerank.
        if run.reranker.path is not None:
            reranker = reranking.load_reranker(run.reranker, run.pixels)
            if run.reranker.train:
                callbacks = [step_metrics.StepMetricsCallback(prefix="reranker_"), step_metrics.StopOnInterrupt()]
                reranker_dir = reranking.train_reranker(
                    reranker, train_rows_with_negatives(run, train_rows), run.reranker, out_dir, run.trainer.seed,
                    run.trainer.use_cpu, callbacks,
                )  # fmt: skip
                mlflow.set_tag("reranker_dir", str(reranker_dir.resolve()))
            _rerank(run, protocol, final, out_dir, reranker)
        return final.metrics


def train_rows_with_negatives(run: TrainRunConfig, train_rows):
    """The training rows with every negative the protocol knows of: the reranker learns from all of them.
    Only the recipe's pairs layout has negative columns; other layouts' rows are used as they are."""
    if run.dataset.format != "pairs":
        return train_rows
    negatives = [f"negative_{k}" for k in range(run.dataset.protocol.num_negatives)]
    return data.load_train_rows(dataclasses.replace(run.dataset, train_columns=["query", "image", *negatives]))


def run_mining(run: MineRunConfig, raw: DictConfig, job: JobContext) -> dict[str, float]:
    """Mine negatives for the train and eval queries of the split; write them as one dataset folder."""
    m = run.mine
    settings = mining.MiningSettings(m.num_negatives, m.range_min, m.max_score_ratio, m.batch_size)
    out = Path(run.mine.out).expanduser().resolve()
    with _start(run, raw, job):
        _log_config(raw, job.out_dir)
        _prepare_fixtures(run)
        model = _load_model(run).model
        train, held_out = data.split_protocols(run.dataset)
        corpus = mining.encode_corpus(model, train, run.mine.batch_size)  # both sides share the full corpus
        splits = {"train": mining.mine_split(model, train, corpus, settings)}
        if held_out.queries:
            splits["eval"] = mining.mine_split(model, held_out, corpus, settings)
        if len(splits["train"].rows) == 0:
            raise ConfigError(
                "mining produced no training rows; lower mine.num_negatives or mine.range_min, raise "
                "mine.max_score_ratio, or lower dataset.eval_fraction so training keeps some queries."
            )
        summary = {
            "model": run.model.path,
            "source": run.dataset.path,
            "settings": dataclasses.asdict(settings),
            "splits": {
                name: {"rows": len(s.rows), "pairs": s.pairs, "dropped": s.dropped} for name, s in splits.items()
            },
        }
        body = f"# {out.name}\n\nHard negatives mined by `python -m vdr_exp.mine`.\n\n```json\n"
        body += json.dumps(summary, indent=2) + "\n```\n"
        mining_json = {"mining.json": json.dumps(summary, indent=2)}
        dataset_folder.write_dataset_folder(out, {n: s.rows for n, s in splits.items()}, body, mining_json)
        metrics = {f"{name}_rows": float(len(s.rows)) for name, s in splits.items()}
        metrics.update({f"{name}_dropped": float(s.dropped) for name, s in splits.items()})
        mlflow.log_metrics(metrics)
        mlflow.set_tag("mined_dataset", str(out))
        mlflow.log_text(json.dumps(summary, indent=2), "mining.json")
        log.info("mined %s -> %s", {n: len(s.rows) for n, s in splits.items()}, out)
        print(f"wrote {out} (configs: {', '.join(splits)}); train on it with: dataset=mined dataset.path={out}")
        return metrics
