"""A page's head: read up to `</head>` (or `<body>`, or the cap) for the rules to compare.

A head without a publication date costs up to `max_date_body_bytes` more, read for one in the body.
"""

from __future__ import annotations

import email.message
import functools
from dataclasses import replace

import httpx

from auditor.config import CrawlConfig
from auditor.crawl.body import read_body
from auditor.model import Check
from auditor.pagehead import HeadParser


async def read_page(answer: Check, response: httpx.Response, final_url: str, config: CrawlConfig) -> Check:
    """`answer` with the head's links and meta (relative links resolved against `final_url`)."""
    parser = HeadParser(
        final_url,
        max_bytes=config.max_head_bytes,
        encoding=charset(answer.content_type) if answer.content_type else None,
        date_body_bytes=config.max_date_body_bytes,
    )
    read = await read_body(response, parser.feed, config.max_body_bytes)
    return replace(answer, bytes_read=read, head=parser.result())


@functools.lru_cache(maxsize=256)
def charset(content_type: str) -> str | None:
    """The charset a Content-Type names, read as httpx's `charset_encoding` reads it (with email's
    parser, which is slow); kept per value, as a crawl meets few distinct ones."""
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_charset(failobj=None)
