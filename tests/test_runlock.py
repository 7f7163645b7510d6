"""One run at a time per database: the lock itself, then real `auditor` processes competing for one database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from auditor.errors import DatabaseError, DatabaseInUse
from auditor.runlock import LockHolder, lock_path, run_lock


# -- the lock -----------------------------------------------------------------
def test_a_second_run_is_refused_at_once_naming_the_first(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with run_lock(db, wait=False, command="auditor audit") as held:
        with pytest.raises(DatabaseInUse) as refused, run_lock(db, wait=False):
            pytest.fail("two holders at once")
    message = str(refused.value)
    assert message.startswith(f"{db} is in use by `auditor audit` (pid {os.getpid()} on host {socket.gethostname()}, ")
    assert f"started {held.holder.started_at})" in message
    assert message.endswith("; wait for it to finish or use --wait")
    assert isinstance(refused.value, DatabaseError)  # exit 2 like every other database problem
    assert not db.exists()  # a lock never creates the database


def test_the_lock_is_released_and_its_file_emptied_after_the_block_even_on_error(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with pytest.raises(RuntimeError), run_lock(db, wait=False) as held:
        assert LockHolder.parse(held.path.read_bytes()) == held.holder
        raise RuntimeError("the run failed")
    assert held.path == lock_path(db) == tmp_path / "audit.sqlite.lock"
    assert held.path.read_bytes() == b""
    with run_lock(db, wait=False) as again:
        assert again.taken_over is None  # released cleanly: nothing taken over


def test_every_name_of_a_database_shares_one_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "audit.sqlite").touch()
    (tmp_path / "link.sqlite").symlink_to(tmp_path / "real" / "audit.sqlite")
    monkeypatch.chdir(tmp_path / "real")
    with run_lock(tmp_path / "link.sqlite", wait=False):
        for other in (Path("audit.sqlite"), tmp_path / "real" / ".." / "real" / "audit.sqlite"):
            with pytest.raises(DatabaseInUse), run_lock(other, wait=False):
                pass


def test_an_unreadable_record_still_refuses(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with run_lock(db, wait=False) as held:
        held.path.write_bytes(b"not a record")
        with pytest.raises(DatabaseInUse, match="is in use by another auditor run;"), run_lock(db, wait=False):
            pass


def test_a_lock_file_that_cannot_be_created_is_a_database_error(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "audit.sqlite"
    with (
        pytest.raises(DatabaseError, match="cannot use database .*: cannot open its lock file"),
        run_lock(db, wait=False),
    ):
        pass


def test_wait_blocks_until_the_holder_is_done(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    told: list[LockHolder | None] = []
    waiting, acquired = threading.Event(), threading.Event()

    def second() -> None:
        def on_wait(holder: LockHolder | None) -> None:
            told.append(holder)
            waiting.set()

        with run_lock(db, wait=True, on_wait=on_wait):
            acquired.set()

    with run_lock(db, wait=False, command="auditor lint") as first:
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(10)
        assert not acquired.is_set()
    thread.join(10)
    assert acquired.is_set()
    assert told == [first.holder]


# A real process takes the lock, forks a child that outlives it (as the parsing pool's workers
# would), prints the child's pid and sleeps; the test kills it with SIGKILL.
_HOLDER = """
import os, sys, time
from pathlib import Path
from auditor.runlock import run_lock

with run_lock(Path(sys.argv[1]), wait=False, command="auditor audit"):
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
"""


def test_a_lock_whose_holder_was_killed_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(DatabaseInUse, match=f"pid {holder.pid} "), run_lock(db, wait=False):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        os.kill(child, 0)  # the forked child lives on, and must not hold the lock for its dead parent
        with run_lock(db, wait=False) as held:
            assert held.taken_over is not None and held.taken_over.pid == holder.pid
            assert held.taken_over.command == "auditor audit"
        assert lock_path(db).read_bytes() == b""
    finally:
        holder.kill()
        os.kill(child, signal.SIGKILL)
        holder.wait(10)
