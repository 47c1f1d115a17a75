"""Review generated queries: accept (as written or edited) or reject each one, on the labelling page.

Accepted queries are written to the folder's ``reviewed.jsonl`` (the ``local_docs`` format, with
``"source": "generated+reviewed"`` and the ``generated_id`` they came from), apart from the human-written
``queries.jsonl``, so an evaluation on human queries never includes them unless asked to
(``dataset.queries_file=reviewed.jsonl``). Every decision is kept in ``review.json`` beside the generated file
(written atomically), so a reviewed query does not come back after a reload.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from vdr_exp.data.jsonl import jsonl_lines
from vdr_exp.data.layouts.local_docs import doc_id
from vdr_exp.errors import InputError
from vdr_exp.labelling.store import QueryStore

REVIEWED_FILE = "reviewed.jsonl"
DECISIONS_FILE = "review.json"
ACTIONS = ("accept", "reject")


class ReviewQueue:
    def __init__(self, generated: Path, reviewed: QueryStore) -> None:
        if not generated.is_file():
            raise InputError(
                f"review={generated} does not exist; point it at the queries.jsonl vdr_exp.generate wrote."
            )
        self.generated, self.reviewed = generated, reviewed
        self.decisions_file = generated.with_name(DECISIONS_FILE)
        self._lock = threading.Lock()

    def _candidates(self) -> dict[str, dict]:
        out = {}
        for number, raw in jsonl_lines(self.generated):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                out[str(record["query_id"])] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(f"{self.generated}:{number}: not a generated query line; regenerate it.") from None
        return out

    def decisions(self) -> dict[str, str]:
        if not self.decisions_file.is_file():
            return {}
        return json.loads(self.decisions_file.read_text())

    def pending(self) -> list[dict]:
        """Generated queries not yet decided, with their page ids, style and filter scores."""
        decided = self.decisions()
        return [
            {
                "generated_id": gid,
                "query": record["query"],
                "style": record.get("style", ""),
                "page_ids": [doc_id(r["file"], r.get("page")) for r in record.get("relevant", [])],
                "filter": record.get("filter", {}),
            }
            for gid, record in self._candidates().items()
            if gid not in decided
        ]

    def decide(self, generated_id: str, action: str, text: str | None) -> dict:
        if action not in ACTIONS:
            raise InputError(f"action {action!r}: use one of {list(ACTIONS)}.")
        with self._lock:
            record = self._candidates().get(generated_id)
            if record is None:
                raise InputError(f"generated query {generated_id!r} does not exist in {self.generated}.")
            decided = self.decisions()
            if generated_id in decided:
                raise InputError(f"generated query {generated_id} was already {decided[generated_id]}ed; reload.")
            saved = None
            if action == "accept":
                final = (text if text is not None else record["query"]).strip()
                relevant = [{"page_id": doc_id(r["file"], r.get("page")), "grade": 1} for r in record["relevant"]]
                extra = {"source": "generated+reviewed", "generated_id": generated_id}
                if final != record["query"].strip():
                    extra["edited"] = True
                saved = self.reviewed.add(final, relevant, extra)
            self._save_decisions({**decided, generated_id: action})
            return {"generated_id": generated_id, "action": action, "saved": saved}

    def _save_decisions(self, decisions: dict[str, str]) -> None:
        handle, staging = tempfile.mkstemp(dir=self.decisions_file.parent, prefix=".review.", suffix=".partial")
        with os.fdopen(handle, "w") as out:
            json.dump(decisions, out, indent=1, sort_keys=True)
        os.replace(staging, self.decisions_file)
