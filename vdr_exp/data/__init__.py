"""Dataset config -> training rows and the evaluation protocol, whatever the layout (``dataset.format``).

The functions here are what jobs call; each hands over to the dataset's layout (:mod:`vdr_exp.data.layouts`).
"""

from __future__ import annotations

import logging

from datasets import Dataset

from vdr_exp.config import DatasetConfig
from vdr_exp.data.layouts import layout_for
from vdr_exp.data.layouts.base import Split
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)


def load_train_and_eval(cfg: DatasetConfig) -> tuple[Dataset, RetrievalProtocol]:
    """Training rows and the eval protocol from one read: a PDF folder or BEIR corpus is loaded once, not twice."""
    split = layout_for(cfg).read(cfg)
    return load_train_rows(cfg, split=split), load_eval_protocol(cfg, split=split)


def load_train_rows(cfg: DatasetConfig, *, max_rows: int | None = None, split: Split | None = None) -> Dataset:
    limit = max_rows if max_rows is not None else cfg.max_train_rows
    rows = layout_for(cfg).train_rows(cfg, split, limit)
    missing = [c for c in cfg.train_columns if c not in rows.column_names]
    if missing:
        raise ConfigError(
            f"dataset {cfg.name!r} ({cfg.path}, config {cfg.train_config!r}) lacks columns {missing}; "
            f"it has {rows.column_names}. Fix dataset.train_columns."
        )
    return rows.select_columns(list(cfg.train_columns))


def load_eval_protocol(cfg: DatasetConfig, *, split: Split | None = None) -> RetrievalProtocol:
    protocol = layout_for(cfg).eval_protocol(cfg, split)
    empty = [qid for qid, text in protocol.queries.items() if not str(text).strip()]
    if empty:
        raise ConfigError(f"dataset {cfg.name!r}: queries {empty[:5]} are empty; fix or drop those rows.")
    log.info("%s: %d queries, %d pages", protocol.name, len(protocol.queries), len(protocol.corpus))
    return protocol


def split_protocols(cfg: DatasetConfig) -> Split:
    """(train, eval) queries of the seeded split, each against the full corpus (local_docs, beir)."""
    return layout_for(cfg).split_protocols(cfg)


def eval_split_name(cfg: DatasetConfig) -> str:
    """What the evaluation queries are called in result files: the eval config, the BEIR split, or "eval"."""
    return layout_for(cfg).eval_split_name(cfg)


def train_rows_with_negatives(cfg: DatasetConfig, train_rows: Dataset) -> Dataset:
    """The rows a reranker trains on: every negative the layout knows of, or the training rows as they are."""
    return layout_for(cfg).train_rows_with_negatives(cfg, train_rows)
