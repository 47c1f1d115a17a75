"""Sweeps on a real SLURM cluster: a single-node cluster on loopback (munged, slurmctld, slurmd), started and
stopped by the test; jobs go through sbatch as a job array and land as children of one MLflow parent run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry, runs_in, start_entry, store_client
from support import slurm_cluster

from vdr_exp.jobs.resume import last_complete_checkpoint

pytestmark = pytest.mark.slow

SWEEP = ["-m", "experiment=offline_eval", "model=tiny_qwen3_vl,tiny_qwen3_vl_4x", "dataset.max_eval_rows=16"]


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_cluster.missing()
    if reason:
        pytest.skip(f"no loopback SLURM cluster: {reason} (.ci/run installs it)")
    root = Path(tempfile.mkdtemp(prefix="vdr-slurm-"))  # short: munge's socket path has a length limit
    try:
        with slurm_cluster.loopback_cluster(root) as env:
            yield env
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_sweep_submitted_through_sbatch_finishes_under_one_parent_like_a_local_one(
    cluster, tmp_path, fixture_paths, monkeypatch
):
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    monkeypatch.setenv("VDR_EXP_VENV", sys.prefix)  # the jobs' setup line activates this environment
    launcher = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1"]
    launcher.append("hydra.launcher.mem_gb=1")
    result = run_entry("vdr_exp.evaluate", [*SWEEP, *launcher], tmp_path / "slurm", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path / "slurm", "sweep")
    children = runs_in(tmp_path / "slurm", "evaluate")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    job_ids = {c.data.tags.get("slurm_job_id") for c in children}
    assert None not in job_ids and len(job_ids) == 2  # each ran as its own SLURM job

    local = run_entry("vdr_exp.evaluate", SWEEP, tmp_path / "local", fixture_paths.root)
    assert local.returncode == 0, local.stderr[-3000:]
    boards = [
        pd.read_csv(next((tmp_path / where / "outputs" / "leaderboards").glob("*.csv"))).set_index("model")
        for where in ("slurm", "local")
    ]
    for model in ("tiny_qwen3_vl", "tiny_qwen3_vl_4x"):
        on_slurm, here = (b[b["width"] == "full"].loc[model, "ndcg_at_10"] for b in boards)
        assert on_slurm == pytest.approx(here, abs=1e-6)


def _running_training(workdir: Path, deadline: float):
    """The sweep's training run once it has a complete checkpoint (then preempting it loses nothing saved)."""
    while time.time() < deadline:
        time.sleep(0.5)
        try:  # the launcher may still be creating the store's tables
            runs = [r for r in runs_in(workdir, "train") if r.info.status == "RUNNING"]
        except Exception:  # noqa: BLE001
            continue
        if runs and last_complete_checkpoint(Path(runs[0].data.tags["run_dir"]) / "checkpoints") is not None:
            return runs[0]
    raise AssertionError("the training job never saved a checkpoint")


def test_a_preempted_training_job_is_requeued_and_finishes_its_own_run_like_an_uninterrupted_one(
    cluster, tmp_path, fixture_paths, monkeypatch
):
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    monkeypatch.setenv("VDR_EXP_VENV", sys.prefix)
    training = ["experiment=offline_demo", "trainer.save_strategy=steps"]
    launcher = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1"]
    sweep = start_entry("vdr_exp.train", ["-m", *training, *launcher], tmp_path / "slurm", fixture_paths.root)
    try:
        time.sleep(5)  # the launcher creates the store first
        first = _running_training(tmp_path / "slurm", time.time() + 300)
        job = first.data.tags["slurm_job_id"]
        # What SLURM sends on preemption; submitit's own test helper (SlurmJob._interrupt) does the same.
        subprocess.run(["scancel", "--signal=TERM", job], check=True, env={**cluster, "PATH": "/usr/bin:/bin"})
        assert sweep.wait(timeout=600) == 0, (tmp_path / "slurm" / "stderr.txt").read_text()[-3000:]
    finally:
        if sweep.poll() is None:
            sweep.kill()
    (run,) = runs_in(tmp_path / "slurm", "train")  # one run: the requeued job went on with the same one
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["slurm_job_id"] == job and run.data.tags["preempted"].startswith("step ")
    assert "checkpoint-" in run.data.tags["resumed_from"] and "error" not in run.data.tags
    steps = sorted(m.step for m in store_client(tmp_path / "slurm").get_metric_history(run.info.run_id, "train_loss"))
    assert steps[-1] == 64 and len(set(steps)) == len(steps)  # one loss history, continued

    local = run_entry("vdr_exp.train", training, tmp_path / "local", fixture_paths.root)
    assert local.returncode == 0, local.stderr[-3000:]
    (uninterrupted,) = runs_in(tmp_path / "local", "train")
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(uninterrupted.data.metrics["ndcg_at_10"], abs=1e-6)


def test_the_cluster_stops_and_leaves_no_daemon_running(tmp_path):
    if slurm_cluster.missing():
        pytest.skip(slurm_cluster.missing())
    root = Path(tempfile.mkdtemp(prefix="vdr-slurm-"))
    try:
        slurm_cluster.start(root)
        pids = [int((root / f"{d}.pid").read_text().split()[0]) for d in slurm_cluster.DAEMONS]
        slurm_cluster.stop(root)
        assert not [pid for pid in pids if slurm_cluster._alive(pid)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
