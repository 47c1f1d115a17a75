"""One GPU per job without SLURM: each worker process claims its own GPU and keeps it."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest

from vdr_exp.errors import ConfigError
from vdr_exp.launch import devices


def _claim_in_a_fresh_process(args: tuple[list[str], str, multiprocessing.Barrier]) -> str:
    visible, lock_dir, barrier = args
    try:
        device = devices.claim(visible, Path(lock_dir))
        again = devices.claim(["99"], Path(lock_dir))  # a second job in the same worker keeps its GPU
        assert again == device
        result = device
    except ConfigError as error:
        result = f"refused: {error}"
    barrier.wait(timeout=60)  # hold the lock until every process has tried
    return result


@pytest.mark.slow  # four spawned processes; CI runs it
def test_each_worker_process_gets_its_own_gpu_and_a_surplus_worker_is_refused(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        with context.Pool(4) as pool:
            claimed = pool.map(_claim_in_a_fresh_process, [(["2", "5", "7"], str(tmp_path), barrier)] * 4)
    assert sorted(c for c in claimed if not c.startswith("refused")) == ["2", "5", "7"]
    (refused,) = [c for c in claimed if c.startswith("refused")]
    assert "set hydra.launcher.n_jobs to at most 3" in refused


@pytest.mark.slow
def test_a_joblib_sweep_with_gpu_per_job_pins_each_worker_to_one_gpu(tmp_path, fixture_paths, monkeypatch):
    from entrypoints import run_entry

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    overrides = [
        "-m", "model=tiny_qwen3_vl,tiny_qwen3_vl_4x,tiny_qwen3_vl_multi_vector,tiny_router", "experiment=offline_eval",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "gpu_per_job=true", "dry_run=true",
    ]  # fmt: skip
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    pinned = re.findall(r"gpu_per_job: job (\d+) runs on GPU (\d+) \(process (\d+)\)", result.stdout + result.stderr)
    assert sorted(int(job) for job, _, _ in pinned) == [0, 1, 2, 3]
    by_process = {}
    for _, gpu, pid in pinned:
        by_process.setdefault(pid, set()).add(gpu)
    assert all(len(gpus) == 1 for gpus in by_process.values())  # a worker keeps its GPU
    assert {gpu for gpus in by_process.values() for gpu in gpus} <= {"5", "7"}
    assert len({next(iter(g)) for g in by_process.values()}) == len(by_process)  # no two workers share one
