"""Full-size stand-ins of Qwen3-VL-Embedding-2B/-8B, and the prepared GPU script run in its tiny mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from vdr_exp.fixtures.standins import QWEN3_VL_EMBEDDING_2B, QWEN3_VL_EMBEDDING_8B, parameter_count

ROOT = Path(__file__).resolve().parents[2]


def test_stand_ins_have_the_published_sizes():
    # Qwen3-VL-Embedding-2B: 2.1B in the recipe's table; the 8B backbone without its 622M LM head: 8.1B.
    assert parameter_count(QWEN3_VL_EMBEDDING_2B) == pytest.approx(2.13e9, rel=0.01)
    assert parameter_count(QWEN3_VL_EMBEDDING_8B) == pytest.approx(8.14e9, rel=0.01)


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
