"""One MTEB task of a suite: a child run per language subset, then the task's MTEB result file.

A retrieval task is the model's evaluation on each subset (and, with a reranker configured, the reranked order
beside it as ``rerank_*``, the retriever + reranker pipeline); a reranking task is the reranker over the task's
own candidate lists (:mod:`vdr_exp.suites.rerank_tasks`). Each subset child logs every metric, the task's main
score as ``main_score`` and its artifacts. Once every subset finished, the children are marked complete and the
scores over all subsets are written in MTEB's layout through MTEB's own result class:
``<benchmark.results_dir>/results/<model>/<revision>/<TaskName>.json``.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import mlflow

from vdr_exp.config import EvaluateRunConfig
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.jobs import steps
from vdr_exp.retrieval import mteb_results
from vdr_exp.runs import completed, tracking
from vdr_exp.runs.job_spec import JobSpec
from vdr_exp.runtime import csv_safe
from vdr_exp.suites import mteb_tasks, rerank_tasks
from vdr_exp.suites.loading import LoadedTask
from vdr_exp.suites.mteb_tasks import TaskSpec
from vdr_exp.tags import (
    BENCHMARK,
    HF_SUBSET,
    MAIN_SCORE_NAME,
    MLFLOW_PARENT_RUN_ID,
    MODEL_ID,
    MODEL_NAME,
    MTEB_TASK,
    RERANKER_NAME,
    RUN_KIND,
    SUITE_ROOT,
    TASK_COMPLETE,
    TASK_FINGERPRINT,
    RunKind,
)


@dataclass
class SuiteContext:
    """What every task of one suite run shares."""

    job: JobSpec[EvaluateRunConfig]
    parent: str
    root: str
    out_dir: Path
    loaded: object | None = None  # the embedding model, when the suite has retrieval tasks
    reranker: object | None = None  # the CrossEncoder, when a reranker is configured
    cache: object | None = None
    cache_key: str | None = None
    in_child: bool = False  # a task run is open: an error raised now is recorded on it

    @property
    def cfg(self) -> EvaluateRunConfig:
        return self.job.cfg


def mteb_name(path: str | None, name: str, revision: str | None) -> tuple[str, str]:
    """(folder name, revision) as MTEB's result cache spells them: ``org__name`` for a Hub id, the config's
    name for a local folder; the pinned revision or MTEB's ``no_revision_available``."""
    path = path or ""
    looks_like_hub_id = path.count("/") == 1 and not Path(path).exists()
    chosen = path if looks_like_hub_id else name
    return chosen.replace("/", "__").replace(" ", "_"), revision or "no_revision_available"


def task_fingerprint(ctx: SuiteContext, spec: TaskSpec) -> str:
    """A task's result depends on the job's config (model, pixels, eval, reranker, inputs on disk) and on this
    task's own benchmark settings, not on which other tasks the suite runs or where results are written. A
    reranking task's does not depend on the embedding model: a sweep over models reranks it once."""
    cfg, tree = ctx.cfg, copy.deepcopy(ctx.job.values)
    benchmark = tree.get("benchmark") or {}
    tree["benchmark"] = {
        "task": spec.name,
        "subsets": benchmark.get("subsets"),
        "local_path": (benchmark.get("local_paths") or {}).get(spec.name),
        "fixture": benchmark.get("fixture"),
    }
    inputs = completed.content_keys(cfg)
    source = ctx.job.model_source
    if spec.kind == mteb_tasks.RERANKING:
        tree.pop("model", None)
        inputs = {key: value for key, value in inputs.items() if not key.startswith("model.")}
        source = None
    job = completed.config_fingerprint(tree, source, inputs)
    return hashlib.sha256(f"{job}|{spec.name}".encode()).hexdigest()[:24]


def child_tags(ctx: SuiteContext, spec: TaskSpec, subset: str, main_score: str, fingerprint: str) -> dict[str, str]:
    """A reranking task's "model" is the reranker: its rows in the pivot and its MTEB result folder."""
    cfg = ctx.cfg
    reranking = spec.kind == mteb_tasks.RERANKING
    task = spec.name
    return {
        RUN_KIND: str(RunKind.benchmark_task),
        MODEL_NAME: cfg.reranker.name if reranking else cfg.model.name,
        MODEL_ID: (cfg.reranker.path if reranking else cfg.model.path) or "",
        BENCHMARK: cfg.benchmark.name,
        MTEB_TASK: task,
        HF_SUBSET: subset,
        MAIN_SCORE_NAME: main_score,
        SUITE_ROOT: ctx.root,
        TASK_FINGERPRINT: fingerprint,
        **({RERANKER_NAME: cfg.reranker.name} if cfg.reranker.path else {}),
    }


