"""The prepared GPU script run in its tiny mode through the entry points (the full-size stand-ins' sizes:
tests/unit/test_standin_sizes.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_session_runs_its_tiny_mode_through_the_entry_points(tmp_path):
    env = {
        **os.environ,
        "ROOT": str(tmp_path / "out"),
        "PY": sys.executable,
        "SIZE_TRAIN": "tiny",
        "SIZE_EVAL": "tiny",
        "BUDGET_S": "1500",
    }
    env.pop("VDR_EXP_PARENT_RUN_ID", None)
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_session.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SKIPPED" not in done.stdout and "rc=0" in done.stdout, done.stdout[-3000:]
    assert not re.search(r"rc=[1-9]", done.stdout), done.stdout[-3000:]  # every phase ran to its end
    # The forward matrix: four evaluation settings, two training mini-batches, the profile, each a JSON line.
    rows = [json.loads(line) for line in (tmp_path / "out" / "figures.jsonl").read_text().splitlines()]
    settings = {(r["settings"]["attn"], r["settings"]["compile"]) for r in rows if r["phase"] == "end_to_end"}
    assert settings == {("sdpa", "off"), ("sdpa", "regional"), ("sdpa_packed", "off"), ("sdpa_packed", "regional")}
    assert sorted(r["settings"]["mini_batch"] for r in rows if r["phase"] == "train_step") == [2, 8]
    (profiled,) = [r for r in rows if r["phase"] == "profile"]
    assert profiled["train_step"]["classes"] and (tmp_path / "out" / "profile" / "train_step.json.gz").is_file()
    assert "forward matrix" in done.stdout  # the summary, printed from figures.jsonl
    # The real entry point with trainer=blog_fast and the best settings the matrix found.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    (trained,) = client.search_runs([client.get_experiment_by_name("vdr").experiment_id])
    assert trained.info.status == "FINISHED" and trained.data.params["trainer.name"] == "blog_fast"
    assert {"train_s_per_step", "base_encode_pages_per_s"} <= set(trained.data.metrics)
    assert "train_s_per_step" in done.stdout  # the runs' part of the summary
