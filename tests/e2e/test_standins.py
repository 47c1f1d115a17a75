"""The prepared GPU script run in its tiny mode through the entry points (the full-size stand-ins' sizes:
tests/unit/test_standin_sizes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_session_runs_its_tiny_mode_through_the_entry_points(tmp_path):
    env = {**os.environ, "ROOT": str(tmp_path / "out"), "PY": sys.executable, "SIZE_TRAIN": "tiny", "SIZE_EVAL": "tiny"}
    env.pop("VDR_EXP_PARENT_RUN_ID", None)
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_session.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SKIPPED" not in done.stdout and "rc=0" in done.stdout, done.stdout[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("vdr").experiment_id], order_by=["start_time ASC"])
    assert [r.data.tags["run_kind"] for r in runs] == ["train", "evaluate"]
    assert all(r.info.status == "FINISHED" for r in runs)
    trained, cached = runs
    assert {"ndcg_at_10_dim_16", "ndcg_at_10_dim_8", "train_s_per_step", "base_encode_pages_per_s"} <= set(
        trained.data.metrics
    )
    # The evaluation after training is the embedding cache's second run of the base model.
    assert cached.data.metrics["embedding_cache_hits"] == 2 and cached.data.metrics["embedding_cache_misses"] == 0
    assert "train_s_per_step" in done.stdout  # the summary printed from the store
    assert "end-to-end / forward-only" in done.stdout  # benchmarks/forward_only.py, with its profile
    assert (tmp_path / "out" / "profile" / "train_step.json").is_file()
