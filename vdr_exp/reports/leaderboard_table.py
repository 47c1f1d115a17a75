"""The leaderboard as table logic only: rows in, the ranked board out, no MLflow and no matplotlib.

Kept apart from fetching (:mod:`leaderboard_runs`) and rendering (:mod:`leaderboard_render`) so that what a
board says, which row wins, the delta to the base and its interval, can be checked on hand-made DataFrames
(an import-linter contract keeps MLflow and matplotlib out). One row per model and evaluation setting (dataset,
pixel budget, embedding width), from the latest run of each seed of that model and setting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import pandas as pd

from vdr_exp.errors import LeaderboardError
from vdr_exp.reports import seed_groups, statistics

log = logging.getLogger(__name__)

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
_TESTS = ("delta_ci95_low", "delta_ci95_high", "p_value")


def build(
    rows: pd.DataFrame,
    base: str | None = None,
    failed: pd.DataFrame | None = None,
    expected_seeds: int | None = None,
) -> pd.DataFrame:
    """Latest run per model and setting (over its seeds: the latest run of each, see :mod:`seed_groups`),
    ranked by NDCG@10 within its setting, with the delta to ``base``. ``failed``: FAILED runs of seed groups
    (:data:`seed_groups.FAILED_COLUMNS`), named on their rows; ``expected_seeds``: the seeds a sweep asked for."""
    latest = seed_groups.mark_missing(seed_groups.aggregate(rows, SETTING), failed, expected_seeds)
    board = ranked(latest)
    board["delta_ndcg_at_10"] = deltas_to_base(board, base)
    for column in (*_TESTS, "ndcg_ci95_low", "ndcg_ci95_high"):  # filled by add_intervals
        board[column] = math.nan
    board["published_delta"] = board["ndcg_at_10"] - board["published_ndcg_at_10"]
    board["published_in_ci"] = pd.array([pd.NA] * len(board), dtype="boolean")
    for column in ("params", "trainable_params", "published_params"):  # counts: 155200, not 155200.0
        board[column] = pd.array(board[column].round(), dtype="Int64")
    board["n_queries"] = pd.array([pd.NA] * len(board), dtype="Int64")
    return board[COLUMNS]


def ranked(board: pd.DataFrame) -> pd.DataFrame:
    """Settings in order (dataset, pixel budget, full width first, then widest to narrowest), best NDCG@10
    first within each, and ``rank`` within the setting (ties share the better rank)."""
    order = board.assign(_width=board["width"].map(lambda w: math.inf if w == "full" else int(w)))
    board = order.sort_values(
        ["dataset", "pixel_budget", "_width", "ndcg_at_10"], ascending=[True, True, False, False]
    ).drop(columns="_width")
    board = board.reset_index(drop=True)
    board["rank"] = board.groupby(SETTING, dropna=False)["ndcg_at_10"].rank(ascending=False, method="min")
    board["rank"] = board["rank"].astype("Int64")
    return board


def deltas_to_base(board: pd.DataFrame, base: str | None) -> pd.Series | float:
    """Each row's NDCG@10 minus the base model's in the same setting (NaN without a base row there)."""
    if base is None:
        return math.nan
    if base not in set(board["model"]):
        log.warning("base model %r has no row; delta_ndcg_at_10 stays empty", base)
    reference = board[board["model"] == base].set_index(SETTING)["ndcg_at_10"]
    keys = pd.MultiIndex.from_frame(board[SETTING])
    return board["ndcg_at_10"].to_numpy() - reference.reindex(keys).to_numpy()


def plain_rows(board: pd.DataFrame) -> pd.Series:
    """The rows the intervals are about: full width, not reranked (those have a per_query.csv of their own)."""
    return (board["width"] == "full") & (board["kind"] != "reranked")


def add_intervals(board: pd.DataFrame, scores: Mapping[str, pd.DataFrame | None], base: str | None) -> pd.DataFrame:
    """For every full-width row: its score's CI; against ``base`` in the same setting: the CI of the
    difference, p-value and query count, paired by query (several seeds: the two-level bootstrap).
    ``scores``: per row's ``run_ids``, its query_id x seed matrix of NDCG@10 (None when a run logged none)."""
    board = board.copy()
    plain = plain_rows(board)
    _add_score_intervals(board, scores, plain)
    if base is None:
        return board
    bases = board[plain & (board["model"] == base)].set_index(["dataset", "pixel_budget"])
    for index in board.index[plain & (board["model"] != base)]:
        row = board.loc[index]
        key = (row["dataset"], row["pixel_budget"])
        if key not in bases.index:
            continue
        result = paired_test(_scores_of(scores, bases.loc[key]), _scores_of(scores, row))
        if result is not None:
            board.loc[index, list(_TESTS)] = [result.ci_low, result.ci_high, result.p_value]
            board.loc[index, "n_queries"] = result.n_queries
    return board


