"""Write datasets as a folder that ``load_dataset(folder, config, split="train")`` reads like a Hub repo.

Each config becomes ``data/<config>-00000-of-00001.parquet`` (images embedded as bytes) and the README's YAML
header declares the configs, the layout of ``tomaarsen/llamaindex-vdr-en-train-preprocessed``. The folder is
built beside its destination and swapped into place, so readers never see a half-written dataset, and a
folder the project did not write (no marker file) is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from datasets import Dataset, load_dataset
from datasets import config as datasets_config
from datasets.exceptions import DatasetGenerationError
from pyarrow import ArrowException

from vdr_exp.data import content, hub
from vdr_exp.errors import InputError


def card(config_names: list[str], body: str, split: str = "train") -> str:
    configs = "\n".join(
        f"- config_name: {name}\n  data_files:\n  - split: {split}\n    path: data/{name}-*.parquet"
        for name in config_names
    )
    return f"---\nconfigs:\n{configs}\n---\n{body.strip()}\n"


# Written into every folder this project writes; an existing folder without it is never replaced or deleted.
MARKER = ".vdr_exp_dataset"


def check_replaceable(out_dir: Path, key: str, own_files: tuple[str, ...] = ()) -> None:
    """Refuse to write over a folder the project did not create (``key`` names the setting to change).

    Ours: it holds the marker, or one of ``own_files`` (what earlier versions wrote: ``mining.json``...)."""
    if out_dir.is_file() or out_dir.is_symlink():
        raise InputError(f"{key}={out_dir} is a file or a link, not a dataset folder; choose a new folder.")
    ours = any((out_dir / name).is_file() for name in (MARKER, *own_files))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not ours:
        raise InputError(
            f"{key}={out_dir} exists and was not written by vdr-exp (no {MARKER} in it); it is left as it is. "
            "Choose a new or empty folder."
        )


def write_dataset_folder(
    out_dir: Path,
    configs: Mapping[str, Dataset],
    body: str,
    *,
    extra_files: Mapping[str, str] | None = None,
    split: str = "train",
) -> Path:
    """Build the folder beside ``out_dir`` and swap it in: readers see the old dataset or the new one, never a
    half-written one, and an earlier dataset is only replaced once the new one is complete. Refuses (before
    writing anything) to replace a folder that is not such a dataset."""
    check_replaceable(out_dir, "output folder", tuple(extra_files or ()))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        (staging / "data").mkdir()
        for name, rows in configs.items():
            rows.to_parquet(str(staging / "data" / f"{name}-00000-of-00001.parquet"))
        (staging / "README.md").write_text(card(list(configs), body, split))
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text)
        (staging / MARKER).write_text(json.dumps({"configs": list(configs)}) + "\n")
        previous = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(previous)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return out_dir


def load_rows(path: str, config_name: str | None = None, split: str | None = None):
    """``load_dataset``, with a cache that follows a local folder's content.

    datasets keys its cache for a local folder with README-declared configs on the folder's name and the
    config declarations only, not on the files: re-mining into ``outputs/mined/x`` (or any two folders of the
    same name) would silently return the old rows. Local folders therefore get a cache directory of their
    own per content (parallel jobs reading the same folder share it safely, under datasets' file locks).
    Hub datasets keep their normal, revision-keyed cache.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        hub.ensure_available(path, "dataset", "dataset.path")
        return load_dataset(path, config_name, split=split)
    cache_dir = Path(datasets_config.HF_DATASETS_CACHE) / "vdr-exp-local" / content.stat_key(folder)
    try:
        return load_dataset(str(folder), config_name, split=split, cache_dir=str(cache_dir))
    except (ValueError, OSError, ArrowException, DatasetGenerationError, StopIteration) as error:
        # A damaged parquet file, malformed JSON, a config the README does not declare, an empty JSON Lines
        # file (datasets lets StopIteration out): the user's files. Not a full disk while datasets writes its
        # cache: that is said as such (vdr_exp.runtime.failures), not blamed on the files.
        from vdr_exp.runtime import failures

        if failures.storage(error) is not None:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{folder}: cannot read {f'config {config_name!r}' if config_name else 'the dataset'} ({reason}); "
            "fix or replace the files, or point dataset.path elsewhere."
        ) from None
