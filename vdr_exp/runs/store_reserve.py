"""Room kept beside a local MLflow store for the runs' end statuses, given back when the disk fills up.

On a full disk every write of SQLite fails, even the small UPDATE that ends a run: in WAL mode each commit appends
to ``mlflow.db-wal``, which needs new blocks. A run (or a sweep's parent) would stay RUNNING forever. So a file of
:data:`RESERVE_BYTES` lies beside the store (``mlflow.db.reserve``); when a status cannot be written, it is
deleted and the write tried again in the room it leaves. It is made again by a later run, at most half the room
the disk has left (a nearly full disk is never filled by it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_BYTES = 1024**2  # the end of dozens of runs: each status is a few WAL pages of 4 KiB
SMALLEST = 64 * 1024  # less would not hold a run's end and its SQLite pages
SUFFIX = ".reserve"


def path_for(store: Path) -> Path:
    return store.with_name(store.name + SUFFIX)


def keep(store: Path) -> None:
    """Make the reserve when it is missing, of at most half the room left; never fail a run over it."""
    reserve = path_for(store)
    if reserve.exists():
        return
    try:
        size = min(RESERVE_BYTES, shutil.disk_usage(store.parent).free // 2)
        if size < SMALLEST:
            return
        with reserve.open("wb") as out:
            out.write(b"\0" * size)  # written, not sparse: the blocks are really taken
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        log.info("no room reserved for run statuses beside %s: %s", store, error)
        with contextlib.suppress(OSError):
            reserve.unlink()


def release(store: Path) -> bool:
    """Give the reserved room back to the disk (to write a run's status); True when there was some."""
    try:
        path_for(store).unlink()
    except OSError:
        return False
    log.info("freed the room reserved beside %s to record the runs' end", store)
    return True
