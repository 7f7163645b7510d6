"""The worker pool: many URLs checked at once, each with its retries.

One shared httpx client; a fixed pool of workers bounds global concurrency
(per-host limits are politeness.py's). Each URL is attempted, and attempted
again while retry.py says it may; every outcome, failure included, is a
`Check`. This is the boundary where exceptions stop: a `CrawlError` or an
httpx error becomes the check's `reason` (errors.py maps it), our deadline a
timeout, and anything else is a bug of ours that costs that URL
(`internal-error`), never the crawl. Verdicts (dead, blocked, ...) are the
rules stage's job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import replace

import httpx
import sniffio

from auditor.config import CrawlConfig
from auditor.crawl.budget import Budget
from auditor.crawl.client import Client, ssl_context
from auditor.crawl.errors import CrawlError, map_exception
from auditor.crawl.fetch import Fetcher
from auditor.crawl.guard import AddressGuard, Resolver, system_resolver
from auditor.crawl.hosts import HostPolicy
from auditor.crawl.politeness import Politeness
from auditor.crawl.redirects import RedirectChain, refuse_unusable_redirect
from auditor.crawl.retry import RetryPolicy
from auditor.model import Check, Kind, Reason, Target
from auditor.store import now_iso

# Targets queued per worker: enough that no worker waits for the feed, few enough
# that memory stays flat however many URLs the caller's iterator holds.
QUEUE_DEPTH_PER_WORKER = 2


class Crawler:
    """Use as an async context manager (it owns the HTTP client), then `crawl` or `check`."""

    def __init__(
        self,
        config: CrawlConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.config = config
        self.resolver = resolver
        self.retry = RetryPolicy(config)
        # Reads the header variables now: one that is not set is a ConfigError before any request.
        self.hosts = HostPolicy(config)
        self.politeness = Politeness(config, self.hosts)
        self._transport = transport
        self.client: Client | None = None
        self._fetcher: Fetcher | None = None

    async def __aenter__(self) -> Crawler:
        guard = AddressGuard(allow_private=self.config.allow_private, resolver=self.resolver)
        self.client = Client(
            self.config, transport=self._transport, on_response=refuse_unusable_redirect, lookup=guard.connectable
        )
        self._fetcher = Fetcher(
            self.client,
            self.config,
            guard=guard,
            politeness=self.politeness,
            hosts=self.hosts,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    # -- many URLs ----------------------------------------------------------
    async def crawl(self, targets: Targets) -> AsyncIterator[Check]:
        """Check every target (a `Target`, or a `(url, kind)` pair); yield checks as they complete.

        A target's `previous` check makes its request conditional (see conditional.py).

        A fixed pool of workers pulls from a bounded queue, so memory stays flat
        however many URLs there are. Closing the iterator early (interrupt)
        cancels the workers. A failing `targets` (or an unknown kind) is raised
        once the workers have drained.
        """
        workers = self.config.concurrency
        queue: asyncio.Queue[Target | None] = asyncio.Queue(maxsize=workers * QUEUE_DEPTH_PER_WORKER)
        results: asyncio.Queue[Check | None] = asyncio.Queue()
        feed_failures: list[Exception] = []

        async def feed() -> None:
            try:
                async for target in each_target(targets):
                    await queue.put(target)
            except Exception as exc:  # raised to the caller once the workers have drained
                feed_failures.append(exc)
            for _ in range(workers):
                await queue.put(None)

        async def work() -> None:
            # httpcore asks sniffio which library runs for every lock and shield; sniffio answers from this
            # variable (its documented way to say it) before it looks for a current asyncio task.
            sniffio.current_async_library_cvar.set("asyncio")
            while (target := await queue.get()) is not None:
                await results.put(await self.check(target.url, target.kind, previous=target.previous))
            await results.put(None)

        tasks = [asyncio.create_task(feed())]
        tasks += [asyncio.create_task(work()) for _ in range(workers)]
        try:
            finished_workers = 0
            while finished_workers < workers:
                item = await results.get()
                if item is None:
                    finished_workers += 1
                else:
                    yield item
            if feed_failures:
                raise feed_failures[0]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one URL ------------------------------------------------------------
    async def check(self, url: str, kind: Kind | str, *, previous: Check | None = None) -> Check:
        """Attempt `url` until it has an answer or retry.py says stop; never raises for the URL's sake.

        With `previous` (an OK check of this URL with validators) the request for its final URL
        is conditional, and a 304 gives `previous` back, `revalidated`, with this exchange's cost.
        """
        link_kind = Kind(kind)
        started = time.monotonic()
        checked_at = now_iso()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(url, link_kind, previous)
            except Exception as exc:  # a bug of ours must cost one URL, never the crawl
                result = Check(
                    url=url,
                    kind=link_kind,
                    ok=False,
                    reason=Reason.INTERNAL_ERROR,
                    message=f"auditor failed on this URL: {type(exc).__name__}: {exc}",
                )
                break
            wait = self.retry.wait(result, attempt)
            if wait is None:
                break
            await asyncio.sleep(wait)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return replace(result, attempts=attempt, elapsed_ms=elapsed_ms, checked_at=checked_at)

    async def _attempt(self, url: str, kind: Kind, previous: Check | None) -> Check:
        """One try: the whole redirect chain and the body, within one time budget."""
        assert self._fetcher is not None, "use Crawler as an async context manager"
        chain = RedirectChain(url, max_redirects=self.config.max_redirects)
        timeout = self.hosts.for_url(url).timeout  # the cited host's, for the whole chain
        try:
            return await self._fetcher.fetch(url, kind, chain, Budget(timeout), previous=previous)
        except TimeoutError:
            return Check(
                url=url,
                kind=kind,
                ok=False,
                reason=Reason.TIMEOUT,
                redirects=tuple(chain.hops),
                message=f"no complete answer within {timeout:g}s",
            )
        except (CrawlError, httpx.HTTPError) as exc:
            error = map_exception(exc)
            return Check(
                url=url,
                kind=kind,
                ok=False,
                reason=error.reason,
                message=str(error),
                redirects=tuple(chain.hops),
                final_url=chain.hops[-1].url if chain.hops else None,
            )


def check_settings(config: CrawlConfig) -> None:
    """Try now what a Crawler reads when it starts: ConfigError for a header variable that is not
    set or a CA bundle it cannot use. The CLI asks before a run begins; otherwise the run would
    start, and fail when its crawl does."""
    HostPolicy(config)
    ssl_context(config)


Targets = Iterable[Target | tuple[str, Kind | str]] | AsyncIterable[Target]


async def each_target(targets: Targets) -> AsyncIterator[Target]:
    """The targets as Targets (a `(url, kind)` pair made one), whether they come from a plan or a stream.

    A plan is iterated between turns of the event loop, so a long one never keeps answers from being read.
    """
    if isinstance(targets, AsyncIterable):
        async for target in targets:
            yield _as_target(target)
        return
    for item in targets:
        yield _as_target(item)
        await asyncio.sleep(0)


def _as_target(target: Target | tuple[str, Kind | str]) -> Target:
    """A target as given, or a `(url, kind)` pair as a Target (the kind checked: an unknown one raises)."""
    if isinstance(target, Target):
        return replace(target, kind=Kind(target.kind))
    url, kind = target
    return Target(url, Kind(kind))
