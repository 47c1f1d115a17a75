"""Per-step training logs into the open MLflow run, kept apart from tracking so it alone imports transformers."""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from types import FrameType

import mlflow
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from vdr_exp.errors import LossDiverged
from vdr_exp.modeling import throughput
from vdr_exp.modeling.page_encoding import WAIT_WARNING_SHARE
from vdr_exp.runs import preemption
from vdr_exp.runtime import interrupts
from vdr_exp.tags import ACCELERATOR

log = logging.getLogger(__name__)


class StepMetricsCallback(TrainerCallback):
    """Sends the trainer's logs to the active MLflow run under stable names (train_loss, eval_ndcg_at_10).

    ``prefix`` keeps a second trainer in the same run apart (``reranker_train_loss``).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs,
    ):
        if not logs or not state.is_world_process_zero:
            return
        metrics = {}
        for key, value in logs.items():
            if not isinstance(value, int | float):
                continue
            if key == "loss":
                metrics["train_loss"] = value
            elif key.endswith("ndcg@10"):  # cosine_ndcg@10, maxsim_ndcg@10, ...
                metrics["eval_ndcg_at_10"] = value
            elif key in ("learning_rate", "grad_norm", "epoch"):
                metrics[f"train_{key}"] = value
        if metrics:
            named = {f"{self.prefix}{k}": float(v) for k, v in metrics.items()}
            mlflow.log_metrics(named, step=state.global_step)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in named.items() if not k.endswith(("_epoch", "_grad_norm")))
            if shown:
                log.info("step %d/%d: %s", state.global_step, state.max_steps, shown)


def one_line_per_log(trainer: Trainer) -> Trainer:
    """Without a progress bar the trainer prints every log as a dict (dozens of evaluator keys per line);
    :class:`StepMetricsCallback` logs one short line per step instead, so the printer goes."""
    trainer.remove_callback(PrinterCallback)
    return trainer


class StopOnInterrupt(TrainerCallback):
    """Stops training at the next step when a Ctrl-C was received but its KeyboardInterrupt got lost
    (see :mod:`vdr_exp.runtime.interrupts`)."""

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        interrupts.raise_if_interrupted()


class DivergenceGuard(TrainerCallback):
    """Stops training at the first logged NaN/inf loss or gradient norm instead of wasting the rest of the run."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.value: str | None = None

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs,
    ):
        logs = logs or {}
        for key in ("loss", "grad_norm"):  # NaN weights can show as a NaN gradient norm before the loss
            value = logs.get(key)
            if isinstance(value, int | float) and not math.isfinite(value) and self.step is None:
                self.step, self.value = state.global_step, f"{key} {value}"
                control.should_training_stop = True

    def raise_if_diverged(self) -> None:
        if self.step is not None:
            raise LossDiverged(
                f"training diverged ({self.value}) at step {self.step} and was stopped; lower "
                "trainer.learning_rate (or loss.scale), or check the data. No model was saved."
            )


