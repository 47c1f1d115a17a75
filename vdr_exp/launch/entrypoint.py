"""What every entry point shares: the Hydra context a job needs, dry runs, skips, and clean exits on user errors."""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Callable
from typing import TypeVar

import datasets
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vdr_exp.config import BenchmarkConfig, TrackingConfig, flatten, keys_with
from vdr_exp.errors import ConfigError
from vdr_exp.runs import completed, job_spec, preemption, tracking
from vdr_exp.runtime import console, failures, interrupts, job_context, redact
from vdr_exp.runtime.job_context import JobContext
from vdr_exp.runtime.names import printable, utf8
from vdr_exp.suites import mteb_tasks
from vdr_exp.tags import CONFIG_FINGERPRINT, HYDRA_JOB_NUM, HYDRA_OVERRIDES, RUN_KIND

RunConfig = TypeVar("RunConfig")

log = logging.getLogger(__name__)


def summary_line(composed: DictConfig, job: JobContext) -> str:
    """One job in one line: model, hub id, architecture, published NDCG@10, check level, pixel budget."""
    model, pixels = composed.model, composed.pixels
    published = model.get("published_ndcg_at_10")
    budget = f"pixels={pixels.name} ({pixels.min_pixels}..{pixels.max_pixels})"
    fields = [
        f"[dry run] job #{job.job_num if job.job_num is not None else 0}: {model.name}",
        model.path or "(from a training run)",
        model.get("architecture") or "architecture ?",
        f"published NDCG@10 {published:.3f}" if published is not None else "published NDCG@10 -",
        f"check={model.check}",
        budget if model.get("use_pixel_budget", True) else "pixels=its own processor settings",
    ]
    if model.get("unsupported"):
        fields.append(f"UNSUPPORTED as published: {model.unsupported}")
    return " | ".join(str(f) for f in fields)


def describe_job(composed: DictConfig, job: JobContext) -> str:
    """The resolved values of one job, one ``key=value`` per line, for dry runs and logs; with
    ``sweep.dry_run_summary`` one line (:func:`summary_line`)."""
    if OmegaConf.select(composed, "benchmark.suite") or OmegaConf.select(composed, "benchmark.tasks"):
        values = OmegaConf.to_container(composed.benchmark, resolve=True)
        suite = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BenchmarkConfig), values))
        return "\n".join([summary_line(composed, job), *mteb_tasks.describe(suite)])
    if OmegaConf.select(composed, "sweep.dry_run_summary"):
        return summary_line(composed, job)
    header = "[dry run] job" + (f" #{job.job_num}" if job.job_num is not None else "")
    header += f": {' '.join(redact.redact_overrides(job.overrides)) or '(no overrides)'}"
    tree = redact.recorded_tree(composed)
    lines = [header]
    for section in keys_with("section"):  # what decides the result; the rest is in `--cfg job`
        if section in tree:
            lines += [f"  {key}={value}" for key, value in flatten({section: tree[section]}).items()]
    return "\n".join(lines)


Job = Callable[[job_spec.JobSpec], dict[str, float]]


def quiet_libraries() -> None:
    """Progress bars of every library would drown the run log; metrics go to MLflow instead (the environment
    they read at import is set by :mod:`vdr_exp.runtime.console`)."""
    console.set_library_environment()
    try:
        # transformers loads only when a job runs: --help stays instant
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _quiet_datasets() -> None:
    """datasets passes ``disable=`` to its bars itself (TQDM_DISABLE does not reach them) and reads its env var
    at import, which may have happened already: switched off through its API once the job is imported."""
    if not console.interactive():
        datasets.disable_progress_bars()


# Modules a config may name as a ``_target_`` (Hydra callbacks, launchers, sweepers, any future instantiation).
ALLOWED_TARGET_PREFIXES = ("vdr_exp.", "hydra.", "hydra_plugins.", "sentence_transformers.")


