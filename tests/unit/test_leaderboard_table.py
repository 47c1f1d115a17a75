"""The leaderboard's table logic on hand-made rows: ranking, deltas, seed groups and intervals, no MLflow.

Rows look like what :func:`vdr_exp.reports.leaderboard_runs.runs_to_rows` makes of runs; score matrices like
what it reads from their per_query.csv (query_id x one column per seed run).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from vdr_exp.errors import LeaderboardError
from vdr_exp.reports import leaderboard_table as table
from vdr_exp.reports import seed_groups, statistics

_CLOCK = iter(range(1_000_000))


def row(model: str, ndcg: float, dataset: str = "d", width: str = "full", **extra: object) -> dict:
    """One row as the fetching side makes it; each call starts later than the one before (latest wins)."""
    run_id = extra.pop("run_id", f"run-{model}-{dataset}-{width}-{next(_CLOCK)}")
    return {
        "model": model,
        "kind": extra.pop("kind", "single-vector"),
        "params": extra.pop("params", 1000.0),
        "trainable_params": math.nan,
        "published_params": math.nan,
        "published_ndcg_at_10": extra.pop("published", math.nan),
        "published_source": None,
        "seed": extra.pop("seed", None),
        "seed_group": extra.pop("seed_group", None),
        "pixel_budget": extra.pop("pixels", "p"),
        "dataset": dataset,
        "model_id": f"org/{model}",
        "run_kind": "evaluate",
        "run_id": run_id,
        "start_time": pd.Timestamp(next(_CLOCK), unit="ms", tz="UTC"),
        "width": width,
        "dim": 64 if width == "full" else int(width),
        "ndcg_at_10": ndcg,
        "mrr_at_10": ndcg / 2,
        "map_at_100": ndcg / 3,
        "recall_at_10": 1.0,
        **extra,
    }


def board(*rows: dict, base: str | None = None, **kwargs: object) -> pd.DataFrame:
    return table.build(pd.DataFrame(rows), base, **kwargs)


def by_model(built: pd.DataFrame, dataset: str = "d", width: str = "full") -> pd.DataFrame:
    return built[(built["dataset"] == dataset) & (built["width"] == width)].set_index("model")


def scores(values: list[float] | np.ndarray, seeds: int = 1, shift: float = 0.0) -> pd.DataFrame:
    """A query_id x seed matrix: ``values`` per query, each further seed ``shift`` higher."""
    ids = [f"q{i}" for i in range(len(values))]
    return pd.DataFrame({s: np.asarray(values) + s * shift for s in range(seeds)}, index=pd.Index(ids, name="query_id"))


# --- build: ranking, deltas, the columns ---


def test_the_board_has_the_csv_columns_in_order_and_counts_as_integers():
    built = board(row("a", 0.5, params=155200.0))
    assert list(built.columns) == table.COLUMNS
    assert built.loc[0, "params"] == 155200 and str(built["params"].dtype) == "Int64"
    assert str(built["rank"].dtype) == "Int64" and pd.isna(built.loc[0, "n_queries"])


def test_rows_are_ranked_by_ndcg_within_their_own_setting_best_first():
    built = board(row("a", 0.5), row("b", 0.7), row("c", 0.6), row("a", 0.9, dataset="e"), row("b", 0.1, dataset="e"))
    assert list(built["model"]) == ["b", "c", "a", "a", "b"]
    assert list(built["dataset"]) == ["d", "d", "d", "e", "e"]
    assert list(built["rank"]) == [1, 2, 3, 1, 2]


def test_equal_scores_share_the_better_rank():
    built = board(row("a", 0.5), row("b", 0.5), row("c", 0.4))
    assert by_model(built)["rank"].to_dict() == {"a": 1, "b": 1, "c": 3}


def test_full_width_comes_first_then_the_widest_truncation_down_to_the_narrowest():
    built = board(row("a", 0.3, width="16"), row("a", 0.5, width="128"), row("a", 0.6), row("a", 0.4, width="32"))
    assert list(built["width"]) == ["full", "128", "32", "16"]
    assert list(built["rank"]) == [1, 1, 1, 1]  # each width is a setting of its own


def test_delta_is_against_the_base_model_on_the_same_dataset():
    built = board(
        row("base", 0.50), row("tuned", 0.65), row("base", 0.20, dataset="e"), row("tuned", 0.30, dataset="e"),
        base="base",
    )  # fmt: skip
    assert by_model(built).loc["tuned", "delta_ndcg_at_10"] == pytest.approx(0.15)
    assert by_model(built, "e").loc["tuned", "delta_ndcg_at_10"] == pytest.approx(0.10)
    assert by_model(built).loc["base", "delta_ndcg_at_10"] == 0


def test_delta_is_against_the_base_at_the_same_width():
    built = board(
        row("base", 0.5), row("base", 0.4, width="32"), row("tuned", 0.6), row("tuned", 0.45, width="32"),
        base="base",
    )  # fmt: skip
    assert by_model(built, width="32").loc["tuned", "delta_ndcg_at_10"] == pytest.approx(0.05)


def test_a_setting_without_the_base_model_has_no_delta():
    built = board(row("base", 0.5), row("tuned", 0.6), row("tuned", 0.3, dataset="e"), base="base")
    assert pd.isna(by_model(built, "e").loc["tuned", "delta_ndcg_at_10"])
    assert by_model(built).loc["tuned", "delta_ndcg_at_10"] == pytest.approx(0.1)


def test_a_base_with_no_row_at_all_leaves_every_delta_empty_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger=table.__name__):
        built = board(row("a", 0.5), row("b", 0.6), base="missing")
    assert built["delta_ndcg_at_10"].isna().all()
    assert [r.getMessage() for r in caplog.records] == ["base model 'missing' has no row; delta_ndcg_at_10 stays empty"]


def test_without_a_base_there_is_no_delta():
    assert board(row("a", 0.5), row("b", 0.6))["delta_ndcg_at_10"].isna().all()


def test_the_latest_run_of_a_model_and_setting_replaces_the_earlier_one():
    built = board(row("a", 0.9, run_id="old"), row("a", 0.4, run_id="new"), row("b", 0.5))
    assert by_model(built).loc["a", "ndcg_at_10"] == 0.4 and by_model(built).loc["a", "run_id"] == "new"
    assert list(built["model"]) == ["b", "a"]


def test_published_delta_is_the_reproduced_score_minus_the_published_one():
    built = board(row("a", 0.62, published=0.60), row("b", 0.5))
    assert by_model(built).loc["a", "published_delta"] == pytest.approx(0.02)
    assert pd.isna(by_model(built).loc["b", "published_delta"])


# --- seed groups ---


def seeded(model: str, ndcgs: list[float], first_seed: int = 42) -> list[dict]:
    return [row(model, v, seed=str(first_seed + i), seed_group=f"g-{model}") for i, v in enumerate(ndcgs)]


def test_the_runs_of_one_seed_group_are_one_row_with_mean_spread_and_every_run():
    built = board(*seeded("tuned", [0.5, 0.6, 0.7]), row("base", 0.4), base="base")
    tuned = by_model(built).loc["tuned"]
    assert tuned["ndcg_at_10"] == pytest.approx(0.6) and tuned["ndcg_at_10_std"] == pytest.approx(0.1)
    assert (tuned["ndcg_at_10_min"], tuned["ndcg_at_10_max"]) == (0.5, 0.7)
    assert (tuned["n_seeds"], tuned["seeds_expected"], tuned["missing_seeds"]) == (3, 3, "")
    assert len(tuned[seed_groups.RUN_IDS].split()) == 3
    assert tuned["delta_ndcg_at_10"] == pytest.approx(0.2)
    assert by_model(built).loc["base", "n_seeds"] == 1 and pd.isna(by_model(built).loc["base", "ndcg_at_10_std"])


def test_a_failed_seed_is_named_and_not_averaged_in():
    failed = pd.DataFrame(
        [["g-tuned", "44", "bold-cat", "run-failed", "FAILED", 5]], columns=seed_groups.FAILED_COLUMNS
    )
    built = board(*seeded("tuned", [0.5, 0.7]), failed=failed)
    tuned = by_model(built).loc["tuned"]
    assert tuned["ndcg_at_10"] == pytest.approx(0.6)
    assert (tuned["n_seeds"], tuned["seeds_expected"]) == (2, 3)
    assert tuned["missing_seeds"] == "seed 44: bold-cat (run-failed, FAILED)"


def test_seeds_the_sweep_asked_for_but_never_ran_are_counted_as_missing():
    tuned = by_model(board(*seeded("tuned", [0.5, 0.7]), expected_seeds=4)).loc["tuned"]
    assert (tuned["n_seeds"], tuned["seeds_expected"]) == (2, 4)
    assert tuned["missing_seeds"] == "2 seed(s) with no run"


# --- add_intervals: the paired tests, on score matrices instead of downloads ---


def with_scores(built: pd.DataFrame, matrices: dict[str, pd.DataFrame | None]) -> dict[str, pd.DataFrame | None]:
    """Score matrices keyed by each named model's run_ids, as leaderboard_runs.score_matrices keys them."""
    plain = built[table.plain_rows(built)].set_index("model")
    return {plain.loc[model, seed_groups.RUN_IDS]: matrix for model, matrix in matrices.items()}


