"""The process a job runs in: console and library settings, signals, secret redaction, the failure contract, safe
CSV files and what Hydra tells the job. Everything above builds on it; it imports only :mod:`vdr_exp.errors`."""

from vdr_exp.runtime.console import set_library_environment

set_library_environment()  # before any module above imports the libraries that read it
