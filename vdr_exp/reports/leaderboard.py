"""MLflow runs -> ranked leaderboard table, CSV, Markdown and plots (the CLI is :mod:`vdr_exp.leaderboard`).

One row per evaluated model and evaluation setting (dataset, pixel budget, embedding dim), taken from the
latest FINISHED run of that model and setting, so re-running a job replaces its row instead of adding one.
Only FINISHED runs count: a FAILED or KILLED run never reaches a leaderboard.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from vdr_exp import extras
from vdr_exp.config import TrackingConfig, keys_with
from vdr_exp.errors import LeaderboardError
from vdr_exp.reports import seed_groups, statistics
from vdr_exp.reports.board_markdown import pivot, to_markdown  # noqa: F401 - part of this module's interface
from vdr_exp.retrieval.metrics import DIM_METRICS
from vdr_exp.runs import tracking
from vdr_exp.runtime import csv_safe

log = logging.getLogger(__name__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # per_query.csv downloads: no bars

# "full" compares every model at its own native width (2048 for the 2B, 4096 for the 8B); a number compares
# them all truncated to that width (Matryoshka).
SETTING = ["dataset", "pixel_budget", "width"]
COLUMNS = [
    "rank",
    "model",
    "kind",
    "params",
    "trainable_params",
    "published_params",
    "ndcg_at_10",
    "delta_ndcg_at_10",
    # Paired over the queries both runs scored (vdr_exp.reports.statistics): 95% bootstrap CI, randomization p.
    "delta_ci95_low",
    "delta_ci95_high",
    "p_value",
    "n_queries",
    # Over training seeds (vdr_exp.reports.seed_groups): n of the expected seeds, spread, the score's own CI.
    *seed_groups.SEED_COLUMNS[:-1],
    "ndcg_ci95_low",
    "ndcg_ci95_high",
    "mrr_at_10",
    "map_at_100",
    "recall_at_10",
    "published_ndcg_at_10",
    # Published vs reproduced: the difference, and whether the published figure lies in the score's 95% CI.
    "published_delta",
    "published_in_ci",
    "published_source",
    "width",
    "dim",
    "pixel_budget",
    "dataset",
    "model_id",
    "run_kind",
    "run_id",
    "start_time",
    *seed_groups.STD_COLUMNS,
    "seed_group",
    seed_groups.RUN_IDS,
    "missing_seeds",
]
# Sweep keys that are already columns of their own; any other swept key becomes part of the model label.
DIM_METRIC = re.compile(r"^ndcg_at_10_dim_(\d+)$")


@dataclass(frozen=True)
class RunFilter:
    experiment: str = "vdr"
    parent_run_id: str | None = None
    sweep: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # "evaluate" (models as evaluated), "train" (finetuned models, one per training run) or "all".
    run_kind: str = "evaluate"

    def mlflow_filter(self) -> str:
        clauses = ["attributes.status = 'FINISHED'"]
        if self.run_kind in ("evaluate", "train"):
            clauses.append(tracking.tag_equals("run_kind", self.run_kind))
        if self.parent_run_id:
            clauses.append(tracking.tag_equals("mlflow.parentRunId", self.parent_run_id))
        if self.sweep:
            clauses.append(tracking.tag_equals("sweep", self.sweep))
        clauses += [tracking.tag_equals(key, value) for key, value in self.tags]
        return " and ".join(clauses)


def fetch_runs(client: MlflowClient, run_filter: RunFilter) -> list[Run]:
    experiment = client.get_experiment_by_name(run_filter.experiment)
    if experiment is None:
        raise LeaderboardError(
            f"experiment {run_filter.experiment!r} is not in this store; pass --experiment or --tracking-uri."
        )
    runs = client.search_runs([experiment.experiment_id], run_filter.mlflow_filter(), max_results=50_000)
    seen = {r.info.run_id for r in runs}
    if run_filter.parent_run_id:  # jobs the sweep skipped count with the FINISHED runs they matched
        runs += _skipped_runs(client, run_filter.parent_run_id, run_filter, seen)
    elif run_filter.sweep:  # every parent of that preset: its skipped jobs are part of what it listed
        clauses = [tracking.tag_equals("run_kind", "sweep"), tracking.tag_equals("sweep", run_filter.sweep)]
        for parent in client.search_runs([experiment.experiment_id], " and ".join(clauses), max_results=50_000):
            runs += _skipped_runs(client, parent.info.run_id, run_filter, seen)
    runs = [r for r in runs if r.data.tags.get("run_kind") in ("evaluate", "train")]  # never sweep parents
    if not runs:
        raise LeaderboardError(
            f"no FINISHED runs match {run_filter.mlflow_filter()!r} in experiment {run_filter.experiment!r}; "
            "check --parent/--sweep/--tag/--run-kind (training sweeps need --run-kind train)."
        )
    return runs


def _skipped_runs(client: MlflowClient, parent_run_id: str, run_filter: RunFilter, seen: set[str]) -> list[Run]:
    parent = client.get_run(parent_run_id)
    found = []
    for key, run_id in parent.data.tags.items():
        if key.startswith("skipped.") and run_id not in seen:
            run = client.get_run(run_id)
            kind_ok = run_filter.run_kind == "all" or run.data.tags.get("run_kind") == run_filter.run_kind
            if run.info.status == "FINISHED" and kind_ok:
                found.append(run)
                seen.add(run_id)
    return found


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "None") else math.nan
    except ValueError:
        return math.nan


# Swept keys that are columns of the board (evaluation settings) or the label itself (the model).
_NOT_IN_LABEL = {"model", *keys_with("setting")}


def _label(run: Run) -> str:
    """The model a row is about: the config name, "finetuned" for training runs, plus any other swept key."""
    tags = run.data.tags
    label = tags.get("model_name", "?")
    if tags.get("run_kind") == "train":
        label += " finetuned"
    extra = [p for p in tags.get("sweep_params", "").split() if p.split("=", 1)[0].lstrip("+~") not in _NOT_IN_LABEL]
    return f"{label} [{' '.join(extra)}]" if extra else label


def runs_to_rows(runs: Sequence[Run]) -> pd.DataFrame:
    """One row at the run's full width (headline metrics) plus one per evaluated dim (``*_dim_<d>`` metrics),
    and for a run with a reranker one more row (kind ``reranked``) from its ``rerank_*`` metrics."""
    rows = []
    for run in runs:
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        trained = tags.get("run_kind") == "train"
        common = {
            "model": _label(run),
            "kind": tags.get("family", "single-vector"),
            "params": metrics.get("param_count", math.nan),
            "trainable_params": metrics.get("trainable_params", math.nan),
            "published_params": _float(params.get("model.published_params")),
            # A published score describes the checkpoint as released, not what a training run made of it.
            "published_ndcg_at_10": math.nan if trained else _float(params.get("model.published_ndcg_at_10")),
            "published_source": None if trained else params.get("model.published_source"),
            "seed": tags.get(seed_groups.SEED_TAG),
            "seed_group": tags.get(seed_groups.SEED_GROUP_TAG),
            "pixel_budget": tags.get("pixel_budget"),
            "dataset": tags.get("dataset"),
            "model_id": tags.get("model_id"),
            "run_kind": tags.get("run_kind"),
            "run_id": run.info.run_id,
            "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
        }
        full = int(_float(tags.get("embedding_dim"))) if tags.get("embedding_dim") else None
        dims = sorted({int(m.group(1)) for key in metrics if (m := DIM_METRIC.match(key))}, reverse=True)
        if full is None:
            full = dims[0] if dims else 0
        rows.append({**common, "width": "full", "dim": full, **{m: metrics.get(m, math.nan) for m in DIM_METRICS}})
        for dim in dims if len(dims) > 1 else []:  # a lone dim is the full width again
            values = {m: metrics.get(f"{m}_dim_{dim}", math.nan) for m in DIM_METRICS}
            rows.append({**common, "width": str(dim), "dim": dim, **values})
        if "rerank_ndcg_at_10" in metrics:
            reranked = {m: metrics.get(f"rerank_{m}", math.nan) for m in DIM_METRICS}
            label = f"{common['model']} + reranker (top {tags.get('rerank_top_k', '?')})"
            rows.append({**common, "model": label, "kind": "reranked", "width": "full", "dim": full, **reranked})
    return pd.DataFrame(rows)


def build(
    rows: pd.DataFrame, base: str | None = None, failed: Sequence[Run] = (), expected_seeds: int | None = None
) -> pd.DataFrame:
    """Latest run per model and setting (over its seeds: the latest run of each, see :mod:`seed_groups`),
    ranked by NDCG@10 within its setting, with the delta to ``base``. ``failed``: FAILED runs of seed groups,
    named on their rows; ``expected_seeds``: the seeds a sweep asked for."""
    latest = seed_groups.mark_missing(seed_groups.aggregate(rows, SETTING), list(failed), expected_seeds)
    order = latest.assign(_width=latest["width"].map(lambda w: math.inf if w == "full" else int(w)))
    board = order.sort_values(
        ["dataset", "pixel_budget", "_width", "ndcg_at_10"], ascending=[True, True, False, False]
    ).drop(columns="_width")
    board = board.reset_index(drop=True)
    board["rank"] = board.groupby(SETTING, dropna=False)["ndcg_at_10"].rank(ascending=False, method="min")
    board["rank"] = board["rank"].astype("Int64")
    board["delta_ndcg_at_10"] = math.nan
    if base is not None:
        if base not in set(board["model"]):
            log.warning("base model %r has no row; delta_ndcg_at_10 stays empty", base)
        reference = board[board["model"] == base].set_index(SETTING)["ndcg_at_10"]
        keys = pd.MultiIndex.from_frame(board[SETTING])
        board["delta_ndcg_at_10"] = board["ndcg_at_10"].to_numpy() - reference.reindex(keys).to_numpy()
    for column in ("delta_ci95_low", "delta_ci95_high", "p_value", "ndcg_ci95_low", "ndcg_ci95_high"):
        board[column] = math.nan
    board["published_delta"] = board["ndcg_at_10"] - board["published_ndcg_at_10"]
    board["published_in_ci"] = pd.array([pd.NA] * len(board), dtype="boolean")
    for column in ("params", "trainable_params", "published_params"):  # counts: 155200, not 155200.0
        board[column] = pd.array(board[column].round(), dtype="Int64")
    board["n_queries"] = pd.array([pd.NA] * len(board), dtype="Int64")
    return board[COLUMNS]


def per_query(client: MlflowClient, run_id: str, cache: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """A run's per_query.csv (None for runs that logged none, e.g. made before it existed)."""
    if run_id not in cache:
        with tempfile.TemporaryDirectory() as folder:
            try:
                cache[run_id] = csv_safe.read_csv(client.download_artifacts(run_id, "per_query.csv", folder))
            except Exception:  # noqa: BLE001 - any missing or unreadable artifact means: no test for this row
                cache[run_id] = None
    return cache[run_id]


