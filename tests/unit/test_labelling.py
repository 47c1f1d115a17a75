"""The labelling page's store on its own: writers merge, stale or bad edits are refused, reviewed generated
queries go to their own file (the page itself, in Chromium: tests/e2e/test_labelling_page.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from documents import fresh_folder, write_generated

from vdr_exp.config import DatasetConfig
from vdr_exp.data.layouts.local_docs import read_queries
from vdr_exp.errors import InputError
from vdr_exp.labelling.pages import index_folder
from vdr_exp.labelling.store import Conflict, QueryStore, revision


def open_store(folder: Path, tmp_path: Path) -> QueryStore:
    index = index_folder(folder, 100, tmp_path / "page_cache")
    return QueryStore(folder / "queries.jsonl", index.folder, index.refs)


def test_two_writers_merge_and_a_stale_edit_is_refused(doc_folder, tmp_path):
    folder = fresh_folder(doc_folder, tmp_path)
    first, second = open_store(folder, tmp_path), open_store(folder, tmp_path)
    a = first.add("termination notice", [{"page_id": "contract.pdf#p2", "grade": 2}])
    b = second.add("receipt total", [{"page_id": "scans/receipt.jpg", "grade": 1}])
    assert (a["query_id"], b["query_id"]) == ("q0", "q1")  # ids picked under the lock: no collision
    first.update("q0", revision(a), "termination notice period", [{"page_id": "contract.pdf#p2", "grade": 2}])
    with pytest.raises(Conflict, match="changed elsewhere"):  # second still holds q0's old revision
        second.update("q0", revision(a), "overwritten?", [{"page_id": "memo.pdf#p1", "grade": 1}])
    lines = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    assert [line["query"] for line in lines] == ["termination notice period", "receipt total"]
    assert lines[0]["relevant"] == [{"file": "contract.pdf", "page": 2, "grade": 2}]
    assert lines[1]["relevant"] == [{"file": "scans/receipt.jpg"}]  # grade 1 is the format's default
    dataset = DatasetConfig(name="mine", format="local_docs", path=str(folder))
    assert len(read_queries(folder / dataset.queries_file, first.folder)) == 2  # what evaluations read


def test_bad_changes_are_refused_and_the_file_is_left_as_it_was(doc_folder, tmp_path):
    folder = fresh_folder(doc_folder, tmp_path)
    store = open_store(folder, tmp_path)
    store.add("memo subject", [{"page_id": "memo.pdf#p1", "grade": 2}])
    before = (folder / "queries.jsonl").read_bytes()
    for text, relevant, reason in [
        ("   ", [{"page_id": "memo.pdf#p1", "grade": 1}], "empty"),
        ("a query", [{"page_id": "memo.pdf#p9", "grade": 1}], "does not exist"),
        ("a query", [{"page_id": "memo.pdf#p1", "grade": 3}], "grades are 0, 1 or 2"),
        ("a query", [{"page_id": "memo.pdf#p1", "grade": 0}], "at least one page"),
    ]:
        with pytest.raises(InputError, match=reason):
            store.add(text, relevant)
    assert (folder / "queries.jsonl").read_bytes() == before
    (folder / "queries.jsonl").write_text(before.decode() + '{"query_id": "q9", "query": \n')  # a hand edit
    broken = (folder / "queries.jsonl").read_bytes()
    with pytest.raises(InputError, match=r"queries.jsonl:2: not valid JSON"):
        store.add("another", [{"page_id": "memo.pdf#p2", "grade": 1}])
    assert (folder / "queries.jsonl").read_bytes() == broken
    assert not list(folder.glob(".queries.jsonl.*.partial"))


def test_a_folder_without_a_readable_page_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(InputError, match="no readable page.*broken.pdf"):
        index_folder(tmp_path / "docs", 100, tmp_path / "cache")


# ---- the page in a browser -------------------------------------------------------------------------------


def test_reviewed_generated_queries_go_to_their_own_file_and_do_not_come_back(doc_folder, tmp_path):
    from vdr_exp.labelling.review import ReviewQueue

    folder = fresh_folder(doc_folder, tmp_path)
    generated = write_generated(tmp_path / "generated")
    index = index_folder(folder, 100, tmp_path / "page_cache")
    queue = ReviewQueue(generated, QueryStore(folder / "reviewed.jsonl", index.folder, index.refs))
    assert [p["generated_id"] for p in queue.pending()] == ["g0", "g3", "g7"]
    queue.decide("g0", "accept", None)
    queue.decide("g3", "accept", "wind farm output by year")
    queue.decide("g7", "reject", None)
    with pytest.raises(InputError, match="already"):
        queue.decide("g7", "accept", None)
    assert queue.pending() == []
    reviewed = [json.loads(line) for line in (folder / "reviewed.jsonl").read_text().splitlines()]
    assert [(r["query"], r["generated_id"], r["source"]) for r in reviewed] == [
        ("rail freight chart", "g0", "generated+reviewed"),
        ("wind farm output by year", "g3", "generated+reviewed"),
    ]
    assert reviewed[1]["edited"] is True and not (folder / "queries.jsonl").exists()  # human queries untouched
    assert json.loads((generated.parent / "review.json").read_text()) == {
        "g0": "accept",
        "g3": "accept",
        "g7": "reject",
    }
