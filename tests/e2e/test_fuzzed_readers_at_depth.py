"""The fuzzed readers at CI's example counts (500 for queries.jsonl and TREC files, 200 for page files, 100 for
BEIR folders; `make test` runs 100, 40 and 25 in tests/unit/test_fuzzed_readers.py), and the findings of the
second adversarial round as a run meets them: a truncated JPEG is an error line naming it, its odd name escaped.
Odd file names fuzzed at CI's count (100 folders); a run that reads them: tests/e2e/test_document_runs.py.
"""

from __future__ import annotations

import io
import json
import os

import pytest
from entrypoints import run_entry, runs_in
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from support import fuzzing
from support.fuzzing import BEIR_QRELS, BEIR_QUERIES, FILES, ODD_NAMES, PAGE_FILES, TREC_LINES, fuzz, query_line

from vdr_exp.data.layouts import local_docs


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> local_docs.DocumentFolder:
    return fuzzing.small_folder(tmp_path_factory.mktemp("small"), tmp_path_factory.mktemp("cache"))


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_a_truncated_jpeg_with_an_odd_name_is_an_error_line_naming_it_escaped(tmp_path, fixture_paths):
    root = tmp_path / "docs"
    root.mkdir()
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buffer, format="JPEG")
    cut = buffer.getvalue()[: len(buffer.getvalue()) // 2]  # header intact, cut short
    (tmp_path / "scan.jpg").write_bytes(cut)
    os.rename(tmp_path / "scan.jpg", os.fsencode(root) + b"/sc\xe9an\n.jpg")  # Latin-1 and a newline
    relevant = [{"file": "sc\\xe9an\\n.jpg"}]  # the name as logs and errors show it
    (root / "queries.jsonl").write_text(json.dumps({"query_id": "q", "query": "x", "relevant": relevant}))
    overrides = ["experiment=offline_eval", "dataset=local_docs", f"dataset.path={root}"]
    overrides.append(f"dataset.page_cache={tmp_path / 'cache'}")
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "w", fixture_paths.root)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"{root}/sc\\xe9an\\n.jpg" in line  # the file, escaped
    assert "cannot be decoded" in line or "not a readable image" in line
    (run,) = runs_in(tmp_path / "w")
    assert run.info.status == "FAILED" and "sc\\xe9an\\n.jpg" in run.data.tags["error"]


@pytest.mark.slow
@fuzz(500)
@given(lines=st.lists(query_line(FILES), max_size=8), raw=st.binary(max_size=32))
def test_any_queries_file_is_a_dataset_or_an_input_error_many(small_folder, lines, raw):
    fuzzing.check_queries(small_folder, lines, raw)


@pytest.mark.slow
@fuzz(500)
@given(lines=TREC_LINES)
def test_any_trec_file_is_a_run_or_an_input_error_many(lines):
    fuzzing.check_trec(lines)


@pytest.mark.slow
@fuzz(200)
@given(case=PAGE_FILES)
def test_any_page_file_is_pages_or_an_input_error_many(case):
    fuzzing.check_page_file(case)


@pytest.mark.slow
@fuzz(100)
@given(queries=BEIR_QUERIES, qrels=BEIR_QRELS)
def test_any_beir_folder_is_a_dataset_or_an_input_error_many(queries, qrels):
    fuzzing.check_beir(queries, qrels)


@pytest.mark.slow
@fuzz(100)
@given(names=st.lists(ODD_NAMES, min_size=1, max_size=8))
def test_any_file_name_is_read_under_its_escaped_name_many(names):
    fuzzing.check_file_names(names)
