"""Every reader of users' files, fed anything: a valid dataset or an InputError (the entry points print it as one
``error:`` line and exit 2), never another exception (issue 30). Plus the findings of the second adversarial
round: every frame of a multi-page TIFF is a page, conflicting duplicate qrels are named, a truncated JPEG and a
file name that is not UTF-8 are error lines.

Examples per property (Hypothesis ``max_examples``): in ``make test`` 100 for queries.jsonl, TREC runs and qrels,
40 for page files, 25 for BEIR folders (each loads through ``datasets``); the ``slow`` variants (CI) run 500,
200 and 100.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from datasets import Dataset
from entrypoints import run_entry, runs_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vdr_exp.config import DatasetConfig
from vdr_exp.data import trec
from vdr_exp.data.layouts import beir, local_docs
from vdr_exp.errors import InputError


def fuzz(examples: int) -> settings:
    """No deadline (a loaded CI machine), no example database written into the checkout."""
    checks = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=checks)


SCALARS = st.none() | st.booleans() | st.integers(-2, 4) | st.floats(allow_nan=True) | st.text(max_size=6)
KEYS = st.sampled_from(["query_id", "query", "relevant", "file", "page", "grade", "query-id", "corpus-id", "score"])
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS | st.text(max_size=3), c, max_size=4), max_leaves=8)  # fmt: skip


def _tiff(path: Path, colours: list[str]) -> None:
    frames = [Image.new("RGB", (48, 64), c) for c in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:])


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> local_docs.DocumentFolder:
    root = tmp_path_factory.mktemp("small")
    Image.new("RGB", (40, 40), "red").save(root / "a.png")
    pages = [Image.new("RGB", (60, 80), c) for c in ("white", "black")]
    pages[0].save(root / "doc.pdf", save_all=True, append_images=pages[1:], resolution=72)
    _tiff(root / "scan.tif", ["red", "green", "blue"])
    return local_docs.scan_pages(root, 72, tmp_path_factory.mktemp("cache"))


# --- findings of the adversarial round ---------------------------------------------------------------------


def test_every_frame_of_a_multi_page_tiff_is_a_page_addressed_by_number(small_folder, tmp_path):
    assert small_folder.page_counts["scan.tif"] == 3
    colours = [local_docs.open_page(small_folder.pages[f"scan.tif#p{n}"]).getpixel((5, 5)) for n in (1, 2, 3)]
    assert colours == [(255, 0, 0), (0, 128, 0), (0, 0, 255)]
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"query_id": "q", "query": "blue", "relevant": [{"file": "scan.tif", "page": 3}]}))
    (query,) = local_docs.read_queries(queries, small_folder)
    assert query.relevant == {"scan.tif#p3": 1}
    queries.write_text(json.dumps({"query_id": "q", "query": "blue", "relevant": [{"file": "scan.tif"}]}))
    with pytest.raises(InputError, match=r"'scan.tif' has 3 pages \(frames\); give \"page\""):
        local_docs.read_queries(queries, small_folder)


def _beir_folder(root: Path, qrels: list[dict], queries: list[dict] | None = None) -> DatasetConfig:
    corpus = Dataset.from_dict({"corpus-id": ["0", "1", "007"], "image": [Image.new("RGB", (16, 16))] * 3})
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    corpus.to_parquet(str(root / "corpus" / "test.parquet"))
    queries = queries if queries is not None else [{"query-id": "a", "query": "red"}, {"query-id": "b", "query": "x"}]
    for name, rows in (("queries", queries), ("qrels", qrels)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return DatasetConfig(name="beir", format="beir", path=str(root), split="test")


def test_conflicting_duplicate_qrels_are_an_error_naming_both_rows(tmp_path):
    rows = [{"query-id": "a", "corpus-id": "0", "score": 1}, {"query-id": "b", "corpus-id": "1", "score": 1}]
    cfg = _beir_folder(tmp_path, [*rows, {"query-id": "a", "corpus-id": "0", "score": 2}])
    with pytest.raises(InputError, match=r"qrels rows 0 and 2 both judge \(a, 0\), with grades 1 and 2"):
        beir.load_beir(cfg)
    same = _beir_folder(tmp_path / "same", [*rows, {"query-id": "a", "corpus-id": "0", "score": 1}])
    assert beir.load_beir(same)[2] == {"a": {"0": 1}, "b": {"1": 1}}  # a repeated identical judgement counts once


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_a_truncated_jpeg_and_a_non_utf8_file_name_are_error_lines(tmp_path, fixture_paths):
    root = tmp_path / "docs"
    root.mkdir()
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buffer, format="JPEG")
    (root / "scan.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # header intact, cut short
    (root / "queries.jsonl").write_text(json.dumps({"query_id": "q", "query": "x", "relevant": [{"file": "scan.jpg"}]}))
    overrides = ["experiment=offline_eval", "dataset=local_docs", f"dataset.path={root}"]
    overrides.append(f"dataset.page_cache={tmp_path / 'cache'}")
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "w", fixture_paths.root)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "scan.jpg" in line and ("cannot be decoded" in line or "not a readable image" in line)
    (run,) = runs_in(tmp_path / "w")
    assert run.info.status == "FAILED"

    Image.new("RGB", (16, 16)).save(root / "ok.png")
    os.rename(root / "ok.png", os.fsencode(root) + b"/caf\xe9.png")  # Latin-1 bytes
    with pytest.raises(InputError, match=r"is not valid UTF-8; rename it"):
        local_docs.scan_pages(root, 72, tmp_path / "cache")


# --- queries.jsonl -----------------------------------------------------------------------------------------


def _query_line(files: list[str]) -> st.SearchStrategy:
    relevant = st.fixed_dictionaries({"file": st.sampled_from(files)}, optional={"page": SCALARS, "grade": SCALARS})
    near_valid = st.fixed_dictionaries(
        {"query_id": SCALARS, "query": SCALARS, "relevant": st.lists(relevant, max_size=3) | JSON}
    )
    return near_valid.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=20)


def _check_queries(small_folder, lines: list[str], raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queries.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
        try:
            queries = local_docs.read_queries(path, small_folder)
        except InputError:
            return
        assert queries and all(q.relevant and set(q.relevant) <= set(small_folder.pages) for q in queries)


FILES = ["a.png", "doc.pdf", "scan.tif", "missing.png"]


@fuzz(100)
@given(lines=st.lists(_query_line(FILES), max_size=5), raw=st.binary(max_size=8))
def test_any_queries_file_is_a_dataset_or_an_input_error(small_folder, lines, raw):
    _check_queries(small_folder, lines, raw)


@pytest.mark.slow
@fuzz(500)
@given(lines=st.lists(_query_line(FILES), max_size=8), raw=st.binary(max_size=32))
def test_any_queries_file_is_a_dataset_or_an_input_error_many(small_folder, lines, raw):
    _check_queries(small_folder, lines, raw)


# --- TREC run files and qrels -------------------------------------------------------------------------------

TOKENS = st.sampled_from(["q1", "d1", "Q0", "0", "1", "2", "-1", "0.5", "nan", "inf", "x", "007"]) | st.text(max_size=4)
TREC_LINES = st.lists(st.lists(TOKENS, max_size=7).map(" ".join) | st.text(max_size=12), max_size=6)


def _check_trec(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.trec"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        for read in (trec.read_run, trec.read_qrels):
            try:
                result = read(path)
            except InputError:
                continue
            assert result and all(isinstance(d, dict) and d for d in result.values())


@fuzz(100)
@given(lines=TREC_LINES)
def test_any_trec_file_is_a_run_or_an_input_error(lines):
    _check_trec(lines)


@pytest.mark.slow
@fuzz(500)
@given(lines=TREC_LINES)
def test_any_trec_file_is_a_run_or_an_input_error_many(lines):
    _check_trec(lines)


def test_trec_files_read_back_what_an_evaluation_wrote(tmp_path):
    (tmp_path / "run.trec").write_text("007 Q0 d1 1 0.5 t\n007 Q0 d2 2 0.25 t\n")
    (tmp_path / "qrels.tsv").write_text("007\t0\td1\t2\n007\t0\td1\t1\n")
    assert trec.read_run(tmp_path / "run.trec") == {"007": {"d1": 0.5, "d2": 0.25}}
    with pytest.raises(InputError, match=r"lines 1 and 2 give \(007, d1\) grades 2 and 1"):
        trec.read_qrels(tmp_path / "qrels.tsv")


# --- page files: images and PDFs ----------------------------------------------------------------------------


def _image_bytes(kind: str, size: tuple[int, int], frames: int) -> bytes:
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


def _check_page_file(case: tuple) -> None:
    (kind, suffix), size, frames, keep, junk = case
    frames = 1 if kind in ("PNG", "JPEG") else frames
    data = _image_bytes(kind, size, frames)
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


@fuzz(40)
@given(case=PAGE_FILES)
def test_any_page_file_is_pages_or_an_input_error(case):
    _check_page_file(case)


@pytest.mark.slow
@fuzz(200)
@given(case=PAGE_FILES)
def test_any_page_file_is_pages_or_an_input_error_many(case):
    _check_page_file(case)


# --- BEIR corpus, queries and qrels ---------------------------------------------------------------------------

IDS = st.sampled_from(["a", "b", "0", "1", "007", "", " x", "null"]) | st.integers(0, 2) | st.none() | st.floats()
BEIR_QUERIES = st.lists(st.fixed_dictionaries({"query-id": IDS, "query": SCALARS}), max_size=4)
BEIR_QRELS = st.lists(st.fixed_dictionaries({"query-id": IDS, "corpus-id": IDS, "score": SCALARS}), max_size=4)


def _check_beir(queries: list[dict], qrels: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cfg = _beir_folder(Path(folder), qrels, queries)
        try:
            corpus, loaded_queries, loaded_qrels = beir.load_beir(cfg)
        except InputError:
            return
        assert all(q in loaded_queries and set(d) <= set(corpus) for q, d in loaded_qrels.items())


@fuzz(25)
@given(queries=BEIR_QUERIES, qrels=BEIR_QRELS)
def test_any_beir_folder_is_a_dataset_or_an_input_error(queries, qrels):
    _check_beir(queries, qrels)


@pytest.mark.slow
@fuzz(100)
@given(queries=BEIR_QUERIES, qrels=BEIR_QRELS)
def test_any_beir_folder_is_a_dataset_or_an_input_error_many(queries, qrels):
    _check_beir(queries, qrels)
