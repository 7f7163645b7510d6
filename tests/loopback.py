"""A real HTTP/1.1 server on 127.0.0.1 for tests that need sockets, not mocks.

respx covers status codes and bodies; it cannot produce a hung socket, a TCP
reset, a body that drips forever or a TLS hostname mismatch. This server can,
and it only ever listens on 127.0.0.1 and never connects anywhere itself.

It runs its own asyncio event loop in a background thread, so synchronous and
asynchronous tests can both use it::

    with LoopbackServer() as server:
        httpx.get(server.url_for("/flaky/503/abc"))   # 503
        httpx.get(server.url_for("/flaky/503/abc"))   # 200
        server.requests.for_path("/flaky/503/abc")    # both requests

Routes (the first path segment selects the behaviour; anything after the
documented part is free, so tests can make paths unique and never share the
per-path counters):

==================================  ===========================================
``/ok[/...]``                       200 small HTML page (title ``OK``)
``/status/<code>[/...]``            that status, always
``/flaky/<code>/...``               ``<code>`` on the first request to the path, then 200
``/retry-after/<value>/...``        429 + ``Retry-After: <value>`` (verbatim) once, then 200
``/retry-after-date/<seconds>/...`` 429 + ``Retry-After: <HTTP-date>`` that far ahead once, then 200
``/always-429[/...]``               429 + ``Retry-After: 1``, always
``/redirect/<code>[/...]``          ``<code>`` to ``/ok`` (relative), sets cookie ``hop=1``
``/chain/<n>/...``                  302 to ``/chain/<n-1>/...`` until ``/chain/0/...`` answers 200
``/loop/a...`` / ``/loop/b...``     302 to each other, same suffix, forever
``/redirect-to?url=<url>``          302 to ``<url>`` (the server never follows it itself)
``/hang[/...]``                     reads the request, never answers
``/slow-headers/<seconds>[/...]``   200 page after that delay
``/drip[/...]``                     200, ``Content-Length: 1000000``, then 1 byte per 0.5 s
``/reset[/...]``                    reads the request, then a TCP RST
``/close[/...]``                    reads the request, then a clean close with no response
``/head405[/...]``                  HEAD gets 405, GET gets the page
``/gzip-bomb[/...]``                200 gzip of 200 MiB of zeros (~200 KB on the wire)
``/big[/...]``                      200 chunked body of ``a`` bytes without end
``/image/<name>``                   bytes from :meth:`LoopbackServer.add_file`, honours Range
``/noimagerange/<name>``            the same bytes, ignores Range (always 200)
``/range416/<name>``                416 to any request with Range, 200 without
``/conditional/<name>``             the same bytes, honours Range, with ``ETag`` (a hash of the
                                    bytes) and ``Last-Modified`` (when they were added); 304 to a
                                    matching ``If-None-Match``, or without one to an
                                    ``If-Modified-Since`` not before ``Last-Modified``
``/last-modified/<name>``           the same, with ``Last-Modified`` only (no ``ETag``)
==================================  ===========================================

Exact paths registered with :meth:`LoopbackServer.add_route` win over all of
the above. Unknown paths get 404.

:class:`LoopbackProxy` is an HTTP proxy (CONNECT and plain forwarding) on 127.0.0.1
that only ever connects to 127.0.0.1, for tests of proxy settings.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import http
import inspect
import itertools
import math
import socket
import ssl
import struct
import tempfile
import threading
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import trustme

HOST = "127.0.0.1"

OK_PAGE = b"<html><head><title>OK</title></head><body>ok</body></html>"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

DRIP_DECLARED_LENGTH = 1_000_000
DRIP_INTERVAL_SECONDS = 0.5
BIG_CHUNK = b"a" * 65536
GZIP_BOMB_DECOMPRESSED_SIZE = 200 * 1024 * 1024
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

# Statuses whose responses never carry a body (RFC 9110 6.4.1).
BODYLESS_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))

HeaderItems = Mapping[str, str] | Sequence[tuple[str, str]]
HandlerResult = tuple[int, HeaderItems, bytes | str]
RouteHandler = Callable[["Request"], HandlerResult | Awaitable[HandlerResult]]


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str  # the request target as sent: path plus ``?query``
    headers: dict[str, str]  # names lowercased; repeated headers joined with ", "
    body: bytes
    http_version: str
    connection_id: int  # equal ids mean the client reused a keep-alive connection
    hit: int  # 1 for the first request to this path (query ignored), 2 for the next...
    received_at: float  # time.monotonic() when the request head was complete

    @property
    def path_only(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

    @property
    def cookies(self) -> dict[str, str]:
        cookies: dict[str, str] = {}
        for pair in self.headers.get("cookie", "").split(";"):
            name, separator, value = pair.strip().partition("=")
            if separator:
                cookies[name] = value
        return cookies


class RequestLog:
    """Every request the server received, in arrival order; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Request] = []

    def append(self, request: Request) -> None:
        with self._lock:
            self._entries.append(request)

    def all(self) -> list[Request]:
        with self._lock:
            return list(self._entries)

    def for_path(self, path: str) -> list[Request]:
        """Requests to ``path``; the query is compared only when ``path`` has one."""
        if "?" in path:
            return [request for request in self.all() if request.path == path]
        return [request for request in self.all() if request.path_only == path]

    def for_prefix(self, prefix: str) -> list[Request]:
        return [request for request in self.all() if request.path.startswith(prefix)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __iter__(self) -> Iterator[Request]:
        return iter(self.all())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --------------------------------------------------------------------------- responses


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class _BadRequest(Exception):
    """The request or a route argument is malformed: answer 400 and close."""


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _page(status: int = 200, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", HTML), *extra_headers], OK_PAGE)


def _status_response(status: int, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    headers = [("Content-Type", TEXT), *extra_headers]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Basic realm="loopback"'))
    return Response(status, headers, f"{status} {_reason(status)}\n".encode())


def _redirect(status: int, location: str, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(
        status,
        [("Location", location), ("Content-Type", TEXT), *extra_headers],
        f"redirecting to {location}\n".encode(),
    )


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadRequest(f"{what} must be an integer, got {text!r}") from None


def _parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise _BadRequest(f"seconds must be a number, got {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _BadRequest(f"seconds must be finite and >= 0, got {text!r}")
    return seconds


def _segment(segments: Sequence[str], index: int, what: str) -> str:
    if index >= len(segments) or not segments[index]:
        raise _BadRequest(f"missing {what} in path")
    return segments[index]


class _Unsatisfiable(Exception):
    pass


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Inclusive ``(first, last)`` for a single ``bytes=`` range, None to ignore it.

    RFC 9110 14.2 lets a server ignore Range headers it does not understand
    (multiple ranges, other units, garbage) and answer 200 with the full body.
    Raises _Unsatisfiable for a well-formed range that misses the body entirely.
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:  # suffix range: the last N bytes
            suffix_length = int(last_text)
            if suffix_length <= 0 or size == 0:
                raise _Unsatisfiable
            return max(0, size - suffix_length), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0 or last < first and last_text:
        return None
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)


# --------------------------------------------------------------------------- gzip bomb

_gzip_bomb_lock = threading.Lock()
_gzip_bomb: bytes | None = None


def gzip_bomb_bytes() -> bytes:
    """gzip of GZIP_BOMB_DECOMPRESSED_SIZE zero bytes, built once per process."""
    global _gzip_bomb
    with _gzip_bomb_lock:
        if _gzip_bomb is None:
            # Compress in 1 MiB steps so building it never holds 200 MiB in memory.
            compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            zeros = bytes(1024 * 1024)
            parts = [compressor.compress(zeros) for _ in range(GZIP_BOMB_DECOMPRESSED_SIZE // len(zeros))]
            parts.append(compressor.flush())
            _gzip_bomb = b"".join(parts)
        return _gzip_bomb


# --------------------------------------------------------------------------- helpers


def refused_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connecting to it is refused).

    The socket is bound but never listens, so closing it leaves no TIME_WAIT;
    another process could grab the port afterwards, which is unlikely enough.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


_server_numbers = itertools.count(1)


@dataclass(frozen=True)
class _StoredFile:
    data: bytes
    content_type: str
    modified: float  # seconds since the epoch, sent as Last-Modified by the conditional routes

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.data).hexdigest()[:16] + '"'

    @property
    def last_modified(self) -> str:
        return email.utils.formatdate(self.modified, usegmt=True)


# --------------------------------------------------------------------------- server


class LoopbackServer:
    """HTTP/1.1 (or HTTPS) server on 127.0.0.1 with a random free port.

    ``tls=True`` serves HTTPS with a certificate from a throwaway trustme CA,
    valid for ``tls_hostnames`` (IP and DNS SANs). Pass ``ca`` to share a CA
    between servers, e.g. for :meth:`wrong_name_server`.
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        tls_hostnames: Sequence[str] = (HOST, "localhost"),
        ca: trustme.CA | None = None,
        stop_timeout: float = 1.0,
    ) -> None:
        self.tls = tls
        self.tls_hostnames = tuple(tls_hostnames)
        self.ca: trustme.CA | None = (ca or trustme.CA()) if tls else None
        self.stop_timeout = stop_timeout
        self.requests = RequestLog()
        # Exceptions raised by route handlers (ours or a test's); a test can
        # assert this stays empty to catch server-side bugs hidden behind a 500.
        self.errors: list[BaseException] = []

        self._routes: dict[str, RouteHandler] = {}
        self._files: dict[str, _StoredFile] = {}
        self._hits: dict[str, int] = {}
        self._state_lock = threading.Lock()
        self._connection_ids = itertools.count(1)

        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        # Writers of connections not yet fully closed, so stop() can abort them
        # and wait until asyncio has really closed their sockets.
        self._open_writers: set[asyncio.StreamWriter] = set()
        # Strong references: the loop keeps only weak ones to running tasks.
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._startup_error: BaseException | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self._ca_pem_path: Path | None = None
        self._server_ssl_context: ssl.SSLContext | None = None

    # ----------------------------------------------------------------- public API

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LoopbackServer is not running; use it as a context manager")
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def ca_pem_path(self) -> Path:
        """The CA certificate (PEM) to trust, e.g. as SSL_CERT_FILE; TLS servers only."""
        if self._ca_pem_path is None:
            raise RuntimeError("ca_pem_path exists only on a running LoopbackServer(tls=True)")
        return self._ca_pem_path

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this server's CA (for httpx ``verify=``)."""
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

    def wrong_name_server(self, hostname: str = "wrong.example") -> LoopbackServer:
        """A new, not yet started TLS server whose certificate names only ``hostname``.

        It shares this server's CA, so a client trusting :attr:`ca_pem_path`
        fails on the hostname check alone, not on an unknown issuer.
        """
        if self.ca is None:
            raise RuntimeError("wrong_name_server() needs a LoopbackServer(tls=True)")
        return LoopbackServer(tls=True, tls_hostnames=(hostname,), ca=self.ca, stop_timeout=self.stop_timeout)

    def add_route(self, path: str, handler: RouteHandler) -> str:
        """Serve ``path`` (exact match, query ignored) with ``handler``; returns its URL.

        ``handler(request)`` may be sync or async and returns
        ``(status, headers, body)``: headers as a dict or (name, value) pairs,
        body as bytes or str (UTF-8). Content-Type defaults to text/html.
        """
        path = urllib.parse.urlsplit(path if path.startswith("/") else "/" + path).path
        with self._state_lock:
            self._routes[path] = handler
        return self.url_for(path) if self._port is not None else path

    def remove_route(self, path: str) -> None:
        with self._state_lock:
            self._routes.pop(path if path.startswith("/") else "/" + path, None)

    def add_file(
        self,
        path: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        modified: float | None = None,
    ) -> str:
        """Register bytes under a name served by ``/image/``, ``/noimagerange/``, ``/range416/``,
        ``/conditional/`` and ``/last-modified/``.

        ``path`` may be ``"cat.png"`` or ``"/image/cat.png"``; both register the
        name ``cat.png``. Returns the ``/image/<name>`` URL (or path if stopped).
        Adding a name again replaces its bytes: a new ETag, and ``modified``
        (default: now) as the new Last-Modified.
        """
        name = path.lstrip("/")
        for prefix in _FILE_ROUTE_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        if not name:
            raise ValueError("add_file() needs a file name")
        with self._state_lock:
            self._files[name] = _StoredFile(bytes(data), content_type, time.time() if modified is None else modified)
        image_path = f"/image/{name}"
        return self.url_for(image_path) if self._port is not None else image_path

    def hits(self, path: str) -> int:
        """How many requests reached ``path`` (query ignored)."""
        with self._state_lock:
            return self._hits.get(urllib.parse.urlsplit(path).path, 0)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LoopbackServer:
        if self._thread is not None:
            raise RuntimeError("LoopbackServer is already running")
        if self.tls:
            self._prepare_tls()
        self._stopping = False
        self._startup_error = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready,), name=f"loopback-server-{next(_server_numbers)}", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("LoopbackServer did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            self._cleanup_tls()
            raise RuntimeError("LoopbackServer failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Cancel every handler (hung, dripping, idle keep-alive), close sockets, join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            if thread.is_alive():
                closing = asyncio.run_coroutine_threadsafe(self._close_everything(), loop)
                try:
                    closing.result(timeout=self.stop_timeout + 2)
                finally:
                    loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self.stop_timeout + 5)
            if thread.is_alive():
                raise RuntimeError("LoopbackServer thread did not stop")
        finally:
            self._thread = None
            self._loop = None
            self._server = None
            self._port = None
            self._cleanup_tls()

    def _prepare_tls(self) -> None:
        assert self.ca is not None
        self._tls_dir = tempfile.TemporaryDirectory(prefix="loopback-tls-")
        self._ca_pem_path = Path(self._tls_dir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self._ca_pem_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*self.tls_hostnames).configure_cert(context)
        self._server_ssl_context = context

    def _cleanup_tls(self) -> None:
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
        self._tls_dir = None
        self._ca_pem_path = None
        self._server_ssl_context = None

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # reported to start() in the calling thread
                self._startup_error = exc
                return
            finally:
                ready.set()
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                # Waits for a gzip bomb still being built in the default executor.
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, host=HOST, port=0, ssl=self._server_ssl_context)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_everything(self) -> None:
        self._stopping = True
        assert self._server is not None
        loop = asyncio.get_running_loop()
        # Stop accepting first and let accept tasks already queued attach their
        # transports: one that runs after Server.close() fails an assertion in
        # asyncio (3.11) and leaks its accepted socket. Closing the listener
        # then resets whatever still waits in the kernel backlog.
        for listener in self._server.sockets:
            loop.remove_reader(listener.fileno())
        for _ in range(3):
            await asyncio.sleep(0)
        self._server.close()
        deadline = loop.time() + self.stop_timeout
        current = asyncio.current_task()
        # Rounds, because cancelling can surface more work: a connection accepted
        # a moment ago finishes its asyncio accept task and only then gets a
        # writer and a handler task of ours.
        while loop.time() < deadline:
            # Let just-created tasks take their first step: an asyncio accept
            # task cancelled before it starts never closes its accepted socket.
            for _ in range(2):
                await asyncio.sleep(0)
            # Every other task on this loop is a connection handler, an asyncio
            # accept/TLS-handshake task or a thread hop for the gzip bomb.
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            for writer in self._open_writers:
                # No time for a graceful TLS close_notify exchange during shutdown.
                writer.transport.abort()
            closings = {
                asyncio.ensure_future(self._wait_closed_quietly(writer)): writer for writer in self._open_writers
            }
            if not tasks and not closings:
                break
            await asyncio.wait([*tasks, *closings], timeout=max(0.0, deadline - loop.time()))
            for closing, writer in closings.items():
                if closing.done():
                    self._open_writers.discard(writer)
                else:
                    closing.cancel()
        # abort()/close() close the socket in a later loop callback; give those a
        # few turns, since stopping the loop first leaks the socket (ResourceWarning).
        for _ in range(3):
            await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._server.wait_closed(), timeout=max(0.05, deadline - loop.time()))
        except TimeoutError:
            pass

    @staticmethod
    async def _wait_closed_quietly(writer: asyncio.StreamWriter) -> None:
        try:
            await writer.wait_closed()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the connection died; closed is closed

    # ----------------------------------------------------------------- connections

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that spawns our own task: when asyncio itself wraps a
        # coroutine callback (3.11), a cancelled handler makes its done-callback
        # log "Exception in callback ... CancelledError" on every shutdown.
        # Registered here, not in the task: a task cancelled before its first
        # step never runs its finally, and stop() must still close this socket.
        self._open_writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._serve_connection(reader, writer))
        self._connection_tasks.add(task)
        task.add_done_callback(self._connection_tasks.discard)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection_id = next(self._connection_ids)
        try:
            while True:
                try:
                    request = await self._read_request(reader, connection_id)
                except _BadRequest as exc:
                    response = _status_response(400)
                    response.body = f"400 Bad Request: {exc}\n".encode()
                    await self._write_response(writer, "GET", response, keep_alive=False)
                    break
                if request is None:
                    break
                self.requests.append(request)
                if not await self._dispatch(request, reader, writer):
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client went away; that is what many of these routes are for
        except Exception as exc:
            self.errors.append(exc)
        finally:
            await self._close_connection(writer)

    async def _close_connection(self, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            return  # stop() aborts the transport and waits for the socket to close
        writer.close()
        try:
            # Bounded: a TLS peer that never answers close_notify would
            # otherwise keep this task alive for ssl_shutdown_timeout (30 s).
            await asyncio.wait_for(writer.wait_closed(), timeout=2)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            writer.transport.abort()
            await self._wait_closed_quietly(writer)
        self._open_writers.discard(writer)

    async def _read_request(self, reader: asyncio.StreamReader, connection_id: int) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _BadRequest("connection closed in the middle of a request head") from None
            return None  # clean end of a keep-alive connection
        except asyncio.LimitOverrunError:
            raise _BadRequest("request head too large") from None
        received_at = time.monotonic()

        # RFC 9112 2.2: ignore empty lines before the request line.
        lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(f"malformed request line {lines[0]!r}")
        method, target, version = parts

        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise _BadRequest(f"malformed header line {line!r}")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()

        body = await self._read_body(reader, headers)
        path_only = urllib.parse.urlsplit(target).path
        with self._state_lock:
            hit = self._hits.get(path_only, 0) + 1
            self._hits[path_only] = hit
        return Request(
            method=method.upper(),
            path=target,
            headers=headers,
            body=body,
            http_version=version,
            connection_id=connection_id,
            hit=hit,
            received_at=received_at,
        )

    async def _read_body(self, reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("malformed chunk size") from None
                if size == 0:
                    # Skip trailers up to the empty line that ends the body.
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        if "content-length" in headers:
            length = _parse_int(headers["content-length"], "Content-Length")
            if length < 0:
                raise _BadRequest("negative Content-Length")
            return await reader.readexactly(length)
        return b""

    @staticmethod
    def _wants_keep_alive(request: Request) -> bool:
        connection = request.headers.get("connection", "").lower()
        if request.http_version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    async def _dispatch(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the connection may serve another."""
        with self._state_lock:
            custom = self._routes.get(request.path_only)
        try:
            if custom is not None:
                response: Response | None = await self._call_custom(custom, request)
            else:
                response = await self._builtin_route(request, reader, writer)
        except _BadRequest as exc:
            response = _status_response(400)
            response.body = f"400 Bad Request: {exc}\n".encode()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            raise  # the client is gone; _serve_connection ends quietly
        except Exception as exc:
            self.errors.append(exc)
            response = _status_response(500)
        if response is None:
            return False  # the route handled (and ended) the connection itself
        keep_alive = self._wants_keep_alive(request)
        await self._write_response(writer, request.method, response, keep_alive=keep_alive)
        return keep_alive

    @staticmethod
    async def _call_custom(handler: RouteHandler, request: Request) -> Response:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        status, raw_headers, body = result  # type: ignore[misc]
        headers = list(raw_headers.items()) if isinstance(raw_headers, Mapping) else list(raw_headers)
        body_bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if body_bytes and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", HTML))
        return Response(int(status), headers, body_bytes)

    @staticmethod
    def _encode_head(
        status: int, headers: Sequence[tuple[str, str]], *, keep_alive: bool, body_length: int | None
    ) -> bytes:
        names = {name.lower() for name, _ in headers}
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        if "date" not in names:
            lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        if "server" not in names:
            lines.append("Server: auditor-loopback")
        lines.extend(f"{name}: {value}" for name, value in headers)
        framed = "content-length" in names or "transfer-encoding" in names
        if body_length is not None and not framed and status not in BODYLESS_STATUSES:
            lines.append(f"Content-Length: {body_length}")
        if "connection" not in names:
            lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _write_response(
        self, writer: asyncio.StreamWriter, method: str, response: Response, *, keep_alive: bool
    ) -> None:
        head = self._encode_head(
            response.status, response.headers, keep_alive=keep_alive, body_length=len(response.body)
        )
        send_body = method != "HEAD" and response.status not in BODYLESS_STATUSES
        writer.write(head + response.body if send_body else head)
        await writer.drain()

    # ----------------------------------------------------------------- built-in routes

    async def _builtin_route(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Response | None:
        segments = request.path_only.lstrip("/").split("/")
        route = self._BUILTIN_ROUTES.get(segments[0])
        if route is None:
            return _status_response(404)
        return await route(self, request, segments, reader, writer)

    async def _route_ok(self, request: Request, segments: list[str], *_: object) -> Response:
        return _page()

    async def _route_status(self, request: Request, segments: list[str], *_: object) -> Response:
        status = _parse_int(_segment(segments, 1, "status code"), "status code")
        if not 200 <= status <= 599:
            raise _BadRequest("status code must be 200..599")
        return _status_response(status)

    async def _route_flaky(self, request: Request, segments: list[str], *_: object) -> Response:
        status = _parse_int(_segment(segments, 1, "status code"), "status code")
        if not 200 <= status <= 599:
            raise _BadRequest("status code must be 200..599")
        return _status_response(status) if request.hit == 1 else _page()

    async def _route_retry_after(self, request: Request, segments: list[str], *_: object) -> Response:
        # Verbatim, so tests can also send malformed values ("soon", "-1").
        value = urllib.parse.unquote(_segment(segments, 1, "Retry-After value"))
        return _status_response(429, [("Retry-After", value)]) if request.hit == 1 else _page()

    async def _route_retry_after_date(self, request: Request, segments: list[str], *_: object) -> Response:
        seconds = _parse_seconds(_segment(segments, 1, "seconds"))
        if request.hit > 1:
            return _page()
        # HTTP-dates have whole seconds; round up so the wait is never shorter than asked.
        retry_at = math.ceil(time.time() + seconds)
        return _status_response(429, [("Retry-After", email.utils.formatdate(retry_at, usegmt=True))])

    async def _route_always_429(self, request: Request, segments: list[str], *_: object) -> Response:
        return _status_response(429, [("Retry-After", "1")])

    async def _route_redirect(self, request: Request, segments: list[str], *_: object) -> Response:
        status = _parse_int(_segment(segments, 1, "redirect code"), "redirect code")
        if status not in REDIRECT_CODES:
            raise _BadRequest(f"redirect code must be one of {sorted(REDIRECT_CODES)}")
        return _redirect(status, "/ok", [("Set-Cookie", "hop=1; Path=/")])

    async def _route_chain(self, request: Request, segments: list[str], *_: object) -> Response:
        count_text = _segment(segments, 1, "redirect count")
        remaining = _parse_int(count_text, "redirect count")
        if remaining <= 0:
            return _page()
        suffix = request.path_only[len(f"/chain/{count_text}") :]
        return _redirect(302, f"/chain/{remaining - 1}{suffix}{self._query_suffix(request)}")

    async def _route_loop(self, request: Request, segments: list[str], *_: object) -> Response:
        tail = request.path_only[len("/loop/") :]
        if tail[:1] not in ("a", "b"):
            raise _BadRequest("loop paths are /loop/a... and /loop/b...")
        other = "b" if tail[0] == "a" else "a"
        return _redirect(302, f"/loop/{other}{tail[1:]}{self._query_suffix(request)}")

    async def _route_redirect_to(self, request: Request, segments: list[str], *_: object) -> Response:
        target = request.query.get("url")
        if not target:
            raise _BadRequest("redirect-to needs ?url=<percent-encoded url>")
        return _redirect(302, target)

    async def _route_hang(
        self, request: Request, segments: list[str], reader: asyncio.StreamReader, *_: object
    ) -> None:
        # Never answer; return only when the client gives up, so abandoned
        # connections do not pile up over a long session.
        while await reader.read(65536):
            pass

    async def _route_slow_headers(self, request: Request, segments: list[str], *_: object) -> Response:
        await asyncio.sleep(_parse_seconds(_segment(segments, 1, "seconds")))
        return _page()

    async def _route_drip(
        self,
        request: Request,
        segments: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> Response | None:
        headers = [("Content-Type", TEXT), ("Content-Length", str(DRIP_DECLARED_LENGTH))]
        if request.method == "HEAD":
            return Response(200, headers)
        writer.write(self._encode_head(200, headers, keep_alive=False, body_length=None))
        for _ in range(DRIP_DECLARED_LENGTH):
            if writer.transport.is_closing():
                break
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL_SECONDS)
        return None

    async def _route_reset(
        self,
        request: Request,
        segments: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        raw_socket = writer.transport.get_extra_info("socket")
        # Linger on with timeout 0 makes close() send RST instead of FIN.
        raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _route_close(self, request: Request, segments: list[str], *_: object) -> None:
        return None  # _serve_connection closes cleanly (FIN) without a response

    async def _route_head405(self, request: Request, segments: list[str], *_: object) -> Response:
        if request.method == "HEAD":
            return _status_response(405, [("Allow", "GET")])
        return _page()

    async def _route_gzip_bomb(self, request: Request, segments: list[str], *_: object) -> Response:
        # Built off the loop thread: ~0.5 s of CPU would stall every other connection.
        body = await asyncio.to_thread(gzip_bomb_bytes)
        return Response(200, [("Content-Type", HTML), ("Content-Encoding", "gzip")], body)

    async def _route_big(
        self,
        request: Request,
        segments: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> Response | None:
        headers = [("Content-Type", HTML), ("Transfer-Encoding", "chunked")]
        if request.method == "HEAD":
            return Response(200, headers)
        writer.write(self._encode_head(200, headers, keep_alive=False, body_length=None))
        chunk = b"%x\r\n%s\r\n" % (len(BIG_CHUNK), BIG_CHUNK)
        while not writer.transport.is_closing():
            writer.write(chunk)
            await writer.drain()  # raises ConnectionError once the client is gone
        return None

    def _stored_file(self, segments: list[str]) -> _StoredFile | None:
        name = "/".join(segments[1:])
        with self._state_lock:
            return self._files.get(name)

    async def _route_image(self, request: Request, segments: list[str], *_: object) -> Response:
        stored = self._stored_file(segments)
        if stored is None:
            return _status_response(404)
        return self._ranged(request, stored, [("Content-Type", stored.content_type), ("Accept-Ranges", "bytes")])

    @staticmethod
    def _ranged(request: Request, stored: _StoredFile, headers: list[tuple[str, str]]) -> Response:
        """The stored bytes, or the single range the request asks for (206), or 416."""
        size = len(stored.data)
        range_header = request.headers.get("range")
        if range_header is None:
            return Response(200, headers, stored.data)
        try:
            byte_range = parse_byte_range(range_header, size)
        except _Unsatisfiable:
            return Response(416, [("Content-Range", f"bytes */{size}"), ("Content-Type", TEXT)], b"416\n")
        if byte_range is None:
            return Response(200, headers, stored.data)
        first, last = byte_range
        headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        return Response(206, headers, stored.data[first : last + 1])

    async def _route_noimagerange(self, request: Request, segments: list[str], *_: object) -> Response:
        stored = self._stored_file(segments)
        if stored is None:
            return _status_response(404)
        return Response(200, [("Content-Type", stored.content_type)], stored.data)

    async def _route_range416(self, request: Request, segments: list[str], *_: object) -> Response:
        stored = self._stored_file(segments)
        if stored is None:
            return _status_response(404)
        if "range" in request.headers:
            size = len(stored.data)
            return Response(416, [("Content-Range", f"bytes */{size}"), ("Content-Type", TEXT)], b"416\n")
        return Response(200, [("Content-Type", stored.content_type)], stored.data)

    async def _route_conditional(self, request: Request, segments: list[str], *_: object) -> Response:
        return self._conditional(request, segments, send_etag=True)

    async def _route_last_modified(self, request: Request, segments: list[str], *_: object) -> Response:
        return self._conditional(request, segments, send_etag=False)

    def _conditional(self, request: Request, segments: list[str], *, send_etag: bool) -> Response:
        """RFC 9110 13.2.2's order: If-None-Match, else If-Modified-Since, and only then Range."""
        stored = self._stored_file(segments)
        if stored is None:
            return _status_response(404)
        validators = [("Last-Modified", stored.last_modified)]
        if send_etag:
            validators.insert(0, ("ETag", stored.etag))
        if_none_match = request.headers.get("if-none-match")
        if_modified_since = request.headers.get("if-modified-since")
        if if_none_match is not None:
            unchanged = send_etag and _etag_matches(if_none_match, stored.etag)
        else:
            unchanged = if_modified_since is not None and _not_modified_since(if_modified_since, stored.modified)
        if unchanged and request.method in ("GET", "HEAD"):
            return Response(304, validators)
        headers = [("Content-Type", stored.content_type), ("Accept-Ranges", "bytes"), *validators]
        return self._ranged(request, stored, headers)

    @staticmethod
    def _query_suffix(request: Request) -> str:
        query = urllib.parse.urlsplit(request.path).query
        return f"?{query}" if query else ""

    _BUILTIN_ROUTES: dict[str, Callable[..., Awaitable[Response | None]]] = {
        "ok": _route_ok,
        "status": _route_status,
        "flaky": _route_flaky,
        "retry-after": _route_retry_after,
        "retry-after-date": _route_retry_after_date,
        "always-429": _route_always_429,
        "redirect": _route_redirect,
        "chain": _route_chain,
        "loop": _route_loop,
        "redirect-to": _route_redirect_to,
        "hang": _route_hang,
        "slow-headers": _route_slow_headers,
        "drip": _route_drip,
        "reset": _route_reset,
        "close": _route_close,
        "head405": _route_head405,
        "gzip-bomb": _route_gzip_bomb,
        "big": _route_big,
        "image": _route_image,
        "noimagerange": _route_noimagerange,
        "range416": _route_range416,
        "conditional": _route_conditional,
        "last-modified": _route_last_modified,
    }


_FILE_ROUTE_PREFIXES = ("image/", "noimagerange/", "range416/", "conditional/", "last-modified/")


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match's weak comparison: ``*``, or any listed tag equal to ours once ``W/`` is dropped."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def _not_modified_since(if_modified_since: str, modified: float) -> bool:
    """Whether a valid If-Modified-Since date is not before the (whole-second) modification time."""
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored (RFC 9110 13.1.3)
    return since is not None and int(modified) <= since.timestamp()


# --------------------------------------------------------------------------- proxy


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as the proxy received it: ``CONNECT host:port``, or a plain one with its absolute URL."""

    method: str
    target: str
    headers: dict[str, str]  # names lowercased


class LoopbackProxy:
    """An HTTP proxy on 127.0.0.1 for tests of proxy settings: CONNECT tunnels and plain forwarding.

    Whatever host a request names, the proxy connects to 127.0.0.1 at the port the request
    names, so a test can cite made-up public names (``http://site.example:<port>/``) and still
    reach its loopback server; it never connects anywhere else. A plain request is forwarded
    in origin form with ``Connection: close`` (one request per client connection); a CONNECT
    is answered 200 and piped both ways until either side closes.

        with LoopbackProxy() as proxy:
            ... HTTP_PROXY=proxy.url ...
            proxy.requests  # what passed through
    """

    def __init__(self) -> None:
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def seen(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self.requests)

    def __enter__(self) -> LoopbackProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="loopback-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or self._server is None:
            raise RuntimeError("LoopbackProxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._accept, host=HOST, port=0))
                self.port = self._server.sockets[0].getsockname()[1]
            finally:
                ready.set()
            loop.run_forever()
        finally:
            loop.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            writer.transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)  # let the aborted sockets close before the loop stops
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            with self._lock:
                self.requests.append(ProxiedRequest(method.upper(), target, headers))
            if method.upper() == "CONNECT":
                port = int(target.rpartition(":")[2])
                up_reader, upstream = await asyncio.open_connection(HOST, port)
                self._writers.add(upstream)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                pipes = [
                    asyncio.ensure_future(self._pipe(reader, upstream)),
                    asyncio.ensure_future(self._pipe(up_reader, writer)),
                ]
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                return
            parts = urllib.parse.urlsplit(target)
            up_reader, upstream = await asyncio.open_connection(HOST, parts.port or 80)
            self._writers.add(upstream)
            forwarded = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"]
            forwarded += [
                line
                for line in lines[1:]
                if line and line.partition(":")[0].strip().lower() not in ("connection", "proxy-connection")
            ]
            forwarded.append("Connection: close")
            upstream.write(("\r\n".join(forwarded) + "\r\n\r\n").encode("latin-1"))
            await upstream.drain()
            await self._pipe(up_reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            for end in (upstream, writer):
                if end is not None:
                    end.close()
                    self._writers.discard(end)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
