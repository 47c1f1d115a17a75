"""Dataset config -> training rows and the evaluation protocol, from the Hub or a local folder alike."""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import Dataset, load_dataset

from vdr_exp.config import ConfigError, DatasetConfig
from vdr_exp.protocols import RetrievalProtocol, hard_negatives_protocol

log = logging.getLogger(__name__)


def _load(cfg: DatasetConfig, config_name: str, max_rows: int | None) -> Dataset:
    if cfg.fixture and not Path(cfg.path).exists():
        raise ConfigError(f"dataset.path={cfg.path!r} does not exist; build the fixtures with `make fixtures`.")
    rows = load_dataset(cfg.path, config_name, split=cfg.split)
    if max_rows is not None:
        rows = rows.select(range(min(max_rows, len(rows))))
    return rows


def load_train_rows(cfg: DatasetConfig, max_rows: int | None = None) -> Dataset:
    rows = _load(cfg, cfg.train_config, max_rows if max_rows is not None else cfg.max_train_rows)
    missing = [c for c in cfg.train_columns if c not in rows.column_names]
    if missing:
        raise ConfigError(
            f"dataset {cfg.name!r} ({cfg.path}, config {cfg.train_config!r}) lacks columns {missing}; "
            f"it has {rows.column_names}. Fix dataset.train_columns."
        )
    return rows.select_columns(list(cfg.train_columns))


def load_eval_protocol(cfg: DatasetConfig) -> RetrievalProtocol:
    rows = _load(cfg, cfg.eval_config, cfg.max_eval_rows)
    protocol = hard_negatives_protocol(rows, cfg.protocol.num_negatives, cfg.protocol.name)
    empty = [qid for qid, text in protocol.queries.items() if not str(text).strip()]
    if empty:
        raise ConfigError(f"dataset {cfg.name!r}: queries {empty[:5]} are empty; fix or drop those rows.")
    log.info("%s: %d queries, %d pages", protocol.name, len(protocol.queries), len(protocol.corpus))
    return protocol
