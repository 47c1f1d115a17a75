"""Dataset folders the project writes (mined sets): swapped in whole, a foreign folder refused, and two folders
of the same name never share cached rows. Mining's own refusals, run end to end: tests/e2e/test_no_data_lost.py."""

from __future__ import annotations

import pytest
from datasets import Dataset

from vdr_exp.data.dataset_folder import load_rows, write_dataset_folder
from vdr_exp.errors import InputError


def test_a_dataset_folder_is_swapped_in_whole_and_a_foreign_folder_is_refused(tmp_path):
    out = tmp_path / "mined"
    write_dataset_folder(out, {"train": Dataset.from_dict({"query": ["a"]})}, "# one")
    write_dataset_folder(out, {"train": Dataset.from_dict({"query": ["b", "c"]})}, "# two")
    assert load_rows(str(out), "train", "train")["query"] == ["b", "c"]

    class Boom(Exception):
        pass

    class Exploding:
        def to_parquet(self, path: str) -> None:
            raise Boom

    with pytest.raises(Boom):  # a failure while writing leaves the previous dataset as it was
        write_dataset_folder(out, {"train": Exploding()}, "# three")
    assert load_rows(str(out), "train", "train")["query"] == ["b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mined"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="was not written by vdr-exp"):
        write_dataset_folder(foreign, {"train": Dataset.from_dict({"query": ["x"]})}, "# x")
    assert [p.name for p in foreign.iterdir()] == ["thesis.pdf"]


def test_same_named_dataset_folders_never_share_cached_rows(tmp_path):
    from vdr_exp.data.dataset_folder import write_dataset_folder

    for parent, n in (("a", 3), ("b", 5)):
        rows = Dataset.from_dict({"query": [f"q{i}" for i in range(n)]})
        write_dataset_folder(tmp_path / parent / "mined", {"train": rows}, "# test")
    assert len(load_rows(str(tmp_path / "a" / "mined"), "train", "train")) == 3
    assert len(load_rows(str(tmp_path / "b" / "mined"), "train", "train")) == 5
    write_dataset_folder(tmp_path / "a" / "mined", {"train": Dataset.from_dict({"query": ["x"]})}, "# again")
    assert load_rows(str(tmp_path / "a" / "mined"), "train", "train")["query"] == ["x"]
