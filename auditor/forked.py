"""Work split over forked children of this process: the judging and the reports of a large run.

A child is forked (it shares the parent's memory; nothing is sent to it), ignores
SIGINT and SIGTERM (the parent decides what a stop means, and rewrites its run
as interrupted) and dies with the parent (Linux PR_SET_PDEATHSIG), so a second
Ctrl-C ends everything at once. What its work yields goes to a temporary file
(a pipe would stop the child once full, while the parent does its own part),
read back once the child says, through a pipe, that it is done, or sends what
it raised. Forking is only safe from a process of one thread (a thread of
another could hold a lock the child then waits on forever), on Linux, with a
core to spare: `can_fork`. A child never touches its parent's SQLite
connection: it opens its own.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
_PR_SET_PDEATHSIG = 1


class _Done:
    """The child's last word: all its work's items are sent."""


def can_fork() -> bool:
    return (os.cpu_count() or 1) >= 2 and single_threaded() and _can_die_with_parent()


def single_threaded() -> bool:
    return threading.active_count() == 1


class ForkedChild(Generic[Item]):
    """`work()` run in a forked child; iterate `results()` for what it yields, in order.

    `results` raises what the child raised: an OSError as it was (the user's to fix, such as an
    unwritable directory), anything else as a RuntimeError naming `name`.
    """

    def __init__(self, name: str, work: Callable[[], Iterable[Item]]) -> None:
        self.name = name
        self._heard_last = False
        parent = os.getpid()
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        # Opened before the fork: the child writes, the parent reads; closed by close().
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115

        def run() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _die_with_parent()
            if os.getppid() != parent:
                return  # the parent is already gone
            try:
                for item in work():
                    pickle.dump(item, self._spool, protocol=pickle.HIGHEST_PROTOCOL)  # each on its own
                self._spool.flush()
            except BaseException as exc:  # sent to the parent, which raises it
                sender.send(exc if isinstance(exc, OSError) else RuntimeError(f"{name}: {exc!r}"))
            else:
                sender.send(_Done())

        self.process = context.Process(target=run, name=f"auditor {name}")
        self.process.start()
        sender.close()

    def results(self) -> Iterator[Item]:
        """What the child's work yielded, once it is done (raised here if it failed)."""
        try:
            try:
                message: Any = self._receiver.recv()
            except EOFError:
                raise RuntimeError(f"{self.name}: the process ended without a word") from None
            finally:
                self._heard_last = True
            if isinstance(message, BaseException):
                raise message
            self._spool.seek(0)
            while True:
                try:
                    yield pickle.load(self._spool)
                except EOFError:
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Waits for the child to end; ends it at once if it is still at work (its results are no longer wanted)."""
        if not self._heard_last:
            self.process.terminate()
        self.process.join()
        self._receiver.close()
        self._spool.close()


@functools.cache  # asked before every fork and in every child: loaded once
def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _can_die_with_parent() -> bool:
    return sys.platform == "linux" and hasattr(_libc(), "prctl")


def _die_with_parent() -> None:
    """SIGKILL this process when its parent ends."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
