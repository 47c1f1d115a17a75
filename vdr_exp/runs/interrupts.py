"""Ctrl-C must end a run KILLED, even when Python swallows the KeyboardInterrupt where it lands.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a finalizer or weakref
callback (garbage collection of SQLAlchemy objects, say) it is printed as "Exception ignored" and lost, and
the run would carry on to FINISHED (seen in CI). So while a run is tracked, the SIGINT handler also
remembers the signal; the training loop checks at every step and the run checks again before it ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_received = False


def raise_if_interrupted() -> None:
    if _received:
        raise KeyboardInterrupt("Ctrl-C (SIGINT) received; the interrupt was lost where it landed and is raised here")


@contextmanager
def watched() -> Iterator[None]:
    """Remember SIGINT for the duration, then hand it to the handler that was there before (which raises).

    Only a callable handler is wrapped: where SIGINT is ignored (a background job) it stays ignored.
    """
    global _received
    _received = False
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def remember(signum: int, frame: FrameType | None):
        global _received
        _received = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
