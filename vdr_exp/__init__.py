"""vdr-exp: config-driven experiments for Visual Document Retrieval."""

from vdr_exp.runtime.console import set_library_environment

# First of all, before any module imports mlflow, datasets or transformers: they read it at import time.
set_library_environment()