def row_scores(client: MlflowClient, row: pd.Series, cache: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The row's per-query NDCG@10, query_id x one column per seed run (None when a run logged none)."""
    tables = [per_query(client, run_id, cache) for run_id in str(row[seed_groups.RUN_IDS]).split()]
    if not tables or any(t is None for t in tables):
        return None
    return seed_groups.score_matrix(tables)


def _add_score_intervals(board: pd.DataFrame, client: MlflowClient, cache: dict, plain: pd.Series) -> None:
    """Each row's own 95% interval (seeds, then queries), and whether its published figure lies inside it."""
    for index in board.index[plain]:
        scores = row_scores(client, board.loc[index], cache)
        if scores is None or scores.empty:
            continue
        low, high = statistics.score_interval(scores.to_numpy().T)
        board.loc[index, ["ndcg_ci95_low", "ndcg_ci95_high"]] = [low, high]
        published = board.loc[index, "published_ndcg_at_10"]
        if pd.notna(published):
            board.loc[index, "published_in_ci"] = bool(low - 1e-12 <= published <= high + 1e-12)


def add_significance(board: pd.DataFrame, client: MlflowClient, base: str | None) -> pd.DataFrame:
    """For every full-width row: its score's CI; against ``base`` in the same setting: the CI of the
    difference, p-value and query count, paired by query (several seeds: the two-level bootstrap)."""
    cache: dict[str, pd.DataFrame | None] = {}
    board = board.copy()
    plain = (board["width"] == "full") & (board["kind"] != "reranked")
    _add_score_intervals(board, client, cache, plain)
    if base is None:
        return board
    bases = board[plain & (board["model"] == base)].set_index(["dataset", "pixel_budget"])
    for index in board.index[plain & (board["model"] != base)]:
        row = board.loc[index]
        key = (row["dataset"], row["pixel_budget"])
        if key not in bases.index:
            continue
        a, b = row_scores(client, bases.loc[key], cache), row_scores(client, row, cache)
        if a is None or b is None:
            continue
        a, b = a.align(b, join="inner", axis=0)
        if a.empty:
            continue
        if a.shape[1] == 1 and b.shape[1] == 1:  # one seed each: the paired query tests, as --compare runs them
            joined = statistics.per_query_join(*(m.iloc[:, 0].rename("ndcg_at_10").reset_index() for m in (a, b)))
            result = statistics.compare(joined["ndcg_at_10_a"].to_numpy(), joined["ndcg_at_10_b"].to_numpy())
        else:
            result = statistics.compare_seeds(a.to_numpy().T, b.to_numpy().T)
        board.loc[index, ["delta_ci95_low", "delta_ci95_high", "p_value"]] = [
            result.ci_low,
            result.ci_high,
            result.p_value,
        ]
        board.loc[index, "n_queries"] = result.n_queries
    return board


@dataclass(frozen=True)
class Written:
    csv: Path
    markdown: Path
    size_plot: Path | None  # None without the plots extra (matplotlib)
    matryoshka_plot: Path | None
    report: Path | None = None  # the sweep report's HTML (its folder is logged as report/, not leaderboard/)

    def paths(self) -> list[Path]:
        return [p for p in (self.csv, self.markdown, self.size_plot, self.matryoshka_plot) if p is not None]


def write(board: pd.DataFrame, out_dir: Path, name: str, base: str | None = None) -> Written:
    """CSV, Markdown, the size-vs-NDCG plot and (when several widths were evaluated) the Matryoshka curve."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, markdown = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    csv_safe.write_csv(board, csv, float_format="%.6g")  # metrics to 6 significant digits, not 17
    markdown.write_text(to_markdown(board, base))
    size_plot = matryoshka_plot = None
    if not extras.available("the leaderboard's plots", "plots", *extras.PLOTS):
        return Written(csv, markdown, size_plot, matryoshka_plot)
    from vdr_exp.reports import plots

    size_plot = plots.size_vs_ndcg(board, out_dir / f"{name}_size_vs_ndcg.png", title=name, base=base)
    if (board["width"] != "full").any():
        matryoshka_plot = plots.matryoshka_curve(board, out_dir / f"{name}_matryoshka.png", title=name)
    return Written(csv, markdown, size_plot, matryoshka_plot)


def log_to_run(client: MlflowClient, run_id: str, written: Written) -> None:
    for path in written.paths():
        client.log_artifact(run_id, str(path), artifact_path="leaderboard")


def print_board(result: tuple[pd.DataFrame, Written], base: str | None = None) -> None:
    board, written = result
    print("\n" + to_markdown(board, base))
    for path in written.paths():
        print(f"wrote {path}")
    if written.report is not None:
        print(f"wrote {written.report} (the sweep report; report.md beside it)")


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
    from vdr_exp.reports import sweep_report  # it reads rows through this module

    report = sweep_report.write(client, board, out_dir, name=name, base=base, parent_run_id=parent_run_id)
    if parent_run_id and log:
        client.log_artifacts(parent_run_id, str(out_dir), artifact_path="report")
    return report.html


def board_for(client: MlflowClient, run_filter: RunFilter, base: str | None) -> pd.DataFrame:
    """Query -> table: the FINISHED runs as rows (over their seeds), the failed members of their seed groups
    named, the intervals and tests against ``base``."""
    runs = fetch_runs(client, run_filter)
    experiment_ids = sorted({r.info.experiment_id for r in runs})
    failed = seed_groups.failed_seed_runs(client, experiment_ids, run_filter.parent_run_id)
    expected = None
    if run_filter.parent_run_id:
        expected = client.get_run(run_filter.parent_run_id).data.tags.get(seed_groups.SEEDS_TAG)
    board = build(runs_to_rows(runs), base, failed, int(expected) if expected else None)
    return add_significance(board, client, base)


def compare_runs(client: MlflowClient, run_a: str, run_b: str, out_dir: Path) -> tuple[Path, str]:
    """Query by query, run B against run A: a CSV of which queries improved or regressed, and a summary line."""
    cache: dict[str, pd.DataFrame | None] = {}
    tables = {run: per_query(client, run, cache) for run in (run_a, run_b)}
    missing = [run for run, table in tables.items() if table is None]
    if missing:
        raise LeaderboardError(f"run {missing[0]} has no per_query.csv; compare two evaluation or training runs.")
    joined = statistics.per_query_join(tables[run_a], tables[run_b])
    if joined.empty:
        raise LeaderboardError(f"runs {run_a} and {run_b} share no query ids; compare runs on the same dataset.")
    result = statistics.compare(joined["ndcg_at_10_a"].to_numpy(), joined["ndcg_at_10_b"].to_numpy())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"compare_{run_a[:8]}_vs_{run_b[:8]}.csv"
    csv_safe.write_csv(joined, path)
    counts = joined["change"].value_counts()
    summary = (
        f"NDCG@10 of {run_b[:8]} vs {run_a[:8]} on {result.n_queries} queries: {result.mean_delta:+.4f} "
        f"(95% CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}], p={result.p_value:.4f}"
        f"{', significant' if result.significant else ''}); improved {counts.get('improved', 0)}, "
        f"regressed {counts.get('regressed', 0)}, tied {counts.get('tied', 0)}"
    )
    return path, summary


def latest_parent(client: MlflowClient, experiment: str, sweep: str | None) -> str:
    found = client.get_experiment_by_name(experiment)
    clauses = [tracking.tag_equals("run_kind", "sweep")] + ([tracking.tag_equals("sweep", sweep)] if sweep else [])
    runs = (
        client.search_runs([found.experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"])
        if found
        else []
    )
    if not runs:
        raise LeaderboardError(f"no sweep parent run in experiment {experiment!r}; run a sweep first.")
    return runs[0].info.run_id


def sweep_name(client: MlflowClient, parent_run_id: str | None) -> str | None:
    """A parent run's sweep preset name (its leaderboard's default file name)."""
    if not parent_run_id:
        return None
    name = client.get_run(parent_run_id).data.tags.get("sweep")
    return name if name and name != "(command line)" else f"sweep-{parent_run_id[:8]}"