def check_targets(tree: object, where: str = "") -> None:
    """Refuse configs that point ``_target_`` outside the allowlist: a config is data, not a way to run code."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "_target_" and not str(value).startswith(ALLOWED_TARGET_PREFIXES):
                raise ConfigError(
                    f"{where}_target_={value!r} is outside the allowed modules {list(ALLOWED_TARGET_PREFIXES)}; "
                    "remove it or add the module to vdr_exp.launch.entrypoint.ALLOWED_TARGET_PREFIXES."
                )
            check_targets(value, f"{where}{key}.")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            check_targets(value, f"{where}{index}.")


TARGET_IN_OVERRIDE = re.compile(r"_target_['\"]?\s*[:=]\s*['\"]?(?P<target>[^\s,'\"}\]]+)")


def refuse_unsafe_overrides(argv: list[str]) -> None:
    """Hydra instantiates ``hydra.callbacks`` (and launchers, sweepers) before our job sees the config, so a
    ``_target_`` given on the command line is checked here, before Hydra starts: nothing outside the
    allowlist is ever constructed. Exits 2 with one ``error:`` line."""
    for arg in argv:
        for match in TARGET_IN_OVERRIDE.finditer(arg):
            try:
                check_targets({"_target_": match["target"]}, f"{arg.split('=', 1)[0].lstrip('+~')}.")
            except ConfigError as error:
                print(f"error: {error}", file=sys.stderr)
                raise SystemExit(2) from None


def check_text(cfg: object) -> None:
    """Every config value is text the run can store: a path quoted on the command line may hold a folder's bytes
    that are not UTF-8, which MLflow, config.yaml and the CSVs cannot hold. Refused naming the key, escaped."""
    for key, value in flatten(dataclasses.asdict(cfg)).items():
        if utf8(value) != value:
            raise ConfigError(
                f"{key}='{printable(value)}' is not valid UTF-8 (bytes another encoding wrote); rename it "
                "(e.g. `convmv -f latin1 -t utf8`) or point at a symlink with a UTF-8 name. Files inside a "
                "dataset folder may have any name."
            )


def record_failure(composed: DictConfig, context: JobContext, error: BaseException, name: str) -> None:
    """A job that stops before its run opened (a config that fails validation, a ``model.from_run`` that does
    not resolve, a signal while the model loads) still leaves a FAILED (KILLED on a signal) run saying why."""
    try:
        values = OmegaConf.to_container(composed.tracking, resolve=True)
        track = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrackingConfig), values))
        tags = {
            RUN_KIND: str(composed.get("run_kind", "?")),
            HYDRA_OVERRIDES: " ".join(redact.redact_overrides(context.overrides)) or "(none)",
        }
        if context.job_num is not None:
            tags[HYDRA_JOB_NUM] = str(context.job_num)
        if context.fingerprint:
            tags[CONFIG_FINGERPRINT] = context.fingerprint
        with tracking.tracked_run(track, name, tags, context.parent_run_id):
            raise error
    except BaseException as failure:  # noqa: BLE001 - never hide the job's error behind a tracking error
        if failure is not error:
            log.info("could not record the failed run: %s", redact.redact_text(str(failure)))


def run_job(
    composed: DictConfig, load: Callable[[DictConfig], RunConfig], import_job: Callable[[], Job]
) -> float | None:
    """Validate ``composed`` with ``load``, then run the job in Hydra's run directory; return the config's
    ``optimized_metric`` (NDCG@10 by default) for sweepers.

    ``import_job`` imports the job only when there is something to run: dry runs and config errors
    answer in seconds instead of paying for torch and Sentence Transformers.
    """
    quiet_libraries()
    redact.redact_logs()
    context = job_context.from_hydra()
    try:
        try:
            check_targets(OmegaConf.to_container(composed, resolve=False))
            check_targets(OmegaConf.to_container(HydraConfig.get().callbacks, resolve=False), "hydra.callbacks.")
            cfg = load(composed)
            check_text(cfg)
        except ConfigError as error:
            error.vdr_run_name = "invalid-config"
            raise
        if cfg.dry_run:
            print(describe_job(composed, context), flush=True)
            return 0.0  # optimising sweepers (Optuna) need a finite number to go on proposing trials
        with interrupts.watched():  # a signal in any phase (load, encode, train, save, log) ends the run KILLED
            return _run(cfg, composed, context, import_job)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - the failure contract: a recorded run and one line
        return _failed(error, composed, context, dry_run=bool(composed.get("dry_run")))


def _run(cfg: RunConfig, composed: DictConfig, context: JobContext, import_job: Callable[[], Job]) -> float | None:
    """Skip what is done (in a sweep), else run the job on its spec; its optimised metric."""
    spec = job_spec.build(cfg, composed, context)  # the model reference resolved here, once
    if spec.context.parent_run_id and not cfg.force:  # part of a sweep: skip what is already done
        done = completed.find_finished(cfg.tracking, spec.context.fingerprint, cfg.run_kind)
        if done is not None:
            completed.record_skip(cfg.tracking, spec.context.parent_run_id, spec.context.job_num, done)
            print(f"skipped: identical config already FINISHED as run {done.info.run_id} (force=true reruns)")
            return done.data.metrics.get(cfg.optimized_metric)
    job = import_job()
    _quiet_datasets()
    return _optimized(job(spec), cfg.optimized_metric)


def _failed(error: BaseException, composed: DictConfig, context: JobContext, *, dry_run: bool) -> None:
    """Any failure of a job: a FAILED (KILLED) run if none recorded it yet, one ``error:`` line, and the exit.
    In a sweep a failed job does not cost the others their turn: the sweep ends non-zero after its last job."""
    # A SLURM preemption: the checkpoint is saved and the run ended KILLED. Requeued, the job resumes it;
    # exiting without a result keeps the launcher (submitit) waiting for that second start.
    if isinstance(error, preemption.Preempted) and preemption.requeue():
        print(f"preempted: {error}; requeued", file=sys.stderr)
        raise SystemExit(0) from None
    if not dry_run and not getattr(error, "vdr_run_id", None):
        record_failure(composed, context, error, getattr(error, "vdr_run_name", None) or "failed-before-start")
    if context.job_num is None or isinstance(error, KeyboardInterrupt):
        raise SystemExit(failures.report(error)) from None
    failures.report(error)  # once; the run's `error` tag and error.txt hold it too
    job_context.record_failed_job(context, failures.describe(error).message)  # the sweep's end reads it
    return None  # the Optuna sweeper records a trial without a value as failed and goes on


def _optimized(metrics: dict[str, float], name: str) -> float | None:
    if name not in metrics and "main_score" in metrics:  # a benchmark suite: its own main score is what it ranks by
        return metrics["main_score"]
    if metrics and name not in metrics:
        log.warning("optimized_metric=%s is not among this job's metrics (%s)", name, ", ".join(sorted(metrics)))
    return metrics.get(name)
