"""Write datasets as a folder that ``load_dataset(folder, config, split="train")`` reads like a Hub repo.

Each config becomes ``data/<config>-00000-of-00001.parquet`` (images embedded as bytes) and the README's YAML
header declares the configs, the layout of ``tomaarsen/llamaindex-vdr-en-train-preprocessed``. The folder is
built beside its destination and renamed into place, so readers never see a half-written dataset.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from datasets import Dataset


def card(config_names: list[str], body: str) -> str:
    configs = "\n".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: data/{name}-*.parquet"
        for name in config_names
    )
    return f"---\nconfigs:\n{configs}\n---\n{body.strip()}\n"


def write_dataset_folder(
    out_dir: Path, configs: Mapping[str, Dataset], body: str, *, extra_files: Mapping[str, str] | None = None
) -> Path:
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    try:
        for name, rows in configs.items():
            rows.to_parquet(str(staging / "data" / f"{name}-00000-of-00001.parquet"))
        (staging / "README.md").write_text(card(list(configs), body))
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def _content_key(folder: Path) -> str:
    """Names, sizes and modification times of every file: changes whenever the folder's data does."""
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_rows(path: str, config_name: str | None = None, split: str | None = None):
    """``load_dataset``, with a cache that follows a local folder's content.

    datasets keys its cache for a local folder with README-declared configs on the folder's name and the
    config declarations only, not on the files: re-mining into ``outputs/mined/x`` (or any two folders of the
    same name) would silently return the old rows. Local folders therefore get a cache directory of their
    own per content (parallel jobs reading the same folder share it safely, under datasets' file locks).
    Hub datasets keep their normal, revision-keyed cache.
    """
    from datasets import config as datasets_config
    from datasets import load_dataset

    folder = Path(path).expanduser()
    if not folder.is_dir():
        from vdr_exp.data import hub

        hub.ensure_available(path, "dataset", "dataset.path")
        return load_dataset(path, config_name, split=split)
    cache_dir = Path(datasets_config.HF_DATASETS_CACHE) / "vdr-exp-local" / _content_key(folder)
    return load_dataset(str(folder), config_name, split=split, cache_dir=str(cache_dir))
