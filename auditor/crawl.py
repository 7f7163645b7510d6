"""Stage 3: unique URLs -> checks. The only stage that touches the network.

One shared httpx.AsyncClient; a fixed pool of workers bounds global
concurrency; every host has its own gate (semaphore + asyncio-throttle rate +
an adaptive delay that grows on 429/503 and recovers on success). Redirects are
followed here, not by httpx, so every hop passes the private-address guard and
the host gate, and the whole chain is kept.

A failed link is data: `Check.reason` says why, and nothing here raises for a
network failure. Verdicts (dead, blocked, ...) are the rules stage's job.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
from asyncio_throttle import Throttler

from auditor.config import CrawlConfig
from auditor.images import FIRST_RANGE_BYTES, ImageProbe
from auditor.links import AMP_CACHE, IMAGE, InvalidURL, normalize_url
from auditor.model import Check, Hop
from auditor.pagehead import HeadParser
from auditor.store import now_iso

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SLOW_DOWN_STATUSES = frozenset({429, 503})
# Servers that mishandle HEAD answer these; only a GET gives a verdict.
HEAD_FALLBACK_STATUSES = frozenset({400, 403, 404, 405, 500, 501})
INVALID_REDIRECT = "invalid-redirect"
# Reasons a retry cannot change: the name does not exist, the certificate is wrong,
# the server redirects somewhere that is not an http(s) URL...
FINAL_REASONS = frozenset({"dns", "tls", "private-address", "redirect-loop", "too-many-redirects", INVALID_REDIRECT})
AMP_CACHE_SUFFIX = ".cdn.ampproject.org"


class Resolver(Protocol):
    async def __call__(self, host: str, port: int) -> list[str]: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class _UnusableRedirect(Exception):
    """A redirect whose Location is not an http(s) URL: nothing a retry can change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def redirect_target(current: str, location: str) -> str:
    """The normalised URL a Location header points to, resolved against the current URL; InvalidURL if none."""
    try:
        joined = urljoin(current, location)
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc
    return normalize_url(joined)


class _Failure(Exception):
    """A network outcome that ends an attempt; carries the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def host_bucket(host: str) -> str:
    """All AMP cache subdomains are one backend and share one politeness bucket."""
    host = host.lower()
    return "cdn.ampproject.org" if host.endswith(AMP_CACHE_SUFFIX) else host


class _Budget:
    """The per-attempt deadline, spent only while resolving or talking to the
    server: waiting in a host's politeness queue is our choice, not its fault."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    @asynccontextmanager
    async def spend(self) -> AsyncIterator[None]:
        if self.remaining <= 0:
            raise TimeoutError
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.remaining):
                yield
        finally:
            self.remaining -= time.monotonic() - started


class HostGate:
    """Per-host politeness: concurrency, rate, and a delay that adapts to 429/503."""

    def __init__(self, config: CrawlConfig) -> None:
        self.semaphore = asyncio.Semaphore(config.per_host)
        # One request per 1/rate seconds: evenly spaced, no bursts at a second's start.
        self.throttler = Throttler(rate_limit=1, period=1.0 / config.rate)
        self.delay = 0.0
        self.max_delay = config.max_retry_wait

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.semaphore:
            if self.delay:
                await asyncio.sleep(self.delay)
            async with self.throttler:
                pass
            yield

    def slow_down(self) -> None:
        self.delay = min(self.max_delay, max(1.0, self.delay * 2))

    def recover(self) -> None:
        self.delay = self.delay / 2 if self.delay >= 0.2 else 0.0


