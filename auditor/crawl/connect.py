"""How a connection is made: to the address the guard resolved, over asyncio's own streams.

httpcore asks its network backend for a TCP stream to a host name. Ours looks
the name up through the guard's per-run cache of resolved addresses, so the
connection goes to an address that was judged (no second lookup that a DNS
answer changed in between could redirect to a private address), and each host
is resolved once per run, not once per connection. TLS is asyncio's
(`StreamWriter.start_tls`), with the host name for SNI and verification; under
uvloop that is its C implementation.

Failures are raised as httpcore's exceptions, from the socket's or ssl's, so
errors.py finds both in the tree, as with httpcore's own backend.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

# Host and port to the addresses to try, in order; raises OSError when there are none.
AddressLookup = Callable[[str, int], Awaitable[list[str]]]
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, lookup: AddressLookup) -> None:
        self._lookup = lookup

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._lookup(host, port)
                failure: OSError | None = None
                for address in addresses:
                    try:
                        reader, writer = await asyncio.open_connection(address, port, local_addr=local)
                    except OSError as exc:  # the next address may answer
                        failure = exc
                        continue
                    return StreamsStream(reader, writer)
                raise failure or OSError(f"no address for {host}")
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} within {timeout}s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("auditor connects to hosts, never to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class StreamsStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("no data within the read timeout") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("could not write within the write timeout") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Not waiting for the peer: a TLS close_notify it never answers must not hold a worker.
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout("no TLS handshake within the connect timeout") from exc
        except (OSError, ssl.SSLError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle keep-alive connection the server has closed: EOF already seen, nothing left to read.
            return self._reader.at_eof() or self._writer.is_closing()
        if info in ("ssl_object", "socket"):
            return self._writer.get_extra_info(info)
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        return None