def _scores_of(scores: Mapping[str, pd.DataFrame | None], row: pd.Series) -> pd.DataFrame | None:
    return scores.get(str(row[seed_groups.RUN_IDS]))


def _add_score_intervals(board: pd.DataFrame, scores: Mapping[str, pd.DataFrame | None], plain: pd.Series) -> None:
    """Each row's own 95% interval (seeds, then queries), and whether its published figure lies inside it."""
    for index in board.index[plain]:
        matrix = _scores_of(scores, board.loc[index])
        if matrix is None or matrix.empty:
            continue
        low, high = statistics.score_interval(matrix.to_numpy().T)
        board.loc[index, ["ndcg_ci95_low", "ndcg_ci95_high"]] = [low, high]
        published = board.loc[index, "published_ndcg_at_10"]
        if pd.notna(published):
            board.loc[index, "published_in_ci"] = bool(low - 1e-12 <= published <= high + 1e-12)


def paired_test(a: pd.DataFrame | None, b: pd.DataFrame | None) -> statistics.PairedComparison | None:
    """``b`` against ``a`` (query_id x seed matrices) over the queries both scored; None when either logged
    no scores or they share no query. One seed each: the paired query tests, as ``--compare`` runs them."""
    if a is None or b is None:
        return None
    a, b = a.align(b, join="inner", axis=0)
    if a.empty:
        return None
    if a.shape[1] == 1 and b.shape[1] == 1:
        joined = statistics.per_query_join(*(m.iloc[:, 0].rename("ndcg_at_10").reset_index() for m in (a, b)))
        return statistics.compare(joined["ndcg_at_10_a"].to_numpy(), joined["ndcg_at_10_b"].to_numpy())
    return statistics.compare_seeds(a.to_numpy().T, b.to_numpy().T)


def compare_queries(
    a: pd.DataFrame, b: pd.DataFrame, run_a: str, run_b: str
) -> tuple[pd.DataFrame, statistics.PairedComparison]:
    """Two runs' per_query tables joined on the queries both scored, and the paired test of B against A."""
    joined = statistics.per_query_join(a, b)
    if joined.empty:
        raise LeaderboardError(f"runs {run_a} and {run_b} share no query ids; compare runs on the same dataset.")
    return joined, statistics.compare(joined["ndcg_at_10_a"].to_numpy(), joined["ndcg_at_10_b"].to_numpy())


def compare_summary(joined: pd.DataFrame, result: statistics.PairedComparison, run_a: str, run_b: str) -> str:
    """The one line ``--compare`` prints: mean difference, its CI and p, and how many queries moved which way."""
    counts = joined["change"].value_counts()
    return (
        f"NDCG@10 of {run_b[:8]} vs {run_a[:8]} on {result.n_queries} queries: {result.mean_delta:+.4f} "
        f"(95% CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}], p={result.p_value:.4f}"
        f"{', significant' if result.significant else ''}); improved {counts.get('improved', 0)}, "
        f"regressed {counts.get('regressed', 0)}, tied {counts.get('tied', 0)}"
    )
