"""Hard negatives for (query, relevant page) pairs, mined with an embedding model over the whole corpus.

Sentence Transformers' ``mine_hard_negatives`` indexes and de-duplicates its corpus by text; here the corpus
is page images with ids and graded qrels, so mining works on ids: every page is encoded once, each query's
ranking skips all of its relevant pages, and the best-scoring of the rest become its negatives. The recipe's
own negatives were mined the same way (a similarity ceiling relative to the positive keeps near-duplicates
of the answer page, likely unlabelled positives, out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from sentence_transformers import SentenceTransformer

from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningSettings:
    num_negatives: int = 4
    # Skip this many of the best-scoring non-relevant pages before taking negatives.
    range_min: int = 0
    # Keep a negative only if its score is at most this ratio of the positive's score; None: no ceiling.
    max_score_ratio: float | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class MinedSplit:
    rows: Dataset
    pairs: int  # (query, relevant page) pairs considered
    dropped: int  # pairs without enough negatives under the settings


def mine_split(
    model: SentenceTransformer, protocol: RetrievalProtocol, corpus_embeddings: torch.Tensor, settings: MiningSettings
) -> MinedSplit:
    """Rows ``query, image, negative_0 .. negative_{n-1}``: one per relevant page of every query."""
    doc_ids = list(protocol.corpus)
    query_ids = list(protocol.queries)
    columns: dict[str, list] = {
        "query": [],
        "image": [],
        **{f"negative_{k}": [] for k in range(settings.num_negatives)},
    }
    pairs = dropped = 0
    if query_ids:
        queries = model.encode_query(
            [protocol.queries[q] for q in query_ids],
            batch_size=settings.batch_size,
            convert_to_tensor=True,
            show_progress_bar=False,
        )
        scores = torch.nn.functional.normalize(queries.float(), dim=-1) @ corpus_embeddings.T
        order = torch.argsort(scores, dim=1, descending=True)
        for qi, qid in enumerate(query_ids):
            relevant = {d for d, grade in protocol.qrels[qid].items() if grade > 0}
            ranked = [doc_ids[j] for j in order[qi].tolist() if doc_ids[j] not in relevant][settings.range_min :]
            score_of = dict(zip(doc_ids, scores[qi].tolist(), strict=True))
            for positive in sorted(relevant):
                pairs += 1
                if settings.max_score_ratio is None:
                    negatives = ranked[: settings.num_negatives]
                else:
                    ceiling = settings.max_score_ratio * score_of[positive]
                    negatives = [d for d in ranked if score_of[d] <= ceiling][: settings.num_negatives]
                if len(negatives) < settings.num_negatives:
                    dropped += 1
                    continue
                columns["query"].append(protocol.queries[qid])
                columns["image"].append(as_image(protocol.corpus[positive]))
                for k, negative in enumerate(negatives):
                    columns[f"negative_{k}"].append(as_image(protocol.corpus[negative]))
    features = Features(
        {"query": Value("string"), **{c: ImageFeature() for c in columns if c != "query"}},
    )
    return MinedSplit(Dataset.from_dict(columns, features=features), pairs, dropped)
