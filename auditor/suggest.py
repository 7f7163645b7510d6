"""Between judging and the reports: an archived copy for each dead link (--suggest).

For each unique URL of the run's dead links, the Wayback Machine's
availability API (`https://archive.org/wayback/available?url=…`) is asked for
its closest snapshot; the answer — a snapshot URL and when it was taken, or
"none available" — is kept in the database (`archived_copies`, one row per
URL) and recorded on the run's findings about that URL, so every report shows
it. An answer younger than `archive.ttl` is reused without asking, so
scheduled runs ask about each dead link about once a month.

The archive is one public host serving everyone, so it is asked politely:
`archive.rate` requests a second, `archive.concurrency` at a time, at most
`archive.max_lookups` per run (the rest wait for the next run), each bounded
in time and size. Its failures (a timeout, a 5xx, an answer that is not the
expected JSON, no network at all) never fail an audit: the finding simply has
no suggestion, the failure is counted in the run's `archive` lookups, and the
URL is asked again next run. After `archive.give_up_after` failures in a row,
or as soon as the archive answers 429/503 (slow down), the run asks no more.

Only `dead-link` and `soft-404` findings get a suggestion (whatever their
severity, so also a dead link still a warning under --dead-after; a soft 404
is an article gone although its URL answers): a blocked link (401/403/429) is
alive to a person, a flaky link comes back by itself, and a URL not fetched
because it is private is nobody's business at archive.org. Nor do AMP-cache
URLs: the fix for one the cache dropped is the cache URL of ampWebUrl.

This is the only module besides the crawl that touches the network, and like
the crawl it never writes the database itself: the store does.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from auditor.amp import AMP_CACHE_DOMAIN
from auditor.config import ArchiveConfig, Config
from auditor.crawl.body import read_body
from auditor.crawl.errors import CrawlError
from auditor.crawl.politeness import Spacing
from auditor.interrupt import StopRequests
from auditor.links import InvalidURL, normalize_url, url_host
from auditor.model import ArchivedCopy, ArchiveLookups, Code
from auditor.store import Store, now_iso

# The findings an archived copy is sought for.
SUGGESTED_CODES = frozenset({Code.DEAD_LINK, Code.SOFT_404})
# Answers that say "too much": the run stops asking at once.
SLOW_DOWN_STATUSES = frozenset({429, 503})
MAX_SNAPSHOT_URL = 8192
# A usable snapshot: an http(s) URL, nothing that could end an attribute or a line.
_SNAPSHOT_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
_TIMESTAMP = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})")


class ArchiveError(Exception):
    """The archive gave no usable answer this time; the URL is asked again next run."""


class SlowDown(ArchiveError):
    """The archive asked us to slow down (429/503): this run asks no more."""


def parse_answer(url: str, body: bytes, *, asked_at: str) -> ArchivedCopy:
    """The availability API's JSON as an answer about `url`; ArchiveError when it is not that JSON.

    `{"archived_snapshots": {}}` means none; a `closest` snapshot counts only
    if it is available, was captured with a 2xx (a capture of a 404 or of a
    redirect is no copy of the page), and is an http(s) URL.
    """
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"not JSON: {exc}") from None
    snapshots = answer.get("archived_snapshots") if isinstance(answer, dict) else None
    if not isinstance(snapshots, dict):
        raise ArchiveError("no archived_snapshots in the answer")
    closest = snapshots.get("closest")
    none = ArchivedCopy(url=url, asked_at=asked_at)
    if closest is None:
        return none
    if not isinstance(closest, dict):
        raise ArchiveError("archived_snapshots.closest is not an object")
    status = closest.get("status")
    if closest.get("available") is not True or (status is not None and not str(status).startswith("2")):
        return none
    snapshot = closest.get("url")
    if not isinstance(snapshot, str) or len(snapshot) > MAX_SNAPSHOT_URL or not _SNAPSHOT_URL.fullmatch(snapshot):
        raise ArchiveError(f"the snapshot is not an http(s) URL: {str(snapshot)[:200]!r}")
    return ArchivedCopy(
        url=url, snapshot_url=_https(snapshot), archived_at=_timestamp(closest.get("timestamp")), asked_at=asked_at
    )


def _https(snapshot: str) -> str:
    # The API names its snapshots with http://; the same page is served over https.
    if snapshot.lower().startswith("http://web.archive.org/"):
        return "https://" + snapshot[len("http://") :]
    return snapshot


def _timestamp(value: Any) -> str | None:
    """The API's 14-digit capture time (20130919044612) as ISO 8601 UTC; None if it is not one."""
    match = _TIMESTAMP.fullmatch(str(value)) if isinstance(value, str | int) else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return moment.isoformat().replace("+00:00", "Z")


