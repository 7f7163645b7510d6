"""The one shared httpx client, and how each request is built for its kind of URL.

The client takes proxies from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY (httpx's
`trust_env`) unless `proxy` is set, which then carries every request. Certificates are
checked against SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle (httpx's choice),
plus `ca_bundle` when given.
"""

from __future__ import annotations

import http.cookiejar
import ssl
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

import httpcore
import httpx

from auditor.config import CrawlConfig
from auditor.crawl.connect import AddressLookup, GuardedBackend
from auditor.errors import ConfigError
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
_NO_BODY = httpx.ByteStream(b"")  # holds no state: one for every request


class Client:
    """The crawl's HTTP client: builds each request and sends it, returning once the headers are in.

    Straight to the hosts, a request goes to auditor's own transport (or the one a test gives):
    an `httpx.AsyncClient` would add, per request, a cookie extraction into a jar that refuses
    every cookie, a merge of its default headers and timeout, an auth flow for URLs that carry
    no credentials (links.py refuses those) and a stream wrapper that only times the body.
    Through a proxy, httpx's client picks each URL's transport (HTTP_PROXY / NO_PROXY), so it
    sends. Either way the request is the same, and `on_response` sees every response first.
    """

    def __init__(
        self,
        config: CrawlConfig,
        *,
        transport: httpx.AsyncBaseTransport | None,
        on_response: ResponseHook,
        lookup: AddressLookup,
    ) -> None:
        """Redirects are not followed by httpx: every hop must pass the guard and its host's gate.

        `lookup` gives the addresses a connection to a host may use (the guard's).
        """
        context = ssl_context(config)
        self._on_response = on_response
        self._transport = transport or _direct_transport(config, context, lookup)
        self._proxied = None if self._transport is not None else _proxied_client(config, context, on_response)
        self._timeout = httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)).as_dict()
        # httpx's default headers (Connection: keep-alive among them) with ours over them, in its order.
        self._defaults = {
            "accept": ("Accept", ACCEPT),
            "accept-encoding": ("Accept-Encoding", ACCEPT_ENCODING),
            "connection": ("Connection", "keep-alive"),
            "user-agent": ("User-Agent", config.user_agent),
        }
        self._merged: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}

    async def send(
        self,
        method: str,
        url: str,
        kind: Kind,
        cookies: httpx.Cookies,
        *,
        byte_range: ByteRange | None = None,
        conditions: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        request_timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request and return as soon as the headers are in; the body is streamed by the caller.

        `conditions` are the conditional headers of a revalidation (conditional.py); an image's
        Range goes along with them, since a server weighs them first. `extra_headers` are the
        configured ones for this host (hosts.py); they cannot name what is set here (network.py
        refuses those names). `request_timeout` replaces the client's for a host with its own.
        """
        headers: list[tuple[str, str]] = self._headers(extra_headers or {}, identity=kind is Kind.IMAGE)
        if conditions:
            headers = [*headers, *conditions.items()]
        if kind is Kind.IMAGE and byte_range is not None:
            headers = [*headers, ("Range", f"bytes={byte_range[0]}-{byte_range[1]}")]
        timeout = request_timeout.as_dict() if request_timeout is not None else self._timeout
        # httpx's request extension (by keyword: the name is httpx's, not a Reason of ours)
        extensions = dict(timeout=timeout)  # noqa: C408
        # A request given its (empty) stream is taken as it is: the Host header that httpx would
        # add is ours to add, and the body encoding it would work out for no body is skipped.
        target = httpx.URL(url)
        request = httpx.Request(
            method,
            target,
            headers=[("Host", target.netloc.decode("ascii")), *headers],
            extensions=extensions,
            stream=_NO_BODY,
        )
        if cookies:
            cookies.set_cookie_header(request)
        if self._proxied is not None:
            return await self._proxied.send(request, stream=True)
        assert self._transport is not None
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await self._on_response(response)
        except BaseException:
            await response.aclose()
            raise
        return response

    def _headers(self, extra: Mapping[str, str], *, identity: bool) -> list[tuple[str, str]]:
        """The defaults with a host's configured headers over them (names compared without case), kept per host."""
        key = (*extra.items(), ("", "identity" if identity else ""))
        merged = self._merged.get(key)
        if merged is None:
            headers = dict(self._defaults)
            headers.update((name.lower(), (name, value)) for name, value in extra.items())
            if identity:
                # Identity, so Range offsets are offsets into the image bytes.
                headers["accept-encoding"] = ("Accept-Encoding", "identity")
            merged = self._merged[key] = list(headers.values())
        return merged

    async def aclose(self) -> None:
        if self._proxied is not None:
            await self._proxied.aclose()
        elif self._transport is not None:
            await self._transport.aclose()


def _proxied_client(config: CrawlConfig, context: ssl.SSLContext, on_response: ResponseHook) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        proxy=config.proxy.value if config.proxy is not None else None,
        verify=context,
        # Requests in flight are bounded by the workers.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=config.concurrency),
        follow_redirects=False,
        # Cookies live as long as one redirect chain (redirects.py keeps them): httpx's client-wide jar
        # would carry one URL's cookies to every later URL of its host, so verdicts would hang on order.
        cookies=http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        event_hooks={"response": [on_response]},
    )


