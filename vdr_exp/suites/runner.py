"""One model over a benchmark suite: a parent run for the suite, a child per (task, subset), MTEB result files.

The job's own MLflow run (``run_kind=benchmark``) is the suite's parent; each (task, language subset) is a
child run (``run_kind=benchmark_task``, :mod:`vdr_exp.suites.task_runs`). In a multirun over models, each
model's suite run is a child of the sweep's parent run.

Tasks are isolated: whatever one task raises (an unknown name, a folder missing a config, a loader's or a
model's own exception) ends that task's child FAILED with the error as its ``error`` tag and ``error.txt``, one
``error:`` line is printed, and the suite goes on. The parent records how many tasks finished, failed and were
skipped; only after the last task does the job end FAILED (exit non-zero), naming the failed ones.

Unless ``force=true``, a task whose identical configuration already finished every subset in an earlier run is
skipped, and that run's scores count in this suite's mean and pivot: a rerun after a failure re-runs only the
failed and the missing tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from vdr_exp.config import EvaluateRunConfig, RerankerConfig
from vdr_exp.errors import ConfigError, InputError, VdrError
from vdr_exp.fixtures import mini_vidore
from vdr_exp.jobs import steps
from vdr_exp.retrieval import reranking
from vdr_exp.runs import tracking
from vdr_exp.runs.job_spec import JobSpec
from vdr_exp.suites import mteb_tasks, report, task_runs
from vdr_exp.suites.loading import load_task
from vdr_exp.suites.task_runs import SuiteContext
from vdr_exp.tags import BENCHMARK, FAILED_TASKS, RUN_KIND, SKIPPED_TASK_PREFIX, SUITE_ROOT, RunKind

log = logging.getLogger(__name__)


def mteb_model_name(cfg: EvaluateRunConfig) -> tuple[str, str]:
    """(folder name, revision) of the model's MTEB results (see :func:`task_runs.mteb_name`)."""
    return task_runs.mteb_name(cfg.model.path, cfg.model.name, cfg.model.revision)


def _local_paths(cfg: EvaluateRunConfig) -> dict[str, str]:
    paths = dict(cfg.benchmark.local_paths)
    if cfg.benchmark.fixture:
        built = mini_vidore.build(Path(cfg.fixtures.root) / "mini_vidore")
        paths = {**{name: str(folder) for name, folder in built.items()}, **paths}
    return paths


def check_reranker(reranker: RerankerConfig, benchmark: str, chosen: mteb_tasks.Selection) -> None:
    """Reranking tasks need a reranker: said before any model loads."""
    if chosen.reranking and reranker.path is None:
        names = ", ".join(spec.name for spec in chosen.reranking[:3])
        raise ConfigError(
            f"benchmark {benchmark} has {len(chosen.reranking)} reranking task(s) ({names}, ...): they rerank "
            "given candidate lists, so pick a reranker (reranker=<name> or reranker=custom reranker.path=...)."
        )


@dataclass
class Outcome:
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # the main score of every finished or skipped task

    def record(self) -> dict[str, float]:
        """On the suite run: the counts and the names of the failed tasks; returns the suite's metrics."""
        counts = {"tasks_finished": len(self.finished), "tasks_failed": len(self.failed)}
        counts["tasks_skipped"] = len(self.skipped)
        metrics = {"main_score": sum(self.scores) / len(self.scores)} if self.scores else {}
        mlflow.log_metrics({**counts, **metrics})
        mlflow.set_tag(FAILED_TASKS, ", ".join(self.failed) or "none")
        return metrics


def _failed_child(ctx: SuiteContext, name: str, error: BaseException) -> None:
    """A task that failed before any of its children opened still gets a FAILED child saying why."""
    spec = mteb_tasks.TaskSpec(name, "", "", (), "-", {}, True)
    tags = task_runs.child_tags(ctx, spec, "-", "-", "-")
    try:
        with tracking.tracked_run(ctx.cfg.tracking, f"{name} | {ctx.cfg.model.name}", tags, ctx.parent, nested=True):
            raise error
    except Exception:  # noqa: BLE001 - recorded on the child; the suite goes on
        pass


def _error_line(name: str, error: BaseException) -> str:
    if isinstance(error, VdrError):
        return f"error: {error}"
    return f"error: {name}: {type(error).__name__}: {error} (the task failed; the suite went on)"


