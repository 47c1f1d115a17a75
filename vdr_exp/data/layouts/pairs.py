"""The recipe's layout: rows of (query, image, negative_0..) in a ``train`` and an ``eval`` config.

Evaluation follows the recipe's hard-negatives protocol: the corpus is every eval row's positive page plus
its negatives, one relevant page per query.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from datasets import Dataset
from datasets import Image as ImageFeature
from PIL import Image, UnidentifiedImageError

from vdr_exp.config import DatasetConfig
from vdr_exp.data import dataset_folder
from vdr_exp.data.layouts.base import Layout, Split
from vdr_exp.data.protocols import RetrievalProtocol, hard_negatives_protocol
from vdr_exp.errors import ConfigError, InputError


def check_rows(rows: Dataset, cfg: DatasetConfig, config_name: str) -> None:
    """Empty queries and undecodable images stop the run here, naming the row, not deep inside a trainer.

    Images are checked by their header (cheap even for 10,000 rows): empty files and bytes that are no
    image are caught; damage past the header surfaces when the page is decoded.
    """
    where = f"dataset {cfg.name!r} ({cfg.path}, config {config_name!r})"
    if "query" in rows.column_names:
        for index, text in enumerate(rows["query"]):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"{where}: row {index} has an empty query; fix or drop that row.")
    for column in [c for c, f in rows.features.items() if isinstance(f, ImageFeature)]:
        raw = rows.cast_column(column, ImageFeature(decode=False))[column]
        for index, item in enumerate(raw):
            data = (item or {}).get("bytes")
            if data is None and (item or {}).get("path"):
                data = Path(item["path"]).read_bytes() if Path(item["path"]).is_file() else b""
            try:
                with Image.open(io.BytesIO(data or b"")) as image:
                    image.size  # noqa: B018 - parsing the header is the check
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
                raise InputError(
                    f"{where}: row {index}, column {column!r} is not a readable image ({type(error).__name__}); "
                    "fix or drop that row."
                ) from None


def _load(cfg: DatasetConfig, config_name: str, max_rows: int | None) -> Dataset:
    if cfg.fixture and not Path(cfg.path).exists():
        raise ConfigError(f"dataset.path={cfg.path!r} does not exist; build the fixtures with `make fixtures`.")
    rows = dataset_folder.load_rows(cfg.path, config_name, split=cfg.split)
    if max_rows is not None:
        rows = rows.select(range(min(max_rows, len(rows))))
    check_rows(rows, cfg, config_name)
    return rows


class PairsLayout(Layout):
    def eval_split_name(self, cfg: DatasetConfig) -> str:
        return cfg.eval_config

    def train_rows(self, cfg: DatasetConfig, split: Split | None, limit: int | None) -> Dataset:
        return _load(cfg, cfg.train_config, limit)

    def eval_protocol(self, cfg: DatasetConfig, split: Split | None) -> RetrievalProtocol:
        rows = _load(cfg, cfg.eval_config, cfg.max_eval_rows)
        source = f"dataset {cfg.path} (config {cfg.eval_config})"
        return hard_negatives_protocol(rows, cfg.protocol.num_negatives, cfg.protocol.name, source)

    def train_rows_with_negatives(self, cfg: DatasetConfig, train_rows: Dataset) -> Dataset:
        """Every negative column the protocol knows of, not only those the embedding model trains on."""
        # vdr_exp.data imports this layout: a top-level import would be a cycle
        from vdr_exp import data

        negatives = [f"negative_{k}" for k in range(cfg.protocol.num_negatives)]
        return data.load_train_rows(dataclasses.replace(cfg, train_columns=["query", "image", *negatives]))
