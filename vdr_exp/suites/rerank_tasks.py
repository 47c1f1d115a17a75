"""MTEB reranking tasks (``ViDoRe(v3.1, reranking)``): the configured reranker over each query's given candidates.

A reranking task ships, per query, the candidate pages of a first-stage retriever (mteb's ``top_ranked``). The
reranker (a Sentence Transformers CrossEncoder, the ``reranker`` group) scores every (query, candidate page)
pair; the scores are then turned into metrics by mteb's own scorer, the code ``AbsTaskRetrieval`` runs after
its cross-encoder search (``calculate_retrieval_scores`` and ``make_score_dict``, over queries with a relevant
page, at the task's ``k_values``). So a relevant page the first stage missed counts as missed, exactly as on the
leaderboard, and the numbers are comparable with published reranker results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder


@dataclass(frozen=True)
class RerankResult:
    metrics: dict[str, float]  # mteb's score dict for this subset (ndcg_at_10, map_at_10, recall_at_1, ...)
    rankings: pd.DataFrame  # query_id, rank, doc_id, score
    evaluation_seconds: float


def score_candidates(
    reranker: CrossEncoder, protocol: RetrievalProtocol, candidates: dict[str, list[str]], *, batch_size: int
) -> dict[str, dict[str, float]]:
    """query id -> candidate page -> reranker score, for every query (one without candidates gets none, as in
    mteb's cross-encoder search)."""
    results: dict[str, dict[str, float]] = {query_id: {} for query_id in protocol.queries}
    for query_id, docs in candidates.items():
        if query_id not in protocol.queries or not docs:
            continue
        pairs = [(protocol.queries[query_id], as_image(protocol.corpus[doc])) for doc in docs]
        scores = reranker.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        results[query_id] = {doc: float(score) for doc, score in zip(docs, scores, strict=True)}
    return results


def mteb_scores(
    results: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k_values: tuple[int, ...]
) -> dict[str, float]:
    """mteb's metrics for these scores: queries without a relevant page are left out first, as mteb does."""
    # optional extra (mteb): only suites load it
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores, make_score_dict

    qrels = {query_id: docs for query_id, docs in qrels.items() if docs}
    results = {query_id: docs for query_id, docs in results.items() if query_id in qrels}
    scored = calculate_retrieval_scores(results, qrels, list(k_values))
    scores = make_score_dict(
        ndcg=scored.ndcg,
        _map=scored.map,
        recall=scored.recall,
        precision=scored.precision,
        mrr=scored.mrr,
        naucs=scored.naucs,
        naucs_mrr=scored.naucs_mrr,
        hit_rate=scored.hit_rate,
        task_scores={},
    )
    return {name: float(value) for name, value in scores.items()}


def rankings(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = []
    for query_id, docs in results.items():
        ordered = sorted(docs.items(), key=lambda item: -item[1])  # stable: ties keep the first stage's order
        rows += [{"query_id": query_id, "rank": r + 1, "doc_id": d, "score": s} for r, (d, s) in enumerate(ordered)]
    return pd.DataFrame(rows, columns=["query_id", "rank", "doc_id", "score"])


def rerank_subset(
    reranker: CrossEncoder,
    protocol: RetrievalProtocol,
    candidates: dict[str, list[str]],
    *,
    k_values: tuple[int, ...],
    batch_size: int,
) -> RerankResult:
    started = time.perf_counter()
    results = score_candidates(reranker, protocol, candidates, batch_size=batch_size)
    metrics = mteb_scores(results, protocol.qrels, k_values)
    return RerankResult(metrics, rankings(results), time.perf_counter() - started)
