"""What a person sees in the MLflow UI after the demo, checked in a real headless Chromium (make ui-check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the dev extra installs Playwright (make setup)")

from support.ui_check import chromium  # after the skip: it imports Playwright

pytestmark = pytest.mark.slow


def test_the_demo_reads_at_a_glance_in_the_mlflow_ui(demo, tmp_path):
    if chromium() is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does it)")
    command = [
        sys.executable, str(Path(__file__).resolve().parents[1] / "support" / "ui_check.py"), "--store", str(demo / "mlflow.db"),
        "--artifacts", str(demo / "mlartifacts"), "--out", str(tmp_path / "shots"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "FAIL" not in result.stdout and result.stdout.count("PASS") == 15, result.stdout
    for check in (  # what a new user sees without configuring the UI (issue 32)
        "NDCG@10 of every job readable on first open",
        "the jobs sorted by NDCG@10, best first",
        "the parent's Overview shows the leaderboard with CIs",
        "a job's description names its model and score",
        "the chart view opens on the sweep's charts",
    ):
        assert f"PASS  {check}" in result.stdout, result.stdout
    shots = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert shots == [
        "1_experiment_runs.png", "2_training_run.png", "3_logged_model.png", "4_gallery_artifact.png",
        "5_sweep_parent.png", "6_sweep_runs_first_open.png", "7_job_description.png", "8_sweep_charts.png",
    ]  # fmt: skip
