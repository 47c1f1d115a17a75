"""Signals, piece by piece: SLURM's preemption signals save a checkpoint after the step in flight and stop
training (outside SLURM they are left alone), and a Ctrl-C swallowed by a finalizer still ends the MLflow run
KILLED. Whole runs interrupted: tests/e2e/test_interrupted_runs.py; preempted on a loopback SLURM cluster:
tests/e2e/test_slurm.py."""

from __future__ import annotations

import os
import signal
import time

import pytest
from mlflow.tracking import MlflowClient
from transformers import TrainerControl, TrainerState, TrainingArguments

from vdr_exp.config import TrackingConfig
from vdr_exp.runs import preemption
from vdr_exp.runs.step_metrics import CheckpointOnPreemption
from vdr_exp.runs.tracking import tracked_run


@pytest.fixture
def args(tmp_path):
    return TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2])
def test_a_slurm_signal_saves_a_checkpoint_after_the_step_and_stops_training(monkeypatch, args, signum):
    monkeypatch.setattr(preemption, "on_slurm", lambda: True)
    before = signal.getsignal(signum)
    callback, state, control = CheckpointOnPreemption(), TrainerState(global_step=7), TrainerControl()
    callback.on_train_begin(args, state, control)
    callback.on_step_end(args, state, control)
    assert not control.should_save and not control.should_training_stop  # nothing received yet
    os.kill(os.getpid(), signum)  # noted, not fatal: the step in flight finishes
    callback.on_step_end(args, state, control)
    assert control.should_save and control.should_training_stop and callback.step == 7
    callback.on_train_end(args, state, control)
    callback.restore_handlers()
    assert signal.getsignal(signum) == before
    with pytest.raises(preemption.Preempted, match="checkpoint saved at step 7") as raised:
        callback.raise_if_preempted()
    assert isinstance(raised.value, KeyboardInterrupt)  # so the MLflow run ends KILLED, not FAILED


def test_outside_slurm_signals_are_left_alone(monkeypatch, args):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    before = signal.getsignal(signal.SIGTERM)
    CheckpointOnPreemption().on_train_begin(args, TrainerState(), TrainerControl())
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_swallowed_ctrl_c_still_ends_the_run_killed(tmp_path, new_store):
    """A KeyboardInterrupt raised inside a finalizer is printed and lost (seen in CI); the run must not end
    FINISHED as if nothing happened."""
    cfg = TrackingConfig(name="t", store=str(new_store), artifact_root=str(tmp_path / "art"))
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt), tracked_run(cfg, "interrupted", {}) as run_id:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                pass  # what "Exception ignored in: <finalizer>" amounts to
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run's watch is gone
    finally:
        signal.signal(signal.SIGINT, before)
    run = MlflowClient(tracking_uri=f"sqlite:///{new_store}").get_run(run_id)
    assert run.info.status == "KILLED" and "Ctrl-C" in run.data.tags["error"]
