"""One run at a time per database: an exclusive `flock` on a file next to it.

Every command that writes a database holds `run_lock(db)` for as long as it
does. A second one gets `DatabaseInUse` at once, naming the holder (its pid,
host, start time and command, which the holder writes into the lock file), or
with `wait=True` blocks until the lock is free.

Why `flock` on a sidecar file (`audit.sqlite.lock`), and no library:

- The kernel drops the lock when its holder dies, however it dies (SIGKILL,
  the OOM killer, a crash), so a lock left behind never blocks anyone and
  there is no pid to probe: pids are reused, and one on another host cannot
  be probed at all. Taking over a stale lock is simply getting it; the dead
  holder's record is still in the file (a clean release empties it), which
  is how a takeover is detected (`RunLock.taken_over`).
- Not the database file itself: SQLite puts its own `fcntl` locks there,
  and on NFS Linux emulates `flock` with `fcntl` locks, which would then
  collide with SQLite's.
- Not `fcntl`/`lockf` locks: they belong to a process, so two runs in one
  process (a library caller, the `serve` scheduler) would not exclude each
  other, and closing any descriptor of the file drops them silently.
- A forked child (the parsing pool forks on Linux) inherits the descriptor,
  and with it the lock: the pool's workers of a killed audit would keep it.
  Every child closes its copy right after the fork (`os.register_at_fork`),
  which leaves the parent's lock alone.
- `filelock` and `portalocker` take the same `flock` (and wait by polling),
  but record no holder and have no fork guard: the part this module adds.

The file is left in place after a run (empty): deleting a lock file races
with a process that has opened it and is waiting for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.errors import DatabaseError, DatabaseInUse

LOCK_SUFFIX = ".lock"
# A holder writes its record right after it gets the lock; a busy lock read as
# empty is read again for this long before the message settles for "unknown".
RECORD_GRACE_SECONDS = 1.0
RECORD_MAX_BYTES = 4096


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a database's lock, as its lock file says."""

    pid: int
    host: str
    started_at: str  # UTC, ISO 8601 with a Z
    command: str  # what runs: "auditor audit", "auditor lint"

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid} on host {self.host}, started {self.started_at})"

    @classmethod
    def parse(cls, data: bytes) -> LockHolder | None:
        """The record in a lock file; None when it is empty or not one of ours."""
        try:
            fields: Any = json.loads(data)
            return cls(
                pid=int(fields["pid"]),
                host=str(fields["host"]),
                started_at=str(fields["started_at"]),
                command=str(fields["command"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class RunLock:
    """A held lock: its file, and the holder before us if it died holding it."""

    path: Path
    holder: LockHolder
    taken_over: LockHolder | None = None


WaitHook = Callable[[LockHolder | None], None]


def lock_path(db: Path) -> Path:
    """The lock file of a database: next to the file itself, symlinks resolved, so every name of it shares one."""
    real = Path(db).resolve()
    return real.with_name(real.name + LOCK_SUFFIX)


@contextmanager
def run_lock(
    db: Path,
    *,
    wait: bool,
    command: str = "auditor",
    on_wait: WaitHook | None = None,
) -> Iterator[RunLock]:
    """Hold the database's run lock for the block, or raise DatabaseInUse naming its holder.

    With `wait`, block until the lock is free instead, calling `on_wait` once
    first with the holder (None if its record cannot be read). The wait is
    one blocking `flock`: it ends the moment the holder ends, and a signal
    whose handler raises (SIGINT's KeyboardInterrupt) ends it too.
    """
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DatabaseError(f"cannot use database {db}: cannot open its lock file {path}: {exc.strerror}") from exc
    _HELD.add(fd)
    try:
        if not _try_lock(fd):
            holder = _read_busy_holder(fd)
            if not wait:
                by = holder.describe() if holder else "another auditor run"
                raise DatabaseInUse(f"{db} is in use by {by}; wait for it to finish or use --wait")
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            taken_over = LockHolder.parse(os.pread(fd, RECORD_MAX_BYTES, 0))
            me = LockHolder(os.getpid(), socket.gethostname(), _utc_now(), command)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(me)).encode() + b"\n", 0)
            yield RunLock(path, me, taken_over)
        finally:
            # Emptied while still held: an empty file means "released cleanly".
            os.ftruncate(fd, 0)
    finally:
        _HELD.discard(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)  # for every copy of the descriptor, wherever one survived
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_busy_holder(fd: int) -> LockHolder | None:
    """The current holder's record; it may be a moment from being written, so an empty read is retried briefly."""
    deadline = time.monotonic() + RECORD_GRACE_SECONDS
    while True:
        holder = LockHolder.parse(os.pread(fd, RECORD_MAX_BYTES, 0))
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.05)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Lock files open in this process; a forked child closes its copies at once
# (the parent's lock stays: a flock goes with the last descriptor of the open file).
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)
