"""Keep a generated (query, page) pair only if it is trustworthy; record every score and why a pair was dropped.

Checks, in order (the first failure is the pair's ``drop_reason``; every score is kept either way):
- ``empty`` / ``too_short`` / ``too_long``: nothing readable, fewer than ``min_words``, more than ``max_words``
  words or ``max_chars`` characters;
- ``copies_page_text``: the query repeats ``copy_max_words`` or more consecutive words of the page's text layer
  (PDF pages that have one): such queries make retrieval look easy, they test string matching;
- ``near_duplicate``: the same normalised text as, or an embedding cosine of at least ``duplicate_cosine`` with,
  an earlier kept query (``duplicate_of`` names it);
- ``round_trip``: its own page is not in the top ``top_k`` of the whole corpus for the query under the
  embedding model (a query its page does not answer better than others: likely hallucinated or too vague).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import torch

from vdr_exp.generation.config import FilterConfig

WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Candidate:
    generated_id: str
    page_id: str
    style: str
    query: str
    raw: str
    # Filled by the filter.
    words: int = 0
    copy_span_words: int = 0
    duplicate_of: str = ""
    duplicate_cosine: float = 0.0
    round_trip_rank: int = -1
    round_trip_score: float = 0.0
    drop_reason: str = ""

    @property
    def kept(self) -> bool:
        return not self.drop_reason


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def longest_copied_span(query: str, page_text: str) -> int:
    """The longest run of consecutive words the query shares with the page's text (0 without a text layer)."""
    a, b = words(query), words(page_text)
    if not a or not b:
        return 0
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def check_text(candidates: list[Candidate], page_texts: dict[str, str], cfg: FilterConfig) -> None:
    """Length and copy checks: no model needed."""
    for c in candidates:
        c.words = len(words(c.query))
        c.copy_span_words = longest_copied_span(c.query, page_texts.get(c.page_id, ""))
        if not c.query.strip() or c.words == 0:
            c.drop_reason = "empty"
        elif c.words < cfg.min_words:
            c.drop_reason = "too_short"
        elif c.words > cfg.max_words or len(c.query) > cfg.max_chars:
            c.drop_reason = "too_long"
        elif c.copy_span_words >= cfg.copy_max_words:
            c.drop_reason = "copies_page_text"


def check_embeddings(
    candidates: list[Candidate], queries: torch.Tensor, pages: torch.Tensor, page_ids: list[str], cfg: FilterConfig
) -> None:
    """Near duplicates and round trip, from unit-length query embeddings (one row per candidate, in order) and
    page embeddings (one row per ``page_ids`` entry)."""
    scores = queries @ pages.T
    position = {pid: i for i, pid in enumerate(page_ids)}
    kept_rows: list[int] = []
    seen_text: dict[str, str] = {}
    for i, c in enumerate(candidates):
        own = scores[i, position[c.page_id]]
        c.round_trip_rank = int((scores[i] > own).sum()) + 1
        c.round_trip_score = float(own)
        if c.drop_reason:
            continue
        normalised = " ".join(words(c.query))
        if kept_rows:
            cosines = queries[kept_rows] @ queries[i]
            best = int(torch.argmax(cosines))
            c.duplicate_cosine = float(cosines[best])
            if c.duplicate_cosine >= cfg.duplicate_cosine:
                c.duplicate_of = candidates[kept_rows[best]].generated_id
        if normalised in seen_text:
            c.duplicate_of = seen_text[normalised]
        if c.duplicate_of:
            c.drop_reason = "near_duplicate"
        elif c.round_trip_rank > cfg.top_k:
            c.drop_reason = "round_trip"
        else:
            kept_rows.append(i)
            seen_text[normalised] = c.generated_id
