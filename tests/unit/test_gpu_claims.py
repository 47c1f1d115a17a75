"""One GPU per job without SLURM: with no GPU visible, claiming one is a clear error (worker processes each
claiming their own: tests/e2e/test_devices.py)."""

from __future__ import annotations

import pytest

from vdr_exp.errors import ConfigError
from vdr_exp.launch import devices


def test_no_visible_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "_CLAIMED", {})
    with pytest.raises(ConfigError, match="no GPU is visible"):
        devices.claim([], tmp_path)
