"""Crawling on several cores: one process per part of the hosts, each with its own event loop.

One event loop spends most of a crawl's CPU in Python HTTP code, so past one
core it is the limit. With `processes` above 1, the targets are split by their
politeness bucket (a host, or all AMP cache hosts as one) by a stable hash,
the partition of `--shard` (shards.py) at the scale of one machine, so every
request to a bucket's first hop is made by one process and its limits
(per_host, rate, the 429/503 slow-down) hold as they do in one process.
The global `concurrency` holds across them: a target goes to its process
only while fewer than that many are out, and each process may run them all,
so a process whose hosts have more URLs (the AMP cache is one bucket) takes
more of the share instead of waiting on a fixed half. The
processes only fetch: planning, storing and judging stay with the caller,
which gets each check back as it completes. A redirect to another host is
followed by the process where its chain began, as it would be in one process.

The processes are forked when the caller has one thread (an audit from the
command line: they start in milliseconds and share its imported code, where a
spawned interpreter imports everything again, about 0.45 s of CPU each) and
spawned otherwise (auditor serve runs audits in a thread: a fork could copy a
lock another thread holds). A forked process never touches the SQLite
connection it inherits; it only fetches. Either way they ignore SIGINT and
take SIGTERM's default: the caller's stop handling ends them.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import math
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from urllib.parse import urlsplit

from auditor import forked
from auditor.config import CrawlConfig
from auditor.crawl.loop import run_loop
from auditor.crawl.politeness import host_bucket
from auditor.crawl.pool import Crawler, Targets, each_target
from auditor.model import Check, Target

STOP_SECONDS = 5.0
# `processes: auto`: at most this many, and only for a crawl of at least this many URLs.
AUTO_PROCESSES = 4
AUTO_PROCESSES_FROM = 2_000
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX, cgroup_v1_cpu: Path = CGROUP_V1_CPU) -> int:
    """The cores this process may run on: its CPU affinity, less a container's CPU quota.

    A container limited to one CPU on a 16-core node sees 16 in os.cpu_count(); 16 processes there would
    share one core's time.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cpu_quota(cpu_max, cgroup_v1_cpu)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cpu_quota(cpu_max: Path, cgroup_v1_cpu: Path) -> float | None:
    """The CPUs a container's quota allows: cgroup v2's cpu.max, else v1's CFS quota; None for no quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to read: an older host's cgroup v1, perhaps
    try:
        quota_us = int((cgroup_v1_cpu / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup_v1_cpu / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None  # -1: no quota


def processes_for(config: CrawlConfig, urls: int) -> int:
    """How many processes a crawl of `urls` URLs runs in: the configured count, or `auto`'s."""
    if config.processes is not None:
        return config.processes
    return min(usable_cores(), AUTO_PROCESSES) if urls >= AUTO_PROCESSES_FROM else 1


def partition_of(url: str, count: int) -> int:
    """Which of `count` processes checks a URL (0-based): its bucket's stable hash, as for shards.

    Salted apart from the shards' hash: within shard K of N (an even N, say) every bucket has the same
    shard hash modulo 2, so the same hash would give one process all of a shard's hosts.
    """
    bucket = host_bucket(urlsplit(url).hostname or "")
    digest = hashlib.blake2b(bucket.encode(), digest_size=8, salt=b"processes").digest()
    return int.from_bytes(digest, "big") % count


@dataclass
class _Process:
    process: BaseProcess
    connection: Connection
    finished: bool = False


