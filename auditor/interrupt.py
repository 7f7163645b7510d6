"""SIGINT and SIGTERM for a whole run: one mechanism from the first file parsed to the last report written.

The first signal only records itself, and wakes the event loop when the crawl
is running; nothing is raised from the handler, so no exception can land
inside a database write. Every phase asks `check()` at its own safe points
(between documents, between checks, between report files) and stops there
with `Interrupted`; the run is then marked `interrupted` and its reports are
written as usual.

A second signal while that stop is under way ends the process at once. The
database stays whole (SQLite commits are atomic, and a killed transaction is
rolled back on the next open); the run is left `running`, as after a kill.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """A phase stopped at a safe point because a stop was requested."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequests:
    """Records SIGINT/SIGTERM while installed; phases poll it, the crawl is woken by it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._wake: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return EXIT_FOR_SIGNAL.get(signal.Signals(self.signum), 130) if self.signum is not None else 0

    def check(self) -> None:
        """Raise Interrupted if a stop was requested: call it where stopping leaves nothing half done."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextmanager
    def installed(self) -> Iterator[StopRequests]:
        # Handlers can only be set from the main thread; elsewhere (a library
        # caller's worker thread) signals stay the caller's business.
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._on_signal) for signum in EXIT_FOR_SIGNAL}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def waking(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call `wake` as soon as a stop is requested while this block runs (at once if it already was)."""
        self._wake = wake
        try:
            if self.signum is not None:
                wake()
            yield
        finally:
            self._wake = None

    def request(self, signum: int) -> None:
        """Record a stop as if `signum` had arrived: for a caller that owns the signals (auditor serve)."""
        if self.signum is None:
            self.signum = signum
        if self._wake is not None:
            self._wake()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            # os.write, not print: the handler may have interrupted a write to stderr.
            os.write(2, f"auditor: {signal.Signals(signum).name} again: stopped at once\n".encode())
            os._exit(EXIT_FOR_SIGNAL.get(signal.Signals(signum), 130))
        self.request(signum)
