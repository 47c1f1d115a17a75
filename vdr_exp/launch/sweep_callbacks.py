"""Hydra callback that gives every multirun one MLflow parent run, its prerequisites and its leaderboard.

Hydra calls ``on_multirun_start`` in the launching process before any job starts and ``on_multirun_end``
after the last one returns. The parent run is created with the client API (not as the fluent "active" run)
so in-process jobs of the basic launcher start their own runs freely; its id reaches every job through an
environment variable, which worker processes and cluster jobs inherit from the launcher.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from vdr_exp.config import SweepConfig, TrackingConfig, keys_with
from vdr_exp.errors import LeaderboardError, VdrError
from vdr_exp.launch import seed_sweeper
from vdr_exp.reports import leaderboard
from vdr_exp.runs import seeds, server_login, sweep_outcome, sweep_views, tracking
from vdr_exp.runtime import failures, redact
from vdr_exp.runtime.job_context import PARENT_RUN_ENV, SWEEP_KEYS_ENV, clear_failed_jobs, failed_jobs, override_key
from vdr_exp.suites import report
from vdr_exp.tags import (
    ENTRY_POINT,
    ERROR,
    GIT_COMMIT,
    HYDRA_OVERRIDES,
    RUN_KIND,
    SEEDS,
    SWEEP,
    SWEEP_DIR,
    SWEEP_PARAMS,
    RunKind,
)

log = logging.getLogger(__name__)


def _typed(config: DictConfig, key: str, schema: type) -> Any:
    """One section as its dataclass, resolved in the whole config (its paths interpolate ``paths``)."""
    values = OmegaConf.to_container(config[key], resolve=True)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))


def sweep_keys(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """Keys the jobs differ by: swept on the command line (``a,b``, ``range()``...) or in the preset."""
    parsed = OverridesParser.create().parse_overrides(task_overrides)
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    keys += [k for k in (sweeper_params or {}) if k not in keys]
    return keys


class MlflowParentRun(Callback):
    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.parent_run_id: str | None = None
        self.entry_kind = "evaluate"
        self.interrupted = False
        self.seeds: int | None = None
        self.view_keys: list[str] = []  # the params the sweep's saved view shows (what its jobs vary)
        self.view_url = ""
        self._previous_sigint = signal.default_int_handler

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._guarded(self._start, config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._guarded(self._finish, config)

    def _guarded(self, step: Any, config: DictConfig) -> None:
        """Hydra turns a callback's exception into a warning, and the sweep would exit 0 with its parent RUNNING:
        a failure here (a full disk under the store or the leaderboards) ends the parent FAILED, one line, exit 2."""
        try:
            step(config)
        except Exception as error:  # noqa: BLE001 - the failure contract, as for a job
            failure = failures.describe(error)
            self._end("FAILED", failure.message)
            print(failure.line, file=sys.stderr, flush=True)
            raise SystemExit(failure.exit_code) from None

    def _start(self, config: DictConfig) -> None:
        redact.redact_logs()  # Hydra logs each job's overrides when it launches them
        sweep: SweepConfig = _typed(config, "sweep", SweepConfig)
        task_overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)  # ${oc.env:..} as written
        keys = sweep_keys(task_overrides, OmegaConf.select(config, "hydra.sweeper.params"))
        os.environ[SWEEP_KEYS_ENV] = ",".join(keys)
        self.entry_kind = str(config.get("run_kind", "evaluate"))
        clear_failed_jobs(Path(config.hydra.sweep.dir))
        self._plan_seeds(config)
        if config.get("dry_run"):
            print(f"[dry run] sweep {sweep.name or '(command line)'}: varying {', '.join(keys) or 'nothing'}")
            for overrides in self._train_first_commands(sweep, task_overrides, Path(config.hydra.sweep.dir)):
                print("[dry run] first trains: python -m vdr_exp.train " + " ".join(redact.redact_overrides(overrides)))
            return

        track: TrackingConfig = _typed(config, "tracking", TrackingConfig)
        try:
            self.client = tracking.client_for(track)
            experiment_id = tracking.ensure_experiment(self.client, track)
        except VdrError as error:  # e.g. no tracking server: say so once, before any job starts
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        tags = {
            RUN_KIND: str(RunKind.sweep),
            SWEEP: sweep.name or "(command line)",
            SWEEP_DIR: str(sweep_dir),
            SWEEP_PARAMS: ", ".join(keys),
            HYDRA_OVERRIDES: " ".join(redact.redact_overrides(task_overrides)) or "(none)",
            ENTRY_POINT: f"vdr_exp.{self.entry_kind}",
            GIT_COMMIT: tracking.git_commit(Path.cwd()),
        }
        if self.seeds and seed_sweeper.trains_anything(config):
            tags[SEEDS] = str(self.seeds)  # leaderboards count each seed group against it
        # Parents of reruns of one preset differ by their start time, first in the name.
        name = f"{sweep.name or 'multirun'} {time.strftime('%m-%d %H:%M:%S')} (sweep)"
        try:
            with server_login.may_log_to(track.experiment_name, track.tracking_uri):
                run = self.client.create_run(experiment_id, run_name=name, tags=tags)
        except VdrError as error:  # a user who may only read the experiment: once, before any job starts
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        self.parent_run_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        atexit.register(self._end_if_unfinished)  # a job that raises ends the sweep before on_multirun_end
        self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigint)  # preemption, `timeout`, `docker stop`: as Ctrl-C
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / "mlflow_parent_run_id").write_text(self.parent_run_id + "\n")
        sweeper = redact.redact_tree(OmegaConf.to_container(config.hydra.sweeper, resolve=False))  # as written
        self.client.log_text(self.parent_run_id, OmegaConf.to_yaml(OmegaConf.create(sweeper)), "sweeper.yaml")
        print(f"MLflow parent run {self.parent_run_id} (sweep {sweep.name or 'multirun'}, {sweep_dir})", flush=True)
        self.view_keys = sweep_views.param_keys(config, keys)
        dims, ui = sweep_views.config_dims(config), tracking.ui_url(track)
        self.view_url = sweep_views.open_view(self.client, self.parent_run_id, self.view_keys, dims, ui)
        print(f"its runs in the MLflow UI: {self.view_url}", flush=True)

        for overrides in self._train_first_commands(sweep, task_overrides, sweep_dir):
            self._train(overrides)

    def _plan_seeds(self, config: DictConfig) -> None:
        """``seeds=N``: the sweeper repeats every training job once per seed (vdr_exp.runs.seeds); a sweep that
        only evaluates has nothing to repeat, and says so."""
        count = seed_sweeper.requested(config)
        self.seeds = count
        if not count:
            return
        if not seed_sweeper.trains_anything(config):
            print(
                f"note: seeds={count} repeats training jobs only; this sweep only evaluates (deterministic), "
                "so nothing is repeated.",
                flush=True,
            )
            return
        try:
            seed_sweeper.install(config)
        except VdrError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    def _train_first_commands(self, sweep: SweepConfig, task_overrides: list[str], sweep_dir: Path) -> list[list[str]]:
        # Overrides that say where things live (stores, paths, fixtures) go to the prerequisite trainings too.
        # force=true reruns the prerequisite trainings too, not only the sweep's own jobs.
        passed_on = (*keys_with("location"), "force")
        locations = [o for o in task_overrides if override_key(o).split(".")[0] in passed_on]
        commands = [[*overrides, *locations] for overrides in sweep.train_first]
        if self.seeds:  # each prerequisite training once per seed
            values = seed_sweeper.train_first_seeds_of(sweep.train_first, self.seeds)
            commands = [seeds.with_seed(c, seeds.TRAIN_SEED_KEY, s) for c in commands for s in values]
        return [[*c, f"hydra.run.dir={sweep_dir / f'train_first_{i}'}"] for i, c in enumerate(commands)]

    def _train(self, overrides: list[str]) -> None:
        """A prerequisite training, run exactly as a user would run it; it becomes a child of the parent."""
        print("training first: python -m vdr_exp.train " + " ".join(redact.redact_overrides(overrides)), flush=True)
        env = {k: v for k, v in os.environ.items() if k != SWEEP_KEYS_ENV}
        done = subprocess.run([sys.executable, "-m", "vdr_exp.train", *overrides], env=env)
        if done.returncode != 0:
            self._end("FAILED", f"prerequisite training failed (exit {done.returncode}): {' '.join(overrides)}")
            raise SystemExit(done.returncode)

    def _finish(self, config: DictConfig) -> None:
        os.environ.pop(SWEEP_KEYS_ENV, None)
        if self.parent_run_id is None:  # a dry run: no runs, but bad configs still fail the command
            self._exit_if_jobs_failed(failed_jobs(Path(config.hydra.sweep.dir)))
            return

        # The outcome first, before the leaderboard and descriptions: on a store that cannot grow they may not
        # fit, and the parent's status must (it is written again, with the error, at the end).
        failed = sweep_outcome.failed_children(self.client, self.parent_run_id) or failed_jobs(
            Path(config.hydra.sweep.dir)
        )
        tracking.terminate(self.parent_run_id, "FAILED" if failed else "FINISHED", self.client)
        sweep: SweepConfig = _typed(config, "sweep", SweepConfig)
        track: TrackingConfig = _typed(config, "tracking", TrackingConfig)
        if OmegaConf.select(config, "benchmark.suite") or OmegaConf.select(config, "benchmark.tasks"):
            self._suite_board(config, track, failed)
            return
        try:
            board = leaderboard.for_parent_run(
                track,
                self.parent_run_id,
                name=sweep.name,
                base=sweep.leaderboard_base,
                run_kind=self.entry_kind,
                out_dir=Path(OmegaConf.select(config, "paths.leaderboards")),
            )
            leaderboard.print_board(board, sweep.leaderboard_base)
            self._describe(board, sweep.leaderboard_base, config, track)
        except LeaderboardError as error:  # e.g. every job was a dry run or logged nothing
            log.warning("no leaderboard for this sweep: %s", error)
        sweep_outcome.log_summary(self.client, self.parent_run_id)
        self._exit_if_jobs_failed(failed)
        self._end("FINISHED")

    def _describe(self, result: tuple, base: str | None, config: DictConfig, track: TrackingConfig) -> None:
        """The parent's Overview shows the leaderboard, each job one line; the URL of the sweep's view last."""
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)  # ${oc.env:..} as written
        multirun = ["-m"] if sweep_keys(overrides, None) else []  # a preset sets multirun mode itself
        command = ["python", "-m", f"vdr_exp.{self.entry_kind}", *multirun, *redact.redact_overrides(overrides)]
        markdown = leaderboard.to_markdown(result[0], base)
        try:
            self.view_url = sweep_views.describe_sweep(
                self.client, self.parent_run_id, result, leaderboard_md=markdown, base=base, command=command,
                keys=self.view_keys, ui=tracking.ui_url(track),
            )  # fmt: skip
        except MlflowException as error:  # descriptions are for reading: the sweep's outcome stands without them
            log.warning("could not write the sweep's descriptions to MLflow: %s", error)
        print(f"\nCompare the runs in the MLflow UI (`make ui` serves a local store):\n  {self.view_url}\n", flush=True)

    def _suite_board(self, config: DictConfig, track: TrackingConfig, failed: list[str]) -> None:
        """A benchmark over several models: one suite pivot (models x tasks) for the whole sweep."""
        name = str(OmegaConf.select(config, "benchmark.name"))
        try:
            report.write_for_root(
                self.client,
                track.experiment_name,
                self.parent_run_id,
                name=name,
                out_dir=Path(OmegaConf.select(config, "paths.leaderboards")),
                by_language=bool(OmegaConf.select(config, "benchmark.by_language")),
            )
        except Exception as error:  # noqa: BLE001 - the parent run must still end, with the jobs' outcome
            log.warning("no suite leaderboard for this sweep: %s", error)
        print(f"\nIts runs in the MLflow UI (`make ui` serves a local store):\n  {self.view_url}\n", flush=True)
        sweep_outcome.log_summary(self.client, self.parent_run_id)
        self._exit_if_jobs_failed(failed)
        self._end("FINISHED")

    def _exit_if_jobs_failed(self, failed: list[str]) -> None:
        if not failed:
            return
        message = f"{len(failed)} job(s) of this sweep failed; the others ran. " + " | ".join(failed[:3])
        self._end("FAILED", message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)

    def _end(self, status: str, error: str | None = None) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        # The status first: on a full disk the error tag may not fit, and the parent must not stay RUNNING.
        if not tracking.terminate(self.parent_run_id, status, self.client):
            log.warning("the sweep's parent run %s is left RUNNING: its end could not be written", self.parent_run_id)
        if error:
            try:
                self.client.set_tag(self.parent_run_id, ERROR, error[:5000])
            except MlflowException as failure:
                log.info("could not record the sweep's error on its parent run: %s", failure)
        os.environ.pop(PARENT_RUN_ENV, None)
        signal.signal(signal.SIGINT, self._previous_sigint)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.parent_run_id = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C or SIGTERM: remember it, so the parent ends KILLED rather than FAILED; then interrupt."""
        self.interrupted = True
        signal.signal(signal.SIGINT, self._previous_sigint)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    def _end_if_unfinished(self) -> None:
        if self.parent_run_id is None:
            return
        if self.interrupted:
            self._end("KILLED", "the sweep was interrupted (Ctrl-C or SIGTERM)")
        else:
            self._end("FAILED", "a job of this sweep failed; see its child run")
