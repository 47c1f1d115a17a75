"""DataLoader workers that stop sending batches end the run with one line naming the timeout setting.

A worker can hang without dying: stuck writing a batch into a full /dev/shm, or reading from a file system that
stopped answering. torch's DataLoader then waits forever unless it has a ``timeout``; with one it raises
``RuntimeError("DataLoader timed out after N seconds")``, which the failure contract would call a bug. Both the
evaluation loader (``eval.pipeline.timeout_s``) and the trainer's (``trainer.dataloader_timeout_s``) are timed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch.utils.data._utils import signal_handling

from vdr_exp.errors import ConfigError


class WorkerHung(ConfigError):
    """A DataLoader worker sent no batch within the timeout; the message names the key and the fixes."""


@contextlib.contextmanager
def hung_workers_named(key: str, seconds: float, workers_key: str) -> Iterator[None]:
    """torch's "DataLoader timed out after N seconds" as one line naming the setting. Without a timeout, a
    worker that sends nothing (stuck writing a batch into a full /dev/shm, or on a hung file system) leaves
    the main process waiting forever."""
    try:
        yield
    except RuntimeError as error:
        if not str(error).startswith("DataLoader timed out after"):
            raise
        raise WorkerHung(
            f"a DataLoader worker sent no batch for {seconds:g} s ({key}={seconds:g}) and looks hung: check the "
            f"free space in /dev/shm (df -h /dev/shm; in a container raise --shm-size), use fewer workers "
            f"({workers_key}), or raise {key} if one batch of these pages really takes that long."
        ) from None


def kill_workers(items: object) -> None:
    """The worker processes of a loader's iterator, killed. A hung page worker ignores SIGTERM
    (:func:`~vdr_exp.modeling.page_encoding.shield_worker`), so the iterator's shutdown would wait 10 s for it
    and leave it running, and the interpreter's exit would wait for it forever. torch is first told to stop
    watching them: it would otherwise report the kill as a crash, from its SIGCHLD handler, at any later line."""
    if getattr(items, "_worker_pids_set", False):
        signal_handling._remove_worker_pids(id(items))
        items._worker_pids_set = False
    for worker in getattr(items, "_workers", ()):
        if worker.is_alive():
            worker.kill()
            worker.join()


def time_train_loader(trainer: object, seconds: float) -> None:
    """The trainer's training DataLoader with a timeout: transformers 5 and Sentence Transformers 6 have no
    argument for it (their loaders wait forever), so it is set on the loader the trainer builds, before its
    workers start. torch refuses a timeout without workers, so a serial loader keeps none."""
    build = trainer.get_train_dataloader

    def get_train_dataloader():
        loader = build()
        if loader.num_workers and seconds:
            loader.timeout = seconds
        return loader

    trainer.get_train_dataloader = get_train_dataloader
