"""The folder's ``queries.jsonl`` as the labelling page edits it: read fresh, changed one query at a time, written
atomically, and never overwritten behind anyone's back.

The file stays in the ``local_docs`` format that ``dataset=local_docs`` reads (one JSON object per line,
``query_id``, ``query``, ``relevant`` of ``{"file", "page", "grade"}``), so the page and a text editor can both
hold it. Every change re-reads the file under a lock, applies that one change and replaces the file
(temporary file + ``os.replace``): changes from two tabs to different queries merge, a crash leaves the old
file or the new one. Each query carries a revision (a hash of its line); an edit or delete names the revision
it started from, and is refused when the query changed since (another tab, or an edit by hand), instead of
silently overwriting it. A file that no longer parses (a hand edit gone wrong) is refused with its line and
left exactly as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from vdr_exp.data.jsonl import jsonl_lines
from vdr_exp.data.layouts.local_docs import DocumentFolder, read_queries
from vdr_exp.errors import InputError

GRADES = (0, 1, 2)
MAX_QUERY_CHARS = 2000


class Conflict(InputError):
    """The change was based on a version of the query that is no longer the one on disk."""


def revision(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageRef:
    """A page as the queries file names it: a file relative to the folder, a 1-based page (PDFs only)."""

    file: str
    page: int | None


class QueryStore:
    """Read and change ``queries.jsonl``; ``pages`` maps each page id of the folder to its reference."""

    def __init__(self, path: Path, folder: DocumentFolder, pages: dict[str, PageRef]) -> None:
        self.path, self.folder, self.pages = path, folder, pages
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(path.with_name(f".{path.name}.lock")), timeout=10)

    def read(self) -> list[dict]:
        """Every query as written, in file order; raises InputError (file and line) when the file is broken."""
        if not self.path.is_file() or not self.path.read_bytes().strip():
            return []
        read_queries(self.path, self.folder)  # the same checks as an evaluation run: line-numbered errors
        return [json.loads(raw) for _, raw in jsonl_lines(self.path) if raw.strip()]

    def add(self, text: str, relevant: list[dict], extra: dict | None = None) -> dict:
        """A new query under the next free id ``q<n>``; the server picks it, so two tabs never collide.
        ``extra`` fields (``source``, ``generated_id`` of a reviewed query) are kept on its line."""
        with self._locked():
            records = self.read()
            record = {"query_id": _next_id(records), **self._checked(text, relevant), **(extra or {})}
            self._write([*records, record])
            return record

    def update(self, query_id: str, base_revision: str, text: str, relevant: list[dict]) -> dict:
        with self._locked():
            records = self.read()
            index = self._current(records, query_id, base_revision)
            record = {**records[index], **self._checked(text, relevant)}
            records[index] = record
            self._write(records)
            return record

    def delete(self, query_id: str, base_revision: str) -> None:
        with self._locked():
            records = self.read()
            index = self._current(records, query_id, base_revision)
            self._write(records[:index] + records[index + 1 :])

    def _locked(self):
        store = self

        class _Both:
            def __enter__(self) -> None:
                store._lock.acquire()
                store._file_lock.acquire()

            def __exit__(self, *exc: object) -> None:
                store._file_lock.release()
                store._lock.release()

        return _Both()

    def _current(self, records: list[dict], query_id: str, base_revision: str) -> int:
        for index, record in enumerate(records):
            if record.get("query_id") == query_id:
                if revision(record) != base_revision:
                    raise Conflict(
                        f"query {query_id} was changed elsewhere (another tab or an edit of {self.path.name}) since "
                        "you opened it; your change was not saved. Reload to see the current version."
                    )
                return index
        raise Conflict(f"query {query_id} no longer exists in {self.path.name} (deleted elsewhere); reload the page.")

    def _checked(self, text: str, relevant: list[dict]) -> dict:
        """The query's fields in the file's format, or InputError saying what to fix."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the query is empty (only spaces); write the question before saving.")
        if len(text) > MAX_QUERY_CHARS:
            raise InputError(f"the query has {len(text)} characters; keep it under {MAX_QUERY_CHARS}.")
        entries: dict[str, dict] = {}
        for item in relevant:
            page_id, grade = item.get("page_id"), item.get("grade", 1)
            if page_id not in self.pages:
                raise InputError(f"page {page_id!r} does not exist in {self.folder.root}; pick a page of the folder.")
            if isinstance(grade, bool) or grade not in GRADES:
                raise InputError(f"grade {grade!r} for page {page_id}: grades are 0, 1 or 2.")
            ref = self.pages[page_id]
            entry = {"file": ref.file, **({"page": ref.page} if ref.page is not None else {})}
            entries[page_id] = entry if grade == 1 else {**entry, "grade": grade}
        if not any(entry.get("grade", 1) > 0 for entry in entries.values()):
            raise InputError("mark at least one page relevant (grade 1 or 2) before saving the query.")
        return {"query": text.strip(), "relevant": list(entries.values())}

    def _write(self, records: list[dict]) -> None:
        body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, self.path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise


def _next_id(records: list[dict]) -> str:
    numbers = [int(m[1]) for r in records if (m := re.fullmatch(r"q(\d+)", str(r.get("query_id", ""))))]
    taken = {str(r.get("query_id")) for r in records}
    n = max(numbers, default=-1) + 1
    while f"q{n}" in taken:
        n += 1
    return f"q{n}"
