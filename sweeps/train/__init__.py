"""Presets of `python -m vdr_exp.train sweep=<name>` (in sweep/)."""
