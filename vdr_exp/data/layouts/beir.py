"""The BEIR/ViDoRe layout: ``corpus`` (corpus-id, image), ``queries`` (query-id, query), ``qrels``
(query-id, corpus-id, score), as three configs of one dataset on the Hub or in a local folder.

A local folder can also hold the three as sub-folders (``corpus/``, ``queries/``, ``qrels/``) of parquet or
JSON files, the way such datasets are usually exported. Graded ``score`` values reach NDCG unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import Dataset, DatasetDict

from vdr_exp.config import DatasetConfig
from vdr_exp.data.dataset_folder import load_rows
from vdr_exp.data.jsonl import jsonl_lines
from vdr_exp.data.layouts.base import CorpusLayout
from vdr_exp.data.pages import stored_pages
from vdr_exp.data.protocols import RetrievalProtocol, relevance_grade, safe_id
from vdr_exp.errors import InputError

log = logging.getLogger(__name__)

COLUMNS = {
    "corpus": ("corpus-id", "image"),
    "queries": ("query-id", "query"),
    "qrels": ("query-id", "corpus-id", "score"),
}


def _load_part(cfg: DatasetConfig, part: str) -> Dataset:
    config_name = {"corpus": cfg.corpus_config, "queries": cfg.queries_config, "qrels": cfg.qrels_config}[part]
    folder = Path(cfg.path).expanduser() / config_name
    if folder.is_dir():  # exported layout: one sub-folder per part
        for text_file in sorted(folder.glob("*.json*")):  # JSON (Lines) files: bad bytes named by file and line
            for _ in jsonl_lines(text_file):
                pass
        loaded = load_rows(str(folder))
        if isinstance(loaded, DatasetDict):
            if cfg.split not in loaded:
                if len(loaded) != 1:
                    raise InputError(f"{folder}: no split {cfg.split!r} (has {list(loaded)}); set dataset.split.")
                return next(iter(loaded.values()))
            return loaded[cfg.split]
        return loaded
    return load_rows(cfg.path, config_name, split=cfg.split)


def _checked(rows: Dataset, cfg: DatasetConfig, part: str) -> Dataset:
    missing = [c for c in COLUMNS[part] if c not in rows.column_names]
    if missing:
        raise InputError(
            f"dataset {cfg.path!r}, {part} ({getattr(cfg, part + '_config')}): missing columns {missing}; "
            f"it has {rows.column_names}. BEIR layout needs {list(COLUMNS[part])}."
        )
    return rows


def load_beir(cfg: DatasetConfig) -> tuple[dict[str, object], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus, queries, qrels) with string ids; checks ids are unique and qrels point at known ids."""
    corpus_rows = _checked(_load_part(cfg, "corpus"), cfg, "corpus")
    query_rows = _checked(_load_part(cfg, "queries"), cfg, "queries")
    qrel_rows = _checked(_load_part(cfg, "qrels"), cfg, "qrels")

    corpus_ids = [safe_id(i, f"dataset {cfg.path!r}, corpus row {n}") for n, i in enumerate(corpus_rows["corpus-id"])]
    if len(set(corpus_ids)) != len(corpus_ids):
        raise InputError(f"dataset {cfg.path!r}: corpus has duplicate corpus-id values; ids must be unique.")
    # Pages stay compressed (memory-mapped Arrow) until the encoding pipeline decodes them, a batch at a time.
    corpus = dict(zip(corpus_ids, stored_pages(corpus_rows, "image", f"dataset {cfg.path!r} corpus"), strict=True))
    queries: dict[str, str] = {}
    for row, (qid, text) in enumerate(zip(query_rows["query-id"], query_rows["query"], strict=True)):
        qid = safe_id(qid, f"dataset {cfg.path!r}, queries row {row}")
        if qid in queries:
            raise InputError(f"dataset {cfg.path!r}: duplicate query-id {qid!r} in queries.")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"dataset {cfg.path!r}: query {qid!r} is empty; fix or drop it.")
        queries[qid] = text
    qrels = _qrels(cfg, qrel_rows, queries, corpus)
    log.info("%s: %d pages, %d queries, %d judged", cfg.path, len(corpus), len(queries), len(qrels))
    return corpus, queries, qrels


def _qrels(cfg: DatasetConfig, rows: Dataset, queries: dict, corpus: dict) -> dict[str, dict[str, int]]:
    """query id -> corpus id -> grade. A pair listed twice with the same grade counts once; with different
    grades it is an error naming both rows (0-based, like every qrels message): picking one would silently score
    against a judgement nobody made."""
    qrels: dict[str, dict[str, int]] = {}
    first_row: dict[tuple[str, str], int] = {}
    for row, (qid, did, score) in enumerate(zip(rows["query-id"], rows["corpus-id"], rows["score"], strict=True)):
        qid, did = str(qid), str(did)
        if qid not in queries or did not in corpus:
            raise InputError(
                f"dataset {cfg.path!r}: qrels row {row} ({qid}, {did}) names an unknown "
                f"{'query-id' if qid not in queries else 'corpus-id'}; fix the qrels."
            )
        grade = relevance_grade(score, f"dataset {cfg.path!r}, qrels row {row} ({qid}, {did})")
        earlier = qrels.get(qid, {}).get(did)
        if earlier is not None and earlier != grade:
            raise InputError(
                f"dataset {cfg.path!r}: qrels rows {first_row[(qid, did)]} and {row} both judge ({qid}, {did}), "
                f"with grades {earlier} and {grade}; keep one row per query and page."
            )
        first_row.setdefault((qid, did), row)
        qrels.setdefault(qid, {})[did] = grade
    return qrels


def beir_protocol(cfg: DatasetConfig) -> RetrievalProtocol:
    """Every judged query against the whole corpus (queries without qrels cannot be scored)."""
    corpus, queries, qrels = load_beir(cfg)
    return RetrievalProtocol(cfg.protocol.name, queries, corpus, qrels).restricted(list(qrels))


class BeirLayout(CorpusLayout):
    def eval_split_name(self, cfg: DatasetConfig) -> str:
        return cfg.split

    def all_queries(self, cfg: DatasetConfig) -> RetrievalProtocol:
        return beir_protocol(cfg)
