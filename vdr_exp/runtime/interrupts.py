"""Ctrl-C and SIGTERM must end a run KILLED, even when Python swallows the interrupt where it lands.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a finalizer or weakref
callback (garbage collection of SQLAlchemy objects, say) it is printed as "Exception ignored" and lost, and
the run would carry on to FINISHED (seen in CI). So while a run is tracked, the handlers also remember the
signal; the training loop checks at every step and the run checks again before it ends.

SIGTERM is what ``timeout``, ``docker stop``, Kubernetes and SLURM send first (on preemption or at the time
limit). By default it ends Python at once, leaving the MLflow run RUNNING forever; while a run is tracked it is
handled like Ctrl-C instead: :class:`Terminated` (a KeyboardInterrupt) ends the run KILLED, and a training run
can be resumed from its last checkpoint (``resume=<run id>``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_received: int | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM received while a run was tracked."""


# SLURM's warning before the time limit (submitit's signal_delay_s): its default action ends Python at once.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


def _interrupt(signum: int, detail: str = "") -> KeyboardInterrupt:
    if signum == signal.SIGTERM:
        return Terminated(f"SIGTERM received (timeout, docker stop, Kubernetes or SLURM){detail}")
    if signum == signal.SIGUSR2:
        return Terminated(f"SIGUSR2 received (SLURM's warning before the time limit){detail}")
    return KeyboardInterrupt(f"Ctrl-C (SIGINT) received{detail}")


def raise_if_interrupted() -> None:
    if _received is not None:
        raise _interrupt(_received, "; the interrupt was lost where it landed and is raised here")


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler that interrupts like Ctrl-C."""
    raise _interrupt(signum)


@contextmanager
def watched() -> Iterator[None]:
    """Remember SIGINT, SIGTERM and SIGUSR2 for the duration; SIGINT then goes to the handler that was there
    before (which raises), SIGTERM and SIGUSR2 raise :class:`Terminated` unless they were set to be ignored.

    Only in the main thread, and only where the signal is not ignored (a background job ignores SIGINT).
    """
    global _received
    _received = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    for sig in STOP_SIGNALS:
        if previous[sig] == signal.SIG_DFL:
            previous[sig] = on_sigterm

    def remembering(handler: Callable) -> Callable:
        def remember(signum: int, frame: FrameType | None) -> None:
            global _received
            _received = signum
            handler(signum, frame)

        return remember

    for sig, handler in previous.items():
        if callable(handler):
            signal.signal(sig, remembering(handler))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if callable(handler):
                signal.signal(sig, handler if handler is not on_sigterm else signal.SIG_DFL)
