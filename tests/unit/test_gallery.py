"""The gallery picks the right queries and pages: worst and best by NDCG@10, top pages, the relevant page."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.reports import gallery


def _protocol() -> RetrievalProtocol:
    colours = ["red", "green", "blue", "yellow", "black", "white"]
    corpus = {str(i): Image.new("RGB", (60, 80), c) for i, c in enumerate(colours)}
    queries = {"a": "query a", "b": "query b", "c": "query c"}
    return RetrievalProtocol("toy", queries, corpus, {"a": {"0": 1}, "b": {"4": 1}, "c": {"5": 2}})


def _results() -> tuple[pd.DataFrame, pd.DataFrame]:
    per_query = pd.DataFrame(
        {
            "query_id": ["a", "b", "c"],
            "query": ["query a", "query b", "query c"],
            "first_relevant_rank": [1.0, 3.0, None],
            "ndcg_at_10": [1.0, 0.5, 0.0],
        }
    )
    order = {"a": ["0", "1", "2", "3"], "b": ["1", "2", "4", "0"], "c": ["0", "1", "2", "3"]}
    rankings = pd.DataFrame(
        [
            {"query_id": q, "rank": r + 1, "doc_id": d, "score": 1 - r / 10}
            for q, ids in order.items()
            for r, d in enumerate(ids)
        ]
    )
    return per_query, rankings


def test_worst_and_best_queries_with_their_top_pages_and_relevant_page():
    per_query, rankings = _results()
    rows = gallery.select_rows(per_query, rankings, _protocol().qrels, queries=1, top_k=2)
    assert [(r.group, r.query_id) for r in rows] == [("worst", "c"), ("best", "a")]
    worst, best = rows
    assert [h.doc_id for h in worst.hits] == ["0", "1"] and not any(h.relevant for h in worst.hits)
    assert (worst.answer.doc_id, worst.answer.rank) == ("5", None)  # not retrieved: shown, marked as such
    assert best.hits[0].relevant and best.answer.rank == 1


def test_a_query_is_shown_once_when_fewer_queries_than_asked_for():
    per_query, rankings = _results()
    rows = gallery.select_rows(per_query, rankings, _protocol().qrels, queries=5, top_k=3)
    assert sorted(r.query_id for r in rows) == ["a", "b", "c"]
    (middle,) = [r for r in rows if r.query_id == "b"]
    assert (middle.answer.doc_id, middle.answer.rank) == ("4", 3)


def test_gallery_files_hold_every_row_and_nothing_is_written_when_disabled(tmp_path):
    per_query, rankings = _results()
    paths = gallery.write_gallery(
        per_query, rankings, _protocol(), tmp_path, title="t", queries=1, top_k=2, thumb_px=40
    )
    assert [p.name for p in paths] == ["gallery.html", "gallery.png"]
    page = paths[0].read_text()
    assert page.count('class="row"') == 2 and page.count("<img") == 2 * 3 and "not retrieved" in page
    assert Image.open(paths[1]).size[0] > 3 * 40
    assert gallery.write_gallery(per_query, rankings, _protocol(), tmp_path / "off", title="t", queries=0) == []
    assert not (tmp_path / "off").exists()