def _direct_transport(
    config: CrawlConfig, context: ssl.SSLContext, lookup: AddressLookup
) -> httpx.AsyncBaseTransport | None:
    """A pool per origin when requests go straight to their hosts; through a proxy, httpx's own.

    httpx reads proxies from the environment only for a client whose transport it made itself.
    """
    proxied = config.proxy is not None or any(scheme in urllib.request.getproxies() for scheme in _PROXIED)
    return None if proxied else PoolPerOrigin(config, context, GuardedBackend(lookup))


_PROXIED = ("http", "https", "all")
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

    def __init__(self, config: CrawlConfig, context: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend) -> None:
        self._ssl_context = context  # one CA load, shared by every pool
        self._backend = backend
        # In flight per host is politeness.py's to bound (a host's rule may raise it); idle, one host's usual share.
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=config.per_host)
        self._max_idle_origins = config.max_idle_origins
        # Longest a request and its body drain can take (a host's rule may allow more than the global
        # timeout); a pool untouched for longer has none under way.
        longest = max([config.timeout, *(rule.timeout for rule in config.hosts.rules if rule.timeout is not None)])
        self._settled_after = longest + config.drain_timeout + 1.0
        self._pools: OrderedDict[Origin, tuple[httpx.AsyncHTTPTransport, float]] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        entry = self._pools.pop(origin, None)
        pool = entry[0] if entry else _OriginTransport(self._ssl_context, self._limits, self._backend)
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


class _OriginTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over an httpcore pool that connects through `backend`.

    httpx takes no network backend, while its pool (httpcore's public API) does: the pool is made
    anew with one. `_pool` is the one attribute of httpx's own that this relies on.
    """

    def __init__(self, context: ssl.SSLContext, limits: httpx.Limits, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(verify=context, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def ssl_context(config: CrawlConfig) -> ssl.SSLContext:
    """httpx's default context, trusting `ca_bundle` too; a ConfigError when that file is no PEM bundle."""
    context = httpx.create_ssl_context(trust_env=True)
    if config.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=config.ca_bundle)
        except ssl.SSLError:  # an OSError too, with the OpenSSL code as its text: say it in words
            raise ConfigError(f"--ca-bundle: cannot use {config.ca_bundle}: it holds no PEM certificate") from None
        except OSError as exc:
            raise ConfigError(f"--ca-bundle: cannot use {config.ca_bundle}: {exc.strerror or exc}") from None
    return context


def first_method(kind: Kind) -> str:
    """AMP cache URLs only need to exist, so HEAD; pages and images are read, so GET."""
    return "HEAD" if kind is Kind.AMP_CACHE else "GET"


def is_success(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES
