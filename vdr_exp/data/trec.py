"""Reading TREC run files and qrels back (``run.trec``, ``qrels.tsv`` of any run, or another system's run file):
the same ids and grades the evaluation wrote, or an error naming the file, line and fix.

A run line is ``query_id Q0 doc_id rank score tag``; a qrels line ``query_id 0 doc_id grade`` (tabs or spaces).
Grades follow the one rule of :func:`vdr_exp.data.protocols.relevance_grade`; ids are kept as the strings
written (``007`` stays ``007``).
"""

from __future__ import annotations

import math
from pathlib import Path

from vdr_exp.data.jsonl import jsonl_lines
from vdr_exp.data.protocols import relevance_grade
from vdr_exp.errors import InputError


def _fields(path: Path, count: int, layout: str):
    """(line number, fields) of every non-empty line, each with exactly ``count`` whitespace-separated fields."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; give the path of a TREC {layout.split()[0]} file.")
    for number, text in jsonl_lines(path):  # newline-split, UTF-8 checked per line
        fields = text.split()
        if not fields:
            continue
        if len(fields) != count:
            raise InputError(f"{path}:{number}: expected {count} fields ({layout}), found {len(fields)}.")
        yield number, fields


def read_run(path: Path) -> dict[str, dict[str, float]]:
    """query id -> doc id -> score, from a TREC run file; a document listed twice for one query is an error."""
    run: dict[str, dict[str, float]] = {}
    for number, (qid, _, doc, rank, score, _tag) in _fields(Path(path), 6, "query Q0 doc rank score tag"):
        try:
            value, _rank = float(score), int(rank)
        except ValueError:
            raise InputError(f"{path}:{number}: rank {rank!r} and score {score!r} must be numbers.") from None
        if not math.isfinite(value):
            raise InputError(f"{path}:{number}: score {score!r} is not a finite number.")
        if doc in run.setdefault(qid, {}):
            raise InputError(f"{path}:{number}: document {doc!r} is listed twice for query {qid!r}.")
        run[qid][doc] = value
    if not run:
        raise InputError(f"{path}: no run lines; expected `query Q0 doc rank score tag` per line.")
    return run


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> doc id -> grade, from a TREC qrels file; conflicting grades for one pair name both lines."""
    qrels: dict[str, dict[str, int]] = {}
    lines: dict[tuple[str, str], int] = {}
    for number, (qid, _, doc, grade_text) in _fields(Path(path), 4, "query 0 doc grade"):
        grade = relevance_grade(grade_text, f"{path}:{number}")
        if qrels.get(qid, {}).get(doc, grade) != grade:
            raise InputError(
                f"{path}: lines {lines[(qid, doc)]} and {number} give ({qid}, {doc}) grades "
                f"{qrels[qid][doc]} and {grade}; keep one line per query and document."
            )
        lines.setdefault((qid, doc), number)
        qrels.setdefault(qid, {})[doc] = grade
    if not qrels:
        raise InputError(f"{path}: no qrels lines; expected `query 0 doc grade` per line.")
    return qrels
