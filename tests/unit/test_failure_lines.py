"""Every exception an entry point can meet maps to one ``error:`` line and an exit status (2 for the user's own
faults, 1 for a bug, 130 for Ctrl-C), with secrets masked (issue 30). As runs print them:
tests/e2e/test_failure_contract.py."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from vdr_exp.errors import InputError
from vdr_exp.runtime import failures


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (InputError("queries.jsonl:3: bad"), 2, "queries.jsonl:3"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.png"), 2, "no space left writing /out/x.png"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/run"), 2, "cannot write /ro/run"),
        (sqlite3.OperationalError("database or disk is full"), 2, "MLflow database cannot grow"),
        (RuntimeError("boom"), 1, "internal error: RuntimeError: boom"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_every_exception_maps_to_one_line_and_an_exit_status(error, code, words):
    failure = failures.describe(error)
    assert failure.exit_code == code and words in failure.line and "\n" not in failure.line


def test_the_error_line_masks_secrets():
    failure = failures.describe(RuntimeError("cannot reach http://bob:hunter2@db/x?token=abc"))
    assert "hunter2" not in failure.line and "abc" not in failure.line
