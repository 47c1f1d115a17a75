"""Dataset config -> training rows and the evaluation protocol, whatever the layout (``dataset.format``).

"pairs" is the recipe's layout (rows of query, image, negatives); "local_docs" (a folder of PDFs and images,
:mod:`vdr_exp.documents`) and "beir" (:mod:`vdr_exp.beir`) bring a corpus and qrels, and split their
queries into train and eval by seed.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image, UnidentifiedImageError

from vdr_exp import beir, dataset_folder, documents
from vdr_exp.config import ConfigError, DatasetConfig, InputError
from vdr_exp.protocols import RetrievalProtocol, hard_negatives_protocol

log = logging.getLogger(__name__)


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
            except (UnidentifiedImageError, OSError) as error:
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


def _all_queries(cfg: DatasetConfig) -> RetrievalProtocol:
    if cfg.format == "local_docs":
        folder = documents.load_folder(cfg)
        return documents.local_protocol(cfg, folder, {q.query_id for q in folder.queries})
    return beir.beir_protocol(cfg)


def split_protocols(cfg: DatasetConfig) -> tuple[RetrievalProtocol, RetrievalProtocol]:
    """local_docs/beir: (train, eval) queries of the seeded split, each against the full corpus."""
    full = _all_queries(cfg)
    train_ids, eval_ids = documents.split_query_ids(list(full.queries), cfg.eval_fraction, cfg.split_seed)
    return full.restricted(train_ids), full.restricted(eval_ids)


def pairs_from_protocol(protocol: RetrievalProtocol, cfg: DatasetConfig) -> Dataset:
    """One training row (query, image) per relevant page of every query of ``protocol``."""
    if not protocol.queries:
        raise ConfigError(
            f"dataset {cfg.name!r}: no training queries (dataset.eval_fraction={cfg.eval_fraction} holds them all "
            "out); lower dataset.eval_fraction, or mine a training set with `python -m vdr_exp.mine`."
        )
    rows = {"query": [], "image": []}
    for qid, text in protocol.queries.items():
        for doc, grade in protocol.qrels[qid].items():
            if grade > 0:
                rows["query"].append(text)
                rows["image"].append(protocol.corpus[doc])
    return Dataset.from_dict(rows, features=Features({"query": Value("string"), "image": ImageFeature()}))


Split = tuple[RetrievalProtocol, RetrievalProtocol]


def load_train_and_eval(cfg: DatasetConfig) -> tuple[Dataset, RetrievalProtocol]:
    """Training rows and the eval protocol from one read: a PDF folder or BEIR corpus is loaded once, not twice."""
    split = None if cfg.format == "pairs" else split_protocols(cfg)
    return load_train_rows(cfg, split=split), load_eval_protocol(cfg, split=split)


def load_train_rows(cfg: DatasetConfig, max_rows: int | None = None, split: Split | None = None) -> Dataset:
    limit = max_rows if max_rows is not None else cfg.max_train_rows
    if cfg.format == "pairs":
        rows = _load(cfg, cfg.train_config, limit)
    else:
        rows = pairs_from_protocol((split or split_protocols(cfg))[0], cfg)
        if limit is not None:
            rows = rows.select(range(min(limit, len(rows))))
    missing = [c for c in cfg.train_columns if c not in rows.column_names]
    if missing:
        raise ConfigError(
            f"dataset {cfg.name!r} ({cfg.path}, config {cfg.train_config!r}) lacks columns {missing}; "
            f"it has {rows.column_names}. Fix dataset.train_columns."
        )
    return rows.select_columns(list(cfg.train_columns))


def eval_split_name(cfg: DatasetConfig) -> str:
    """What the evaluation queries are called in result files: the eval config, the BEIR split, or "eval"."""
    return {"pairs": cfg.eval_config, "beir": cfg.split}.get(cfg.format, "eval")


def load_eval_protocol(cfg: DatasetConfig, split: Split | None = None) -> RetrievalProtocol:
    if cfg.format == "pairs":
        rows = _load(cfg, cfg.eval_config, cfg.max_eval_rows)
        protocol = hard_negatives_protocol(rows, cfg.protocol.num_negatives, cfg.protocol.name)
    else:
        protocol = (split or split_protocols(cfg))[1]
        if cfg.max_eval_rows is not None:
            protocol = protocol.restricted(sorted(protocol.queries)[: cfg.max_eval_rows])
    empty = [qid for qid, text in protocol.queries.items() if not str(text).strip()]
    if empty:
        raise ConfigError(f"dataset {cfg.name!r}: queries {empty[:5]} are empty; fix or drop those rows.")
    log.info("%s: %d queries, %d pages", protocol.name, len(protocol.queries), len(protocol.corpus))
    return protocol
