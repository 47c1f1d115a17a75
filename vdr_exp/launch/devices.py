"""One GPU per job on one multi-GPU machine, without SLURM (``gpu_per_job=true`` with the joblib launcher).

Each worker process claims one of the visible GPUs the first time it runs a job (a lock file per GPU in the
sweep folder, held for the process's life) and restricts itself to it with ``CUDA_VISIBLE_DEVICES`` before
anything initialises CUDA. Workers are reused across jobs, so a worker keeps its GPU: with
``hydra.launcher.n_jobs`` equal to the number of GPUs, no two jobs ever share one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)

_CLAIMED: dict[str, object] = {}  # this process's device and the lock that holds it


def visible_devices() -> list[str]:
    """The GPUs this machine lets jobs use: ``CUDA_VISIBLE_DEVICES`` when set, else every GPU nvidia-smi lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def claim(devices: list[str], lock_dir: Path) -> str:
    """This process's GPU among ``devices``: the one it claimed before, else the first no other process holds."""
    if "device" in _CLAIMED:
        return str(_CLAIMED["device"])
    if not devices:
        raise ConfigError("gpu_per_job=true but no GPU is visible (CUDA_VISIBLE_DEVICES / nvidia-smi); drop it.")
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot, device in enumerate(devices):
        lock = FileLock(lock_dir / f"gpu-{slot}.lock", is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        _CLAIMED.update(device=device, lock=lock)
        return device
    raise ConfigError(
        f"gpu_per_job=true: all {len(devices)} GPUs ({','.join(devices)}) are held by other jobs of this sweep; "
        f"set hydra.launcher.n_jobs to at most {len(devices)}."
    )


class OneDevicePerJob(Callback):
    """Hydra job callback: with ``gpu_per_job=true``, pin the job's process to its own GPU before it runs."""

    def on_job_start(self, config: DictConfig, **kwargs: object) -> None:
        if not config.get("gpu_per_job"):
            return
        hydra = HydraConfig.get()
        folder = Path(hydra.sweep.dir if hydra.mode.name == "MULTIRUN" else hydra.run.dir)
        device = claim(_visible_once(), folder / ".gpu_locks")
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        log.info("gpu_per_job: job %s runs on GPU %s (process %d)", hydra.job.get("num", 0), device, os.getpid())


def _visible_once() -> list[str]:
    """The devices as the process found them first (its own CUDA_VISIBLE_DEVICES is narrowed after a claim)."""
    if "visible" not in _CLAIMED:
        _CLAIMED["visible"] = visible_devices()
    return list(_CLAIMED["visible"])