class Crawler:
    def __init__(
        self,
        config: CrawlConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.config = config
        self.resolver = resolver
        self._transport = transport
        self._gates: dict[str, HostGate] = {}
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Crawler:
        self.client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            event_hooks={"response": [self._refuse_unusable_redirect]},
            timeout=httpx.Timeout(self.config.timeout, connect=min(self.config.connect_timeout, self.config.timeout)),
            limits=httpx.Limits(
                max_connections=self.config.concurrency, max_keepalive_connections=self.config.concurrency
            ),
            headers={
                "User-Agent": self.config.user_agent,
                # Only encodings we can decode with a bound on the output size.
                "Accept-Encoding": "gzip, deflate",
                "Accept": "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.8",
            },
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    def gate(self, host: str) -> HostGate:
        bucket = host_bucket(host)
        if bucket not in self._gates:
            self._gates[bucket] = HostGate(self.config)
        return self._gates[bucket]

    # -- many URLs ----------------------------------------------------------
    async def crawl(self, targets: Iterable[tuple[str, str]]) -> AsyncIterator[Check]:
        """Check every (url, kind); yield checks as they complete.

        A fixed pool of workers pulls from a bounded queue, so memory stays flat
        however many URLs there are. Closing the iterator early (interrupt)
        cancels the workers.
        """
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(maxsize=self.config.concurrency * 2)
        results: asyncio.Queue[Check | None] = asyncio.Queue()

        feed_failures: list[Exception] = []

        async def feed() -> None:
            try:
                for target in targets:
                    await queue.put(target)
            except Exception as exc:  # raised to the caller once the workers have drained
                feed_failures.append(exc)
            for _ in range(self.config.concurrency):
                await queue.put(None)

        async def work() -> None:
            while (target := await queue.get()) is not None:
                await results.put(await self.check(*target))
            await results.put(None)

        tasks = [asyncio.create_task(feed())]
        tasks += [asyncio.create_task(work()) for _ in range(self.config.concurrency)]
        try:
            finished_workers = 0
            while finished_workers < self.config.concurrency:
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
    async def check(self, url: str, kind: str) -> Check:
        started = time.monotonic()
        checked_at = now_iso()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(url, kind)
            except Exception as exc:  # a bug of ours must cost one URL, never the crawl
                result = Check(
                    url=url,
                    kind=kind,
                    ok=False,
                    reason="internal-error",
                    message=f"auditor failed on this URL: {type(exc).__name__}: {exc}",
                )
                break
            wait = self._retry_wait(result, attempt)
            if wait is None:
                break
            await asyncio.sleep(wait)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return replace(result, attempts=attempt, elapsed_ms=elapsed_ms, checked_at=checked_at)

    def _retry_wait(self, result: Check, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        if attempt > self.config.retries:
            return None
        retryable = result.status in RETRY_STATUSES or (result.status is None and result.reason not in FINAL_REASONS)
        if not retryable:
            return None
        if result.retry_after is not None:
            # The server said when; a wait beyond our cap means give up now.
            return result.retry_after if result.retry_after <= self.config.max_retry_wait else None
        backoff = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return backoff * random.uniform(0.5, 1.0)

    async def _attempt(self, url: str, kind: str) -> Check:
        """One try: the whole redirect chain and the body, within one time budget."""
        hops: list[Hop] = []
        try:
            return await self._follow(url, kind, hops, _Budget(self.config.timeout))
        except TimeoutError:
            return Check(
                url=url,
                kind=kind,
                ok=False,
                reason="timeout",
                redirects=tuple(hops),
                message=f"no complete answer within {self.config.timeout:g}s",
            )
        except _Failure as failure:
            return Check(
                url=url,
                kind=kind,
                ok=False,
                reason=failure.reason,
                message=str(failure),
                redirects=tuple(hops),
                final_url=hops[-1].url if hops else None,
            )

    async def _follow(self, url: str, kind: str, hops: list[Hop], budget: _Budget) -> Check:
        assert self.client is not None, "use Crawler as an async context manager"
        cookies = httpx.Cookies()
        seen = {url}
        current = url
        method = "HEAD" if kind == AMP_CACHE else "GET"
        first_range = (0, FIRST_RANGE_BYTES - 1) if kind == IMAGE else None
        while True:
            async with budget.spend():
                host = await self._guard(current)
            async with self.gate(host).slot(), budget.spend():
                try:
                    response = await self._send(method, current, kind, cookies, range_=first_range)
                    if method == "HEAD" and response.status_code in HEAD_FALLBACK_STATUSES:
                        await response.aclose()
                        method = "GET"
                        response = await self._send(method, current, kind, cookies)
                except _UnusableRedirect as unusable:
                    hops.append(Hop(unusable.status, current))
                    raise _Failure(INVALID_REDIRECT, str(unusable)) from None
                try:
                    cookies.extract_cookies(response)
                    status = response.status_code
                    self._adapt(host, status)
                    location = response.headers.get("location")
                    if status in REDIRECT_STATUSES and location:
                        hops.append(Hop(status, current))
                        target = redirect_target(current, location)
                        if target in seen:
                            raise _Failure("redirect-loop", f"redirect loop back to {target}")
                        if len(hops) > self.config.max_redirects:
                            raise _Failure("too-many-redirects", f"more than {self.config.max_redirects} redirects")
                        seen.add(target)
                        current = target
                        continue
                    return await self._read(url, kind, current, response, hops, cookies)
                finally:
                    await response.aclose()

    @staticmethod
    async def _refuse_unusable_redirect(response: httpx.Response) -> None:
        """httpx builds the next request of every redirect, even one it does not follow, and
        raises on a Location it cannot use; our own rule judges the Location first, so a bad
        one is one final outcome (not a protocol error or a crash) and the hop is kept."""
        location = response.headers.get("location")
        if response.status_code in REDIRECT_STATUSES and location:
            try:
                redirect_target(str(response.request.url), location)
            except InvalidURL as exc:
                raise _UnusableRedirect(
                    response.status_code, f"redirect to {location!r}, which is not a usable http(s) URL: {exc}"
                ) from None

    def _adapt(self, host: str, status: int) -> None:
        gate = self.gate(host)
        if status in SLOW_DOWN_STATUSES:
            gate.slow_down()
        elif status < 400:
            gate.recover()

    async def _guard(self, url: str) -> str:
        """Refuse private targets before connecting; also turns DNS failure into a reason."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self.config.allow_private:
            return host
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except socket.gaierror as exc:
            raise _Failure("dns", f"cannot resolve {host}: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise _Failure("dns", f"cannot resolve {host}: {exc}") from exc
        blocked = [address for address in addresses if not is_public_address(address)]
        if blocked:
            raise _Failure(
                "private-address",
                f"{host} resolves to non-public address {blocked[0]}; not fetched (use --allow-private to allow)",
            )
        return host

    async def _send(
        self, method: str, url: str, kind: str, cookies: httpx.Cookies, *, range_: tuple[int, int] | None = None
    ) -> httpx.Response:
        assert self.client is not None
        headers = {}
        if kind == IMAGE:
            # Identity, so Range offsets are offsets into the image bytes.
            headers["Accept-Encoding"] = "identity"
            if range_ is not None:
                headers["Range"] = f"bytes={range_[0]}-{range_[1]}"
        request = self.client.build_request(method, url, headers=headers, cookies=cookies)
        try:
            return await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _classify_error(exc) from exc

    async def _read(
        self, url: str, kind: str, final_url: str, response: httpx.Response, hops: list[Hop], cookies: httpx.Cookies
    ) -> Check:
        status = response.status_code
        base = {
            "url": url,
            "kind": kind,
            "status": status,
            "ok": 200 <= status < 300,
            "final_url": final_url,
            "redirects": tuple(hops),
            "content_type": response.headers.get("content-type"),
            "retry_after": parse_retry_after(response.headers.get("retry-after")),
        }
        if not base["ok"] and kind != IMAGE:
            return Check(**base)
        if kind == IMAGE:
            return await self._probe_image(base, response, cookies)
        if response.request.method == "HEAD":
            return Check(**base)
        parser = HeadParser(final_url, max_bytes=self.config.max_head_bytes, encoding=response.charset_encoding)
        read = await _consume(response, parser.feed, self.config.max_body_bytes)
        return Check(**base, bytes_read=read, head=parser.result())

    async def _probe_image(self, base: dict[str, Any], response: httpx.Response, cookies: httpx.Cookies) -> Check:
        """Ask for the first bytes only, then for whatever range the probe names next.

        The probe knows its format: usually the next range continues the last
        one, but a TIFF points at its IFD, which can be anywhere in the file.
        A 200 means the server ignored Range: stream that body and stop as soon
        as the size is known. A 416 means it disliked our range: ask once without.
        `bytes_read` is what came off the wire, never more than the image cap.
        """
        probe = ImageProbe(max_bytes=self.config.max_image_bytes)
        url = str(base["final_url"])
        received = 0
        current = response  # the caller closes `response`; we close what we open
        try:
            if current.status_code == 416:
                current = await self._send("GET", url, IMAGE, cookies)
                base = {**base, "status": current.status_code, "ok": 200 <= current.status_code < 300}
            while base["ok"]:
                received += await _consume(current, probe.feed, self.config.max_image_bytes - received, raw=True)
                if probe.done or current.status_code != 206:
                    break
                span = probe.next_range()
                total = _content_range_total(current.headers.get("content-range"))
                if span is None or (total is not None and span[0] >= total):
                    break
                if current is not response:
                    await current.aclose()
                current = await self._send("GET", url, IMAGE, cookies, range_=span)
                if current.status_code == 200:  # Range dropped mid-way: the body starts over
                    probe = ImageProbe(max_bytes=self.config.max_image_bytes)
                elif current.status_code == 206:
                    probe.seek(_content_range_start(current.headers.get("content-range"), default=span[0]))
                else:
                    break
        finally:
            if current is not response:
                await current.aclose()
        if not base["ok"]:
            return Check(**base)
        if not probe.done:
            probe.finish()
        info = probe.info
        return Check(
            **{**base, "content_type": current.headers.get("content-type", base["content_type"])},
            bytes_read=received,
            width=info.width if info else None,
            height=info.height if info else None,
            image_format=info.format if info else None,
            image_error=probe.error,
        )


async def _consume(response: httpx.Response, feed: Any, cap: int, *, raw: bool = False) -> int:
    """Stream the body into `feed` until it says done or `cap` decoded bytes are read.

    Decompression is ours (zlib with max_length), not httpx's, so a gzip bomb
    never inflates more than the cap in memory.
    """
    encoding = "identity" if raw else response.headers.get("content-encoding", "identity").strip().lower()
    decoder = _decoder(encoding)
    read = 0
    try:
        async for chunk in response.aiter_raw():
            pending = chunk
            while pending and read < cap:
                if decoder is None:
                    data, pending = pending[: cap - read], b""
                else:
                    data = decoder.decompress(pending, cap - read)
                    pending = decoder.unconsumed_tail
                read += len(data)
                if data and feed(data):
                    return read
                if decoder is not None and not data:
                    break
            if read >= cap:
                return read
    except httpx.HTTPError as exc:
        raise _classify_error(exc) from exc
    except zlib.error as exc:
        raise _Failure("other", f"cannot decode {encoding} body: {exc}") from exc
    return read


def _decoder(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


def _content_range_start(value: str | None, *, default: int) -> int:
    """Where a 206 body starts in the file: `bytes 4096-8191/20000` -> 4096."""
    if not value:
        return default
    unit, _, spec = value.strip().partition(" ")
    first = spec.partition("-")[0].strip()
    return int(first) if unit.lower() == "bytes" and first.isdigit() else default


def _content_range_total(value: str | None) -> int | None:
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _classify_error(exc: BaseException) -> _Failure:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return _Failure("timeout", f"timed out ({type(exc).__name__})")
    chain = _causes(exc)
    if any(isinstance(cause, ssl.SSLError) for cause in chain) or "CERTIFICATE_VERIFY_FAILED" in message:
        return _Failure("tls", f"TLS error: {message}")
    if any(isinstance(cause, socket.gaierror) for cause in chain) or "Name or service not known" in message:
        return _Failure("dns", f"DNS lookup failed: {message}")
    if any(isinstance(cause, ConnectionRefusedError) for cause in chain) or "Connection refused" in message:
        return _Failure("refused", f"connection refused: {message}")
    if any(isinstance(cause, ConnectionResetError) for cause in chain) or "reset" in message.lower():
        return _Failure("reset", f"connection reset: {message}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return _Failure("reset", f"server closed the connection: {message}")
    if isinstance(exc, httpx.ReadError):
        return _Failure("reset", f"read failed: {message}")
    return _Failure("other", message)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
