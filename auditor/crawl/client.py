"""The one shared httpx client, and how each request is built for its kind of URL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

import httpx

from auditor.config import CrawlConfig
from auditor.model import Kind

ByteRange = tuple[int, int]  # first and last byte, inclusive, as a Range header says them
ACCEPT = "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.8"
# Only encodings we can decode with a bound on the output size (see body.py).
ACCEPT_ENCODING = "gzip, deflate"
# Servers that mishandle HEAD answer these; only a GET gives a verdict.
HEAD_FALLBACK_STATUSES = frozenset(
    {
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.METHOD_NOT_ALLOWED,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.NOT_IMPLEMENTED,
    }
)

ResponseHook = Callable[[httpx.Response], Awaitable[None]]


def open_client(
    config: CrawlConfig, *, transport: httpx.AsyncBaseTransport | None, on_response: ResponseHook
) -> httpx.AsyncClient:
    """Redirects are not followed by httpx: every hop must pass the guard and its host's gate."""
    return httpx.AsyncClient(
        transport=transport or PoolPerOrigin(config),
        follow_redirects=False,
        event_hooks={"response": [on_response]},
        timeout=httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)),
        headers={"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING, "Accept": ACCEPT},
    )


Origin = tuple[bytes, bytes, int | None]


class PoolPerOrigin(httpx.AsyncBaseTransport):
    """One small connection pool per origin (scheme, host, port), kept alive between requests.

    httpcore's pool scans every connection it holds, twice per request, so one
    pool shared by every host costs more CPU the more hosts an audit meets, and
    a shared size limit evicts the idle connection of one host for the next
    host's request (a new TLS handshake nearly every time). Per origin, a pool
    holds at most that host's own connections. Pools are kept in LRU order; past
    `max_idle_origins`, the least recently used one is closed once no request of
    it can still be under way (none started for longer than a request may last).
    """

    def __init__(self, config: CrawlConfig) -> None:
        self._ssl_context = httpx.create_ssl_context(trust_env=True)  # one CA load, shared by every pool
        self._limits = httpx.Limits(
            max_connections=config.per_host + config.idle_per_origin,
            max_keepalive_connections=config.idle_per_origin,
        )
        self._max_idle_origins = config.max_idle_origins
        # Longest a request and its body drain can take; a pool untouched for longer has none under way.
        self._settled_after = config.timeout + config.drain_timeout + 1.0
        self._pools: OrderedDict[Origin, tuple[httpx.AsyncHTTPTransport, float]] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        entry = self._pools.pop(origin, None)
        pool = entry[0] if entry else httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=self._limits)
        self._pools[origin] = (pool, time.monotonic())
        if len(self._pools) > self._max_idle_origins:
            await self._close_settled()
        return await pool.handle_async_request(request)

    async def _close_settled(self) -> None:
        settled = time.monotonic() - self._settled_after
        while len(self._pools) > self._max_idle_origins:
            origin, (pool, last_used) = next(iter(self._pools.items()))
            if last_used > settled:
                return  # the oldest may still be in use: over the bound for now, never cut a request short
            del self._pools[origin]
            await pool.aclose()

    async def aclose(self) -> None:
        pools = [pool for pool, _ in self._pools.values()]
        self._pools.clear()
        for pool in pools:
            await pool.aclose()


def first_method(kind: Kind) -> str:
    """AMP cache URLs only need to exist, so HEAD; pages and images are read, so GET."""
    return "HEAD" if kind is Kind.AMP_CACHE else "GET"


def is_success(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kind: Kind,
    cookies: httpx.Cookies,
    *,
    byte_range: ByteRange | None = None,
    conditions: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send one request and return as soon as the headers are in; the body is streamed by the caller.

    `conditions` are the conditional headers of a revalidation (conditional.py); an image's
    Range goes along with them, since a server weighs them first.
    """
    headers = dict(conditions or {})
    if kind is Kind.IMAGE:
        # Identity, so Range offsets are offsets into the image bytes.
        headers["Accept-Encoding"] = "identity"
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    request = client.build_request(method, url, headers=headers, cookies=cookies)
    return await client.send(request, stream=True)