def _skip(ctx: SuiteContext, spec: mteb_tasks.TaskSpec, fingerprint: str, outcome: Outcome) -> bool:
    if ctx.cfg.force:
        return False
    earlier = task_runs.finished_children(ctx, fingerprint)
    if not earlier:
        return False
    mlflow.set_tag(f"{SKIPPED_TASK_PREFIX}{spec.name}", ",".join(r.info.run_id for r in earlier))
    outcome.skipped.append(spec.name)
    outcome.scores.append(sum(r.data.metrics["main_score"] for r in earlier) / len(earlier))
    print(f"skipped: {spec.name} already FINISHED with this config (force=true reruns it)", flush=True)
    return True


def _run_one(ctx: SuiteContext, spec: mteb_tasks.TaskSpec, local: dict[str, str], outcome: Outcome) -> None:
    multilingual = list(spec.subsets) != ["default"]
    subsets = ctx.cfg.benchmark.subsets if multilingual else None
    try:
        fingerprint = task_runs.task_fingerprint(ctx, spec)
        if _skip(ctx, spec, fingerprint, outcome):
            return
        task = load_task(spec.name, subsets=subsets, local_path=local.get(spec.name))
        score = task_runs.run_task(ctx, spec, task, fingerprint)
    except Exception as error:  # any task's failure is that task's, never the suite's
        if not ctx.in_child:
            _failed_child(ctx, spec.name, error)
        ctx.in_child = False
        print(_error_line(spec.name, error), flush=True)
        log.debug("task %s failed", spec.name, exc_info=True)
        outcome.failed.append(spec.name)
        return
    outcome.finished.append(spec.name)
    outcome.scores.append(score)
    log.info("%s: %s %.4f", spec.name, task.main_score, score)


def _context(job: JobSpec[EvaluateRunConfig], chosen: mteb_tasks.Selection, parent: str, root: str) -> SuiteContext:
    """The models the suite needs, loaded once on the suite run: the embedding model for retrieval tasks, the
    reranker for reranking tasks (and for the retriever + reranker pipeline)."""
    cfg = job.cfg
    ctx = SuiteContext(job, parent, root, job.out_dir)
    if chosen.retrieval:
        ctx.loaded = steps.load_model(job)
        ctx.cache = steps.embedding_cache_for(cfg)
        ctx.cache_key = steps.cache_key(cfg, ctx.loaded) if ctx.cache is not None else None  # once per suite
    if cfg.reranker.path is not None and (chosen.reranking or cfg.benchmark.rerank_retrieval):
        ctx.reranker = reranking.load_reranker(cfg.reranker, cfg.pixels)
    return ctx


def run_suite(spec: JobSpec[EvaluateRunConfig]) -> dict[str, float]:
    """Every selected task for this model; returns the suite mean of the main scores as ``main_score``."""
    cfg, job = spec.cfg, spec.context
    chosen = mteb_tasks.suite_tasks(cfg.benchmark)
    check_reranker(cfg.reranker, cfg.benchmark.name, chosen)
    outcome = Outcome()
    with steps.start_run(spec) as parent:
        mlflow.set_tags({RUN_KIND: str(RunKind.benchmark), BENCHMARK: cfg.benchmark.name})
        steps.log_config(spec)
        steps.prepare_fixtures(cfg)
        root = job.parent_run_id or parent
        mlflow.set_tag(SUITE_ROOT, root)
        local = _local_paths(cfg)
        ctx = _context(spec, chosen, parent, root)
        for name, message in chosen.unknown.items():
            _failed_child(ctx, name, InputError(message))
            print(f"error: {message}", flush=True)
            outcome.failed.append(name)
        for task in chosen.run:
            _run_one(ctx, task, local, outcome)
        metrics = outcome.record()
        if job.parent_run_id is None:  # one model on its own: its pivot now (a sweep writes one at its end)
            report.write_for_root(
                tracking.client_for(cfg.tracking),
                cfg.tracking.experiment_name,
                parent,
                name=cfg.benchmark.name,
                out_dir=Path(cfg.paths.leaderboards),
                by_language=cfg.benchmark.by_language,
            )
        if outcome.failed:  # the suite run ends FAILED too, so a sweep on any launcher counts it
            raise InputError(
                f"{len(outcome.failed)} of {len(outcome.failed) + len(outcome.finished) + len(outcome.skipped)} "
                f"task(s) of {cfg.benchmark.name} failed: {', '.join(outcome.failed)} (see the error lines above; "
                "a rerun re-runs only these and any missing ones)"
            )
    return metrics
