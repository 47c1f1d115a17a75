"""What a generation run leaves behind: one dataset of every query with its source, and files in the formats the
other entry points read.

- ``dataset/`` (``datasets.load_from_disk``): one row per (query, relevant page): ``source`` is ``human``
  (the folder's queries.jsonl), ``generated+reviewed`` (reviewed.jsonl, from the labelling page's review mode)
  or ``generated``; generated rows carry their style, every filter score, ``kept`` and ``drop_reason``.
  Its content hash (``digest``) names the version; the run logs it as an MLflow dataset with that digest.
- ``queries.jsonl``: the kept generated pairs in the ``local_docs`` format (plus ``source``, ``style``,
  ``filter``), for review (``vdr_exp.label review=...``) or ``dataset.queries_file=...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from datasets import Dataset

from vdr_exp.data.layouts.local_docs import doc_id
from vdr_exp.generation.filter import Candidate
from vdr_exp.labelling.store import PageRef

COLUMNS = (
    "query_id", "query", "source", "style", "file", "page", "page_id", "grade", "kept", "drop_reason",
    "round_trip_rank", "round_trip_score", "duplicate_of", "duplicate_cosine", "copy_span_words", "words",
)  # fmt: skip


def _ref(refs: dict[str, PageRef], page_id: str) -> dict:
    ref = refs[page_id]
    return {"file": ref.file, **({"page": ref.page} if ref.page is not None else {})}


def generated_rows(candidates: list[Candidate], refs: dict[str, PageRef]) -> list[dict]:
    return [
        {
            "query_id": c.generated_id,
            "query": c.query,
            "source": "generated",
            "style": c.style,
            "file": refs[c.page_id].file,
            "page": refs[c.page_id].page or 0,
            "page_id": c.page_id,
            "grade": 1,
            "kept": c.kept,
            "drop_reason": c.drop_reason,
            "round_trip_rank": c.round_trip_rank,
            "round_trip_score": c.round_trip_score,
            "duplicate_of": c.duplicate_of,
            "duplicate_cosine": c.duplicate_cosine,
            "copy_span_words": c.copy_span_words,
            "words": c.words,
        }  # fmt: skip
        for c in candidates
    ]


def labelled_rows(records: list[dict], source: str) -> list[dict]:
    """Rows of a local_docs queries file (human or reviewed): kept by definition, no filter scores."""
    rows = []
    for record in records:
        for entry in record["relevant"]:
            rows.append(
                {
                    "query_id": str(record["query_id"]),
                    "query": record["query"],
                    "source": record.get("source", source),
                    "style": "",
                    "file": entry["file"],
                    "page": entry.get("page") or 0,
                    "page_id": doc_id(entry["file"], entry.get("page")),
                    "grade": entry.get("grade", 1),
                    "kept": True,
                    "drop_reason": "",
                    "round_trip_rank": -1,
                    "round_trip_score": 0.0,
                    "duplicate_of": "",
                    "duplicate_cosine": 0.0,
                    "copy_span_words": 0,
                    "words": len(record["query"].split()),
                }  # fmt: skip
            )
    return rows


def digest(rows: list[dict]) -> str:
    canonical = json.dumps([[row[c] for c in COLUMNS] for row in rows], ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def save_dataset(rows: list[dict], out_dir: Path) -> Dataset:
    """``save_to_disk`` beside ``out_dir``, then swapped in: a reader sees the old version or the new one."""
    dataset = Dataset.from_list([{c: row[c] for c in COLUMNS} for row in rows])
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        dataset.save_to_disk(str(staging / "data"))
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)
        (staging / "data").rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataset


def write_kept_queries(candidates: list[Candidate], refs: dict[str, PageRef], path: Path) -> int:
    """The kept pairs in the local_docs format, written atomically; returns how many."""
    kept = [c for c in candidates if c.kept]
    lines = [
        json.dumps(
            {
                "query_id": c.generated_id,
                "query": c.query,
                "relevant": [_ref(refs, c.page_id)],
                "source": "generated",
                "style": c.style,
                "filter": {
                    "round_trip_rank": c.round_trip_rank,
                    "round_trip_score": round(c.round_trip_score, 4),
                    "copy_span_words": c.copy_span_words,
                    "duplicate_cosine": round(c.duplicate_cosine, 4),
                },
            },
            ensure_ascii=False,
        )  # fmt: skip
        for c in kept
    ]
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))
    os.replace(staging, path)
    return len(kept)
