"""What every dataset layout provides, and the shared behaviour of layouts that bring a corpus and qrels."""

from __future__ import annotations

import logging
import random

from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature

from vdr_exp.config import DatasetConfig
from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)

Split = tuple[RetrievalProtocol, RetrievalProtocol]


class Layout:
    """A dataset format. ``split`` is what one read of the data gives (reused by train and eval)."""

    # What the evaluation queries are called in result files when the layout has no name for them.
    def eval_split_name(self, cfg: DatasetConfig) -> str:
        return "eval"

    def read(self, cfg: DatasetConfig) -> Split | None:
        """One read of the dataset shared by training and evaluation (None: each reads its own config)."""
        return None

    def train_rows(self, cfg: DatasetConfig, split: Split | None, limit: int | None) -> Dataset:
        raise NotImplementedError

    def eval_protocol(self, cfg: DatasetConfig, split: Split | None) -> RetrievalProtocol:
        raise NotImplementedError

    def split_protocols(self, cfg: DatasetConfig) -> Split:
        """(train, eval) queries of the seeded split against the full corpus (mining needs a corpus)."""
        raise ConfigError(
            f"dataset {cfg.name!r} (format {cfg.format}) has no corpus of its own to split; "
            "use dataset=local_docs or dataset=beir."
        )

    def train_rows_with_negatives(self, cfg: DatasetConfig, train_rows: Dataset) -> Dataset:
        """The rows a reranker trains on: by default the training rows as they are."""
        return train_rows


def split_query_ids(query_ids: list[str], eval_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """(train ids, eval ids): a seeded shuffle, the first ``eval_fraction`` of it held out for evaluation."""
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    n_eval = len(shuffled) if eval_fraction >= 1.0 else max(1, round(len(shuffled) * eval_fraction))
    return set(shuffled[n_eval:]), set(shuffled[:n_eval])


class CorpusLayout(Layout):
    """Layouts that bring a corpus and qrels (local documents, BEIR): queries split into train and eval by seed."""

    def all_queries(self, cfg: DatasetConfig) -> RetrievalProtocol:
        raise NotImplementedError

    def split_protocols(self, cfg: DatasetConfig) -> Split:
        full = self.all_queries(cfg)
        train_ids, eval_ids = split_query_ids(list(full.queries), cfg.eval_fraction, cfg.split_seed)
        return full.restricted(train_ids), full.restricted(eval_ids)

    read = split_protocols

    def train_rows(self, cfg: DatasetConfig, split: Split | None, limit: int | None) -> Dataset:
        rows = pairs_from_protocol((split or self.split_protocols(cfg))[0], cfg)
        return rows.select(range(min(limit, len(rows)))) if limit is not None else rows

    def eval_protocol(self, cfg: DatasetConfig, split: Split | None) -> RetrievalProtocol:
        protocol = (split or self.split_protocols(cfg))[1]
        if cfg.max_eval_rows is not None:
            protocol = protocol.restricted(sorted(protocol.queries)[: cfg.max_eval_rows])
        return protocol


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
                rows["image"].append(as_image(protocol.corpus[doc]))
    return Dataset.from_dict(rows, features=Features({"query": Value("string"), "image": ImageFeature()}))
