"""One model over a benchmark suite: a parent run for the suite, a child per (task, subset), MTEB result files.

The job's own MLflow run (``run_kind=benchmark``) is the suite's parent; each (task, language subset) is a
child run (``run_kind=benchmark_task``) with every metric, the task's main score as ``main_score`` and the
usual artifacts. In a multirun over models, each model's suite run is a child of the sweep's parent run.
A task that cannot run (unknown name, a folder missing a config, qrels naming unknown pages) becomes a FAILED
child with a one-line error, and the rest of the suite goes on; the job then ends with that list.

After each task, its scores over all subsets are written in MTEB's layout through MTEB's own result class:
``<benchmark.results_dir>/results/<model>/<revision>/<TaskName>.json``. ``mteb``'s ``ResultCache`` reads them
back with the same main score.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from vdr_exp.config import EvaluateRunConfig
from vdr_exp.errors import InputError, VdrError
from vdr_exp.jobs import steps
from vdr_exp.retrieval import mteb_results
from vdr_exp.runs import tracking
from vdr_exp.runs.job_context import JobContext
from vdr_exp.suites import mteb_tasks, report
from vdr_exp.suites.loading import load_task

log = logging.getLogger(__name__)


def mteb_model_name(cfg: EvaluateRunConfig) -> tuple[str, str]:
    """(folder name, revision) as MTEB's result cache spells them: ``org__name`` for a Hub id, the config's
    name for a local folder; the pinned revision or MTEB's ``no_revision_available``."""
    path = cfg.model.path or ""
    looks_like_hub_id = path.count("/") == 1 and not Path(path).exists()
    name = path if looks_like_hub_id else cfg.model.name
    return name.replace("/", "__").replace(" ", "_"), cfg.model.revision or "no_revision_available"


def _local_paths(cfg: EvaluateRunConfig) -> dict[str, str]:
    paths = dict(cfg.benchmark.local_paths)
    if cfg.benchmark.fixture:
        from vdr_exp.fixtures import mini_vidore

        built = mini_vidore.build(Path(cfg.fixtures.root) / "mini_vidore")
        paths = {**{name: str(folder) for name, folder in built.items()}, **paths}
    return paths


def write_task_result(folder: Path, task: str, revision: str, split: str, subsets: list[dict], seconds: float) -> Path:
    """One MTEB result file, built and validated by mteb's ``TaskResult`` (so mteb reads it back as written)."""
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


def _child_tags(cfg: EvaluateRunConfig, root: str, task: str, subset: str, main_score: str) -> dict[str, str]:
    return {
        "run_kind": "benchmark_task",
        "model_name": cfg.model.name,
        "model_id": cfg.model.path or "",
        "benchmark": cfg.benchmark.name,
        "mteb_task": task,
        "hf_subset": subset,
        "main_score_name": main_score,
        "suite_root": root,
    }


def _failed_child(cfg: EvaluateRunConfig, parent: str, root: str, task: str, error: VdrError) -> None:
    tags = _child_tags(cfg, root, task, "-", "-")
    try:
        with tracking.tracked_run(cfg.tracking, f"{task} | {cfg.model.name}", tags, parent, nested=True):
            raise error
    except VdrError:
        pass
    print(f"error: {error}", flush=True)


def run_suite(cfg: EvaluateRunConfig, composed: object, job: JobContext) -> dict[str, float]:
    """Every selected task for this model; returns the suite mean of the main scores as ``main_score``."""
    chosen = mteb_tasks.suite_tasks(cfg.benchmark)
    failures: list[str] = []
    means: list[float] = []
    with steps.start_run(cfg, composed, job) as parent:
        mlflow.set_tag("run_kind", "benchmark")
        mlflow.set_tag("benchmark", cfg.benchmark.name)
        steps.log_config(composed, job.out_dir)
        steps.prepare_fixtures(cfg)
        root = job.parent_run_id or parent
        mlflow.set_tag("suite_root", root)
        local = _local_paths(cfg)
        loaded = steps.load_model(cfg)
        cache = steps.embedding_cache_for(cfg)
        key = steps.cache_key(cfg, loaded) if cache is not None else None  # once: the weights do not change
        model_folder, model_revision = mteb_model_name(cfg)
        for name, message in chosen.unknown.items():
            _failed_child(cfg, parent, root, name, InputError(message))
            failures.append(name)
        for spec in chosen.run:
            multilingual = list(spec.subsets) != ["default"]
            try:
                task = load_task(
                    spec.name, subsets=cfg.benchmark.subsets if multilingual else None, local_path=local.get(spec.name)
                )
            except VdrError as error:
                _failed_child(cfg, parent, root, spec.name, error)
                failures.append(spec.name)
                continue
            subsets, seconds = [], 0.0
            for subset, (protocol, languages) in task.subsets.items():
                tags = _child_tags(cfg, root, spec.name, subset, task.main_score)
                label = spec.name if subset == "default" else f"{spec.name} | {subset}"
                with tracking.tracked_run(cfg.tracking, f"{label} | {cfg.model.name}", tags, parent, nested=True):
                    result = steps.evaluate(cfg, loaded, protocol, dims=cfg.eval.dims, cache=cache, model_key=key)
                    out_dir = job.out_dir / spec.name / subset
                    out_dir.mkdir(parents=True, exist_ok=True)
                    steps.log_evaluation(result, cfg, spec.name, out_dir)
                    mlflow.log_metric("main_score", result.metrics[task.main_score])
                subsets.append(
                    mteb_results.subset_scores(
                        result, main_score=task.main_score, hf_subset=subset, languages=languages
                    )
                )
                seconds += result.evaluation_seconds
            folder = Path(cfg.benchmark.results_dir) / "results" / model_folder / model_revision
            path = write_task_result(folder, spec.name, task.revision, task.split, subsets, seconds)
            mlflow.log_artifact(str(path), artifact_path=f"mteb_results/{model_folder}/{model_revision}")
            means.append(sum(s["main_score"] for s in subsets) / len(subsets))
            log.info("%s: %s %.4f", spec.name, task.main_score, means[-1])
        metrics = {"main_score": sum(means) / len(means)} if means else {}
        if metrics:
            mlflow.log_metrics(metrics)
        mlflow.set_tag("tasks_failed", ", ".join(failures) or "none")
        if job.parent_run_id is None:  # one model on its own: its pivot now (a sweep writes one at its end)
            report.write_for_root(
                tracking.client_for(cfg.tracking),
                cfg.tracking.experiment_name,
                parent,
                name=cfg.benchmark.name,
                out_dir=Path(cfg.paths.leaderboards),
                by_language=cfg.benchmark.by_language,
            )
        if failures:  # the suite run ends FAILED too, so a sweep on any launcher counts it
            raise InputError(
                f"{len(failures)} task(s) of {cfg.benchmark.name} failed: {', '.join(failures)} (see above)"
            )
    return metrics
