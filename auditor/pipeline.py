"""The pipeline, top-down: corpus -> links -> crawl -> store -> rules -> report.

`audit` runs every stage; `lint` stops before the network. Both return an
Outcome whose exit code the CLI passes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from itertools import chain, groupby, islice
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.config import Config
from auditor.corpus import iter_corpus_files, load_document
from auditor.crawl import Crawler
from auditor.interrupt import Interrupted, StopRequests
from auditor.links import extract_links
from auditor.model import Check, Finding, Kind, Mode, RunStatus, Severity
from auditor.report import Report, build_report, write_reports
from auditor.rules import FLAKY_WINDOW, document_findings, flaky_findings, link_findings, page_findings
from auditor.store import CHECKS, DOCUMENTS, FINDINGS, LINKS, BatchWriter, Row, Store

CHECK_BATCH = 50
CHECK_FLUSH_SECONDS = 2.0

# Below one window of files the process pool costs more than it saves.
PARALLEL_WINDOW = 512
MAX_WORKERS = 8

ProgressHook = Callable[[Check, int, int], None]
# A document's encoded row, its links' encoded rows and its offline findings.
Prepared = tuple[Row, list[Row], list[Finding]]


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
    stops: StopRequests | None = None,
) -> Outcome:
    """`stops`: given by a caller that owns the signals (auditor serve runs audits in a worker thread)."""
    return _run(config, Mode.AUDIT, crawler=crawler, progress=progress, stops=stops)


def lint(config: Config) -> Outcome:
    return _run(config, Mode.LINT)


def _run(
    config: Config,
    mode: Mode,
    *,
    crawler: Crawler | None = None,
    progress: ProgressHook | None = None,
    stops: StopRequests | None = None,
) -> Outcome:
    # Check the paths before touching the database: a bad path is a usage error, not a run.
    files = iter_corpus_files(config.paths)
    first = next(files, None)
    store = Store(config.db)
    run_id = store.start_run(
        mode=mode,
        corpus=[str(p) for p in config.paths],
        tool_version=__version__,
        config=_config_record(config),
    )
    findings = store.writer(FINDINGS, run_id)
    status = RunStatus.FINISHED
    counts: dict[str, int] = {}
    stops = stops if stops is not None else StopRequests()
    with stops.installed():
        try:
            stops.check()
            # Closed as soon as the ingest ends, so a stop also stops the parsing workers.
            with closing(_prepare_all(config, chain([first] if first else [], files))) as prepared:
                counts = _ingest(store, run_id, config, prepared, findings, stops)
            if mode is Mode.AUDIT:
                _crawl(store, run_id, config, crawler, progress, stops)
                _judge(store, run_id, config, findings, stops)
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
            findings.flush()
            counts = counts or {
                "documents": store.count(DOCUMENTS, run_id),
                "references": store.count(LINKS, run_id),
            }
            counts["urls"] = store.count_unique_urls(run_id)
            store.finish_run(run_id, status=RunStatus.INTERRUPTED if stops.requested else status, **counts)
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
    failing = any(config.fails(f.severity) for f in report.findings)
    return Outcome(run_id, 1 if failing else 0, report)


def _prepare(config: Config, path: Path) -> Prepared:
    """Everything one file yields without the network, as encoded store rows.

    Pure, so it runs in worker processes; rows come back already encoded,
    which pickles far cheaper than the parsed document.
    """
    document = load_document(path, config.limits)
    refs, problems = extract_links(document)
    return (
        DOCUMENTS.encode(document),
        [LINKS.encode(ref) for ref in refs],
        [*document_findings(document, config.schema), *problems],
    )


def _prepare_all(config: Config, files: Iterator[Path]) -> Generator[Prepared, None, None]:
    """Parse files in order, on every core once the corpus is big enough to pay for the pool.

    YAML parsing dominates `auditor lint`; files go to the workers in windows,
    the next window queued while this one is written, so memory stays bounded.
    """
    prepare = functools.partial(_prepare, config)
    window = list(islice(files, PARALLEL_WINDOW))
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(window) < PARALLEL_WINDOW or workers < 2:
        yield from map(prepare, window)
        yield from map(prepare, files)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_ignores_signals)
    try:
        in_flight = deque([pool.map(prepare, window, chunksize=32)])
        while in_flight:
            window = list(islice(files, PARALLEL_WINDOW))
            if window:
                in_flight.append(pool.map(prepare, window, chunksize=32))
            yield from in_flight.popleft()
    finally:
        # Closed early (a stop): files not yet started are not parsed for nothing.
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_ignores_signals() -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _ingest(
    store: Store,
    run_id: int,
    config: Config,
    prepared: Iterator[Prepared],
    findings: BatchWriter[Finding],
    stops: StopRequests,
) -> dict[str, int]:
    """Stream documents into the store with their links and offline findings."""
    docs, links = store.writer(DOCUMENTS, run_id), store.writer(LINKS, run_id)
    try:
        for document_row, link_rows, offline in prepared:
            docs.add_encoded(document_row)
            for link_row in link_rows:
                links.add_encoded(link_row)
            _add_findings(findings, config, offline)
            stops.check()
    finally:
        docs.flush()
        links.flush()
    return {"documents": docs.written, "references": links.written}


def _crawl(
    store: Store,
    run_id: int,
    config: Config,
    crawler: Crawler | None,
    progress: ProgressHook | None,
    stops: StopRequests,
) -> None:
    stops.check()
    total = store.count_unique_urls(run_id)
    checks = store.writer(CHECKS, run_id, batch_size=CHECK_BATCH)
    try:
        asyncio.run(
            _crawl_async(
                store.unique_urls(run_id), total, config, crawler or Crawler(config.crawl), checks, progress, stops
            )
        )
    finally:
        checks.flush()


async def _crawl_async(
    targets: Iterable[tuple[str, Kind]],
    total: int,
    config: Config,
    crawler: Crawler,
    checks: BatchWriter[Check],
    progress: ProgressHook | None,
    stops: StopRequests,
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
                async for check in crawler.crawl(targets):
                    done += 1
                    checks.add(check)
                    if progress:
                        progress(check, done, total)
    except asyncio.CancelledError:
        stops.check()
        raise
    finally:
        flusher.cancel()


def _judge(store: Store, run_id: int, config: Config, findings: BatchWriter[Finding], stops: StopRequests) -> None:
    """Verdicts: every reference against its check, every document against its pages.

    Checks are read per document, so memory follows the largest document,
    not the corpus.
    """
    # Many documents cite the same URL; bounded, so a huge corpus stays flat.
    history = functools.lru_cache(maxsize=65_536)(lambda url: store.past_verdicts(url, run_id, FLAKY_WINDOW - 1))
    links_by_document = groupby(store.links(run_id), key=lambda link: link.document)
    pending = next(links_by_document, None)
    for document in store.iter_documents(run_id):
        stops.check()
        links = list(pending[1]) if pending is not None and pending[0] == document.path else []
        if links:
            pending = next(links_by_document, None)
        checks = store.checks(run_id, [link.normalized_url for link in links])
        out: list[Finding] = []
        for link in links:
            check = checks.get(link.normalized_url)
            out += link_findings(link, check)
            if check is not None:
                out += flaky_findings(link, check, history(link.normalized_url))
        out += page_findings(document, checks)
        _add_findings(findings, config, out)


def _add_findings(writer: BatchWriter[Finding], config: Config, findings: list[Finding]) -> None:
    for finding in findings:
        severity = config.severity(finding.code)
        if severity is not Severity.OFF:
            writer.add(dataclasses.replace(finding, severity=severity))


def _config_record(config: Config) -> dict[str, Any]:
    record = dataclasses.asdict(config)
    record["paths"] = [str(p) for p in config.paths]
    record["db"], record["out"] = str(config.db), str(config.out)
    return record
