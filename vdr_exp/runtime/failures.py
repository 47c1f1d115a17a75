"""The failure contract of every entry point: one ``error:`` line, an exit status that says whose fault it is.

A user running a job should never have to read a Python traceback to learn that the disk is full, that a run id
does not exist or that a config option is misspelt. Every exception that leaves a job is turned into one line
by :func:`describe`: what went wrong, naming the file, key or run, and what to do about it. The exit status
follows from it: 2 for anything the user can fix (bad input, bad config, no disk space, a folder that cannot be
written), 1 for an internal fault (a bug: the line says how to get the traceback to report it), 130/143 for
Ctrl-C/SIGTERM. ``VDR_EXP_DEBUG=1`` shows the traceback as well (``HYDRA_FULL_ERROR=1`` counts too).
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from vdr_exp.errors import VdrError
from vdr_exp.runtime import redact
from vdr_exp.runtime.interrupts import Terminated
from vdr_exp.runtime.names import utf8

DEBUG_ENV = "VDR_EXP_DEBUG"
OURS_ENV = "VDR_EXP_HYDRA_RAISES"  # HYDRA_FULL_ERROR=1 set by guarded_main, not by the user
USER_FAULT, INTERNAL_FAULT = 2, 1

NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
# What SQLite (alone or wrapped by SQLAlchemy and MLflow) says when its file cannot grow or be written.
SQLITE_NO_SPACE = ("database or disk is full", "disk i/o error", "file too large")
SQLITE_NOT_WRITABLE = ("attempt to write a readonly database", "unable to open database file")
SPACE_FIX = "free disk space (or raise the quota) or point paths.output_dir / tracking.store at a folder with room"
# Characters of Hydra's override grammar that a plain value (a benchmark name, a path) may hold: such a value
# needs quotes, and Hydra's own message does not always say so.
GRAMMAR_CHARS = frozenset("(),[]{}&:=*?$'")
AMBIGUOUS = re.compile(r"Ambiguous value for argument '([^']+)'")
WRITE_FIX = "make the folder writable or point paths.output_dir / tracking.store elsewhere"


@dataclass(frozen=True)
class Failure:
    """What the user is told (one line, secrets masked) and the exit status."""

    message: str
    exit_code: int

    @property
    def line(self) -> str:
        return f"error: {utf8(redact.redact_text(' '.join(self.message.split())))}"  # one line, valid UTF-8


def debug() -> bool:
    """Tracebacks asked for: ``VDR_EXP_DEBUG=1`` (or Hydra's own ``HYDRA_FULL_ERROR=1`` as the user set it)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it was raised from or during, outermost first, each once."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def storage(error: BaseException) -> Failure | None:
    """Disk full, file too large, quota, read-only folder or database: the user's to fix, never a traceback."""
    for link in chain(error):
        if isinstance(link, OSError) and link.errno in NO_SPACE | NOT_WRITABLE:
            where = link.filename or "a file"
            if link.errno in NO_SPACE:
                return Failure(f"no space left writing {where} ({link.strerror}); {SPACE_FIX}.", USER_FAULT)
            return Failure(f"cannot write {where} ({link.strerror}); {WRITE_FIX}.", USER_FAULT)
        text = str(link).lower()
        if isinstance(link, sqlite3.Error) or "sqlite" in type(link).__module__ + text:
            if any(s in text for s in SQLITE_NO_SPACE):
                return Failure(f"the MLflow database cannot grow ({_first_line(link)}); {SPACE_FIX}.", USER_FAULT)
            if any(s in text for s in SQLITE_NOT_WRITABLE):
                return Failure(f"the MLflow database is not writable ({_first_line(link)}); {WRITE_FIX}.", USER_FAULT)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def quoting_fix(error: BaseException) -> str:
    """The quoted form that works, for a value Hydra's override grammar reads as syntax: parentheses
    (``KoViDoRe(v2)`` looks like a function call), commas (a sweep or a list), ``&``, brackets. Empty when the
    error names no such override."""
    override = getattr(error, "override", None)  # OverrideParseException carries the override it failed on
    if not override:
        found = AMBIGUOUS.search(str(error))
        override = found.group(1) if found else ""
    key, equals, value = override.partition("=")
    value = value.strip("'\"")
    if not equals or not value or '"' in value or not GRAMMAR_CHARS.intersection(value):
        return ""
    quoted = f"'{key}=\"{value}\"'"
    if "," in value and not set("()[]{}").intersection(value):  # a list key (eval.dims) or a string with commas
        return f"; for a list: {key}=[{value}]; for one string, quote it: {quoted}"
    return f"; quote the value (the shell's quotes around Hydra's): {quoted}"


def _config(error: BaseException) -> Failure | None:
    """Hydra could not compose the config (unknown option, bad override syntax, missing value)."""
    if isinstance(error, HydraException | OmegaConfBaseException):
        fix = "check the override against `--help` / `--cfg job` (group options: `--info defaults`)"
        cause = f" ({_first_line(error.__cause__)})" if error.__cause__ is not None else ""
        text = " ".join(str(error).split())[:600] or type(error).__name__
        return Failure(f"the config does not compose: {text}{cause}; {fix}{quoting_fix(error)}.", USER_FAULT)
    return None


def _mlflow(error: BaseException) -> Failure | None:
    """A run, experiment or model MLflow does not have: the id is the user's to fix. Told by the exception's module
    and MLflow's error code, so that this layer never imports MLflow (.importlinter)."""
    if type(error).__module__.startswith("mlflow.") and getattr(error, "error_code", None) in (
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
    ):
        return Failure(
            f"MLflow: {_first_line(error)}; check the run or experiment id (copy it from the UI).", USER_FAULT
        )
    return None


def describe(error: BaseException) -> Failure:
    """The one line and exit status for any exception that ends a job or a command."""
    if isinstance(error, KeyboardInterrupt):
        code = 143 if isinstance(error, Terminated) else 130
        return Failure(f"{str(error) or 'interrupted (Ctrl-C)'}; the run (if one started) is KILLED", code)
    from vdr_exp.extras import missing_plugin  # sweep=lr_search without the optuna extra: which one to install

    error = missing_plugin(error) or error
    if isinstance(error, VdrError):
        return Failure(str(error), USER_FAULT)
    for check in (storage, _config, _mlflow):
        found = check(error)
        if found is not None:
            return found
    return Failure(
        f"internal error: {type(error).__name__}: {_first_line(error)} (a bug, not your input; rerun with "
        f"{DEBUG_ENV}=1 for the traceback and report it)",
        INTERNAL_FAULT,
    )


def report(error: BaseException) -> int:
    """Print the error's one line (after its traceback when debugging) to stderr; return the exit status."""
    failure = describe(error)
    if debug():
        traceback.print_exception(error)
    print(failure.line, file=sys.stderr, flush=True)
    return failure.exit_code


def guarded_main(hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function so that what Hydra itself raises (composition, override syntax) ends in
    one line and exit 2 like everything else: Hydra is told to raise instead of printing its traceback."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(OURS_ENV) != "1":
        os.environ[DEBUG_ENV] = "1"  # the user asked Hydra for tracebacks: show ours too (children inherit it)
    os.environ["HYDRA_FULL_ERROR"] = os.environ[OURS_ENV] = "1"
    try:
        hydra_main()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - the contract: one line, never a traceback
        raise SystemExit(report(error)) from None
