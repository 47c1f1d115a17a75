"""Presets of `python -m vdr_exp.evaluate sweep=<name>` (in sweep/)."""
