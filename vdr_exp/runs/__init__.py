"""Hydra jobs and MLflow runs: tracking, sweep parents, skip-completed and resume, interrupts, secrets."""

from vdr_exp.runs.console import set_library_environment

set_library_environment()  # before any run module imports the libraries that read it
