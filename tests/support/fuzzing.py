"""Hypothesis strategies for users' files and the checks each fed file must pass: a valid dataset or an
InputError, never another exception (issue 30). Shared by tests/unit/test_fuzzed_readers.py (the `make test`
example counts) and tests/e2e/test_fuzzed_readers_at_depth.py (CI's larger counts)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
from datasets import Dataset
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from vdr_exp.config import DatasetConfig
from vdr_exp.data import trec
from vdr_exp.data.layouts import beir, local_docs
from vdr_exp.errors import InputError
from vdr_exp.runtime import csv_safe
from vdr_exp.runtime.names import printable


def fuzz(examples: int) -> settings:
    """No deadline (a loaded CI machine), no example database written into the checkout."""
    checks = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=checks)


SCALARS = st.none() | st.booleans() | st.integers(-2, 4) | st.floats(allow_nan=True) | st.text(max_size=6)
KEYS = st.sampled_from(["query_id", "query", "relevant", "file", "page", "grade", "query-id", "corpus-id", "score"])
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS | st.text(max_size=3), c, max_size=4), max_leaves=8)  # fmt: skip


def tiff(path: Path, colours: list[str]) -> None:
    frames = [Image.new("RGB", (48, 64), c) for c in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def small_folder(root: Path, cache: Path) -> local_docs.DocumentFolder:
    """An image, a two-page PDF and a three-frame TIFF, scanned: the pages fuzzed queries files point at."""
    Image.new("RGB", (40, 40), "red").save(root / "a.png")
    pages = [Image.new("RGB", (60, 80), c) for c in ("white", "black")]
    pages[0].save(root / "doc.pdf", save_all=True, append_images=pages[1:], resolution=72)
    tiff(root / "scan.tif", ["red", "green", "blue"])
    return local_docs.scan_pages(root, 72, cache)


def beir_folder(root: Path, qrels: list[dict], queries: list[dict] | None = None) -> DatasetConfig:
    """A BEIR folder of three pages with these qrels and queries (JSON lines); its dataset config."""
    corpus = Dataset.from_dict({"corpus-id": ["0", "1", "007"], "image": [Image.new("RGB", (16, 16))] * 3})
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    corpus.to_parquet(str(root / "corpus" / "test.parquet"))
    queries = queries if queries is not None else [{"query-id": "a", "query": "red"}, {"query-id": "b", "query": "x"}]
    for name, rows in (("queries", queries), ("qrels", qrels)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return DatasetConfig(name="beir", format="beir", path=str(root), split="test")


def query_line(files: list[str]) -> st.SearchStrategy:
    relevant = st.fixed_dictionaries({"file": st.sampled_from(files)}, optional={"page": SCALARS, "grade": SCALARS})
    near_valid = st.fixed_dictionaries(
        {"query_id": SCALARS, "query": SCALARS, "relevant": st.lists(relevant, max_size=3) | JSON}
    )
    return near_valid.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=20)


def check_queries(small_folder, lines: list[str], raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queries.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
        try:
            queries = local_docs.read_queries(path, small_folder)
        except InputError:
            return
        assert queries and all(q.relevant and set(q.relevant) <= set(small_folder.pages) for q in queries)


FILES = ["a.png", "doc.pdf", "scan.tif", "missing.png"]


TOKENS = st.sampled_from(["q1", "d1", "Q0", "0", "1", "2", "-1", "0.5", "nan", "inf", "x", "007"]) | st.text(max_size=4)
TREC_LINES = st.lists(st.lists(TOKENS, max_size=7).map(" ".join) | st.text(max_size=12), max_size=6)


def check_trec(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.trec"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        for read in (trec.read_run, trec.read_qrels):
            try:
                result = read(path)
            except InputError:
                continue
            assert result and all(isinstance(d, dict) and d for d in result.values())


def image_bytes(kind: str, size: tuple[int, int], frames: int) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", size, (40 * i, 0, 0)) for i in range(frames)]
    images[0].save(buffer, format=kind, save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


PAGE_FILES = st.tuples(
    st.sampled_from([("PNG", ".png"), ("JPEG", ".jpg"), ("TIFF", ".tif"), ("GIF", ".gif"), ("PDF", ".pdf")]),
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    st.integers(1, 3),
    st.floats(0, 1),  # keep this fraction of the bytes (1: the whole file)
    st.binary(max_size=16),  # then append junk
)


def check_page_file(case: tuple) -> None:
    (kind, suffix), size, frames, keep, junk = case
    frames = 1 if kind in ("PNG", "JPEG") else frames
    data = image_bytes(kind, size, frames)
    data = data[: max(1, int(len(data) * keep))] + junk
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "docs"
        root.mkdir()
        (root / f"page{suffix}").write_bytes(data)
        try:
            scanned = local_docs.scan_pages(root, 72, Path(folder) / "cache")
            pages = [local_docs.open_page(path) for path in scanned.pages.values()]
        except InputError:
            return
        assert pages and all(page.mode == "RGB" for page in pages)


IDS = st.sampled_from(["a", "b", "0", "1", "007", "", " x", "null"]) | st.integers(0, 2) | st.none() | st.floats()
BEIR_QUERIES = st.lists(st.fixed_dictionaries({"query-id": IDS, "query": SCALARS}), max_size=4)
BEIR_QRELS = st.lists(st.fixed_dictionaries({"query-id": IDS, "corpus-id": IDS, "score": SCALARS}), max_size=4)


def check_beir(queries: list[dict], qrels: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cfg = beir_folder(Path(folder), qrels, queries)
        try:
            corpus, loaded_queries, loaded_qrels = beir.load_beir(cfg)
        except InputError:
            return
        assert all(q in loaded_queries and set(d) <= set(corpus) for q, d in loaded_qrels.items())


# Any name a filesystem allows in a folder: bytes without "/" and NUL, at most 255 of them (Linux's NAME_MAX), the
# odd ones often: not UTF-8, newlines, a leading dash, a right-to-left override, backslashes that look like escapes.
ODD_PARTS = st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\n", b"\r\t", b"-", b"--rf ", b" ", b"\\", b"\\xff", b"#p2"])
ODD_PARTS |= st.sampled_from([b"\xe2\x80\xae", b"\x1b[31m", b"%41", b"caf\xc3\xa9", b"'\"", b"=1+2", b"x" * 120])
NAME_STEMS = st.lists(ODD_PARTS | st.binary(min_size=1, max_size=12), min_size=1, max_size=6).map(b"".join)
ODD_NAMES = st.tuples(NAME_STEMS, st.sampled_from([b".png", b".PNG", b".tif", b".pdf"])).map(
    lambda parts: parts[0].replace(b"/", b"_").replace(b"\0", b"_")[: 255 - len(parts[1])] + parts[1]
)


def check_file_names(names: list[bytes]) -> None:
    """Every file is read under its escaped name: one page each, ids that are printable, valid UTF-8 and
    whitespace-free (TREC), the same on a second scan, and named by a queries file as the run's log shows them;
    each id survives the CSV round trip."""
    names = list(dict.fromkeys(names))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "docs"
        root.mkdir()
        for name in names:
            kind = {b".pdf": "PDF", b".tif": "TIFF"}.get(name[-4:].lower(), "PNG")
            with open(os.path.join(os.fsencode(root), name), "wb") as out:
                out.write(image_bytes(kind, (8, 8), 1))
        scanned = local_docs.scan_pages(root, 72, Path(folder) / "cache")
        assert sorted(scanned.page_counts) == sorted(printable(n) for n in names) and len(scanned.pages) == len(names)
        for doc in scanned.pages:
            assert doc.isprintable() and not any(c.isspace() for c in doc) and doc.encode("utf-8")
        assert local_docs.scan_pages(root, 72, Path(folder) / "cache").pages == scanned.pages
        queries = root / "queries.jsonl"
        files = [{"file": f, **({"page": 1} if f in scanned.paged else {})} for f in scanned.page_counts]
        rows = [{"query_id": f"q{i}", "query": "red", "relevant": [file]} for i, file in enumerate(files)]
        queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
        loaded = local_docs.read_queries(queries, scanned)
        assert [set(q.relevant) <= set(scanned.pages) and len(q.relevant) == 1 for q in loaded] == [True] * len(names)
        table = csv_safe.write_csv(pd.DataFrame({"doc_id": list(scanned.pages)}), Path(folder) / "ids.csv")
        assert list(csv_safe.read_csv(table)["doc_id"]) == list(scanned.pages)