class Wayback:
    """The availability API's client: use as an async context manager, then `ask`."""

    def __init__(
        self, config: ArchiveConfig, *, user_agent: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.user_agent = user_agent
        self._transport = transport
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Wayback:
        self.client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.config.timeout),
            follow_redirects=True,
            max_redirects=3,
            headers={"User-Agent": self.user_agent, "Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def ask(self, url: str) -> ArchivedCopy:
        """The archive's answer about one URL; ArchiveError (SlowDown) when there is none to use."""
        assert self.client is not None, "use Wayback as an async context manager"
        cap = self.config.max_response_bytes
        body = bytearray()

        def consume(data: bytes) -> bool:
            body.extend(data)
            return len(body) > cap

        try:
            async with asyncio.timeout(self.config.timeout):
                request = self.client.build_request("GET", self.config.api_url, params={"url": url})
                response = await self.client.send(request, stream=True)
                try:
                    if response.status_code in SLOW_DOWN_STATUSES:
                        raise SlowDown(f"http {response.status_code}")
                    if response.status_code != 200:
                        raise ArchiveError(f"http {response.status_code}")
                    await read_body(response, consume, cap + 1)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise ArchiveError(f"no answer within {self.config.timeout:g}s") from None
        except (httpx.HTTPError, CrawlError) as exc:
            raise ArchiveError(f"{type(exc).__name__}: {exc}") from None
        if len(body) > cap:
            raise ArchiveError(f"answer larger than {cap} bytes")
        return parse_answer(url, bytes(body), asked_at=now_iso())


@dataclass
class _Lookups:
    """The run's tally as it goes (ArchiveLookups when done), and whether to keep asking."""

    wanted: int = 0
    cached: int = 0
    asked: int = 0
    found: int = 0
    failed: int = 0
    skipped: int = 0
    failures_in_a_row: int = 0
    stopped: bool = False
    last_error: str | None = None

    def record(self) -> ArchiveLookups:
        return ArchiveLookups(
            wanted=self.wanted,
            cached=self.cached,
            asked=self.asked,
            found=self.found,
            failed=self.failed,
            skipped=self.skipped,
            last_error=self.last_error,
        )


def suggest(store: Store, run_id: int, config: Config, stops: StopRequests) -> ArchiveLookups:
    """Find, keep and record an archived copy for each dead link of the run; returns how it went.

    Stored as the run's `archive` lookups even when a stop cuts it short.
    """
    stops.check()
    by_url = _unique_urls(store.finding_urls(run_id, SUGGESTED_CODES))
    lookups = _Lookups(wanted=len(by_url))
    try:
        cached = store.archived_copies(by_url)
        to_ask: list[str] = []
        reuse: list[ArchivedCopy] = []
        for url in by_url:
            answer = cached.get(url)
            if answer is not None and _fresh(answer, config.archive.ttl):
                reuse.append(answer)
            else:
                to_ask.append(url)
        store.attach_archived_copies(run_id, SUGGESTED_CODES, [(by_url[a.url], a) for a in reuse])
        lookups.cached = len(reuse)
        lookups.found = sum(1 for answer in reuse if answer.available)
        lookups.skipped = max(0, len(to_ask) - config.archive.max_lookups)
        to_ask = to_ask[: config.archive.max_lookups]
        if to_ask:
            asyncio.run(_ask_all(store, run_id, config, to_ask, by_url, lookups, stops))
    finally:
        store.set_archive_lookups(run_id, lookups.record())
    return lookups.record()


def _unique_urls(written: Iterable[str]) -> dict[str, list[str]]:
    """Normalised URL -> the forms it is written in, first-cited first (the cache is keyed by the former).

    AMP-cache URLs are left out: a copy of Google's cache is no fix for one it dropped
    (the fix is the cache URL computed from ampWebUrl), so asking would only spend lookups.
    """
    by_url: dict[str, list[str]] = {}
    for url in written:
        try:
            normalized = normalize_url(url)
            host = url_host(normalized)
        except InvalidURL:
            continue  # never fetched, so never dead: nothing to look up
        if host == AMP_CACHE_DOMAIN or host.endswith("." + AMP_CACHE_DOMAIN):
            continue
        by_url.setdefault(normalized, []).append(url)
    return by_url


def _fresh(answer: ArchivedCopy, ttl: float) -> bool:
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(answer.asked_at)).total_seconds()
    except ValueError:
        return False
    return 0 <= age <= ttl


async def _ask_all(
    store: Store,
    run_id: int,
    config: Config,
    urls: list[str],
    by_url: Mapping[str, list[str]],
    lookups: _Lookups,
    stops: StopRequests,
) -> None:
    """Ask about each URL, `concurrency` at a time at `rate` a second; keep each answer as it comes."""
    settings = config.archive
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # One request per 1/rate seconds, evenly spaced.
    spacing = Spacing(1.0 / settings.rate)
    pending = iter(urls)  # shared by the workers: each URL is taken once

    async def work(wayback: Wayback) -> None:
        for url in pending:
            if lookups.stopped or stops.requested:
                lookups.skipped += 1
                continue
            await spacing.turn()
            if lookups.stopped or stops.requested:  # decided while this one waited for its turn
                lookups.skipped += 1
                continue
            try:
                answer = await wayback.ask(url)
            except Exception as exc:  # ArchiveError, or a bug of ours: either costs one suggestion, not the audit
                if not isinstance(exc, ArchiveError):
                    exc = ArchiveError(f"auditor failed on this lookup: {type(exc).__name__}: {exc}")
                lookups.failed += 1
                lookups.failures_in_a_row += 1
                lookups.last_error = f"{url}: {exc}"
                if isinstance(exc, SlowDown) or lookups.failures_in_a_row >= settings.give_up_after:
                    lookups.stopped = True
                continue
            lookups.failures_in_a_row = 0
            lookups.asked += 1
            lookups.found += int(answer.available)
            store.save_archived_copy(answer)
            store.attach_archived_copies(run_id, SUGGESTED_CODES, [(by_url[url], answer)])

    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    try:
        # A stop cancels the lookups wherever they wait; answers already kept stay.
        with stops.waking(cancel):
            async with Wayback(settings, user_agent=config.crawl.user_agent) as wayback:
                await asyncio.gather(*(work(wayback) for _ in range(settings.concurrency)))
        stops.check()  # a stop between two lookups: the run is interrupted all the same
    except asyncio.CancelledError:
        stops.check()
        raise
