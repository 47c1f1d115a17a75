"""Every reader of users' files, fed anything: a valid dataset or an InputError (the entry points print it as one
``error:`` line and exit 2), never another exception (issue 30). Plus the findings of the second adversarial
round: every frame of a multi-page TIFF is a page, conflicting duplicate qrels are named.

Examples per property (Hypothesis ``max_examples``): 100 for queries.jsonl, TREC runs and qrels, 40 for page
files, 25 for BEIR folders (each loads through ``datasets``) and folders of odd file names (issue 37). CI's larger
counts (500, 200, 100, 100) and the errors as a run prints them (a truncated JPEG):
tests/e2e/test_fuzzed_readers_at_depth.py; a run on odd file names: tests/e2e/test_document_runs.py.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import fuzzing
from support.fuzzing import BEIR_QRELS, BEIR_QUERIES, FILES, ODD_NAMES, PAGE_FILES, TREC_LINES, fuzz, query_line

from vdr_exp.data import trec
from vdr_exp.data.layouts import beir, local_docs
from vdr_exp.errors import InputError
from vdr_exp.runtime.names import printable, utf8


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> local_docs.DocumentFolder:
    return fuzzing.small_folder(tmp_path_factory.mktemp("small"), tmp_path_factory.mktemp("cache"))


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


def test_conflicting_duplicate_qrels_are_an_error_naming_both_rows(tmp_path):
    rows = [{"query-id": "a", "corpus-id": "0", "score": 1}, {"query-id": "b", "corpus-id": "1", "score": 1}]
    cfg = fuzzing.beir_folder(tmp_path, [*rows, {"query-id": "a", "corpus-id": "0", "score": 2}])
    with pytest.raises(InputError, match=r"qrels rows 0 and 2 both judge \(a, 0\), with grades 1 and 2"):
        beir.load_beir(cfg)
    same = fuzzing.beir_folder(tmp_path / "same", [*rows, {"query-id": "a", "corpus-id": "0", "score": 1}])
    assert beir.load_beir(same)[2] == {"a": {"0": 1}, "b": {"1": 1}}  # a repeated identical judgement counts once


def test_trec_files_read_back_what_an_evaluation_wrote(tmp_path):
    (tmp_path / "run.trec").write_text("007 Q0 d1 1 0.5 t\n007 Q0 d2 2 0.25 t\n")
    (tmp_path / "qrels.tsv").write_text("007\t0\td1\t2\n007\t0\td1\t1\n")
    assert trec.read_run(tmp_path / "run.trec") == {"007": {"d1": 0.5, "d2": 0.25}}
    with pytest.raises(InputError, match=r"lines 1 and 2 give \(007, d1\) grades 2 and 1"):
        trec.read_qrels(tmp_path / "qrels.tsv")


def test_an_odd_file_name_is_escaped_to_one_printable_line_and_two_names_never_meet():
    assert printable(b"caf\xe9 \xc3\xa9.png") == "caf\\xe9 \u00e9.png"  # a Latin-1 byte escaped, UTF-8 kept
    assert printable("-a\nb\t\u202e\\x.pdf") == "-a\\nb\\t\\u202e\\\\x.pdf"
    assert printable(b"\\xe9") != printable(b"\xe9")  # a backslash is escaped too: escapes never collide
    assert printable(b"\xc2\x85") == "\\u0085" != printable(b"\x85")  # U+0085 (a control) is not the byte 0x85
    assert utf8("line one\nbad \udcff") == "line one\nbad \\xff"  # free text keeps its newlines


# --- fuzzed: queries.jsonl, TREC run files and qrels, page files, BEIR folders ------------------------------


@fuzz(100)
@given(lines=st.lists(query_line(FILES), max_size=5), raw=st.binary(max_size=8))
def test_any_queries_file_is_a_dataset_or_an_input_error(small_folder, lines, raw):
    fuzzing.check_queries(small_folder, lines, raw)


@fuzz(100)
@given(lines=TREC_LINES)
def test_any_trec_file_is_a_run_or_an_input_error(lines):
    fuzzing.check_trec(lines)


@fuzz(40)
@given(case=PAGE_FILES)
def test_any_page_file_is_pages_or_an_input_error(case):
    fuzzing.check_page_file(case)


@fuzz(25)
@given(queries=BEIR_QUERIES, qrels=BEIR_QRELS)
def test_any_beir_folder_is_a_dataset_or_an_input_error(queries, qrels):
    fuzzing.check_beir(queries, qrels)


@fuzz(25)
@given(names=st.lists(ODD_NAMES, min_size=1, max_size=4))
def test_any_file_name_is_read_under_its_escaped_name(names):
    fuzzing.check_file_names(names)
