"""Benchmark suites' tables, in-process: published scores sit beside reproduced ones per task and on average, and
the pivot averages languages within a task, then tasks within the suite (mteb's registry, loaders and scorer:
tests/e2e/test_suites.py; the suite run end to end: tests/e2e/test_suite_runs.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from vdr_exp.suites import report


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
