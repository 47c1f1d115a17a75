"""Strict reading of user files as a run reports it: one `error:` line naming the file (and line) and the fix,
exit 2 (the readers in-process: tests/unit/test_input_checks.py)."""

from __future__ import annotations

import pytest
from datasets import Dataset
from entrypoints import run_entry
from PIL import Image

from vdr_exp.config import DatasetConfig
from vdr_exp.data.layouts import beir
from vdr_exp.errors import InputError


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_beir_qrels_with_a_fractional_grade_fail_with_the_row(tmp_path, fixture_paths):
    root = tmp_path / "beir"
    pages = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    parts = {
        "corpus": Dataset.from_dict({"corpus-id": [0, 1], "image": pages}),
        "queries": Dataset.from_dict({"query-id": ["a"], "query": ["red page"]}),
        "qrels": Dataset.from_dict({"query-id": ["a", "a"], "corpus-id": [0, 1], "score": [1.0, 0.5]}),
    }
    for name, rows in parts.items():
        (root / name).mkdir(parents=True)
        rows.to_parquet(str(root / name / "test.parquet"))
    cfg = DatasetConfig(name="beir", format="beir", path=str(root), split="test")
    with pytest.raises(InputError, match=r"qrels row 1 \(a, 1\): relevance score 0.5 is not a whole number"):
        beir.load_beir(cfg)
    result = run_entry(
        "vdr_exp.evaluate",
        ["experiment=offline_eval", "dataset=beir", f"dataset.path={root}"],
        tmp_path / "w",
        fixture_paths.root,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")][0].endswith("if it is relevant).")


def test_an_out_of_range_setting_ends_with_one_error_line_and_exit_2(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["experiment=offline_eval", "eval.batch_size=0"], tmp_path, fixture_paths.root
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [x for x in result.stderr.splitlines() if x.startswith("error:")] == [
        "error: eval.batch_size=0 is out of range: it must be >= 1; fix the override."
    ]
