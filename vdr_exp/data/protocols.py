"""Evaluation protocols: which queries, which corpus, which pages are relevant.

A protocol is plain data (ids to inputs, ids to graded relevance) so that any dataset layout can
bring its own corpus and qrels while evaluation stays one piece of code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vdr_exp.data.pages import stored_pages
from vdr_exp.errors import InputError

if TYPE_CHECKING:
    from datasets import Dataset


def relevance_grade(value: object, where: str) -> int:
    """The one rule for relevance grades in qrels: whole numbers, as trec_eval and MTEB read them (MTEB casts
    with ``int()``, pytrec_eval takes integers only). ``2``, ``2.0`` and ``"2"`` are grade 2; a fraction
    (``0.5``), text or a missing value is refused instead of being silently truncated to another grade."""
    if isinstance(value, bool):
        raise InputError(f"{where}: relevance score {value!r} is not a number; use whole-number grades (0, 1, 2...).")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: relevance score {value!r} is not a number; use whole-number grades (0, 1, 2...)."
        ) from None
    if not number.is_integer():
        raise InputError(
            f"{where}: relevance score {value!r} is not a whole number; trec_eval and MTEB read grades as "
            "integers, so round the qrels to whole grades (e.g. 0.5 -> 1 if it is relevant)."
        )
    return int(number)


def safe_id(value: object, where: str) -> str:
    """A query or document id that keeps TREC files and paths valid: non-empty, not null, no whitespace."""
    text = "" if value is None else str(value)
    if not text or any(ch.isspace() for ch in text) or text.lower() in ("none", "null", "nan"):
        raise InputError(
            f"{where}: id {value!r} is empty, null or contains whitespace, which would break the TREC run file; "
            "use ids without spaces."
        )
    return text


@dataclass(frozen=True)
class RetrievalProtocol:
    """Queries, corpus and TREC-style qrels (query id -> doc id -> relevance grade)."""

    name: str
    queries: dict[str, str]
    corpus: dict[str, Any]
    qrels: dict[str, dict[str, int]]

    def restricted(self, query_ids: set[str] | list[str]) -> RetrievalProtocol:
        """The same corpus with only ``query_ids`` (those that have qrels), e.g. one side of a train/eval split."""
        keep = [q for q in self.queries if q in set(query_ids) and q in self.qrels]
        return RetrievalProtocol(
            self.name, {q: self.queries[q] for q in keep}, self.corpus, {q: self.qrels[q] for q in keep}
        )

    @property
    def relevant_docs(self) -> dict[str, set[str]]:
        """The binary view that Sentence Transformers' IR evaluator expects."""
        return {qid: {doc for doc, grade in docs.items() if grade > 0} for qid, docs in self.qrels.items()}


def hard_negatives_protocol(
    rows: Dataset, num_negatives: int = 4, name: str = "vdr-eval-hard", source: str | None = None
) -> RetrievalProtocol:
    """The recipe's "hard" protocol over a dataset in the VDR train schema.

    Query ``i`` has exactly one relevant page, document ``i`` (its ``image``); the corpus adds every
    row's hard negatives with ids offset by ``n * (k + 1)``, so ``n`` rows give ``n * (1 + num_negatives)`` pages.
    """
    n = len(rows)
    missing = [
        c for c in ("query", "image", *(f"negative_{k}" for k in range(num_negatives))) if c not in rows.column_names
    ]
    if missing:
        raise InputError(
            f"dataset lacks columns {missing} needed by the hard-negatives protocol; "
            f"it has {rows.column_names}. Lower the protocol's num_negatives or fix the dataset."
        )
    queries = {str(i): text for i, text in enumerate(rows["query"])}  # the column alone: no page decoded
    # Pages stay compressed in the (memory-mapped) Arrow table until the encoding pipeline decodes them.
    label = source or name  # what a decode error calls the dataset
    corpus: dict[str, Any] = {str(i): page for i, page in enumerate(stored_pages(rows, "image", label))}
    for k in range(num_negatives):
        for i, page in enumerate(stored_pages(rows, f"negative_{k}", label)):
            corpus[str(n * (k + 1) + i)] = page
    qrels = {str(i): {str(i): 1} for i in range(n)}
    return RetrievalProtocol(name=name, queries=queries, corpus=corpus, qrels=qrels)
