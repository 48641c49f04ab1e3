"""Stop signals (SIGINT, SIGTERM, SIGHUP) as one clean interruption.

systemd, Docker, a logout and most launchers stop a program with SIGTERM (or SIGHUP), not
Ctrl-C, and Python's default for those is to die at once, leaving unreadable videos. Here
the first stop signal raises `StopRequested` (a KeyboardInterrupt, so code that already
finishes its files on Ctrl-C does the same for every signal) in the main thread, and the
run records which signal it was and exits 128 + its number; a second signal exits at once.

The handlers are installed explicitly even where the inherited disposition is "ignore"
(a process started in the background of a non-interactive shell ignores SIGINT).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def exit_status(signum: int) -> int:
    """The shell's convention for a run ended by a signal: 128 + its number (SIGTERM: 143)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


@dataclass
class StopState:
    """What the handlers saw: the first signal's number, or None."""

    signum: int | None = None
    count: int = 0
    event: threading.Event = field(default_factory=threading.Event)

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals(on_stop: Callable[[int], None] | None = None, raise_in_main: bool = True) -> Iterator[StopState]:
    """Within the block, the first stop signal sets `state.signum` and `state.event`, calls
    `on_stop(signum)` and (raise_in_main) raises StopRequested in the main thread; a second
    one exits the process at once with 128 + its number. Outside the main thread (where
    Python cannot install handlers) the block runs with the handlers it already has."""
    state = StopState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, _frame: object) -> None:
        state.count += 1
        if state.count > 1:
            # The user insists: files are left as they are (the recorder's completed segments
            # survive even this).
            os.write(2, f"holocap: second {signal_name(signum)}: exiting now\n".encode())
            os._exit(exit_status(signum))
        state.signum = signum
        state.event.set()
        log.warning("%s received: stopping and finishing the files (send it again to exit at once)",
                    signal_name(signum))
        if on_stop is not None:
            on_stop(signum)
        if raise_in_main:
            raise StopRequested(signum)

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