def test_the_delta_interval_is_the_paired_test_over_the_queries_both_runs_scored():
    rng = np.random.default_rng(1)
    base_scores = rng.uniform(0, 0.6, 30)
    tuned_scores = np.clip(base_scores + rng.normal(0.1, 0.05, 30), 0, 1)
    built = board(row("base", base_scores.mean()), row("tuned", tuned_scores.mean()), base="base")
    tuned_matrix = scores(tuned_scores).iloc[5:]  # five queries the tuned run never scored
    result = table.add_intervals(
        built, with_scores(built, {"base": scores(base_scores), "tuned": tuned_matrix}), "base"
    )
    shared = np.argsort(tuned_scores[5:] - base_scores[5:]) + 5  # the join lists queries by difference
    expected = statistics.compare(base_scores[shared], tuned_scores[shared])
    tuned = by_model(result).loc["tuned"]
    assert (tuned["delta_ci95_low"], tuned["delta_ci95_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    assert tuned["p_value"] == pytest.approx(expected.p_value) and tuned["n_queries"] == 25
    assert tuned["delta_ci95_low"] > 0  # a consistent +0.1 is a real gain
    assert pd.isna(by_model(result).loc["base", "p_value"])


def test_several_seeds_are_compared_with_the_two_level_bootstrap():
    base_scores = np.linspace(0.1, 0.5, 20)
    built = board(row("base", base_scores.mean()), *seeded("tuned", [0.4, 0.45]), base="base")
    tuned_matrix = scores(base_scores + 0.05, seeds=2, shift=0.05)
    result = table.add_intervals(
        built, with_scores(built, {"base": scores(base_scores), "tuned": tuned_matrix}), "base"
    )
    expected = statistics.compare_seeds(base_scores[None], tuned_matrix.to_numpy().T)
    tuned = by_model(result).loc["tuned"]
    assert (tuned["delta_ci95_low"], tuned["delta_ci95_high"]) == pytest.approx((expected.ci_low, expected.ci_high))


def test_a_row_is_tested_only_against_the_base_of_its_own_setting():
    values = np.linspace(0.2, 0.8, 10)
    built = board(row("base", 0.5), row("tuned", 0.6), row("tuned", 0.6, dataset="e"), base="base")
    plain = built[table.plain_rows(built)]
    matrices = {ids: scores(values) for ids in plain[seed_groups.RUN_IDS]}
    result = table.add_intervals(built, matrices, "base")
    assert by_model(result).loc["tuned", "n_queries"] == 10
    assert pd.isna(by_model(result, "e").loc["tuned", "p_value"])  # no base on dataset e
    assert by_model(result, "e").loc["tuned", "ndcg_ci95_low"] <= 0.5  # its own interval is still there


def test_a_row_whose_run_logged_no_per_query_scores_gets_no_interval():
    built = board(row("base", 0.5), row("old", 0.6), base="base")
    result = table.add_intervals(built, with_scores(built, {"base": scores([0.5, 0.5]), "old": None}), "base")
    old = by_model(result).loc["old"]
    assert pd.isna(old["p_value"]) and pd.isna(old["ndcg_ci95_low"]) and pd.isna(old["n_queries"])


def test_runs_that_share_no_query_are_not_compared():
    built = board(row("base", 0.5), row("other", 0.6), base="base")
    other = scores([0.6, 0.6]).rename(index={"q0": "x0", "q1": "x1"})
    result = table.add_intervals(built, with_scores(built, {"base": scores([0.5, 0.5]), "other": other}), "base")
    assert pd.isna(by_model(result).loc["other", "p_value"])


def test_truncated_and_reranked_rows_get_no_interval():
    built = board(row("a", 0.5), row("a", 0.4, width="32"), row("a + reranker", 0.7, kind="reranked"), base="a")
    assert table.plain_rows(built).sum() == 1
    matrices = {ids: scores([0.4, 0.6]) for ids in built[seed_groups.RUN_IDS]}
    result = table.add_intervals(built, matrices, "a")
    assert result.loc[~table.plain_rows(result), ["ndcg_ci95_low", "p_value"]].isna().all().all()


def test_published_in_ci_says_whether_the_published_figure_lies_in_the_scores_interval():
    values = np.linspace(0.4, 0.6, 40)
    built = board(row("near", 0.5, published=0.5), row("far", 0.5, published=0.9), row("none", 0.5))
    result = table.add_intervals(built, with_scores(built, {m: scores(values) for m in ("near", "far", "none")}), None)
    shown = by_model(result)
    assert bool(shown.loc["near", "published_in_ci"]) and not bool(shown.loc["far", "published_in_ci"])
    assert pd.isna(shown.loc["none", "published_in_ci"])
    low, high = statistics.score_interval(values[None])
    assert (shown.loc["near", "ndcg_ci95_low"], shown.loc["near", "ndcg_ci95_high"]) == pytest.approx((low, high))
    assert shown["p_value"].isna().all()  # no base: no tests


# --- --compare ---


def per_query(values: list[float], ids: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"query_id": ids or [f"q{i}" for i in range(len(values))], "ndcg_at_10": values})


def test_compare_summarises_which_queries_improved_regressed_or_tied():
    a, b = per_query([0.1, 0.5, 0.5, 0.9]), per_query([0.3, 0.5, 0.7, 0.8])
    joined, result = table.compare_queries(a, b, "a" * 32, "b" * 32)
    assert list(joined["delta"]) == pytest.approx([-0.1, 0.0, 0.2, 0.2])
    summary = table.compare_summary(joined, result, "a" * 32, "b" * 32)
    assert summary.startswith(f"NDCG@10 of bbbbbbbb vs aaaaaaaa on 4 queries: {result.mean_delta:+.4f} ")
    assert summary.endswith("improved 2, regressed 1, tied 1")


def test_compare_of_runs_without_a_common_query_says_what_to_do():
    with pytest.raises(LeaderboardError, match="share no query ids; compare runs on the same dataset"):
        table.compare_queries(per_query([0.1]), per_query([0.2], ids=["other"]), "run_a", "run_b")
