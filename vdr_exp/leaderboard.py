"""``python -m vdr_exp.leaderboard`` (``vdr-leaderboard``): MLflow runs -> ranked table, CSV, Markdown, plots.

One row per evaluated model and evaluation setting (dataset, pixel budget, embedding dim), taken from the
latest FINISHED run of that model and setting, so re-running a job replaces its row instead of adding one.
Only FINISHED runs count: a FAILED or KILLED run never reaches a leaderboard.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from vdr_exp.config import CONFIG_MODULE, TrackingConfig, register_configs, tracking_uri
from vdr_exp.errors import LeaderboardError
from vdr_exp.runtime import failures

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from vdr_exp.reports.leaderboard_render import Written
from vdr_exp.tags import BENCHMARK, SUITE_ROOT

# MLflow, pandas and matplotlib are imported once the arguments are parsed: --help and a mistyped flag answer at
# once.


def _project_defaults() -> tuple[TrackingConfig, Path]:
    """The tracking store and leaderboard folder the runs use: read from the configs, not written again here."""
    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose(config_name="evaluate")
    values = OmegaConf.to_container(composed.tracking, resolve=True)
    track = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrackingConfig), values))
    return track, Path(composed.paths.leaderboards)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    track, leaderboards = _project_defaults()
    parser = argparse.ArgumentParser(prog="vdr-leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(track),
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the project's SQLite store)",
    )
    parser.add_argument("--experiment", default=track.experiment_name)
    parser.add_argument("--parent", help="a sweep's parent run id, or 'latest' (optionally with --sweep)")
    parser.add_argument("--sweep", help="only runs of this sweep preset (tag sweep=NAME)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag")
    parser.add_argument(
        "--run-kind",
        choices=("evaluate", "train", "all"),
        default="evaluate",
        help="rank evaluation runs (default), the finetuned models of training runs, or both",
    )
    parser.add_argument("--base", help="model the delta_ndcg_at_10 column is measured against")
    parser.add_argument("--name", help="file name stem (default: the sweep, parent run or experiment)")
    parser.add_argument("--out-dir", type=Path, default=leaderboards, help=f"default: {leaderboards}")
    parser.add_argument("--no-log", action="store_true", help="do not log the outputs to the parent run")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write the sweep report to DIR: report.html (self-contained) and report.md, with its files",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="the benchmark suite pivot of --parent (models x tasks and the suite mean; CSV, Markdown, heatmap)",
    )
    parser.add_argument("--by-language", action="store_true", help="with --suite: one column per task and language")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="per-query comparison of two runs (B against A): which queries improved, which regressed",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then one of: a per-query comparison (--compare), a suite pivot (--suite) or a leaderboard. Any
    error a user can cause is one line and exit 2 (the failure contract); the board is printed last."""
    args = _parse_args(argv)
    try:
        bad = [t for t in args.tag if "=" not in t]
        if bad:
            raise LeaderboardError(f"--tag {bad[0]!r} is not KEY=VALUE")
        client = _client(args)
        if args.compare:
            return _compare(client, args)
        parent = _parent(client, args)
        if args.suite:
            return _suite(client, args, parent)
        result = _board(client, args, parent)
    except Exception as error:  # noqa: BLE001 - the failure contract: one error line, exit 2 (1 for a bug)
        return failures.report(error)
    from vdr_exp.reports.leaderboard import print_board  # loaded by _board already

    print_board(result, args.base)
    return 0


def _client(args: argparse.Namespace) -> MlflowClient:
    """A client of the store the flags name, once the checks that turn a wrong URI, a missing login or a
    mistyped run id into one error line have passed (before anything is read or written)."""
    # MLflow loads only when the board is built: --help stays instant
    from mlflow.tracking import MlflowClient

    from vdr_exp.runs import tracking

    if args.tracking_uri.startswith(("http://", "https://")):
        tracking.check_server(args.tracking_uri)  # a missing or wrong login: one error line
    _check_store(args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri)
    for flag, run_id in [("--compare", r) for r in args.compare or ()] + [("--parent", args.parent)]:
        if run_id and run_id != "latest":
            _check_run(client, flag, run_id)
    return client


