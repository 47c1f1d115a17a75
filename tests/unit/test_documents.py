"""Your own documents (PDFs + images + queries.jsonl) and the BEIR layout, read in-process: every page a document
rendered once, queries split by seed, bad lines and files named (evaluated and mined end to end:
tests/e2e/test_document_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset
from documents import LAYOUT
from PIL import Image

from vdr_exp import data
from vdr_exp.config import DatasetConfig
from vdr_exp.data.layouts import local_docs
from vdr_exp.data.layouts.base import split_query_ids
from vdr_exp.errors import InputError


def _cfg(root: Path, cache: Path, **kwargs) -> DatasetConfig:
    return DatasetConfig(name="local_docs", format="local_docs", path=str(root), page_cache=str(cache), **kwargs)


def test_every_page_is_a_document_and_renders_once(doc_folder, tmp_path):
    folder = local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=72))
    assert len(folder.pages) == sum(LAYOUT.values()) == 11
    assert "reports/annual.pdf#p4" in folder.pages and "scans/receipt.jpg" in folder.pages
    assert len(folder.queries) == 11 and folder.queries[0].relevant == {"reports/annual.pdf#p1": 2, "memo.pdf#p2": 1}
    with Image.open(folder.pages["contract.pdf#p2"]) as page:
        assert page.size == (248, 352)  # 72 dpi: the PDF's own size in points
    cached = sorted((tmp_path / "cache").iterdir())
    assert len(cached) == 3 and all((d / "complete").is_file() for d in cached)
    stamp = {p: p.stat().st_mtime_ns for d in cached for p in d.iterdir()}
    local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=72))
    assert {p: p.stat().st_mtime_ns for d in cached for p in d.iterdir()} == stamp  # nothing re-rendered
    local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=144))
    assert len(list((tmp_path / "cache").iterdir())) == 6  # the DPI is part of the key


def test_queries_split_by_seed_and_fraction():
    ids = [f"q{i}" for i in range(10)]
    train, held_out = split_query_ids(ids, 0.3, seed=1)
    assert len(held_out) == 3 and train | held_out == set(ids) and not train & held_out
    assert split_query_ids(ids, 0.3, seed=1) == (train, held_out)
    assert split_query_ids(ids, 0.3, seed=2) != (train, held_out)
    assert split_query_ids(ids, 1.0, seed=1) == (set(), set(ids))


def test_training_reads_a_folder_once_for_rows_and_eval_queries(doc_folder, tmp_path, monkeypatch):
    cfg = _cfg(
        doc_folder, tmp_path / "cache", dpi=72, eval_fraction=0.3, split_seed=3, train_columns=["query", "image"]
    )
    loads = []
    real_load = local_docs.load_folder
    monkeypatch.setattr(local_docs, "load_folder", lambda c: loads.append(c) or real_load(c))
    rows, protocol = data.load_train_and_eval(cfg)
    assert len(loads) == 1
    separate_rows, separate_protocol = data.load_train_rows(cfg), data.load_eval_protocol(cfg)
    assert len(loads) == 3  # the separate calls each read the folder
    assert rows["query"] == separate_rows["query"] and protocol.qrels == separate_protocol.qrels
    assert set(protocol.corpus) == set(separate_protocol.corpus) and len(protocol.corpus) == 11
    assert not set(rows["query"]) & set(protocol.queries.values())  # held-out queries never train


BAD_LINES = [
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "nope.pdf", "page": 1}]}', "'nope.pdf' is not in"),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf", "page": 3}]}', "page 3 of 'memo.pdf' is out of range; it has 2 pages"),
    ('{"query_id": "a", "query": "  ", "relevant": [{"file": "memo.pdf", "page": 1}]}', "query 'a' is empty"),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf"}]}', "is a PDF; give \"page\""),
    ('{"query_id": "a", "query": "x", "relevant": []}', '"relevant" must be a non-empty list'),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf", "page": 1}]', "not valid JSON"),
    ('{"query": "x", "relevant": [{"file": "memo.pdf", "page": 1}]}', "missing ['query_id']"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_query_lines_name_the_file_and_line(doc_folder, tmp_path, line, message):
    good = '{"query_id": "ok", "query": "fine", "relevant": [{"file": "chart.png"}]}'
    queries = tmp_path / "queries.jsonl"
    queries.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(InputError) as error:
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", queries_file=str(queries)))
    assert f"{queries}:3: " in str(error.value) and message in str(error.value)


def test_duplicate_ids_unreadable_pdfs_and_missing_files(doc_folder, tmp_path):
    line = '{"query_id": "a", "query": "x", "relevant": [{"file": "chart.png"}]}'
    queries = tmp_path / "queries.jsonl"
    queries.write_text(f"{line}\n{line}\n")
    with pytest.raises(InputError, match=r"queries.jsonl:2: duplicate query_id 'a' \(first on line 1\)"):
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "c", queries_file=str(queries)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(InputError, match=r"bad.pdf: cannot read this PDF"):
        local_docs.load_folder(_cfg(broken, tmp_path / "fresh-cache"))
    assert not list((tmp_path / "fresh-cache").glob("*")), "no half-rendered cache entry is left behind"
    with pytest.raises(InputError, match="queries file .* does not exist"):
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "c", queries_file="missing.jsonl"))
    with pytest.raises(InputError, match="is not a folder"):
        local_docs.load_folder(_cfg(tmp_path / "nowhere", tmp_path / "c"))


def test_beir_missing_column_is_named(beir_folder, tmp_path):
    from vdr_exp.data.layouts import beir

    broken = tmp_path / "broken"
    for name in ("corpus", "queries"):
        (broken / name).mkdir(parents=True)
        for f in (beir_folder / name).iterdir():
            (broken / name / f.name).write_bytes(f.read_bytes())
    (broken / "qrels").mkdir()
    Dataset.from_dict({"query-id": ["v0"], "corpus-id": [0]}).to_parquet(str(broken / "qrels" / "test.parquet"))
    cfg = DatasetConfig(name="beir", format="beir", path=str(broken), split="test")
    with pytest.raises(InputError, match=r"qrels \(qrels\): missing columns \['score'\]"):
        beir.load_beir(cfg)
