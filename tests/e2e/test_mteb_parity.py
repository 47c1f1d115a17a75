"""Every metric a run logs equals what MTEB's own retrieval scoring computes for the same rankings.

MTEB (``mteb._evaluators.retrieval_metrics.calculate_retrieval_scores``) scores a run with pytrec_eval and
rounds to 5 decimals; the cases that tell scorers apart are all here: tied scores, graded relevance, grades
stored as floats, several relevant pages, a query whose judged pages are all irrelevant. In-process and quick, but importing mteb takes seconds, so it
sits with the other mteb checks outside the unit tier.
"""

from __future__ import annotations

import numpy as np
import pytest

from vdr_exp.data.protocols import relevance_grade
from vdr_exp.retrieval.metrics import id_order, query_metrics, rank_with_id_order

mteb_metrics = pytest.importorskip("mteb._evaluators.retrieval_metrics")


def _case(seed: int = 3, n_queries: int = 40, n_docs: int = 60):
    rng = np.random.default_rng(seed)
    doc_ids = [f"p{i}" for i in rng.permutation(n_docs)]  # ids not in corpus order: the tie-break matters
    scores = rng.integers(0, 8, size=(n_queries, n_docs)).astype(np.float32) / 8  # many exact ties
    qrels: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        relevant = rng.choice(n_docs, size=int(rng.integers(1, 5)), replace=False)
        qrels[f"q{q}"] = {doc_ids[d]: float(rng.integers(1, 4)) for d in relevant}  # graded, stored as 2.0
    qrels["q0"] = {doc_ids[0]: 0.0, doc_ids[1]: 0.0}  # judged, nothing relevant
    return doc_ids, scores, qrels


def test_every_logged_metric_equals_mtebs_scorer_on_ties_grades_and_empty_queries():
    doc_ids, scores, qrels = _case()
    grades = {q: {d: relevance_grade(g, "qrels") for d, g in docs.items()} for q, docs in qrels.items()}
    ranked = rank_with_id_order(scores, id_order(doc_ids), top_k=100)
    ours = [query_metrics([doc_ids[j] for j in ranked[i]], grades[f"q{i}"]) for i in range(len(scores))]

    results = {f"q{i}": {doc_ids[j]: float(scores[i, j]) for j in range(len(doc_ids))} for i in range(len(scores))}
    theirs = mteb_metrics.calculate_retrieval_scores(results, grades, k_values=[1, 3, 5, 10, 100])
    expected = {
        "ndcg_at_10": theirs.ndcg["NDCG@10"],
        "ndcg_at_5": theirs.ndcg["NDCG@5"],
        "map_at_100": theirs.map["MAP@100"],
        "recall_at_1": theirs.recall["Recall@1"],
        "recall_at_5": theirs.recall["Recall@5"],
        "recall_at_10": theirs.recall["Recall@10"],
        "recall_at_100": theirs.recall["Recall@100"],
        "precision_at_1": theirs.precision["P@1"],
        "precision_at_5": theirs.precision["P@5"],
        "precision_at_10": theirs.precision["P@10"],
        "mrr_at_10": theirs.mrr["MRR@10"],
    }
    for metric, value in expected.items():
        mean = float(np.mean([row[metric] for row in ours]))
        assert mean == pytest.approx(value, abs=1e-5), metric  # MTEB rounds to 5 decimals
    per_query = theirs.all_scores
    for i, row in enumerate(ours):  # and query by query, before any rounding
        assert row["ndcg_at_10"] == pytest.approx(per_query[f"q{i}"]["ndcg_cut_10"], abs=1e-9)
        assert row["map_at_100"] == pytest.approx(per_query[f"q{i}"]["map_cut_100"], abs=1e-9)


def test_a_fractional_grade_is_refused_rather_than_truncated_as_a_cast_would():
    from vdr_exp.errors import InputError

    assert relevance_grade(2.0, "qrels") == 2
    with pytest.raises(InputError, match="not a whole number"):
        relevance_grade(0.5, "qrels")