def _retrieval_subset(
    ctx: SuiteContext, spec: TaskSpec, task: LoadedTask, subset: str, protocol: RetrievalProtocol, out_dir: Path
) -> object:
    cfg = ctx.cfg
    result = steps.evaluate(cfg, ctx.loaded, protocol, dims=cfg.eval.dims, cache=ctx.cache, model_key=ctx.cache_key)
    steps.log_evaluation(result, cfg, spec.name, out_dir)
    mlflow.log_metric("main_score", result.metrics[task.main_score])
    if ctx.reranker is not None and cfg.benchmark.rerank_retrieval:  # retriever + reranker, beside it alone
        reranked = steps.rerank(cfg, protocol, result, out_dir, reranker=ctx.reranker)
        mlflow.log_metric("rerank_main_score", reranked.metrics[task.main_score])
    return result


def _reranking_subset(
    ctx: SuiteContext, spec: TaskSpec, task: LoadedTask, subset: str, protocol: RetrievalProtocol, out_dir: Path
) -> object:
    cfg = ctx.cfg
    result = rerank_tasks.rerank_subset(
        ctx.reranker, protocol, task.candidates.get(subset, {}), k_values=task.k_values, batch_size=cfg.eval.batch_size
    )
    mlflow.log_metrics(result.metrics)
    mlflow.log_metric("main_score", result.metrics[task.main_score])
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_safe.write_csv(result.rankings, out_dir / "rankings.csv")
    mlflow.log_artifact(str(out_dir / "rankings.csv"))
    return result


def run_task(ctx: SuiteContext, spec: TaskSpec, task: LoadedTask, fingerprint: str) -> float:
    """Every subset of ``task`` as a child run, then its MTEB result file; returns its main score (the mean
    over subsets, as MTEB averages them)."""
    cfg = ctx.cfg
    evaluate = _reranking_subset if spec.kind == mteb_tasks.RERANKING else _retrieval_subset
    subsets, seconds, children = [], 0.0, []
    for subset, (protocol, languages) in task.subsets.items():
        tags = child_tags(ctx, spec, subset, task.main_score, fingerprint)
        label = spec.name if subset == "default" else f"{spec.name} | {subset}"
        ctx.in_child = True
        with tracking.tracked_run(cfg.tracking, f"{label} | {tags[MODEL_NAME]}", tags, ctx.parent, nested=True) as rid:
            result = evaluate(ctx, spec, task, subset, protocol, ctx.out_dir / spec.name / subset)
        ctx.in_child = False
        children.append(rid)
        subsets.append(
            mteb_results.subset_scores(result, main_score=task.main_score, hf_subset=subset, languages=languages)
        )
        seconds += result.evaluation_seconds
    model = (
        (cfg.reranker.path, cfg.reranker.name, None)
        if spec.kind == mteb_tasks.RERANKING
        else (cfg.model.path, cfg.model.name, cfg.model.revision)
    )
    folder_name, revision = mteb_name(*model)
    folder = Path(cfg.benchmark.results_dir) / "results" / folder_name / revision
    path = write_task_result(folder, spec.name, task.revision, task.split, subsets, seconds)
    mlflow.log_artifact(str(path), artifact_path=f"mteb_results/{folder_name}/{revision}")
    client = tracking.client_for(cfg.tracking)
    for run_id in children:
        client.set_tag(run_id, TASK_COMPLETE, "true")
    return sum(s["main_score"] for s in subsets) / len(subsets)


def write_task_result(folder: Path, task: str, revision: str, split: str, subsets: list[dict], seconds: float) -> Path:
    """One MTEB result file, built and validated by mteb's ``TaskResult`` (so mteb reads it back as written)."""
    # optional extra (mteb): only suites load it
    import mteb
    from mteb.results import TaskResult

    result = TaskResult.model_validate(
        {
            "dataset_revision": revision,
            "task_name": task,
            "mteb_version": mteb.__version__,
            "scores": {split: subsets},
            "evaluation_time": round(seconds, 3),
            "kg_co2_emissions": None,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(result.model_dump_json(indent=2) + "\n")
    partial.replace(path)  # a reader never sees half a file
    return path


def finished_children(ctx: SuiteContext, fingerprint: str) -> list:
    """The children of the latest complete earlier run of this task with the same fingerprint (empty: none)."""
    client = tracking.client_for(ctx.cfg.tracking)
    experiment = client.get_experiment_by_name(ctx.cfg.tracking.experiment_name)
    query = " and ".join(
        [
            "attributes.status = 'FINISHED'",
            tracking.tag_equals(TASK_FINGERPRINT, fingerprint),
            tracking.tag_equals(TASK_COMPLETE, "true"),
        ]
    )
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"])
    if not runs:
        return []
    latest_parent = runs[0].data.tags.get(MLFLOW_PARENT_RUN_ID)
    return [r for r in runs if r.data.tags.get(MLFLOW_PARENT_RUN_ID) == latest_parent]
