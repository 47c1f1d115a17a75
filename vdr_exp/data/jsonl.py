"""Reading the user's JSON Lines files: one rule for line breaks and encodings, errors with file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vdr_exp.errors import InputError


def jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a JSON Lines file, split on newlines only (a U+2028 inside a string is text, not a
    line break), decoded as UTF-8 line by line so a bad byte is reported with its line."""
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path}:{number}: not UTF-8 text (byte {raw[error.start]:#04x} at column {error.start + 1}); "
                "save the file as UTF-8."
            ) from None
        yield number, text.rstrip("\r")
