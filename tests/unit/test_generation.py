"""Generated training queries: parsing what a VLM writes and the filter's checks (the whole offline chain, generate
-> filter -> train -> evaluate on human queries: tests/e2e/test_generated_training.py)."""

from __future__ import annotations

import pytest
import torch

from vdr_exp.config.schema import bounded  # noqa: F401 - the schema module imports cleanly on its own
from vdr_exp.errors import InputError
from vdr_exp.generation import filter as pair_filter
from vdr_exp.generation.config import FilterConfig
from vdr_exp.generation.job import candidates_from, require_some
from vdr_exp.generation.vlm import parse_queries


def test_queries_are_read_from_numbered_bulleted_or_quoted_lines():
    text = '1. What was revenue in 2023?\n- "termination notice"\n\n  Q3: Show the rail freight chart\n***\n'
    assert parse_queries(text, 5) == ["What was revenue in 2023?", "termination notice", "Show the rail freight chart"]
    assert parse_queries(text, 2) == ["What was revenue in 2023?", "termination notice"]
    assert parse_queries("", 3) == [] and parse_queries("...\n!!", 3) == []


def test_a_generator_that_writes_nothing_readable_stops_the_run_with_a_message(tmp_path):
    raw = [
        {"page_id": "a.pdf#p1", "style": "question", "text": "...\n"},
        {"page_id": "b.png", "style": "keyword", "text": ""},
    ]
    candidates = candidates_from(raw, 2)
    assert [c.query for c in candidates] == ["", "", "", ""]  # one empty candidate per missing query, dropped later
    with pytest.raises(InputError, match="no readable query"):
        require_some(candidates, "tiny", tmp_path / "raw.jsonl")


def _candidate(gid: str, page: str, query: str) -> pair_filter.Candidate:
    return pair_filter.Candidate(gid, page, "question", query, query)


def test_the_filter_drops_empty_long_copied_duplicate_and_unanswered_queries_and_says_why():
    cfg = FilterConfig(top_k=1, duplicate_cosine=0.95, copy_max_words=4, min_words=2, max_words=10)
    pages = ["p1", "p2", "p3"]
    candidates = [
        _candidate("g0", "p1", "revenue by region in 2023"),  # kept
        _candidate("g1", "p1", "   "),  # empty
        _candidate("g2", "p2", "one two three four five six seven eight nine ten eleven twelve"),  # too long
        _candidate("g3", "p2", "what does the total annual revenue by region say"),  # copies 5 words of p2's text
        _candidate("g4", "p3", "Revenue by region, in 2023!"),  # same words as g0
        _candidate("g5", "p3", "wind farm capacity"),  # its page is not the best match: round trip fails
        _candidate("g6", "p2", "rail freight tonnage"),  # kept
    ]
    pair_filter.check_text(candidates, {"p2": "The total annual revenue by region rose."}, cfg)
    page_vectors = torch.eye(3)
    query_vectors = torch.nn.functional.normalize(
        torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0.9, 0.1, 0.5], [0.8, 0, 0.6], [0.1, 1, 0]]), dim=-1
    )
    pair_filter.check_embeddings(candidates, query_vectors, page_vectors, pages, cfg)
    reasons = {c.generated_id: c.drop_reason for c in candidates}
    assert reasons == {
        "g0": "", "g1": "empty", "g2": "too_long", "g3": "copies_page_text", "g4": "near_duplicate",
        "g5": "round_trip", "g6": "",
    }  # fmt: skip
    assert candidates[3].copy_span_words == 6 and candidates[4].duplicate_of == "g0"
    assert candidates[5].round_trip_rank == 2 and candidates[0].round_trip_rank == 1
