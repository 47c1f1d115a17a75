"""Metric math against trec_eval on hand-made cases, reranking bookkeeping, MLflow param logging limits, and
tables logged only through the tracking module."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import pytrec_eval
from mlflow.tracking import MlflowClient

from vdr_exp.config import TrackingConfig, flatten
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.retrieval.metrics import HEADLINE, query_metrics, rank_documents
from vdr_exp.retrieval.reranking import rerank
from vdr_exp.retrieval.scoring import DIM_METRICS, EvaluationResult, per_query_report, query_table
from vdr_exp.runs.tracking import log_params, tracked_run


def test_graded_metrics_and_ties_follow_trec_eval():
    doc_ids = [f"d{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    scores = rng.random((3, 12)).astype(np.float32)
    scores[0, [2, 7]] = 0.99  # a tie at the top: trec_eval breaks it by doc id, descending
    qrels = {"q0": {"d2": 1, "d7": 2}, "q1": {"d3": 2, "d11": 1, "d5": 1}, "q2": {"d0": 1}}
    ranked = rank_documents(scores, doc_ids, top_k=12)
    run = {
        f"q{q}": {doc_ids[j]: float(scores[q, j]) for j in ranked[q]}
        for q in range(3)
    }  # fmt: skip
    expected = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.10", "ndcg_cut.5", "map_cut.100", "recall.5", "P.5"}
    ).evaluate(run)
    assert [doc_ids[j] for j in ranked[0][:2]] == ["d7", "d2"]
    for q in range(3):
        ours = query_metrics([doc_ids[j] for j in ranked[q]], qrels[f"q{q}"])
        theirs = expected[f"q{q}"]
        assert ours["ndcg_at_10"] == pytest.approx(theirs["ndcg_cut_10"], abs=1e-9)
        assert ours["ndcg_at_5"] == pytest.approx(theirs["ndcg_cut_5"], abs=1e-9)
        assert ours["map_at_100"] == pytest.approx(theirs["map_cut_100"], abs=1e-9)
        assert ours["recall_at_5"] == pytest.approx(theirs["recall_5"], abs=1e-9)
        assert ours["precision_at_5"] == pytest.approx(theirs["P_5"], abs=1e-9)


def test_first_relevant_rank_and_reciprocal_rank():
    metrics = query_metrics(["a", "b", "c"], {"c": 1})
    assert metrics["first_relevant_rank"] == 3 and metrics["mrr_at_10"] == pytest.approx(1 / 3)
    assert metrics["accuracy_at_1"] == 0.0 and metrics["accuracy_at_3"] == 1.0


def test_params_are_batched_and_long_values_shortened(tmp_path, new_store):
    cfg = TrackingConfig(name="t", store=str(new_store), artifact_root=str(tmp_path / "art"))
    params = {f"group.key_{i}": str(i) for i in range(150)} | {"long": "x" * 7000}
    with tracked_run(cfg, "params", {"run_kind": "test"}) as run_id:
        log_params(params)
    run = MlflowClient(tracking_uri=f"sqlite:///{new_store}").get_run(run_id)
    assert len(run.data.params) == 151
    assert len(run.data.params["long"]) == 6000 and run.data.params["long"].endswith("...")
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((tmp_path / "art").as_uri())


def test_an_exception_ends_the_run_failed(tmp_path, new_store):
    cfg = TrackingConfig(name="t", store=str(new_store), artifact_root=str(tmp_path / "art"))
    with pytest.raises(RuntimeError), tracked_run(cfg, "boom", {}) as run_id:
        raise RuntimeError("disk full")
    run = MlflowClient(tracking_uri=f"sqlite:///{new_store}").get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["error"] == "RuntimeError: disk full"
    assert mlflow.active_run() is None


def test_flatten_uses_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {"a.b": "1", "a.c.d": "[1, 2]", "e": "None"}


class _AnswerKeyReranker:
    """Scores a (query, page) pair 1 when the page is relevant: checks rerank's bookkeeping, not a model."""

    def __init__(self, relevant: dict[str, set[str]]):
        self.relevant = relevant

    def predict(self, pairs, **_):
        return np.array([1.0 if page in self.relevant[query] else 0.0 for query, page in pairs])


def test_rerank_reorders_only_the_top_k_and_scores_like_retrieval():
    corpus = {f"d{i}": f"d{i}" for i in range(6)}
    protocol = RetrievalProtocol("toy", {"q1": "q1", "q2": "q2"}, corpus, {"q1": {"d2": 1}, "q2": {"d5": 2}})
    retrieved_order = {"q1": ["d0", "d1", "d2", "d3", "d4", "d5"], "q2": ["d0", "d1", "d2", "d3", "d4", "d5"]}
    rankings = pd.DataFrame(
        [
            {"query_id": q, "rank": r + 1, "doc_id": d, "score": -r}
            for q, ids in retrieved_order.items()
            for r, d in enumerate(ids)
        ]
    )
    table = query_table(protocol, retrieved_order)
    retrieved = EvaluationResult(
        {m: float(table[m].mean()) for m in HEADLINE},
        per_query_report(table, protocol),
        rankings,
        pd.DataFrame(),
        protocol.qrels,
        8,
    )
    reranker = _AnswerKeyReranker({"q1": {"d2"}, "q2": {"d5"}})
    result = rerank(reranker, protocol, retrieved, top_k=3, batch_size=4)
    by_query = result.per_query.set_index("query_id")
    # q1's page was in the top 3 and moves to rank 1; q2's (rank 6) is out of reach of a top-3 rerank.
    assert by_query.loc["q1", "first_relevant_rank"] == 1 and by_query.loc["q1", "ndcg_at_10"] == 1.0
    assert by_query.loc["q2", "ndcg_at_10"] == 0.0
    assert result.metrics["ndcg_at_10"] == 0.5
    assert list(result.rankings[result.rankings.query_id == "q1"].doc_id) == ["d2", "d0", "d1"]
    assert list(result.per_query.columns) == list(retrieved.per_query.columns)
    assert list(result.matryoshka.columns) == ["dim", *DIM_METRICS] and result.matryoshka.dim.tolist() == [8]


def test_no_module_logs_a_table_but_through_tracking():
    root = Path(__file__).resolve().parents[2] / "vdr_exp"
    callers = [p.name for p in root.rglob("*.py") if re.search(r"mlflow\.log_table\(", p.read_text())]
    assert callers == ["tracking.py"]
