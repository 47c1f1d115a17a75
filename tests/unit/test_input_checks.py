"""User files are read strictly and clearly: no silent zero, no white page, no lost folder, no truncated grade;
every problem is one `error:` line naming the file (and line) and the fix."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image

from vdr_exp.config import DatasetConfig
from vdr_exp.data.layouts import beir, local_docs
from vdr_exp.data.protocols import relevance_grade, safe_id
from vdr_exp.errors import InputError


def _cfg(root: Path, cache: Path, **kwargs) -> DatasetConfig:
    return DatasetConfig(name="local_docs", format="local_docs", path=str(root), page_cache=str(cache), **kwargs)


def _with_queries(doc_folder: Path, tmp_path: Path, lines: list[str] | bytes) -> Path:
    docs = Path(shutil.copytree(doc_folder, tmp_path / "docs"))
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
    (docs / "queries.jsonl").write_bytes(data)
    return docs


@pytest.mark.parametrize("page", ["true", "1.0", '"2"'])
def test_a_page_number_must_be_a_json_integer(doc_folder, tmp_path, page):
    line = f'{{"query_id": "q", "query": "x", "relevant": [{{"file": "memo.pdf", "page": {page}}}]}}'
    docs = _with_queries(doc_folder, tmp_path, [line])
    with pytest.raises(InputError, match=r"queries.jsonl:1: 'memo.pdf' is a PDF; give \"page\" as a 1-based integer"):
        local_docs.load_folder(_cfg(docs, tmp_path / "cache", dpi=72))
    image_line = '{"query_id": "q", "query": "x", "relevant": [{"file": "chart.png", "page": true}]}'
    docs_image = _with_queries(doc_folder, tmp_path / "img", [image_line])
    with pytest.raises(InputError, match="is an image and has no pages"):
        local_docs.load_folder(_cfg(docs_image, tmp_path / "cache", dpi=72))


def test_jsonl_splits_on_newlines_only_and_names_the_line_of_a_bad_byte(doc_folder, tmp_path):
    text = "chart\u2028of wind farms"  # a line separator inside a string is text, not a new line
    good = json.dumps({"query_id": "q1", "query": text, "relevant": [{"file": "chart.png"}]}, ensure_ascii=False)
    docs = _with_queries(doc_folder, tmp_path, [good])
    (query,) = local_docs.load_folder(_cfg(docs, tmp_path / "cache", dpi=72)).queries
    assert query.text == text
    bad = good.encode() + b"\n" + b'{"query_id": "q2", "query": "caf\xe9", "relevant": [{"file": "chart.png"}]}\n'
    docs = _with_queries(doc_folder, tmp_path / "bad", bad)
    with pytest.raises(InputError, match=r"queries.jsonl:2: not UTF-8 text \(byte 0xe9"):
        local_docs.load_folder(_cfg(docs, tmp_path / "cache", dpi=72))


@pytest.mark.parametrize("value", ["", None, "a b", "null"])
def test_ids_that_would_break_a_trec_file_are_refused(value):
    with pytest.raises(InputError, match="would break the TREC run file"):
        safe_id(value, "queries.jsonl:3")
    assert safe_id(17, "x") == "17"


def test_sixteen_bit_grayscale_pages_keep_their_contrast(tmp_path):
    mid_grey = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    assert mid_grey.mode.startswith("I;16")
    path = tmp_path / "scan.png"
    mid_grey.save(path)
    with Image.open(path) as reopened:
        assert reopened.convert("RGB").getpixel((0, 0))[0] == 255  # what Pillow alone does: white
    assert local_docs.open_page(path).getpixel((0, 0)) == (128, 128, 128)
    floats = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))
    assert local_docs.to_rgb(floats).getpixel((0, 0)) == (128, 128, 128)


def test_symlinked_folders_are_part_of_the_corpus_and_loops_end(doc_folder, tmp_path):
    docs = Path(shutil.copytree(doc_folder, tmp_path / "docs"))
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    shutil.copy(docs / "chart.png", elsewhere / "old_chart.png")
    os.symlink(elsewhere, docs / "archive")
    os.symlink(docs, elsewhere / "back")  # a loop: archive/back -> docs -> archive ...
    folder = local_docs.scan_pages(docs, 72, tmp_path / "cache")
    assert "archive/old_chart.png" in folder.pages
    assert not [d for d in folder.pages if d.count("archive/") > 1 or "back/" in d]


@pytest.mark.parametrize(
    ("score", "expected"),
    [(2, 2), (2.0, 2), ("1", 1), (0.5, "not a whole number"), ("high", "not a number"), (True, "not a number")],
)
def test_one_rule_for_relevance_grades(score, expected):
    if isinstance(expected, int):
        assert relevance_grade(score, "qrels row 0") == expected
    else:
        with pytest.raises(InputError, match=expected):
            relevance_grade(score, "qrels row 0")


@pytest.mark.parametrize(
    "override", ["eval.batch_size=0", "dataset.dpi=5000", "pixels.max_pixels=-1", "loss.matryoshka_dims=[64,0]"]
)
def test_settings_out_of_range_are_refused_when_the_config_loads(override):
    from hydra import compose, initialize_config_module

    from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
    from vdr_exp.errors import ConfigError

    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose(config_name="train", overrides=[override])
    with pytest.raises(ConfigError, match=r"is out of range: it must be"):
        load_train_config(composed)


def test_a_beir_json_file_with_a_bad_byte_or_bad_json_is_named(tmp_path):
    root = tmp_path / "beir"
    parts = {
        "corpus": Dataset.from_dict({"corpus-id": [0], "image": [Image.new("RGB", (32, 32), "red")]}),
        "qrels": Dataset.from_dict({"query-id": ["a"], "corpus-id": [0], "score": [1]}),
    }
    for name, rows in parts.items():
        (root / name).mkdir(parents=True)
        rows.to_parquet(str(root / name / "test.parquet"))
    (root / "queries").mkdir()
    queries = root / "queries" / "test.jsonl"
    queries.write_bytes(b'{"query-id": "a", "query": "red"}\n{"query-id": "b", "query": "caf\xe9"}\n')
    cfg = DatasetConfig(name="beir", format="beir", path=str(root), split="test")
    with pytest.raises(InputError, match=r"queries/test.jsonl:2: not UTF-8 text"):
        beir.load_beir(cfg)
    queries.write_text('{"query-id": "a", "query": "red"}\n{"query-id": "b", "query": \n')
    with pytest.raises(InputError, match=r"beir/queries: cannot read the dataset"):
        beir.load_beir(cfg)
