"""MLflow runs -> ranked leaderboard table, CSV, Markdown and plots (the CLI is :mod:`vdr_exp.leaderboard`).

One row per evaluated model and evaluation setting (dataset, pixel budget, embedding dim), taken from the
latest FINISHED run of that model and setting, so re-running a job replaces its row instead of adding one.
Only FINISHED runs count: a FAILED or KILLED run never reaches a leaderboard.

This module joins three parts and is what the CLI, the sweep callbacks and the reports call: fetching
(:mod:`leaderboard_runs`: MLflow -> rows), the pure table (:mod:`leaderboard_table`: rows -> board) and
rendering (:mod:`leaderboard_render`: board -> CSV, Markdown, plots). Their names are re-exported here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from vdr_exp.config import TrackingConfig
from vdr_exp.errors import LeaderboardError
from vdr_exp.reports import leaderboard_runs, sweep_report
from vdr_exp.reports.board_markdown import pivot, to_markdown
from vdr_exp.reports.leaderboard_render import Written, print_board, write
from vdr_exp.reports.leaderboard_runs import (
    RunFilter,
    fetch_runs,
    latest_parent,
    per_query,
    row_scores,
    runs_to_rows,
    sweep_name,
)
from vdr_exp.reports.leaderboard_table import (
    COLUMNS,
    SETTING,
    add_intervals,
    build,
    compare_queries,
    compare_summary,
    plain_rows,
)
from vdr_exp.reports.seed_groups import RUN_IDS
from vdr_exp.runs import tracking
from vdr_exp.runtime import csv_safe

__all__ = [
    "COLUMNS",
    "SETTING",
    "RunFilter",
    "Written",
    "add_significance",
    "board_for",
    "build",
    "compare_runs",
    "fetch_runs",
    "for_parent_run",
    "latest_parent",
    "log_to_run",
    "per_query",
    "pivot",
    "print_board",
    "row_scores",
    "runs_to_rows",
    "sweep_name",
    "to_markdown",
    "write",
    "write_report",
]


def add_significance(board: pd.DataFrame, client: MlflowClient, base: str | None) -> pd.DataFrame:
    """The intervals and tests of :func:`leaderboard_table.add_intervals`, from the runs' per_query.csv."""
    plain = board.loc[plain_rows(board), RUN_IDS]
    return add_intervals(board, leaderboard_runs.score_matrices(client, plain), base)


def board_for(client: MlflowClient, run_filter: RunFilter, base: str | None) -> pd.DataFrame:
    """Query -> table: the FINISHED runs as rows (over their seeds), the failed members of their seed groups
    named, the intervals and tests against ``base``."""
    runs = fetch_runs(client, run_filter)
    experiment_ids = sorted({r.info.experiment_id for r in runs})
    failed = leaderboard_runs.failed_seed_runs(client, experiment_ids, run_filter.parent_run_id)
    expected = leaderboard_runs.expected_seeds(client, run_filter.parent_run_id)
    board = build(runs_to_rows(runs), base, failed, expected)
    return add_significance(board, client, base)


def log_to_run(client: MlflowClient, run_id: str, written: Written) -> None:
    for path in written.paths():
        client.log_artifact(run_id, str(path), artifact_path="leaderboard")


def for_parent_run(
    track: TrackingConfig,
    parent_run_id: str,
    *,
    name: str | None,
    base: str | None,
    run_kind: str = "evaluate",
    out_dir: Path,
) -> tuple[pd.DataFrame, Written]:
    """The leaderboard of one sweep, written to ``out_dir`` and logged to its parent run."""
    client = tracking.client_for(track)
    run_filter = RunFilter(experiment=track.experiment_name, parent_run_id=parent_run_id, run_kind=run_kind)
    board = board_for(client, run_filter, base)
    stem = name or f"sweep-{parent_run_id[:8]}"
    written = write(board, out_dir, stem, base)
    log_to_run(client, parent_run_id, written)
    report = write_report(client, board, out_dir / f"{stem}_report", name=stem, base=base, parent_run_id=parent_run_id)
    return board, dataclasses.replace(written, report=report)


def write_report(
    client: MlflowClient,
    board: pd.DataFrame,
    out_dir: Path,
    *,
    name: str,
    base: str | None,
    parent_run_id: str | None,
    log: bool = True,
) -> Path:
    """The sweep report (:mod:`vdr_exp.reports.sweep_report`) in ``out_dir``, logged to the parent as ``report/``."""
    report = sweep_report.write(client, board, out_dir, name=name, base=base, parent_run_id=parent_run_id)
    if parent_run_id and log:
        client.log_artifacts(parent_run_id, str(out_dir), artifact_path="report")
    return report.html


def compare_runs(client: MlflowClient, run_a: str, run_b: str, out_dir: Path) -> tuple[Path, str]:
    """Query by query, run B against run A: a CSV of which queries improved or regressed, and a summary line."""
    cache: dict[str, pd.DataFrame | None] = {}
    tables = {run: per_query(client, run, cache) for run in (run_a, run_b)}
    missing = [run for run, table in tables.items() if table is None]
    if missing:
        raise LeaderboardError(f"run {missing[0]} has no per_query.csv; compare two evaluation or training runs.")
    joined, result = compare_queries(tables[run_a], tables[run_b], run_a, run_b)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"compare_{run_a[:8]}_vs_{run_b[:8]}.csv"
    csv_safe.write_csv(joined, path)
    return path, compare_summary(joined, result, run_a, run_b)
