"""One run at a time per database: the lock itself, then real `auditor` processes competing for one database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from auditor import pipeline
from auditor.cli import cli
from auditor.errors import DatabaseError, DatabaseInUse
from auditor.runlock import LockHolder, WaitHook, lock_path, run_lock


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
# would) and sleeps; the test kills it with SIGKILL. The child prints its pid: it runs only after
# the at-fork hooks, so once the line is read the child has closed its copy of the lock file.
_HOLDER = """
import os, sys, time
from pathlib import Path
from auditor.runlock import run_lock

with run_lock(Path(sys.argv[1]), wait=False, command="auditor audit"):
    child = os.fork()
    if child == 0:
        print(os.getpid(), flush=True)
        time.sleep(60)
        os._exit(0)
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


# -- real auditor processes on one database -------------------------------------
PAGE = b"<html><head><title>OK</title></head><body>ok</body></html>"


def _auditor(command: str, corpus: Path, db: Path, out: Path, *extra: str) -> list[str]:
    """`auditor audit|lint` as a child process: loopback allowed, generous timeout, no retries."""
    network = ["--allow-private", "--timeout", "60", "--retries", "0"] if command == "audit" else []
    return [sys.executable, "-m", "auditor", command, str(corpus), "--db", str(db), "--out", str(out), *network, *extra]


@pytest.fixture
def gated_corpus(tmp_path: Path, loopback: Any) -> Iterator[tuple[Path, str, threading.Event]]:
    """A one-document corpus whose page answers only once the test opens the gate: (corpus, path, gate)."""
    gate = threading.Event()
    path = f"/gate/{tmp_path.name}"

    async def held_until_opened(request: Any) -> tuple[int, dict[str, str], bytes]:
        await asyncio.to_thread(gate.wait, 60)
        return 200, {}, PAGE

    url = loopback.add_route(path, held_until_opened)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(f"---\ntitle: OK\nwebUrl: {url}\n---\n")
    try:
        yield corpus, path, gate
    finally:
        gate.set()
        loopback.remove_route(path)


