"""Interrupted runs end in a known state: a signal (SIGTERM, Ctrl-C, SLURM's SIGUSR2; to the run or to its
process group, while it trains or while worker processes prepare pages) ends the MLflow run KILLED with no worker
left behind, and a training killed outright resumes from its last complete checkpoint into the same run.
The pieces in-process: tests/unit/test_signals.py and tests/unit/test_resume.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from entrypoints import _env, entry_command, run_entry, runs_in, start_entry, store_client

from vdr_exp.jobs.resume import last_complete_checkpoint


@pytest.mark.slow
def test_sigterm_ends_the_run_killed(tmp_path, fixture_paths):
    process = start_entry("vdr_exp.train", ["experiment=offline_demo"], tmp_path, fixture_paths.root)
    deadline = time.time() + 180
    while time.time() < deadline and not (tmp_path / "run" / "base" / "metrics.csv").exists():
        time.sleep(0.5)
    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
    process.send_signal(signal.SIGTERM)  # what timeout, docker stop, Kubernetes and SLURM send first
    process.wait(timeout=120)
    assert process.returncode != 0
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["error"]


@pytest.mark.slow
def test_ctrl_c_ends_the_run_killed(tmp_path, fixture_paths):
    process = start_entry("vdr_exp.train", ["experiment=offline_demo"], tmp_path, fixture_paths.root)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "base" / "metrics.csv").exists():
        time.sleep(0.5)  # wait until the run is well under way (base evaluation written, training starting)
    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    assert process.returncode != 0
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED" and "KeyboardInterrupt" in run.data.tags["error"]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_sigusr2_outside_the_training_loop_ends_the_run_killed(tmp_path, fixture_paths):
    """SLURM's time-limit warning while the model loads or evaluates (not in the training loop): KILLED."""
    process = start_entry("vdr_exp.evaluate", ["experiment=offline_eval"], tmp_path, fixture_paths.root)
    deadline = time.time() + 240
    log = tmp_path / "run" / "evaluate.log"  # read the job's log, not the store (a second client would race
    while time.time() < deadline and process.poll() is None:  # the job's first migration of a new store)
        if log.is_file() and "MLflow run" in log.read_text():
            break
        time.sleep(0.3)
    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
    process.send_signal(signal.SIGUSR2)
    process.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 143 and "Traceback" not in stderr, stderr[-2000:]
    assert len(_error_lines(stderr)) == 1
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED" and "SIGUSR2" in run.data.tags["error"]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("to_the_group", [False, True], ids=["to the run", "to its process group"])
def test_sigterm_while_encoding_stops_the_workers_too(tmp_path, fixture_paths, to_the_group):
    """SIGTERM to the run (kill, docker stop) or to its whole process group (timeout, SLURM): the run ends
    KILLED, not with a worker's death, and no worker outlives it."""
    overrides = ["experiment=offline_eval", "eval.pipeline.workers=2", "eval.batch_size=1", "eval.cache=false"]
    command = entry_command("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    workers: set[int] = set()
    deadline = time.time() + 180
    while time.time() < deadline and len(workers) < 2 and process.poll() is None:
        workers |= _children(process.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, (tmp_path / "stderr.txt").read_text()[-2000:]
    if to_the_group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    assert process.returncode != 0
    assert "DataLoader worker" not in (tmp_path / "stderr.txt").read_text()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the run"
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint_into_the_same_run(tmp_path, fixture_paths):
    overrides = ["experiment=offline_demo", "trainer.save_strategy=steps"]
    process = start_entry("vdr_exp.train", overrides, tmp_path, fixture_paths.root)
    deadline = time.time() + 180
    # Kill once a checkpoint is complete (its state file is written last; seeing the file is not enough: a
    # kill while it is being written leaves a checkpoint that resume rightly skips, see tests/unit/test_resume.py).
    while time.time() < deadline and last_complete_checkpoint(tmp_path / "run" / "checkpoints") is None:
        time.sleep(0.2)
    process.kill()  # SIGKILL: no handler runs, the MLflow run stays RUNNING, as after a crash or preemption
    process.wait(timeout=60)
    (killed,) = runs_in(tmp_path)
    assert killed.info.status == "RUNNING"

    result = run_entry("vdr_exp.train", [*overrides, f"resume={killed.info.run_id}"], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    client = store_client(tmp_path)
    resumed = client.get_run(killed.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["resumed_from"].endswith("checkpoint-16")
    steps = sorted(m.step for m in client.get_metric_history(killed.info.run_id, "train_loss"))
    assert steps[-1] == 64 and len(set(steps)) == len(steps)  # one history, continued
    # Deterministic resume: the same final NDCG@10 as the uninterrupted offline demo.
    assert resumed.data.metrics["ndcg_at_10"] == pytest.approx(0.2288, abs=0.02)
    assert (tmp_path / "run" / "model" / "modules.json").is_file()
    assert len(runs_in(tmp_path)) == 1
