"""Multirun presets (``sweep=<name>``), shipped inside the package as ``vdr_exp.sweeps``: one folder per entry point."""