def _start_first_audit(tmp_path: Path, loopback: Any, corpus: Path, path: str) -> subprocess.Popen[bytes]:
    """An audit that holds the database, waiting at the gate in the middle of its crawl."""
    first = subprocess.Popen(
        _auditor("audit", corpus, tmp_path / "audit.sqlite", tmp_path / "first"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while loopback.hits(path) == 0:
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            raise AssertionError(f"the first audit never reached the crawl: {first.communicate()[1].decode()}")
        time.sleep(0.05)
    return first


def _runs(db: Path) -> list[tuple[int, str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select id, mode, status, started_at, finished_at from runs order by id").fetchall()


def _line(stream: IO[bytes], seconds: float = 30) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, "no line in time"
    return stream.readline().decode()


def test_a_second_audit_or_lint_exits_2_at_once_and_the_first_is_not_disturbed(
    tmp_path: Path, loopback: Any, gated_corpus: tuple[Path, str, threading.Event]
) -> None:
    corpus, path, gate = gated_corpus
    db = tmp_path / "audit.sqlite"
    first = _start_first_audit(tmp_path, loopback, corpus, path)
    try:
        for command in ("audit", "lint"):
            second = subprocess.run(_auditor(command, corpus, db, tmp_path / "second"), capture_output=True, timeout=60)
            assert second.returncode == 2, second.stderr.decode()
            assert second.stdout == b""
            [line] = second.stderr.decode().splitlines()
            assert re.fullmatch(
                rf"Error: {re.escape(str(db))} is in use by `auditor audit` \(pid {first.pid} on host "
                rf"{re.escape(socket.gethostname())}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); "
                r"wait for it to finish or use --wait",
                line,
            ), line
            assert first.poll() is None  # refused while the first still runs: at once, not after it
        # Reading never takes the lock.
        runs = subprocess.run(
            [sys.executable, "-m", "auditor", "runs", "--db", str(db)], capture_output=True, timeout=60
        )
        assert runs.returncode == 0 and b"running" in runs.stdout, runs.stderr.decode()
        report = [sys.executable, "-m", "auditor", "report", "--db", str(db), "--out", str(tmp_path / "peek")]
        assert subprocess.run(report, capture_output=True, timeout=60).returncode == 0
        assert first.poll() is None
    finally:
        gate.set()
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert [(run[0], run[1], run[2]) for run in _runs(db)] == [(1, "audit", "finished")]  # the refused left no run
    assert not (tmp_path / "second").exists()  # ... and no reports
    assert json.loads((tmp_path / "first" / "report.json").read_text())["summary"]["urls"] == 1


def test_wait_starts_the_second_run_once_the_first_ends(
    tmp_path: Path, loopback: Any, gated_corpus: tuple[Path, str, threading.Event]
) -> None:
    corpus, path, gate = gated_corpus
    db = tmp_path / "audit.sqlite"
    first = _start_first_audit(tmp_path, loopback, corpus, path)
    second = subprocess.Popen(
        _auditor("lint", corpus, db, tmp_path / "second", "--wait"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert second.stderr is not None
        line = _line(second.stderr)
        assert line.startswith(f"auditor: {db} is in use by `auditor audit` (pid {first.pid} on host ")
        assert line.endswith("; waiting for it to finish\n")
        assert second.poll() is None and first.poll() is None
    finally:
        gate.set()
        first_err = first.communicate(timeout=60)[1].decode()
        second_err = second.communicate(timeout=60)[1].decode()
    assert (first.returncode, second.returncode) == (0, 0), first_err + second_err
    (_, _, status_1, _, finished_1), (_, mode_2, status_2, started_2, _) = _runs(db)
    assert (status_1, mode_2, status_2) == ("finished", "lint", "finished")
    assert started_2 >= finished_1


def test_an_audit_killed_mid_run_does_not_block_the_next(
    tmp_path: Path, loopback: Any, gated_corpus: tuple[Path, str, threading.Event]
) -> None:
    corpus, path, gate = gated_corpus
    db = tmp_path / "audit.sqlite"
    first = _start_first_audit(tmp_path, loopback, corpus, path)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    gate.set()
    second = subprocess.run(_auditor("audit", corpus, db, tmp_path / "second"), capture_output=True, timeout=60)
    assert second.returncode == 0, second.stderr.decode()
    assert [(run[0], run[2]) for run in _runs(db)] == [(1, "running"), (2, "finished")]  # the killed run says so


def test_ctrl_c_while_waiting_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    db, corpus = tmp_path / "audit.sqlite", tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: OK\nwebUrl: https://a.example/\n---\n")
    with run_lock(db, wait=False):
        waiting = subprocess.Popen(_auditor("lint", corpus, db, tmp_path / "reports", "--wait"), stderr=subprocess.PIPE)
        assert waiting.stderr is not None
        assert "waiting for it to finish" in _line(waiting.stderr)
        waiting.send_signal(signal.SIGINT)
        _, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, stderr.decode()
    assert stderr.decode() == "auditor: interrupted\n"
    assert not db.exists() and not (tmp_path / "reports").exists()


def test_quiet_waits_without_a_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: the CLI's wait hook is wrapped to let the holder go once the run waits."""
    db, corpus = tmp_path / "audit.sqlite", tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: OK\nwebUrl: https://a.example/\n---\n")
    held, release = threading.Event(), threading.Event()
    real_lint = pipeline.lint

    def lint(config: Any, *, wait: WaitHook | None = None) -> pipeline.Outcome:
        assert wait is not None

        def hooked(holder: LockHolder | None) -> None:
            wait(holder)
            release.set()

        return real_lint(config, wait=hooked)

    def holder() -> None:
        with run_lock(db, wait=False):
            held.set()
            release.wait(30)

    monkeypatch.setattr(pipeline, "lint", lint)
    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    result = CliRunner().invoke(
        cli, ["lint", str(corpus), "--db", str(db), "--out", str(tmp_path / "r"), "--wait", "-q"]
    )
    thread.join(30)
    assert release.is_set()  # it did wait
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