def _compare(client: MlflowClient, args: argparse.Namespace) -> int:
    """--compare: which queries run B improved or regressed against run A, as a CSV and one summary line."""
    # MLflow loads only when the board is built: --help stays instant
    from vdr_exp.reports.leaderboard import compare_runs

    path, summary = compare_runs(client, *args.compare, args.out_dir)
    print(f"{summary}\nwrote {path}")
    return 0


def _parent(client: MlflowClient, args: argparse.Namespace) -> str | None:
    """The --parent run id; for ``latest``, the newest sweep parent, named on the console so a reader knows
    which sweep the board is about."""
    # MLflow loads only when the board is built: --help stays instant
    from vdr_exp.reports.leaderboard import latest_parent

    if args.parent != "latest":
        return args.parent
    parent = latest_parent(client, args.experiment, args.sweep)
    picked = client.get_run(parent)
    started = datetime.fromtimestamp(picked.info.start_time / 1000)
    print(f"--parent latest: run {parent} ({picked.info.run_name}, started {started:%Y-%m-%d %H:%M:%S})")
    return parent


def _board(client: MlflowClient, args: argparse.Namespace, parent: str | None) -> tuple[pd.DataFrame, Written]:
    """The leaderboard the filters select, written to --out-dir, logged to the parent (unless --no-log or a
    read-only login) and, with --report, the sweep report beside it."""
    # MLflow loads only when the board is built: --help stays instant
    from vdr_exp.reports.leaderboard import RunFilter, board_for, log_to_run, sweep_name, write, write_report
    from vdr_exp.runs import server_login

    run_filter = RunFilter(
        experiment=args.experiment,
        parent_run_id=parent,
        sweep=None if parent else args.sweep,
        tags=tuple(tuple(t.split("=", 1)) for t in args.tag),
        run_kind=args.run_kind,
    )
    board = board_for(client, run_filter, args.base)
    name = args.name or args.sweep or sweep_name(client, parent) or args.experiment
    written = write(board, args.out_dir, name, args.base)
    if parent and not args.no_log:
        with server_login.unless_read_only(f"logging the leaderboard to run {parent}"):  # a reader's export
            log_to_run(client, parent, written)
    if args.report:
        html = write_report(
            client, board, args.report, name=name, base=args.base, parent_run_id=parent, log=not args.no_log
        )
        written = dataclasses.replace(written, report=html)
    return board, written


def _check_store(uri: str) -> None:
    """Reading a local store that is not there must not create an empty database in its place."""
    if uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not store.is_file():
            raise LeaderboardError(
                f"no MLflow store at {store}; run an experiment first or point --tracking-uri at an existing store."
            )


def _check_run(client: object, flag: str, run_id: str) -> None:
    # MLflow loads only when the board is built: --help stays instant
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        raise LeaderboardError(
            f"{flag} {run_id}: no such run in this store; copy the run id from the MLflow UI (or use --parent latest)."
        ) from None


def _suite(client: object, args: argparse.Namespace, parent: str | None) -> int:
    # MLflow loads only when the board is built: --help stays instant
    from vdr_exp.suites import report

    if not parent:
        raise LeaderboardError("--suite needs --parent (a benchmark run or a benchmark sweep's parent, or 'latest')")
    name = args.name or _benchmark_name(client, parent)
    files = report.write_for_root(
        client,
        args.experiment,
        parent,
        name=name,
        out_dir=args.out_dir,
        by_language=args.by_language,
        log=not args.no_log,
    )
    if files is None:
        raise LeaderboardError(f"no FINISHED benchmark task runs under run {parent}")
    return 0


def _benchmark_name(client: object, parent: str) -> str:
    """The benchmark's name, from the parent run or, for a sweep's parent, from one of its task runs."""
    # MLflow loads only when the board is built: --help stays instant
    from vdr_exp.runs.tracking import tag_equals

    run = client.get_run(parent)
    if run.data.tags.get(BENCHMARK):
        return run.data.tags[BENCHMARK]
    child = client.search_runs([run.info.experiment_id], tag_equals(SUITE_ROOT, parent), max_results=1)
    return child[0].data.tags.get(BENCHMARK, parent[:8]) if child else parent[:8]


if __name__ == "__main__":
    raise SystemExit(main())
