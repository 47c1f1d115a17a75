"""Hydra config groups of vdr-exp, shipped inside the package as ``vdr_exp.conf`` (found as ``pkg://vdr_exp.conf``)."""
