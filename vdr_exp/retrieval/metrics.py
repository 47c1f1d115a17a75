"""IR metrics over ranked lists, with trec_eval semantics (linear gains, cut-offs, ties by doc id).

Computed here rather than with the library evaluator because a run needs the per-query values and
the rankings too, all from one encode; tests check parity against trec_eval (pytrec_eval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CUTOFF_METRICS = {
    "recall": (1, 5, 10, 100),
    "precision": (1, 5, 10),
    "accuracy": (1, 3, 5, 10),
}


def rank_documents(scores: np.ndarray, doc_ids: Sequence[str], top_k: int) -> np.ndarray:
    """Indices of the top ``top_k`` documents per query row.

    Order is score descending, ties broken by doc id descending: the order trec_eval itself imposes on
    a run file, so metrics computed here and from ``run.trec`` agree exactly.
    """
    return rank_with_id_order(scores, id_order(doc_ids), top_k)


def id_order(doc_ids: Sequence[str]) -> np.ndarray:
    """Position of each doc id in sorted order (the tie-break key); computed once per corpus."""
    return np.argsort(np.argsort(np.asarray(doc_ids, dtype=object)))


def rank_with_id_order(scores: np.ndarray, id_rank: np.ndarray, top_k: int) -> np.ndarray:
    """:func:`rank_documents` with a precomputed tie-break key; sorts only each row's top candidates.

    ``argpartition`` finds the k-th best score in linear time; only pages scoring at least that much (ties
    included, so the tie-break stays exact) are sorted. A million-page corpus costs a partition, not a sort.
    """
    n_docs = scores.shape[1]
    k = min(top_k, n_docs)
    ranked = np.empty((scores.shape[0], k), dtype=np.int64)
    for row, row_scores in enumerate(scores):
        if k < n_docs:
            kth = np.partition(row_scores, n_docs - k)[n_docs - k]
            candidates = np.flatnonzero(row_scores >= kth)
        else:
            candidates = np.arange(n_docs)
        order = candidates[np.lexsort((-id_rank[candidates], -row_scores[candidates]))]
        ranked[row] = order[:k]
    return ranked


def query_metrics(ranked_ids: Sequence[str], qrels: dict[str, int]) -> dict[str, float]:
    """All metrics of one query from its ranked doc ids and its graded qrels."""
    relevant = {doc: grade for doc, grade in qrels.items() if grade > 0}
    n_rel = len(relevant)
    gains = [relevant.get(doc, 0) for doc in ranked_ids]
    hits = [g > 0 for g in gains]

    first = next((i + 1 for i, hit in enumerate(hits) if hit), None)
    out = {
        "ndcg_at_10": _ndcg(gains, relevant, 10),
        "ndcg_at_5": _ndcg(gains, relevant, 5),  # ViDoRe v1/v2's headline
        "mrr_at_10": 1.0 / first if first is not None and first <= 10 else 0.0,
        "map_at_100": _average_precision(hits[:100], n_rel),
        "first_relevant_rank": float(first) if first is not None else math.nan,
    }
    for k in CUTOFF_METRICS["recall"]:
        out[f"recall_at_{k}"] = sum(hits[:k]) / n_rel if n_rel else 0.0
    for k in CUTOFF_METRICS["precision"]:
        out[f"precision_at_{k}"] = sum(hits[:k]) / k
    for k in CUTOFF_METRICS["accuracy"]:
        out[f"accuracy_at_{k}"] = 1.0 if any(hits[:k]) else 0.0
    return out


def _ndcg(gains: Sequence[int], relevant: dict[str, int], k: int) -> float:
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return dcg / idcg if idcg > 0 else 0.0


def _average_precision(hits: Sequence[bool], n_rel: int) -> float:
    if not n_rel:
        return 0.0
    found, total = 0, 0.0
    for i, hit in enumerate(hits):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / n_rel


# Reported at every Matryoshka width: the leaderboard's metric columns.
DIM_METRICS = ("ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_10")
HEADLINE = (
    "ndcg_at_10",
    "ndcg_at_5",
    "mrr_at_10",
    "map_at_100",
    *(f"recall_at_{k}" for k in CUTOFF_METRICS["recall"]),
    *(f"precision_at_{k}" for k in CUTOFF_METRICS["precision"]),
    *(f"accuracy_at_{k}" for k in CUTOFF_METRICS["accuracy"]),
)
