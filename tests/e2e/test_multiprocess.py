"""The same Hydra config under torchrun and accelerate launch: two processes train together (gloo on CPU),
only rank 0 records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from entrypoints import runs_in

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# accelerate's --multi_gpu selects its torchrun-based launcher, which runs on CPUs too; plain --cpu would
# start one process (more CPU processes go through mpirun).
LAUNCHERS = {
    "torchrun": [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29533"],
    "accelerate": [
        str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29534",
    ],
}  # fmt: skip


# torchrun also gathers in-batch negatives across the two processes (the loss's all-gather under gloo).
@pytest.mark.parametrize(
    ("launcher", "loss_overrides"), [("torchrun", ["loss.gather_across_devices=true"]), ("accelerate", [])]
)
def test_two_processes_one_mlflow_run(launcher, loss_overrides, tmp_path, fixture_paths):
    cmd = [
        *LAUNCHERS[launcher], "-m", "vdr_exp.train",
        "experiment=offline_demo", "trainer.max_steps=4", "dataset.max_eval_rows=8", *loss_overrides,
        f"fixtures.root={fixture_paths.root}",
        f"tracking.store={tmp_path / 'mlflow.db'}",
        f"tracking.artifact_root={tmp_path / 'mlartifacts'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)  # rank 1 opened no run
    assert run.info.status == "FINISHED" and "ndcg_at_10" in run.data.metrics
    # Two ranks read disjoint batches: 4 steps cover half the fixture's training rows; one process covers 0.25.
    assert run.data.metrics["train_epoch"] == pytest.approx(0.5)
    assert run.data.params["loss.gather_across_devices"] == str(bool(loss_overrides))
    assert (tmp_path / "run" / "model" / "modules.json").is_file()
    assert not list((tmp_path / "run").glob("rank1/**/*.csv"))  # rank 1 wrote no results
