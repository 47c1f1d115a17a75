"""Benchmark suites' scores in-process: reranking scores come from mteb's scorer, published scores sit beside
reproduced ones, and the pivot averages languages then tasks (mteb's registry and loaders: tests/e2e/test_suites.py;
the suite run end to end: tests/e2e/test_suite_runs.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vdr_exp.suites import report

mteb = pytest.importorskip("mteb")


def test_reranking_scores_come_from_mtebs_scorer_and_a_missed_page_counts_as_missed():
    from vdr_exp.suites.rerank_tasks import mteb_scores, rankings

    qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}, "q3": {}}  # q2's relevant page is not among its candidates
    results = {"q1": {"d2": 0.9, "d1": 0.8, "d3": 0.1}, "q2": {"d4": 0.5, "d5": 0.4}, "q3": {"d1": 1.0}}
    scores = mteb_scores(results, qrels, (1, 3, 10))
    # mteb rounds to 5 decimals; q3 (no relevant page) is left out, q2 scores 0
    assert scores["ndcg_at_10"] == pytest.approx((1 / math.log2(3) + 0.0) / 2, abs=1e-5)
    assert scores["recall_at_1"] == 0.0 and scores["recall_at_3"] == pytest.approx(0.5)
    assert scores["mrr_at_10"] == pytest.approx(0.25)
    assert list(rankings(results).query("query_id == 'q1'")["doc_id"]) == ["d2", "d1", "d3"]


def test_published_task_scores_sit_beside_the_reproduced_ones_per_task_and_on_average():
    table = pd.DataFrame({"T1": [0.5, 0.2], "T2": [0.3, 0.1], "mean": [0.4, 0.15]}, index=["a", "b"])
    published = pd.DataFrame(
        [
            ("a", "T1", 0.6, "MTEB leaderboard"),
            ("a", "T2", 0.2, "MTEB leaderboard"),
            ("a", "T3", 0.9, "MTEB leaderboard"),
        ],
        columns=["model", "task", "published", "source"],
    )
    frame = report.published_vs_reproduced(table, published).set_index("task")
    assert frame.loc["T1", "difference"] == pytest.approx(-0.1) and frame.loc["T2", "difference"] == pytest.approx(0.1)
    assert pd.isna(frame.loc["T3", "reproduced"])  # not run: no difference, and not in the average
    mean = frame.loc["mean (2 tasks)"]
    assert mean["published"] == pytest.approx(0.4) and mean["reproduced"] == pytest.approx(0.4)
    assert set(frame["model"]) == {"a"} and set(frame["source"]) == {"MTEB leaderboard"}
    assert report.file_stem("ViDoRe(v3.1, reranking)") == "ViDoRe_v3.1_reranking"


def test_the_pivot_averages_languages_within_a_task_and_tasks_within_the_suite():
    rows = pd.DataFrame(
        [
            ("a", "T1", "default", "ndcg_at_5", 0.5),
            ("a", "T2", "english", "ndcg_at_10", 0.2),
            ("a", "T2", "french", "ndcg_at_10", 0.4),
            ("b", "T1", "default", "ndcg_at_5", 0.1),
            ("b", "T2", "english", "ndcg_at_10", 0.1),
            ("b", "T2", "french", "ndcg_at_10", 0.1),
        ],
        columns=["model", "task", "subset", "metric", "score"],
    )
    table = report.pivot(rows)
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["T1", "T2", "mean"]
    assert table.loc["a", "T2"] == pytest.approx(0.3) and table.loc["a", "mean"] == pytest.approx(0.4)
    by_language = report.pivot(rows, by_language=True)
    assert list(by_language.columns) == ["T1", "T2/english", "T2/french", "mean"]
    assert by_language.loc["a", "mean"] == pytest.approx(0.4)  # the suite score does not change with the view
