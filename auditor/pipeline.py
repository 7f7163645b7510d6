"""The pipeline, top-down: corpus -> links -> crawl -> store -> rules -> (suggest) -> report.

`audit` runs every stage; `lint` stops before the network. Both return an
Outcome whose exit code the CLI passes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import hashlib
import json
import os
import signal
import sys
import tempfile
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor import __version__, shards
from auditor.config import Config
from auditor.corpus import Document, display_path, iter_corpus_files, parse_front_matter, read_front_matter
from auditor.crawl import Crawler
from auditor.crawl.loop import run_loop
from auditor.crawl.processes import ProcessCrawler, open_crawler
from auditor.errors import ConfigError, DatabaseError
from auditor.filters import PathFilter, UrlRules
from auditor.forked import ForkedChild, can_fork
from auditor.interrupt import Interrupted, StopRequests
from auditor.links import extract_links
from auditor.model import Check, Code, Finding, Kind, Mode, Reason, RunStatus, Severity, Target
from auditor.report import Report, build_report, write_reports
from auditor.rules import (
    document_findings,
    flaky_findings,
    link_findings,
    page_findings,
    soft_404_findings,
    without_soft_404_pages,
)
from auditor.runlock import WaitHook, run_lock
from auditor.soft404 import HostEvidence, landing_pages, origin_of, probe_fresh, probe_url
from auditor.store import (
    CONTENTS,
    CRAWL_COUNTS,
    FINDINGS,
    LINKS,
    CheckWriter,
    JudgingKey,
    ParsedFile,
    PlannedCheck,
    Row,
    Store,
    content_hash,
    now_iso,
)
from auditor.suggest import suggest

CHECK_BATCH = 500
REUSE_BATCH = 500  # URLs whose last results are looked up at once
CHECK_FLUSH_SECONDS = 2.0

# Below one window of files the process pool costs more than it saves.
PARALLEL_WINDOW = 512
MAX_WORKERS = 8
# Documents from which judging is split over the cores: below, a fork and a second reader cost more than they save.
PARALLEL_JUDGING = 2_000
# Judging keys kept in the store per transaction.
KEEP_JUDGED_BATCH = 500

ProgressHook = Callable[[Check, int, int], None]
# Runs after the corpus's URLs, with the same crawler (its client and host gates): the host probes.
AfterCrawl = Callable[[Crawler | ProcessCrawler], Awaitable[None]]
# A document's path, its encoded content and that content's hash, its links' encoded rows, its offline findings
# and its parse key (to keep it by); content None, no links and no key: an earlier parse of the file, reused.
Prepared = tuple[str, Row | None, str, list[Row], list[Finding], str | None]


@dataclass(frozen=True)
class Outcome:
    run_id: int
    exit_code: int
    report: Report
    interrupted: bool = False


def audit(
    config: Config,
    *,
    crawler: Crawler | None = None,
    progress: ProgressHook | None = None,
    wait: WaitHook | None = None,
    stops: StopRequests | None = None,
) -> Outcome:
    """`stops`: given by a caller that owns the signals (auditor serve runs audits in a worker thread)."""
    return _run(config, Mode.AUDIT, crawler=crawler, progress=progress, wait=wait, stops=stops)


def lint(config: Config, *, wait: WaitHook | None = None) -> Outcome:
    return _run(config, Mode.LINT, wait=wait)


def _run(
    config: Config,
    mode: Mode,
    *,
    crawler: Crawler | None = None,
    progress: ProgressHook | None = None,
    wait: WaitHook | None = None,
    stops: StopRequests | None = None,
) -> Outcome:
    """A whole run, while no other run writes the database.

    If one does: DatabaseInUse at once, or with `wait` (called once with the
    holder) the run waits for it.
    """
    # Check the paths and patterns before touching the database: a bad one is a usage error, not a run.
    UrlRules.of(config)
    files = corpus_files(config)
    first = next(files, None)
    # Held until the run is finished, reported and its store closed.
    with run_lock(config.db, wait=wait is not None, on_wait=wait, command=f"auditor {mode.value}"):
        return _run_locked(config, mode, chain([first] if first else [], files), crawler, progress, stops)


def _run_locked(
    config: Config,
    mode: Mode,
    files: Iterator[Path],
    crawler: Crawler | None,
    progress: ProgressHook | None,
    stops: StopRequests | None,
) -> Outcome:
    store = Store(config.db)
    corpus = [str(p) for p in config.paths]
    if config.resume:
        run_id = _resumable_run(store, mode, corpus, config)
        store.reopen_run(run_id)
    else:
        shard = config.shard if mode is Mode.AUDIT else None
        run_id = store.start_run(
            mode=mode,
            corpus=corpus,
            tool_version=__version__,
            config=_config_record(config),
            shard=shard.index if shard else None,
            shards=shard.count if shard else None,
        )
    findings = FindingWriter(store, run_id, config)
    status = RunStatus.FINISHED
    stops = stops if stops is not None else StopRequests()
    urls: int | None = None  # the run's unique URLs, once its corpus is in
    spread: ProcessCrawler | None = None
    given = config.crawl.processes  # None: `auto`, decided by the crawl's size once the corpus is parsed
    if mode is Mode.AUDIT and crawler is None and given is not None and given > 1:
        spread = ProcessCrawler(config.crawl, given)
    with stops.installed():
        try:
            if spread is not None:
                spread.start()  # before the parsing workers: their start overlaps the parsing
            stops.check()
            # Closed as soon as the ingest ends, so a stop also stops the parsing workers.
            with closing(_prepare_all(config, files, store.parsed_files)) as prepared:
                _ingest(store, run_id, prepared, findings, stops)
            if mode is Mode.AUDIT:
                # Counted once (a group-by over every link: seconds on a large corpus), for the crawl and the run.
                urls = _count_urls(store, run_id, config)
                _crawl(store, run_id, config, urls, crawler or spread, progress, stops)
                if config.shard is None:  # a shard has part of the checks: `auditor merge` judges the whole
                    _judge(store, run_id, config, findings, stops)
                if config.suggest and not config.offline and config.shard is None:
                    findings.flush()  # the archived copies are recorded on the stored findings
                    suggest(store, run_id, config, stops)
        except Interrupted:
            # What was parsed, checked and judged so far is kept; the run says it is partial.
            status = RunStatus.INTERRUPTED
        except BaseException:
            if not stops.requested:
                status = RunStatus.FAILED
                raise
            # The same signal reached a worker first (SIGTERM to the process group): still a stop.
            status = RunStatus.INTERRUPTED
        finally:
            if spread is not None:
                spread.close()  # already ended with the crawl, unless the run stopped before it
            findings.flush()
            if urls is None:  # a lint, or a run stopped before its crawl
                urls = _count_urls(store, run_id, config if mode is Mode.AUDIT else config.replace(shard=None))
            # Counted from the store: a resumed run's documents are all there, not only this session's.
            store.finish_run(
                run_id,
                status=RunStatus.INTERRUPTED if stops.requested else status,
                documents=store.count_documents(run_id),
                references=store.count_references(run_id),
                urls=urls,
            )
        try:
            report = build_report(store, run_id)
            write_reports(report, config.out, config.formats)
            if stops.requested and report.run.status != RunStatus.INTERRUPTED:
                # The stop came while the reports were written: say so in the store and in them.
                store.finish_run(run_id, status=RunStatus.INTERRUPTED)
                report = build_report(store, run_id)
                write_reports(report, config.out, config.formats)
        finally:
            store.close()
    if stops.requested:
        return Outcome(run_id, stops.exit_code, report, interrupted=True)
    if mode is Mode.AUDIT and config.shard is not None:
        # A shard has no verdict of its own (`auditor merge` judges, and exits by --fail-on): a finished
        # shard is a success, or every job of a scheduler's array would fail on one broken document.
        return Outcome(run_id, 0, report)
    failing = any(config.fails(f.severity) for f in report.findings)
    return Outcome(run_id, 1 if failing else 0, report)


def corpus_files(config: Config) -> Iterator[Path]:
    """The corpus files of the configured paths, less those `exclude_paths` leaves out."""
    skipped = PathFilter(config.exclude_paths)
    return (path for path in iter_corpus_files(config.paths) if not skipped.excludes(path))


@dataclass(frozen=True)
class _Source:
    """One corpus file as read: its front matter's bytes and parse key, or the document it is when unreadable."""

    name: str
    raw: bytes | Document
    key: str | None  # None: not kept (an unreadable file is read again next time)


