"""The benchmark scripts stay runnable: the GPU recipe benchmark at a tiny size on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_recipe_benchmark_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "gpu_recipe.py"),
        "--size", "tiny", "--device", "cpu", "--pages", "4", "--budgets", "128,256",
        "--encode-batch", "2", "--train-batch", "4", "--mini-batches", "1,2", "--steps", "1", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [row["side"] for row in results["encode"]] == [128, 256]
    assert all(row["pages_per_s"] > 0 for row in results["encode"])
    assert [row["mini_batch"] for row in results["train"]] == [1, 2]
    assert all(row["s_per_step"] > 0 for row in results["train"])
    assert 100_000 < results["parameters"] < 1_000_000
