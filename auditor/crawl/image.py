"""An image's size from as few bytes as its format allows.

The range policy is the probe's (`ImageProbe.next_range`): it knows its
format, so it says which bytes it needs next, usually the next ones but for a
TIFF wherever its IFD is. This module only asks for them and says where each
answer's bytes belong (`seek`). What it does decide is how to treat the
server: a 200 means Range was ignored, so that body is streamed until the size
is known; a 416 means our range was disliked, so the image is asked for once
without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from http import HTTPStatus

import httpx

from auditor.crawl.body import read_body
from auditor.crawl.client import ByteRange, is_success
from auditor.crawl.conditional import with_validators
from auditor.images import ImageProbe
from auditor.model import Check

# Sends the image request again, for these bytes (None: the whole image).
AskFor = Callable[[ByteRange | None], Awaitable[httpx.Response]]
# Closes a response this module opened, keeping its connection when that is cheap (body.release).
Release = Callable[[httpx.Response], Awaitable[None]]


async def probe_image(
    answer: Check, response: httpx.Response, probe: ImageProbe, ask_for: AskFor, release: Release, *, max_bytes: int
) -> Check:
    """`answer` with the image's size (or why there is none), reading `response` and what else the probe asks for.

    `response` answered the probe's first range. `bytes_read` is what came off
    the wire, never more than `max_bytes`.
    """
    received = 0
    asked_from = 0  # where the range of `current` started
    current = response  # the caller closes `response`; we close what we open
    try:
        if current.status_code == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
            current = await ask_for(None)
            answer = with_validators(
                replace(answer, status=current.status_code, ok=is_success(current.status_code)), current
            )
        while answer.ok:
            if current.status_code == HTTPStatus.PARTIAL_CONTENT:
                start, size = _content_range(current.headers.get("content-range"), default_start=asked_from)
                probe.seek(start, file_size=size)
            received += await read_body(current, probe.feed, max_bytes - received, decode=False)
            if probe.done or current.status_code != HTTPStatus.PARTIAL_CONTENT:
                break
            span = probe.next_range()
            if span is None:
                break
            if current is not response:
                await release(current)
            current = await ask_for(span)
            asked_from = span[0]
            if current.status_code == HTTPStatus.OK:  # Range dropped mid-way: the body starts over
                probe = ImageProbe(max_bytes=max_bytes)
            elif current.status_code != HTTPStatus.PARTIAL_CONTENT:
                break
    finally:
        if current is not response:
            await release(current)
    if not answer.ok:
        return answer
    if not probe.done:
        probe.finish()
    info = probe.info
    return replace(
        answer,
        content_type=current.headers.get("content-type", answer.content_type),
        bytes_read=received,
        width=info.width if info else None,
        height=info.height if info else None,
        image_format=info.format if info else None,
        image_error=probe.error,
    )


def _content_range(value: str | None, *, default_start: int) -> tuple[int, int | None]:
    """Where a 206 body starts in the file, and the file's length if known: `bytes 4096-8191/20000` -> (4096, 20000)."""
    if not value:
        return default_start, None
    unit, _, spec = value.strip().partition(" ")
    first = spec.partition("-")[0].strip()
    start = int(first) if unit.lower() == "bytes" and first.isdigit() else default_start
    total = value.rpartition("/")[2].strip() if "/" in value else ""
    return start, int(total) if total.isdigit() else None
