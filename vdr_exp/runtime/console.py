"""What a job prints: one line per event when its output is a log file or CI, not a terminal.

Called by ``vdr_exp/__init__.py``, so it runs before mlflow, datasets or transformers import tqdm: tqdm
reads ``TQDM_DISABLE`` when it is imported, not when a bar is drawn.
"""

from __future__ import annotations

import logging
import os
import sys

# MLflow logs each failed database write with its traceback, then raises it: the raised error is said in one line
# (vdr_exp.runtime.failures; a full disk: "the MLflow database cannot grow"), the copy only with VDR_EXP_DEBUG=1.
# Likewise a log file on a full disk: its handler's error is not printed as a traceback after every line.
TRACEBACK_LOGGERS = ("mlflow.store.db.utils",)


def set_library_environment() -> None:
    """Environment the libraries read at import: no progress redraws off a terminal, no advisory noise."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not interactive():  # a log file or CI: one line per event, not a redraw per step
        os.environ.setdefault("TQDM_DISABLE", "1")
    if os.environ.get("VDR_EXP_DEBUG", "") in ("", "0"):
        for name in TRACEBACK_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        logging.raiseExceptions = False


def interactive() -> bool:
    """A person watching a terminal (progress bars help) rather than a log file or CI (they garble it)."""
    return sys.stderr.isatty()