class ProcessCrawler:
    """`Crawler`'s `crawl`, spread over `processes` processes; use as an async context manager."""

    # A crawl in processes has no transport or resolver to inject: tests of those use `Crawler`.

    def __init__(self, config: CrawlConfig, processes: int) -> None:
        self.config = config
        self.count = processes
        self._processes: list[_Process] = []

    def start(self) -> None:
        """Starts the processes, if not yet: early, so that their start overlaps the caller's parsing."""
        if self._processes:
            return
        context = multiprocessing.get_context("fork") if forked.can_fork() else multiprocessing.get_context("spawn")
        for _ in range(self.count):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, self.config), daemon=True)
            process.start()
            theirs.close()
            self._processes.append(_Process(process, ours))

    def close(self) -> None:
        """Ends processes started and never used (the run stopped before its crawl)."""
        processes, self._processes = self._processes, []
        for worker in processes:
            worker.process.terminate()
        _join(processes)

    async def __aenter__(self) -> ProcessCrawler:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """A crawl that ended stops its processes when they are idle; a stopped or failed one at once."""
        loop = asyncio.get_running_loop()
        for worker in self._processes:
            loop.remove_reader(worker.connection.fileno())
            if exc_type is not None:
                worker.process.terminate()
                continue
            try:
                worker.connection.send(None)
            except OSError:
                pass  # already gone
        processes, self._processes = self._processes, []
        await asyncio.shield(asyncio.to_thread(_join, processes))

    async def crawl(self, targets: Targets) -> AsyncIterator[Check]:
        """Every target's check, as the processes complete them; the same contract as `Crawler.crawl`."""
        loop = asyncio.get_running_loop()
        results: asyncio.Queue[Check | _Process] = asyncio.Queue()
        feed_failures: list[Exception] = []
        out = 0  # targets sent and not answered, in all processes: at most `concurrency`
        room = asyncio.Event()

        def receive(worker: _Process) -> None:
            nonlocal out
            try:
                answer = worker.connection.recv()
            except (EOFError, OSError):
                answer = None
            if isinstance(answer, list):  # the checks it completed in one turn of its loop
                out -= len(answer)
                room.set()
                for check in answer:
                    results.put_nowait(check)
            else:  # its end of the feed, or it died
                loop.remove_reader(worker.connection.fileno())
                worker.finished = answer == _FEED_DONE
                results.put_nowait(worker)

        async def feed() -> None:
            nonlocal out
            # Targets go out in a list per process: all those there is room for at once, one message each.
            batches: list[list[Target]] = [[] for _ in self._processes]

            def send_batches() -> None:
                for worker, batch in zip(self._processes, batches, strict=True):
                    if batch:
                        worker.connection.send(batch.copy())
                        batch.clear()

            try:
                async for target in each_target(targets):
                    if out >= self.config.concurrency:
                        send_batches()
                        while out >= self.config.concurrency:
                            room.clear()
                            await room.wait()
                    out += 1
                    batches[partition_of(target.url, self.count)].append(target)
                send_batches()
            except Exception as exc:  # raised to the caller once the processes have drained
                feed_failures.append(exc)
            for worker in self._processes:
                worker.connection.send(_FEED_DONE)

        for worker in self._processes:
            loop.add_reader(worker.connection.fileno(), receive, worker)
        feeding = asyncio.create_task(feed())
        try:
            ended = 0
            while ended < len(self._processes):
                item = await results.get()
                if isinstance(item, Check):
                    yield item
                    continue
                ended += 1
                if not item.finished:
                    raise RuntimeError(f"a crawl process ended early (exit code {item.process.exitcode})")
            if feed_failures:
                raise feed_failures[0]
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)


def _join(processes: list[_Process]) -> None:
    for worker in processes:
        worker.process.join(STOP_SECONDS)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(STOP_SECONDS)
        worker.connection.close()


# Sent both ways: to a process, "no more targets"; from it, "every check of them sent".
_FEED_DONE = "feed-done"


def _serve(connection: Connection, config: CrawlConfig) -> None:
    """A crawl process: targets in, checks out, until the parent says stop (None) or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the crawl stops
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a forked parent's handler: terminate() ends it
    # What it inherited or imported lives as long as it does: the collector need not walk it (about 5 % of
    # a crawl's CPU), nor touch a forked parent's pages, which stay shared instead of copied.
    gc.freeze()
    run_loop(_crawl_what_comes(connection, config))


async def _crawl_what_comes(connection: Connection, config: CrawlConfig) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Target | str | None] = asyncio.Queue()

    def receive() -> None:
        # Called by the loop when the pipe is readable: no thread of its own to wake the loop for every
        # message and contend for the GIL with it (about a sixth of a crawl process's CPU went there).
        try:
            message = connection.recv()
        except (EOFError, OSError):
            message = None
        if message is None:
            loop.remove_reader(connection.fileno())
        for item in message if isinstance(message, list) else [message]:
            inbox.put_nowait(item)

    loop.add_reader(connection.fileno(), receive)
    done: list[Check] = []

    def send_done() -> None:
        if done:
            connection.send(done.copy())
            done.clear()

    async with Crawler(config) as crawler:
        while True:  # one feed per `crawl` of the parent, until it says stop

            async def targets() -> AsyncIterator[Target]:
                while isinstance(item := await inbox.get(), Target):
                    yield item
                if item is None:
                    raise _Stop

            try:
                async for check in crawler.crawl(targets()):
                    if not done:  # sent once this turn of the loop is over, with any others it completes
                        loop.call_soon(send_done)
                    done.append(check)
            except _Stop:
                return
            await asyncio.sleep(0)  # the last checks out first
            connection.send(_FEED_DONE)


class _Stop(Exception):
    """The parent said stop, or went away."""


def open_crawler(config: CrawlConfig, targets: Iterable[Target]) -> tuple[Crawler | ProcessCrawler, Iterator[Target]]:
    """The crawler for these targets, in this process or spread over `processes_for` processes, and the
    targets to give it (under `auto`, the first AUTO_PROCESSES_FROM are taken to count them).

    `auto` goes by what the crawl fetches, not by what the corpus cites: a scheduled run that reuses
    nearly every check (--max-age) is a small crawl."""
    ahead: list[Target] = []
    if config.processes is None:
        ahead = list(islice(targets, AUTO_PROCESSES_FROM))
    count = processes_for(config, len(ahead))
    return (Crawler(config) if count <= 1 else ProcessCrawler(config, count)), chain(ahead, targets)
