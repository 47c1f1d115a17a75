"""The benchmark scripts stay runnable (the GPU recipe benchmark at a tiny size on the CPU), and the speed
defaults change speed only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

from vdr_exp.data.dataset_folder import load_rows

ROOT = Path(__file__).resolve().parents[2]


def test_hashed_no_duplicates_sampler_draws_the_same_batches(fixture_paths):
    """The recipe trainer samples with ``no_duplicates_hashed`` (hash keys instead of decoded page images):
    faster on image rows, and the same batches as ``no_duplicates``, duplicates deferred the same way."""
    rows = load_rows(str(fixture_paths.dataset), "train", split="train")
    rows = rows.select([*range(len(rows)), *range(0, len(rows), 8)])  # every 8th row twice

    def batches(hashed: bool) -> list[list[int]]:
        # As the trainer builds it: its own generator, reseeded with seed + epoch at each pass.
        sampler = NoDuplicatesBatchSampler(
            rows, batch_size=32, drop_last=False, generator=torch.Generator(), seed=42, precompute_hashes=hashed
        )
        return list(sampler)

    plain, hashed = batches(False), batches(True)
    assert plain == hashed
    assert sorted(i for batch in plain for i in batch) == list(range(len(rows)))
    queries = rows["query"]
    assert all(len({queries[i] for i in batch}) == len(batch) for batch in plain)


@pytest.mark.slow  # about 40 s of a subprocess building and timing a model: CI runs it, make test keeps its budget
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


@pytest.mark.slow
def test_pipeline_benchmark_prints_both_overlap_ratios(fixture_paths):
    """benchmarks/pipeline.py runs end to end at a small size; the ratios themselves are figures, not asserted."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pipeline.py"), "--pages", "16", "--distinct", "4",
         "--fixtures", str(fixture_paths.root)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("overlap ratio ") for line in lines)
    assert lines[-1].startswith("training overlap ratio ")
    assert float(lines[-1].split()[-1]) > 0


@pytest.mark.slow
def test_make_bench_ratios_are_all_printed_in_tiny_mode(fixture_paths):
    """`make bench` runs bench.py then pipeline.py: a break in either (the bare side given lazy pages, say) fails
    here. The tiny mode prints each ratio once without judging it (too few pages to mean anything)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--tiny", "--fixtures", str(fixture_paths.root)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ratios = [line for line in done.stdout.splitlines() if line[:3] in ("(a)", "(b)", "(c)", "(d)")]
    assert [line[:3] for line in ratios] == ["(a)", "(b)", "(c)", "(d)"], done.stdout[-2000:]
    assert all(float(line[45:54]) > 0 for line in ratios)


@pytest.mark.slow
def test_forward_benchmark_killed_mid_way_keeps_every_finished_phase(fixture_paths, tmp_path):
    """A GPU lease ended a profile mid-way and lost every figure measured before it (2026-12-04): each phase's
    JSON line is on disk the moment it is measured, so a kill during training keeps load, forward and end to end."""
    out = tmp_path / "figures.jsonl"
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "forward_only.py"), "--model", str(fixture_paths.tiny_model),
        "--pages", str(fixture_paths.dataset), "--device", "cpu", "--count", "16", "--batch", "8", "--side", "128",
        "--train-batch", "8", "--mini-batch", "4", "--steps", "500", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 600
        while '"end_to_end"' not in (out.read_text() if out.exists() else ""):
            assert process.poll() is None and time.monotonic() < deadline, "forward_only.py ended before its phases"
            time.sleep(0.5)
        time.sleep(2)  # inside the 500-step training phase now
    finally:
        process.kill()
        process.wait()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["phase"] for row in rows] == ["load", "forward", "end_to_end"]
    assert rows[1]["pages_per_s"] > 0 and rows[2]["pages_per_s"] > 0 and rows[2]["workers"] >= 0
    assert all(row["settings"]["attn"] == "sdpa" for row in rows)
