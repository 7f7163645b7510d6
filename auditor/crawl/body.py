"""Reading a response body with a bound on what it may cost.

Decompression is ours (zlib with max_length), not httpx's, so a gzip bomb
never inflates more than the cap in memory; the reader stops as soon as its
consumer has what it needs.

A connection can only be reused once its response was read to the end, so
`release` reads what is left of a short body (up to a bound, in a short time)
before closing: one more small read is far cheaper than a new TCP and TLS
handshake, and a big or slow rest is still cut off.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from weakref import WeakKeyDictionary

import httpx

from auditor.crawl.errors import CrawlError
from auditor.model import Reason

# Takes the next decoded bytes; True once it needs no more.
Consumer = Callable[[bytes], bool]
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's way of saying "gzip header and trailer"


async def read_body(response: httpx.Response, consume: Consumer, cap: int, *, decode: bool = True) -> int:
    """Stream the body into `consume` until it says done or `cap` decoded bytes are read; the bytes read.

    With `decode=False` the bytes are taken as they came (an image asked for with identity encoding).
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower() if decode else "identity"
    decoder = _decoder(encoding)
    read = 0
    try:
        async for chunk in _raw_chunks(response):
            pending = chunk
            while pending and read < cap:
                if decoder is None:
                    data, pending = pending[: cap - read], b""
                else:
                    data = decoder.decompress(pending, cap - read)
                    pending = decoder.unconsumed_tail
                read += len(data)
                if data and consume(data):
                    return read
                if decoder is not None and not data:
                    break
            if read >= cap:
                return read
    except zlib.error as exc:
        # Our own decoder's verdict on the bytes, not a network failure: this body is not what it says.
        raise CrawlError(Reason.OTHER, f"cannot decode {encoding} body: {exc}") from exc
    return read


def _decoder(encoding: str) -> Any:  # zlib's decompress objects have no public type
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(GZIP_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


# httpx lets a body be iterated once: the reader and the drain must share one iterator.
_chunks: WeakKeyDictionary[httpx.Response, AsyncIterator[bytes]] = WeakKeyDictionary()


def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    if response not in _chunks:
        _chunks[response] = response.aiter_raw()
    return _chunks[response]


async def release(response: httpx.Response, *, drain_bytes: int, drain_timeout: float) -> None:
    """Close `response`, first reading the rest of its body if that is at most `drain_bytes` (keep-alive).

    A failure while draining costs only the connection, never the answer already read.
    """
    try:
        if drain_bytes > 0 and not response.is_closed and _rest_is_short(response, drain_bytes):
            async with asyncio.timeout(drain_timeout):
                # The count is the wire's (num_bytes_downloaded), so a body without a length stops at the bound too.
                start = response.num_bytes_downloaded
                async for _ in _raw_chunks(response):
                    if response.num_bytes_downloaded - start > drain_bytes:
                        break
    except (httpx.HTTPError, TimeoutError, OSError):
        pass
    finally:
        _chunks.pop(response, None)
        await response.aclose()


def _rest_is_short(response: httpx.Response, drain_bytes: int) -> bool:
    """Even an empty body (HEAD, 304) must be read to its end before the connection is free again."""
    length = response.headers.get("content-length", "")
    if response.request.method == "HEAD" or not length.isdigit():
        return True  # no body, or no length: the drain stops at its bound
    return int(length) - response.num_bytes_downloaded <= drain_bytes