class TrainingThroughput(TrainerCallback):
    """Seconds per optimizer step, training pages/s, TFLOP/s, MFU and peak GPU memory of the training loop,
    logged once at the end.

    ``train_s_per_step`` is the wall time from one step's end to the next: it includes fetching and collating
    the batch (image decoding and preprocessing on the CPU), which the trainer does before a step begins.
    ``train_compute_s_per_step`` is the step alone (forward, backward, optimizer); the gap between the two is
    time the accelerator waits for data. The first step (allocator warm-up, kernel selection) is reported
    apart as ``train_first_step_s``; an interval holding a step evaluation or a checkpoint save is left out.
    """

    def __init__(self) -> None:
        self.meter: throughput.FlopMeter | None = None
        # (compute seconds, wall seconds or None, flops, training images) per step
        self.steps: list[tuple[float, float | None, float, int]] = []
        self._last_end: float | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.meter = throughput.FlopMeter(kwargs["model"]).__enter__()
        throughput.reset_peak_memory(args.device)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        throughput.synchronize(args.device)
        self._start = (time.perf_counter(), self.meter.flops, self.meter.train_images)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        throughput.synchronize(args.device)
        now = time.perf_counter()
        started, flops, images = self._start
        wall = now - self._last_end if self._last_end is not None else None
        self.steps.append((now - started, wall, self.meter.flops - flops, self.meter.train_images - images))
        self._last_end = now

    def _interrupted(self, *args: object, **kwargs: object) -> None:
        self._last_end = None  # the next interval holds an evaluation or a save: not a training step's time

    on_evaluate = on_save = _interrupted

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.meter is not None:
            self.meter.__exit__(None, None, None)
        if not self.steps or not state.is_world_process_zero:
            return
        timed = self.steps[1:] or self.steps
        walled = [step for step in timed if step[1] is not None] or timed
        wall = sum(w if w is not None else c for c, w, _, _ in walled)
        metrics = throughput.rates(
            "train", seconds=wall, flops=sum(f for _, _, f, _ in walled), device=args.device,
            items=("train_pages", sum(n for _, _, _, n in walled)),
        )  # fmt: skip
        compute = sum(c for c, _, _, _ in timed)
        peak = throughput.peak_flops(args.device)
        if peak:
            metrics["train_compute_mfu"] = sum(f for _, _, f, _ in timed) / max(compute, 1e-9) / peak
        metrics["train_s_per_step"] = wall / len(walled)
        metrics["train_compute_s_per_step"] = compute / len(timed)
        metrics["train_first_step_s"] = self.steps[0][0]
        waits = [w - c for c, w, _, _ in walled if w is not None]
        metrics["train_wait_s_per_step"] = max(0.0, sum(waits) / len(waits)) if waits else 0.0
        mlflow.log_metrics(metrics)
        if args.device.type != "cpu":  # on the CPU the same cores prepare batches and step: nothing to tune
            _warn_if_waiting(metrics["train_wait_s_per_step"], metrics["train_s_per_step"])
        mlflow.set_tag(ACCELERATOR, throughput.device_name(args.device))
        log.info(
            "training throughput: %.2f s/step (%.2f s computing), %.1f pages/s%s",
            metrics["train_s_per_step"],
            metrics["train_compute_s_per_step"],
            metrics["train_pages_per_s"],
            f", MFU {metrics['train_mfu']:.1%}" if "train_mfu" in metrics else "",
        )


class SetupTiming(TrainerCallback):
    """Where the time before step 1 goes, logged when step 1 begins: ``train_setup_s`` from the start of the
    trainer's construction to the start of step 1, made of ``train_build_s`` (building the trainer: LoRA, the
    step evaluator, the library's trainer and its collator), ``train_prepare_s`` (inside ``train()`` before
    the loop: the DataLoader object, optimizer, accelerate's preparation, a checkpoint to resume from) and
    ``train_first_batch_s`` (the batch sampler's first pass, the workers starting, the first batch decoded and
    collated). :meth:`mark` ``"start"`` and ``"built"`` come from the job."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.mark("train_begin")

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if "step_begin" in self.marks:
            return
        self.mark("step_begin")
        marks = self.marks
        if not state.is_world_process_zero or not {"start", "built"} <= marks.keys():
            return
        metrics = {
            "train_setup_s": marks["step_begin"] - marks["start"],
            "train_build_s": marks["built"] - marks["start"],
            "train_prepare_s": marks["train_begin"] - marks["built"],
            "train_first_batch_s": marks["step_begin"] - marks["train_begin"],
        }
        mlflow.log_metrics(metrics)
        log.info(
            "set-up before the first step: %.1f s (building the trainer %.1f s, preparing %.1f s, the first batch "
            "%.1f s)",
            *metrics.values(),
        )


def _warn_if_waiting(wait: float, wall: float) -> None:
    """One log line when steps waited for their batch more than WAIT_WARNING_SHARE of the time."""
    if wall > 0 and wait / wall > WAIT_WARNING_SHARE:
        log.warning(
            "training steps waited %.0f%% of their time for the next batch (%.2f of %.2f s per step); raise "
            "trainer.dataloader_num_workers (auto: the cores this process may use, minus one) or use a machine "
            "with more cores per accelerator",
            100 * wait / wall,
            wait,
            wall,
        )


class CheckpointOnPreemption(TrainerCallback):
    """While training under SLURM, SIGTERM/SIGUSR2 are noted instead of ending the process; at the end of the
    step in flight the trainer saves a checkpoint and stops. ``signum`` and ``step`` say what happened."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.step = 0
        self._previous: dict[int, object] = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            log.warning("%s received: checkpointing after this step, then requeueing", signal.Signals(signum).name)
        self.signum = signum

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if preemption.on_slurm() and threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._note) for sig in preemption.SIGNALS}

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.signum is not None:
            control.should_save = True
            control.should_training_stop = True
            self.step = state.global_step

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.signum is not None and not self.step:  # after the last step: training is complete
            self.step = state.global_step

    def restore_handlers(self) -> None:
        """The handlers from before training; called once the job is past ``trainer.train`` (the signal
        then ends the run via :meth:`raise_if_preempted`)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def raise_if_preempted(self) -> None:
        if self.signum is not None:
            raise preemption.Preempted(self.step, self.signum)
