"""Reading a response body with a bound on what it may cost.

Decompression is ours (zlib with max_length), not httpx's, so a gzip bomb
never inflates more than the cap in memory; the reader stops as soon as its
consumer has what it needs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

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
        async for chunk in response.aiter_raw():
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
