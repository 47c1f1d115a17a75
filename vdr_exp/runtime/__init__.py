"""The process a job runs in: console and library settings, signals, secret redaction, the failure contract, safe
CSV files and what Hydra tells the job. Everything above builds on it; it imports only :mod:`vdr_exp.errors`.
The libraries' environment (:func:`console.set_library_environment`) is set by ``vdr_exp/__init__.py``, first."""
