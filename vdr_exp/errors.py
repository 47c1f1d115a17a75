"""One base class for every error a user can cause, so entry points handle them in one place.

Each message names what is wrong (a config key, a file and line, a run id) and the fix. The entry points
print it as one ``error:`` line and exit 2; inside a sweep the job becomes a FAILED run and the others go on.
"""

from __future__ import annotations


class VdrError(Exception):
    """An error the user can fix; never shown as a traceback."""


class ConfigError(VdrError):
    """A configuration that composes but cannot run; the message names the key and the fix."""


class InputError(VdrError):
    """Bad input data (a queries file, a PDF, a dataset's columns); the message names the file, line and fix."""


class LossDiverged(VdrError):
    """Training produced a NaN or infinite loss; the message says at which step and what to change."""


class LeaderboardError(VdrError):
    """Nothing to rank; the message names the filter that matched nothing and what to change."""