def _read(path: Path, config: Config, salt: bytes) -> _Source:
    name = display_path(path)
    raw = read_front_matter(name, path, config.limits)
    if isinstance(raw, Document):
        return _Source(name, raw, None)
    key = hashlib.blake2b(name.encode() + b"\0" + raw, digest_size=16, salt=salt).hexdigest()
    return _Source(name, raw, key)


def _parse_salt(config: Config) -> bytes:
    """What a file's parse depends on besides its bytes: auditor's offline code and the settings it reads.

    The code by its modules' text, not the version alone, so an edited checkout never reuses stale findings.
    """
    stages = (parse_front_matter, extract_links, document_findings)
    code = b"".join(Path(sys.modules[stage.__module__].__file__ or "").read_bytes() for stage in stages)
    settings = repr((__version__, config.limits, config.schema)).encode()
    return hashlib.blake2b(code + settings, digest_size=16).digest()


def _prepare(config: Config, source: _Source) -> Prepared:
    """Everything one file yields without the network, as encoded store rows.

    Pure, so it runs in worker processes; rows come back already encoded,
    which pickles far cheaper than the parsed document.
    """
    raw = source.raw
    document = raw if isinstance(raw, Document) else parse_front_matter(source.name, raw, config.limits)
    refs, problems = extract_links(document)
    content = CONTENTS.encode(document)
    return (
        document.path,
        content,
        content_hash(content),
        [LINKS.encode(ref) for ref in refs],
        [*document_findings(document, config.schema), *problems],
        source.key,
    )


