"""Training-seed variance: the two-level bootstrap, and leaderboard rows that aggregate the runs of a seed group."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support.stores import seeded_sweep

from vdr_exp import leaderboard as leaderboard_cli
from vdr_exp.reports import leaderboard, statistics

# --- the two-level bootstrap, in-process ---


def test_two_level_interval_matches_a_hand_computed_case():
    # Two seeds of the finetuned model score 0.2 and 0.6 on the one query; the base scores 0.1. A replicate
    # draws two seeds with replacement: mean difference 0.1 (p 1/4), 0.3 (1/2) or 0.5 (1/4). So the 95%
    # interval is [0.1, 0.5], and no replicate lies 0.3 or more from the observed 0.3: p = 1 / 10,001.
    result = statistics.compare_seeds(np.array([[0.1]]), np.array([[0.2], [0.6]]))
    assert result.mean_delta == pytest.approx(0.3)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1, 0.5))
    assert result.p_value == pytest.approx(1 / 10_001)
    # Over queries only (the seeds averaged first) there is nothing to resample: the interval is the point 0.3.
    query_only = statistics.compare(np.array([0.1]), np.array([0.4]))
    assert (query_only.ci_low, query_only.ci_high) == pytest.approx((0.3, 0.3))


def test_two_level_p_value_counts_seed_variance():
    # Seeds disagree completely (0 and 1 on both queries): replicate means 0, 0.5 or 1, half of them 0.5 from
    # the observed 0.5, so p ~ 1/2 and the interval is [0, 1].
    result = statistics.compare_seeds(np.zeros((1, 2)), np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert (result.ci_low, result.ci_high) == (0.0, 1.0)
    assert result.p_value == pytest.approx(0.5, abs=0.02)


def test_two_level_interval_is_wider_than_the_query_only_interval_when_seeds_disagree():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 0.6, size=64)
    gain = base + 0.1 + rng.normal(0, 0.05, size=64)
    disagreeing = np.stack([gain + offset for offset in (-0.08, 0.0, 0.08)])
    two_level = statistics.compare_seeds(base[None], disagreeing)
    query_only = statistics.compare(base, disagreeing.mean(axis=0))
    assert two_level.mean_delta == pytest.approx(query_only.mean_delta)
    assert two_level.ci_high - two_level.ci_low > 1.5 * (query_only.ci_high - query_only.ci_low)
    # Seeds that agree exactly add nothing: the same width as over queries (within resampling noise).
    agreeing = statistics.compare_seeds(base[None], np.stack([gain] * 3))
    query_width = statistics.compare(base, gain)
    width = agreeing.ci_high - agreeing.ci_low
    assert width == pytest.approx(query_width.ci_high - query_width.ci_low, rel=0.05)


def test_a_scores_own_interval_covers_its_seeds():
    low, high = statistics.score_interval(np.array([[0.2], [0.6]]))
    assert (low, high) == pytest.approx((0.2, 0.6))


# --- seed groups in the leaderboard (a real SQLite store, hand-made runs) ---


def test_a_seed_group_is_one_row_and_a_failed_member_is_named(store):
    parent, base_scores, seeds, failed = seeded_sweep(store)
    run_filter = leaderboard.RunFilter(parent_run_id=parent)
    board = leaderboard.board_for(store.client, run_filter, base="base")
    assert list(board.columns) == leaderboard.COLUMNS
    row = board.set_index("model").loc["tuned"]
    assert (row["n_seeds"], row["seeds_expected"]) == (4, 5)
    assert failed in row["missing_seeds"] and "seed 46" in row["missing_seeds"]
    means = [s.mean() for s in seeds.values()]
    assert row["ndcg_at_10"] == pytest.approx(np.mean(means))  # the failed seed is not averaged in
    assert row["ndcg_at_10_std"] == pytest.approx(np.std(means, ddof=1))
    assert (row["ndcg_at_10_min"], row["ndcg_at_10_max"]) == pytest.approx((min(means), max(means)))
    matrix = np.stack(list(seeds.values()))
    expected = statistics.compare_seeds(base_scores[None], matrix)
    assert (row["delta_ci95_low"], row["delta_ci95_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    assert board.set_index("model").loc["base", "n_seeds"] == 1

    markdown = leaderboard.to_markdown(board, base="base")
    assert "4 of 5" in markdown and failed in markdown and "two-level bootstrap" in markdown
    assert "±" in markdown


def test_the_sweep_report_is_one_self_contained_page_with_its_files(store, tmp_path):
    parent, *_ = seeded_sweep(store)
    out = tmp_path / "report"
    argv = ["--tracking-uri", store.uri, "--parent", parent, "--base", "base", "--out-dir", str(tmp_path / "boards")]
    assert leaderboard_cli.main([*argv, "--report", str(out), "--no-log"]) == 0
    page = (out / "report.html").read_text()
    assert "<table" in page and "4 of 5" in page and "two-level bootstrap" in page
    assert page.count('src="data:image/png;base64,') == 2  # seed spread and per-query scatter, embedded
    assert "<script" not in page and "http" not in page  # nothing to fetch: it opens offline
    assert "python -m vdr_exp.evaluate sweep=x" in page and "hash-43" in page and "mlflow" in page
    links = re.findall(r'href="([^"]+)"', page)
    assert "leaderboard.csv" in links and sum(link.startswith("csv/per_query_") for link in links) == 5
    assert all((out / link).is_file() for link in links)
    markdown = (out / "report.md").read_text()
    assert "![seed spread](seed_spread.png)" in markdown and (out / "seed_spread.png").is_file()
