"""SIGTERM (a CI job cancelled, `kill`, systemd stopping a unit) and SIGHUP (the terminal closed) end a run
the way Ctrl-C does: as an exception, so every `finally` and `except KeyboardInterrupt` cleans up (scratch
databases, temporary accounts, half-written outputs) before the process exits with 128 + the signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """A termination signal, raised where the main thread was; a KeyboardInterrupt to all cleanup code."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def exit_status(exc: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def _raise(signum: int, frame: FrameType | None) -> None:
    # Further signals while the cleanup runs are ignored: a second `kill` must not cut the cleanup short
    # (kill -9 remains for a cleanup that hangs).
    for handled in HANDLED:
        signal.signal(handled, signal.SIG_IGN)
    raise Terminated(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated in the main thread (elsewhere: nothing changes,
    signals are only delivered to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal already ignored (nohup ignores SIGHUP) stays ignored.
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
