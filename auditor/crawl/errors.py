"""Why an attempt ended without an answer to judge: our exceptions, and the one
place where foreign ones (httpx, ssl, socket) become a `Reason`.

No `CrawlError` escapes a crawl: `pool` turns every one into a
`Check` whose `reason` is the error's, because a failed link is data.

    CrawlError(reason, message)   an attempt ended; `reason` is a model `Reason`
    └── UnusableRedirect          a Location that is not an http(s) URL (raised in
                                  httpx's response hook, so it keeps the status)

Foreign exceptions are mapped by `map_exception`, once, by type. httpx wraps
httpcore's exception, which was raised during anyio's, which was raised from
the socket's (and anyio groups the failures of several addresses), so each row
below is looked for anywhere in that tree (`__cause__`, `__context__`, group
members); the rows are tried in this order and the first that occurs decides:

    httpx.TimeoutException                    timeout
    ssl.SSLError (certificate, handshake)     tls
    socket.gaierror                           dns
    ConnectionRefusedError                    refused
    ConnectionResetError, ConnectionAbortedError,
    BrokenPipeError                           reset
    httpx.RemoteProtocolError                 reset   (closed before or during the answer)
    httpx.ReadError, httpx.WriteError         reset   (the connection broke mid-exchange)
    any other OSError                         other   (unreachable network, no route...)
    httpx.ConnectError                        refused (no connection, and nothing closer said why)
    anything else httpx raises                other

Message text is never matched: it differs between platforms, libraries and
their versions, and a page can put any words in an error.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx

from auditor.model import Reason


class CrawlError(Exception):
    """An attempt that ended without an HTTP answer to judge; `reason` says why."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnusableRedirect(CrawlError):
    """A redirect whose Location is not an http(s) URL: nothing a retry can change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(Reason.INVALID_REDIRECT, message)
        self.status = status


# (type found in the tree, the reason, how the message starts), most telling first.
_BY_TYPE: tuple[tuple[type[BaseException], Reason, str], ...] = (
    (httpx.TimeoutException, Reason.TIMEOUT, "timed out"),
    (ssl.SSLError, Reason.TLS, "TLS error"),
    (socket.gaierror, Reason.DNS, "DNS lookup failed"),
    (ConnectionRefusedError, Reason.REFUSED, "connection refused"),
    (ConnectionResetError, Reason.RESET, "connection reset"),
    (ConnectionAbortedError, Reason.RESET, "connection reset"),
    (BrokenPipeError, Reason.RESET, "connection reset"),
    (httpx.RemoteProtocolError, Reason.RESET, "server closed the connection"),
    (httpx.ReadError, Reason.RESET, "read failed"),
    (httpx.WriteError, Reason.RESET, "write failed"),
    (OSError, Reason.OTHER, "network error"),
    (httpx.ConnectError, Reason.REFUSED, "connection refused"),
)


def map_exception(exc: Exception) -> CrawlError:
    """The `CrawlError` for what an exchange with a server raised, decided by the types in its tree.

    Our own `CrawlError` passes unchanged, so the caller can catch both at one place.
    """
    if isinstance(exc, CrawlError):
        return exc
    found = list(exception_tree(exc))
    detail = str(exc) or type(exc).__name__
    for kind, reason, what in _BY_TYPE:
        if any(isinstance(member, kind) for member in found):
            if reason is Reason.TIMEOUT:
                return CrawlError(reason, f"{what} ({type(exc).__name__})")
            return CrawlError(reason, f"{what}: {detail}")
    return CrawlError(Reason.OTHER, detail)


def exception_tree(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then everything it was raised from or during, each once (a context can loop back)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(linked for linked in (current.__cause__, current.__context__) if linked is not None)


def unresolvable(host: str, exc: OSError) -> CrawlError:
    """Our own lookup of `host` failed: whatever the resolver raised, the name gave no address."""
    detail = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
    return CrawlError(Reason.DNS, f"cannot resolve {host}: {detail}")
