"""One attempt at one URL: the redirect chain hop by hop, then the body its kind needs.

Every hop is resolved and guarded, waits for its host's gate, and spends the
attempt's time budget; the final answer is read as a page head, an image
probe, or not at all (HEAD). Given the previous check, the request for its
final URL is conditional, and a 304 to it is that check confirmed (see
conditional.py). Each request carries the headers and timeout of its own
host (hosts.py). A final status the config accepts for the host that gave it
(`--accept`, `hosts:`) makes the check OK with that real status, and nothing
is read from it: a 403 from a bot wall has no head or image to compare.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from auditor.config import CrawlConfig
from auditor.crawl.body import release
from auditor.crawl.budget import Budget
from auditor.crawl.client import HEAD_FALLBACK_STATUSES, ByteRange, Client, first_method, is_success
from auditor.crawl.conditional import Revalidation, with_validators
from auditor.crawl.errors import UnusableRedirect
from auditor.crawl.guard import AddressGuard
from auditor.crawl.hosts import HostPolicy, HostSettings
from auditor.crawl.image import probe_image
from auditor.crawl.page import read_page
from auditor.crawl.politeness import Politeness
from auditor.crawl.redirects import RedirectChain
from auditor.crawl.retry import parse_retry_after
from auditor.images import ImageProbe
from auditor.model import Check, Kind


class Fetcher:
    def __init__(
        self,
        client: Client,
        config: CrawlConfig,
        *,
        guard: AddressGuard,
        politeness: Politeness,
        hosts: HostPolicy | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.guard = guard
        self.politeness = politeness
        self.hosts = hosts or politeness.hosts

    async def fetch(
        self, url: str, kind: Kind, chain: RedirectChain, budget: Budget, *, previous: Check | None = None
    ) -> Check:
        """The check of `url` as the end of its chain answers it (or as `previous`, confirmed by a 304).

        Raises CrawlError (or what httpx raised, for the caller to map) when
        there is no answer, and TimeoutError when the budget runs out; `chain`
        keeps the hops made so far either way.
        """
        method = first_method(kind)
        revalidation = Revalidation(url, kind, previous)
        probe = ImageProbe(max_bytes=self.config.max_image_bytes) if kind is Kind.IMAGE else None
        first_range = probe.next_range() if probe is not None else None
        while True:
            async with budget.spend():
                host = await self.guard.check(chain.current)
            settings = self.hosts(host)
            async with self.politeness.gate(host).slot():
                async with budget.spend():
                    try:
                        conditions = revalidation.headers_for(chain.current)
                        response = await self._send(method, chain, kind, settings, first_range, conditions)
                        if method == "HEAD" and response.status_code in HEAD_FALLBACK_STATUSES:
                            await self._release(response)
                            method = "GET"
                            response = await self._send(method, chain, kind, settings, None, conditions)
                    except UnusableRedirect as unusable:
                        chain.refused(unusable)
                        raise
                try:
                    async with budget.spend():
                        self.politeness.adapt(host, response.status_code)
                        if chain.follow(response):
                            continue
                        answer = await self._read(url, kind, response, chain, probe, revalidation, settings)
                        return self._accepted(answer)
                finally:
                    # Outside the budget: the answer is in, and keeping the connection must not cost it.
                    await self._release(response)

    async def _release(self, response: httpx.Response) -> None:
        await release(response, drain_bytes=self.config.drain_bytes, drain_timeout=self.config.drain_timeout)

    async def _send(
        self,
        method: str,
        chain: RedirectChain,
        kind: Kind,
        settings: HostSettings,
        byte_range: ByteRange | None,
        conditions: dict[str, str],
    ) -> httpx.Response:
        return await self.client.send(
            method,
            chain.current,
            kind,
            chain.cookies,
            byte_range=byte_range,
            conditions=conditions,
            extra_headers=settings.headers,
            request_timeout=settings.request_timeout,
        )

    def _accepted(self, answer: Check) -> Check:
        """The answer, OK if its status is one the config accepts from the host that gave it."""
        if answer.ok or answer.status is None:
            return answer
        host = urlsplit(answer.final_url or answer.url).hostname or ""
        return replace(answer, ok=True) if self.config.accepts(host, answer.status) else answer

    async def _read(
        self,
        url: str,
        kind: Kind,
        response: httpx.Response,
        chain: RedirectChain,
        probe: ImageProbe | None,
        revalidation: Revalidation,
        settings: HostSettings,
    ) -> Check:
        status = response.status_code
        answer = Check(
            url=url,
            kind=kind,
            status=status,
            ok=is_success(status),
            final_url=chain.current,
            redirects=tuple(chain.hops),
            content_type=response.headers.get("content-type"),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
        confirmed = revalidation.confirmed(answer, response)
        if confirmed is not None:
            return confirmed
        answer = with_validators(answer, response)
        if probe is not None:

            async def ask_for(byte_range: ByteRange | None) -> httpx.Response:
                return await self.client.send(
                    "GET",
                    chain.current,
                    kind,
                    chain.cookies,
                    byte_range=byte_range,
                    extra_headers=settings.headers,
                    request_timeout=settings.request_timeout,
                )

            return await probe_image(
                answer, response, probe, ask_for, self._release, max_bytes=self.config.max_image_bytes
            )
        if not answer.ok or response.request.method == "HEAD":
            return answer
        return await read_page(answer, response, chain.current, self.config)
