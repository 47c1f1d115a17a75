"""What a person sees in the MLflow UI after the demo, checked in a real headless Chromium (make ui-check)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("playwright", reason="the dev extra installs Playwright (make setup)")

from vdr_exp.reports.ui_check import chromium  # after the skip: it imports Playwright

pytestmark = pytest.mark.slow


def test_the_demo_reads_at_a_glance_in_the_mlflow_ui(demo, tmp_path):
    if chromium() is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does it)")
    command = [
        sys.executable, "-m", "vdr_exp.reports.ui_check", "--store", str(demo / "mlflow.db"),
        "--artifacts", str(demo / "mlartifacts"), "--out", str(tmp_path / "shots"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "FAIL" not in result.stdout and result.stdout.count("PASS") == 9, result.stdout
    shots = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert shots == [
        "1_experiment_runs.png", "2_training_run.png", "3_logged_model.png", "4_gallery_artifact.png",
        "5_sweep_parent.png",
    ]  # fmt: skip
