"""Leaderboard rows over training seeds: runs that differ only by seed (tag ``seed_group``) become one row.

Such a row shows the mean of each headline metric over the seeds, its standard deviation (ddof 1), the
NDCG@10 min and max, and ``n_seeds`` of ``seeds_expected``: a seed whose run FAILED or never ran is named in
``missing_seeds`` (its run, when there is one), never averaged away in silence. Runs without the tag (every
evaluation-only run) stay single rows, n=1, as before. The delta to the base then comes from
:func:`vdr_exp.reports.statistics.compare_seeds` (two-level bootstrap over seeds, then queries).
"""

from __future__ import annotations

import math

import pandas as pd

from vdr_exp.retrieval.metrics import DIM_METRICS

SEED_COLUMNS = ["n_seeds", "seeds_expected", "ndcg_at_10_std", "ndcg_at_10_min", "ndcg_at_10_max", "missing_seeds"]
STD_COLUMNS = [f"{m}_std" for m in DIM_METRICS if m != "ndcg_at_10"]
# Every run a row stands for, space-separated (the report and the significance test read their per_query.csv).
RUN_IDS = "run_ids"
# A FAILED or KILLED run of a seed group, as the fetching side hands it over (no MLflow objects in the table).
FAILED_COLUMNS = ["seed_group", "seed", "run_name", "run_id", "status", "start_time"]


def _key(rows: pd.DataFrame) -> pd.Series:
    """What one row stands for: its seed group and kind (a reranked row shares its run), else its label."""
    grouped = rows["seed_group"].notna() & (rows["seed_group"] != "")
    by_group = "group " + rows["seed_group"].astype(str) + " " + rows["kind"].astype(str)
    return by_group.where(grouped, "model " + rows["model"].astype(str))


def aggregate(latest_rows: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """Rows (one per run, width and kind) -> one per seed group and setting: the latest run of each seed,
    then mean/std/min/max over the seeds. The newest run's label, ids and sizes describe the row."""
    rows = latest_rows.assign(_key=_key(latest_rows))
    rows = rows.sort_values("start_time").groupby(["_key", "seed", *setting], dropna=False, sort=False).tail(1)
    out = []
    for _, members in rows.groupby(["_key", *setting], dropna=False, sort=False):
        members = members.sort_values("start_time")
        row = members.iloc[-1].copy()
        for metric in DIM_METRICS:
            values = members[metric].astype(float)
            row[metric] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        row["ndcg_at_10_min"], row["ndcg_at_10_max"] = members["ndcg_at_10"].min(), members["ndcg_at_10"].max()
        row["n_seeds"] = len(members)
        row[RUN_IDS] = " ".join(members["run_id"])
        row["_seeds"] = tuple(str(s) for s in members["seed"] if pd.notna(s))
        out.append(row)
    board = pd.DataFrame(out)
    # Two groups under one label and setting (a model re-run with another config): the newest wins, as before.
    board = board.sort_values("start_time").groupby(["model", *setting], dropna=False, sort=False).tail(1)
    return board.drop(columns=["_key"])


def _failures(failed: pd.DataFrame | None) -> dict[str, dict[str, pd.Series]]:
    """Failed runs by seed group, then seed: the latest failed run of each seed (rows as in FAILED_COLUMNS)."""
    failures: dict[str, dict[str, pd.Series]] = {}
    if failed is None or failed.empty:
        return failures
    for _, run in failed.sort_values("start_time", kind="stable").iterrows():
        failures.setdefault(run["seed_group"], {})[run["seed"]] = run
    return failures


def mark_missing(board: pd.DataFrame, failed: pd.DataFrame | None, expected: int | None = None) -> pd.DataFrame:
    """``seeds_expected`` and ``missing_seeds`` per seed-group row: the seeds that ran (finished or failed),
    at least ``expected`` (the sweep's ``seeds``), and each seed with no finished run, with its failed run.
    ``failed``: the FAILED or KILLED runs of seed groups, one row each (:data:`FAILED_COLUMNS`)."""
    board = board.copy()
    failures = _failures(failed)
    expected_col, missing_col = [], []
    for _, row in board.iterrows():
        finished = set(row.get("_seeds") or ())
        tried = failures.get(row.get("seed_group"), {})
        missing = {s: r for s, r in tried.items() if s not in finished}
        grouped = isinstance(row.get("seed_group"), str) and row.get("seed_group") != ""
        total = len(finished) + len(missing)
        if grouped and expected:
            total = max(total, expected)
        expected_col.append(total if grouped else 1)
        named = [f"seed {s}: {r['run_name']} ({r['run_id']}, {r['status']})" for s, r in missing.items()]
        if grouped and total > len(finished) + len(missing):
            named.append(f"{total - len(finished) - len(missing)} seed(s) with no run")
        missing_col.append("; ".join(named))
    board["seeds_expected"] = pd.array(expected_col, dtype="Int64")
    board["n_seeds"] = pd.array(board["n_seeds"], dtype="Int64")
    board["missing_seeds"] = missing_col
    return board.drop(columns=["_seeds"])


def count_label(n: object, expected: object) -> str:
    """``3`` or ``4 of 5`` (a seed missing): what the Markdown's n column shows."""
    if n is None or pd.isna(n):
        return ""
    return f"{int(n)}" if expected is None or pd.isna(expected) or int(expected) <= int(n) else f"{n} of {expected}"


def score_matrix(tables: list[pd.DataFrame], metric: str = "ndcg_at_10") -> pd.DataFrame:
    """Per-query scores of a row's runs (one per seed) side by side: query_id index x one column per seed,
    over the queries every run scored."""
    columns = [t.set_index("query_id")[metric].rename(i) for i, t in enumerate(tables)]
    return pd.concat(columns, axis=1, join="inner")
