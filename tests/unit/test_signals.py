"""SLURM preemption, piece by piece (the whole path runs on the loopback cluster in tests/test_slurm.py)."""

from __future__ import annotations

import os
import signal

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from vdr_exp.config import TrackingConfig
from vdr_exp.runs import preemption
from vdr_exp.runs.step_metrics import CheckpointOnPreemption


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


def test_a_first_start_resumes_nothing(monkeypatch, tmp_path):
    tracking = TrackingConfig(store=str(tmp_path / "mlflow.db"))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert preemption.requeued_run(tracking, "abc") is None
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert preemption.requeued_run(tracking, "abc") is None  # requeued, but no run of this job in the store
