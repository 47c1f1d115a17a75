"""File names as text that can be shown and stored anywhere: logs, error lines, MLflow, CSVs, HTML, JSON.

A POSIX file name is any byte string without ``/`` and NUL: bytes that are not UTF-8 (Python reads them as
lone surrogates, ``'\\udcff'``, which UTF-8 writers and MLflow reject), newlines, tabs, terminal escapes,
right-to-left overrides. :func:`printable` turns such a name into one printable line, the same every time, in
backslash escapes: an undecodable byte as ``\\xff``, a newline as ``\\n``, any other character that is not
printable as ``\\u202e``, and a backslash as ``\\\\``; every other character (``café``, spaces, a leading dash)
stays as it is. Every backslash of the result starts an escape, so two different names never give the same
text: the escaped name can serve as a key (the name a queries file gives, the base of a page id).
:func:`utf8` keeps valid text as it is and escapes only what UTF-8 cannot hold (for free text such as an
error message, whose newlines are wanted).
"""

from __future__ import annotations

import os

SURROGATE_BYTES = range(0xDC80, 0xDD00)  # os.fsdecode's stand-ins for the bytes 0x80-0xff that are not UTF-8
SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if code in SURROGATE_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if char in SHORT:
        return SHORT[char]
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(name: str | bytes | os.PathLike) -> str:
    """``name`` (text, bytes or a path) as one printable, valid UTF-8 line; unchanged when it is one already
    and holds no backslash."""
    text = os.fsdecode(name)
    return "".join(char if char.isprintable() and char != "\\" else _escape(char) for char in text)


def utf8(text: str) -> str:
    """``text`` as valid UTF-8: each lone surrogate escaped as :func:`printable` does, everything else kept."""
    return "".join(_escape(char) if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