def _prepare_all(
    config: Config, files: Iterator[Path], parsed_before: Callable[[list[str]], dict[str, ParsedFile]]
) -> Generator[Prepared, None, None]:
    """Parse files in order, on every core once the corpus is big enough to pay for the pool.

    A file whose parse `parsed_before` has (same path, same bytes, same auditor and settings) is not
    parsed again: its stored content and offline findings stand. YAML parsing dominates `auditor
    lint`; files go to the workers in windows, the next window queued while this one is written, so
    memory stays bounded.
    """
    prepare = functools.partial(_prepare, config)
    salt = _parse_salt(config)
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    pool: ProcessPoolExecutor | None = None

    def start(window: list[Path]) -> tuple[list[_Source], dict[str, ParsedFile], Iterator[Prepared]]:
        nonlocal pool
        sources = [_read(path, config, salt) for path in window]
        kept = parsed_before([source.key for source in sources if source.key is not None])
        unparsed = [source for source in sources if source.key is None or source.key not in kept]
        if pool is None and workers >= 2 and len(window) == PARALLEL_WINDOW and len(unparsed) >= PARALLEL_WINDOW // 2:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_ignores_signals)
        return sources, kept, pool.map(prepare, unparsed, chunksize=32) if pool else map(prepare, unparsed)

    try:
        in_flight = deque([start(window)] if (window := list(islice(files, PARALLEL_WINDOW))) else [])
        while in_flight:
            if window := list(islice(files, PARALLEL_WINDOW)):
                in_flight.append(start(window))
            sources, kept, parsed = in_flight.popleft()
            for source in sources:
                reused = kept.get(source.key) if source.key is not None else None
                yield (source.name, None, reused.content, [], reused.findings, None) if reused else next(parsed)
    finally:
        if pool is not None:
            # Closed early (a stop): files not yet started are not parsed for nothing.
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_ignores_signals() -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What the worker inherited lives as long as it does: the collector need not walk it (about 5 % of
    # parsing), nor touch its pages, which stay shared with the parent instead of copied.
    gc.freeze()


def _ingest(
    store: Store, run_id: int, prepared: Iterator[Prepared], findings: FindingWriter, stops: StopRequests
) -> None:
    """Stream documents into the store with their links and offline findings."""
    documents = store.documents_writer(run_id)
    with store.first_ingest():
        try:
            for path, content, digest, link_rows, offline, key in prepared:
                documents.add(path, content, link_rows, digest, parsed=(key, offline) if key else None)
                findings.add_all(offline)
                stops.check()
        finally:
            documents.flush()


def _resumable_run(store: Store, mode: Mode, corpus: list[str], config: Config) -> int:
    """The last run, if it is unfinished and over this corpus: what --resume continues."""
    try:
        run = store.run(store.latest_run_id())
    except DatabaseError:
        raise ConfigError(f"--resume: {store.path} holds no run to resume") from None
    if run.status is RunStatus.FINISHED:
        raise ConfigError(f"--resume: the last run ({run.id}) finished; there is nothing to resume")
    if run.mode is not mode or list(run.corpus) != corpus:
        raise ConfigError(
            f"--resume: the last run ({run.id}) was {run.mode} of {', '.join(run.corpus)}, not {mode} of "
            f"{', '.join(corpus)}"
        )
    shard = config.shard if mode is Mode.AUDIT else None
    if (run.shard, run.shards) != ((shard.index, shard.count) if shard else (None, None)):
        was = f"shard {run.shard}/{run.shards}" if run.shard else "not a shard"
        raise ConfigError(f"--resume: the last run ({run.id}) was {was}; resume it with the same --shard")
    return run.id or 0


@dataclass
class _Tally:
    fetched: int = 0
    revalidated: int = 0
    reused: int = 0
    # The run's URLs the plan leaves unfetched (reused, excluded, or checked before a --resume): the
    # progress line's total goes down by them as the plan finds them. Not stored (no run column).
    not_fetched: int = 0


class _Remapped:
    """Targets a --remap rule sends elsewhere, while they are in flight.

    The crawler fetches the rewritten URL and answers under it; the answer is
    filed under the cited URL (every reference finds its check by that), with
    the address it came from in `fetched_url`.
    """

    def __init__(self) -> None:
        self.cited: dict[str, deque[str]] = defaultdict(deque)  # fetched URL -> cited URLs waiting for it

    def target(self, url: str, fetch: str | None, kind: Kind, previous: Check | None) -> Target:
        if fetch is None:
            return Target(url, kind, previous)
        self.cited[fetch].append(url)
        # The crawler revalidates a check of the URL it fetches: the previous answer, as that.
        if previous is not None:
            previous = dataclasses.replace(previous, url=fetch, fetched_url=None)
        return Target(fetch, kind, previous)

    def restore(self, check: Check) -> Check:
        waiting = self.cited.get(check.url)
        if not waiting:
            return check
        url = waiting.popleft()
        if not waiting:
            del self.cited[check.url]
        return dataclasses.replace(check, url=url, fetched_url=check.url)


def _plan(
    store: Store, run_id: int, config: Config, tally: _Tally, rules: UrlRules, remapped: _Remapped
) -> Iterator[Target]:
    """The URLs to fetch, in first-cited order, each with its previous check (for a conditional
    request): not those this run already has (--resume), nor those whose last result was OK
    within --max-age (the run points at that result instead), nor those --exclude leaves out
    (recorded as excluded, never fetched). A remapped URL is fetched at its new address."""
    already = store.checked_urls(run_id)
    batch: list[tuple[str, Kind]] = []
    ours = _shard_filter(config, rules)

    def decide() -> Iterator[Target]:
        latest = store.latest_outcomes(url for url, _ in batch)
        reused: list[int] = []
        excluded: list[Check] = []
        asked: list[tuple[str, str | None, Kind, int | None]] = []  # URL, where fetched, kind, previous check
        for url, kind in batch:
            previous = latest.get(url)
            why = rules.excluded_by(url)
            if why is not None:
                tally.not_fetched += 1
                if previous is not None and previous.excluded and previous.message == why:
                    reused.append(previous.id)  # excluded again, for the same reason: a pointer, not a copy
                else:
                    excluded.append(_excluded(url, kind, why))
                continue
            fetch = rules.fetch_url(url)
            if previous is not None and previous.fetched_url != fetch:
                previous = None  # an answer from another address is neither reused nor revalidated
            if previous is not None and _still_fresh(previous, kind, config):
                reused.append(previous.id)
                tally.reused += 1
                tally.not_fetched += 1
            else:
                asked.append((url, fetch, kind, previous.id if previous is not None else None))
        # Whole checks only for the URLs asked again: a conditional request may confirm one.
        whole = store.checks_by_id(check_id for *_, check_id in asked if check_id is not None)
        for url, fetch, kind, check_id in asked:
            yield remapped.target(url, fetch, kind, whole.get(check_id) if check_id is not None else None)
        store.add_checks(run_id, excluded)
        store.reuse_checks(run_id, reused)
        batch.clear()

    for url, kind in store.unique_urls(run_id):
        if not ours(url):
            continue
        if url in already:
            tally.not_fetched += 1
        else:
            batch.append((url, kind))
        if len(batch) >= REUSE_BATCH:
            yield from decide()
    yield from decide()


def _shard_filter(config: Config, rules: UrlRules) -> Callable[[str], bool]:
    """Whether this process checks a URL: all of them, or (--shard) those of its host partition.

    A remapped URL goes by the host it is fetched from: that host's politeness is what the partition keeps.
    """
    shard = config.shard
    if shard is None:
        return lambda url: True
    return lambda url: shards.owns(shard, rules.fetch_url(url) or url)


def _count_urls(store: Store, run_id: int, config: Config) -> int:
    """The run's unique URLs; a shard's, those of its partition."""
    if config.shard is None:
        return store.count_unique_urls(run_id)
    ours = _shard_filter(config, UrlRules.of(config))
    return sum(1 for url, _ in store.unique_urls(run_id) if ours(url))


def _excluded(url: str, kind: Kind, why: str) -> Check:
    """The record that this run left the URL out: no answer, no attempt, the rule that excluded it."""
    return Check(url=url, kind=kind, ok=False, reason=Reason.EXCLUDED, message=why, attempts=0, checked_at=now_iso())


def _still_fresh(previous: PlannedCheck, kind: Kind, config: Config) -> bool:
    """A result is reused only if it was fine, for the same kind of fetch, and young enough;
    one that was fine only by an accepted status, only while the config still accepts it."""
    if config.max_age is None or not previous.ok or previous.kind != kind or not previous.checked_at:
        return False
    if previous.accepted and previous.status is not None:
        host = urlsplit(previous.final_url or previous.url).hostname or ""
        if not config.crawl.accepts(host, previous.status):
            return False
    age = (datetime.now(UTC) - datetime.fromisoformat(previous.checked_at)).total_seconds()
    return 0 <= age <= config.max_age


def _crawl(
    store: Store,
    run_id: int,
    config: Config,
    total: int,
    crawler: Crawler | ProcessCrawler | None,
    progress: ProgressHook | None,
    stops: StopRequests,
) -> None:
    """`total`: the run's unique URLs (a shard's, those of its partition), fetched or not."""
    stops.check()
    checks = store.checks_writer(run_id, batch_size=CHECK_BATCH)
    tally = _Tally()
    remapped = _Remapped()

    async def probe_hosts(crawler: Crawler | ProcessCrawler) -> None:
        checks.flush()  # the probes go to the hosts of the pages that answered: all of them stored
        await _probe_hosts(store, run_id, config, crawler)

    probing = config.soft_404.probe and config.severity(Code.SOFT_404) is not Severity.OFF
    # What exists before the crawl outlives it: the collector need not walk it on every pass the crawl's
    # churn of small objects sets off (about 5 % of a crawl's CPU). Unfrozen after, so a long-lived
    # process (auditor serve) still collects it.
    gc.freeze()
    opened: ProcessCrawler | None = None
    try:
        targets: Iterable[Target] = _plan(store, run_id, config, tally, UrlRules.of(config), remapped)
        if crawler is None:
            crawler, targets = open_crawler(config.crawl, targets)
            if isinstance(crawler, ProcessCrawler):
                opened = crawler
                crawler.start()  # forked before the event loop runs: a fork inside a running loop copies its state
        run_loop(
            _crawl_async(
                targets,
                total,
                config,
                crawler,
                checks,
                progress,
                stops,
                tally,
                remapped,
                after=probe_hosts if probing else None,
            )
        )
    finally:
        if opened is not None:
            opened.close()  # already ended with the crawl, unless the loop failed before it
        gc.unfreeze()
        checks.flush()
        # Recorded even when stopped: a resumed run adds to what it had.
        previous = store.run(run_id)
        store.set_counts(run_id, **{key: (getattr(previous, key) or 0) + getattr(tally, key) for key in CRAWL_COUNTS})


async def _crawl_async(
    targets: Iterable[Target],
    total: int,
    config: Config,
    crawler: Crawler | ProcessCrawler,
    checks: CheckWriter,
    progress: ProgressHook | None,
    stops: StopRequests,
    tally: _Tally,
    remapped: _Remapped,
    *,
    after: AfterCrawl | None = None,
) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def cancel_the_crawl() -> None:
        loop.call_soon_threadsafe(task.cancel)

    async def flush_periodically() -> None:
        # A slow tail of URLs must not keep finished checks in memory only.
        while True:
            await asyncio.sleep(CHECK_FLUSH_SECONDS)
            checks.flush()

    flusher = asyncio.create_task(flush_periodically())
    try:
        # A stop cancels the crawl wherever it waits; checks already received are kept.
        with stops.waking(cancel_the_crawl):
            async with crawler:
                done = 0
                async for fetched in crawler.crawl(targets):
                    check = remapped.restore(fetched)
                    done += 1
                    if check.revalidated:
                        tally.revalidated += 1
                    else:
                        tally.fetched += 1
                    checks.add(check)
                    if progress:
                        progress(check, done, total - tally.not_fetched)
                if after is not None:
                    await after(crawler)
    except asyncio.CancelledError:
        stops.check()
        raise
    finally:
        flusher.cancel()


async def _probe_hosts(store: Store, run_id: int, config: Config, crawler: Crawler | ProcessCrawler) -> None:
    """Once per host whose pages answered: a path that cannot exist, to learn how it answers one.

    A host the run already probed (--resume) is not asked again; with --max-age a probe younger
    than that is reused, as checks are. The answers are stored as checks of kind `probe` and
    listed in host_probes; they are never URLs of the run.
    """
    origins = {origin_of(url) for url in store.answered_page_urls(run_id)} - set(store.run_probes(run_id))
    if config.max_age is not None:
        now = datetime.now(UTC).timestamp()
        reused = {
            origin: probe.id
            for origin, probe in store.latest_probes(origins).items()
            if probe.id is not None and probe_fresh(probe, now, config.max_age)
        }
        store.reuse_probes(run_id, reused.items())
        origins -= set(reused)
    probed: list[tuple[str, Check]] = []
    try:
        async for probe in crawler.crawl(Target(probe_url(origin), Kind.PROBE) for origin in sorted(origins)):
            probed.append((origin_of(probe.url), probe))
            if len(probed) >= CHECK_BATCH:
                store.add_probes(run_id, probed)
                probed.clear()
    finally:  # a stop keeps the answers already in
        store.add_probes(run_id, probed)


def _judge(store: Store, run_id: int, config: Config, findings: FindingWriter, stops: StopRequests) -> None:
    """Verdicts: every reference against its check, every document against its pages.

    Checks are read a window of documents at a time, so memory follows the
    window, not the corpus. A large run is judged on every core: the documents
    are split into consecutive parts, each judged by a forked child (forked.py)
    with a reader of its own, and the findings are stored in document order,
    as one process would store them. A document whose judging key (`judging_key`)
    is one the last judging kept takes its verdicts from there, unjudged.
    """
    # A URL that never failed before has an all-ok history: one flip at most, never flaky.
    suspects = store.urls_that_failed_before(run_id)
    minimum = config.soft_404.landing_min_articles
    hosts = HostEvidence(
        probes=store.run_probes(run_id), landings=landing_pages(store.shared_redirects(run_id, minimum), minimum)
    )
    key_of = judging_key(config, hosts, suspects)
    first, *rest = _judging_parts(store, run_id)

    def judged_apart(part: range) -> Iterator[Judged]:
        reader = Store(store.path, read_only=True)  # never the parent's connection
        # Only what the parent stores: a document with neither findings nor a key is not worth the pipe.
        judged = _judged(reader, run_id, config, suspects, hosts, part, key_of)
        return (one for one in judged if one[0] is not None or one[2])

    children = [ForkedChild(f"judging documents {part.start + 1}-{part.stop}", functools.partial(judged_apart, part))
                for part in rest]  # fmt: skip
    kept: list[tuple[str, list[Finding] | None]] = []

    def add(judged: Judged) -> None:
        key, reused, found = judged
        findings.add_all(found)
        if key is not None:
            kept.append((key, None if reused else found))
            if len(kept) >= KEEP_JUDGED_BATCH:
                store.keep_judged(run_id, kept)
                kept.clear()
        stops.check()

    try:
        for judged in _judged(store, run_id, config, suspects, hosts, first, key_of):
            add(judged)
        for child in children:
            for judged in child.results():
                add(judged)
    finally:
        for child in children:
            child.close()
    store.keep_judged(run_id, kept)
    store.forget_judged(run_id)


def judging_key(config: Config, hosts: HostEvidence, suspects: set[str]) -> JudgingKey:
    """A document's judging key: its path, its content, the check of each of its references, the run's
    host evidence (soft-404 probes, landing pages), the settings judging reads and auditor's code.

    Judging reads nothing else but a URL's history, and only for a URL that failed before (it may be
    flaky): a document citing one has no key, and is judged afresh every run.
    """
    evidence = (sorted((origin, check.id) for origin, check in hosts.probes.items()), sorted(hosts.landings.items()))
    settings = repr((__version__, config.flaky_window, config.soft_404, evidence)).encode()
    salt = hashlib.blake2b(_auditor_code() + settings, digest_size=16).digest()

    def key_of(path: str, content: str, cited: list[tuple[str, int | None]]) -> str | None:
        if any(url in suspects for url, _ in cited):
            return None
        digest = hashlib.blake2b(salt, digest_size=16)
        digest.update(json.dumps([path, content, [check_id for _, check_id in cited]]).encode())
        return digest.hexdigest()

    return key_of


@functools.cache
def _auditor_code() -> bytes:
    """The text of every module of auditor: an edited checkout never takes verdicts its old code gave."""
    package = Path(__file__).parent
    return b"".join(path.read_bytes() for path in sorted(package.rglob("*.py")))


def _judging_parts(store: Store, run_id: int) -> list[range]:
    """The document positions each process judges: all in this one, or one consecutive part per core."""
    low, high = store.document_positions(run_id)
    if high - low < PARALLEL_JUDGING or not can_fork():
        return [range(low, high)]
    size = -(-(high - low) // min(os.cpu_count() or 1, MAX_WORKERS))
    return [range(start, min(start + size, high)) for start in range(low, high, size)]


# One document judged: its judging key (None: none), whether its findings are the last judging's, its findings.
Judged = tuple[str | None, bool, list[Finding]]


def _judged(
    store: Store,
    run_id: int,
    config: Config,
    suspects: set[str],
    hosts: HostEvidence,
    positions: range,
    key_of: JudgingKey | None = None,
) -> Iterator[Judged]:
    """Each document at these positions, judged (or its findings under the same key taken as they were)."""
    # Many documents cite the same URL; bounded, so a huge corpus stays flat.
    earlier = functools.lru_cache(maxsize=65_536)(lambda url: store.past_verdicts(url, run_id, config.flaky_window - 1))
    for unit in store.judging(run_id, positions=positions, key_of=key_of):
        if unit.judged is not None:
            yield unit.key, True, unit.judged
            continue
        assert unit.document is not None, "the store gives the document whenever it gives no kept findings"
        out: list[Finding] = []
        for link in unit.links:
            check = unit.checks.get(link.normalized_url)
            verdicts = link_findings(link, check)
            history = earlier(link.normalized_url) if link.normalized_url in suspects else []
            flaky = flaky_findings(link, check, history, config.flaky_window)
            if flaky:
                # A link that keeps flipping is flaky, not freshly dead.
                verdicts = [finding for finding in verdicts if finding.code is not Code.DEAD_LINK] + flaky
            out += verdicts
        out += page_findings(unit.document, unit.checks)
        soft = soft_404_findings(unit.document, unit.links, unit.checks, hosts, config.soft_404)
        yield unit.key, False, without_soft_404_pages(out, soft) + soft


class FindingWriter:
    """Findings into the store with the configured severity and how long each has been reported.

    A finding the previous run over the corpus also reported keeps its
    `first_seen` and counts one more failing run; with --dead-after N, a dead
    link is a warning until it has failed N runs in a row.
    """

    def __init__(self, store: Store, run_id: int, config: Config) -> None:
        self.config = config
        self.writer = store.writer(FINDINGS, run_id)
        self.started_at = store.run(run_id).started_at
        previous = store.previous_run_id(run_id)
        self.previous_started_at = store.run(previous).started_at if previous else None
        self.earlier = {finding.key: finding for finding in store.findings(previous)} if previous else {}

    def add_all(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def add(self, finding: Finding) -> None:
        severity = self.config.severity(finding.code)
        if severity is Severity.OFF:
            return
        earlier = self.earlier.get(finding.key)
        first_seen: str | None
        if earlier is None:
            first_seen, failing_runs = self.started_at, 1
        else:
            first_seen = earlier.first_seen or self.previous_started_at
            failing_runs = (earlier.failing_runs or 1) + 1
        message = finding.message
        if finding.code is Code.DEAD_LINK and failing_runs < self.config.dead_after and severity is Severity.ERROR:
            severity = Severity.WARNING
            message += f" (failing {failing_runs} run(s) in a row; an error from {self.config.dead_after})"
        self.writer.add(
            dataclasses.replace(
                finding, severity=severity, message=message, first_seen=first_seen, failing_runs=failing_runs
            )
        )

    def flush(self) -> None:
        self.writer.flush()


def _config_record(config: Config) -> dict[str, Any]:
    record = dataclasses.asdict(config)
    record["paths"] = [str(p) for p in config.paths]
    record["db"], record["out"] = str(config.db), str(config.out)
    return record


def dump(config: Config, write: Callable[[str], None]) -> int:
    """`auditor audit --dump`: each unique URL the corpus cites, as one JSON line, in URL order.

    Each line says whether --exclude/--include leaves the URL out (and by which rule), what would
    be fetched for it after --remap (null when excluded), and every reference to it (document,
    line, field). Nothing is fetched and nothing is written but the lines: the corpus is parsed
    into a throwaway database, so memory stays flat however large it is. Returns the URL count.
    """
    rules = UrlRules.of(config)
    files = corpus_files(config)
    with tempfile.TemporaryDirectory(prefix="auditor-dump-") as scratch:
        store = Store(Path(scratch) / "dump.sqlite")
        try:
            run_id = store.start_run(
                mode=Mode.AUDIT, corpus=[str(p) for p in config.paths], tool_version=__version__, config={}
            )
            documents = store.documents_writer(run_id)
            with store.first_ingest(), closing(_prepare_all(config, files, store.parsed_files)) as prepared:
                for path, content, digest, link_rows, _offline, _key in prepared:
                    documents.add(path, content, link_rows, digest)
                documents.flush()
            count = 0
            for url, references in store.references_by_url(run_id):
                why = rules.excluded_by(url)
                line = {
                    "url": url,
                    "excluded": why is not None,
                    "excluded_by": why,
                    "fetch_url": None if why is not None else rules.fetch_url(url) or url,
                    "references": [
                        {"document": ref.document, "line": ref.line, "field": ref.field} for ref in references
                    ],
                }
                # ASCII only: corpus text reaches a terminal as escapes, never as control characters.
                write(json.dumps(line))
                count += 1
        finally:
            store.close()
    return count
