"""The event loop a crawl runs on: uvloop's when it is installed, asyncio's otherwise.

A crawl is CPU-bound in Python HTTP code around the loop; uvloop's loop and its
transports (TLS included) are C. On 15,000 URLs over loopback HTTPS that took a
crawl in one process from 11.1 to 10.4 CPU-seconds, and a whole audit in two
(bench/vs_lychee.py --tools auditor) from 23.2 to 22.2 CPU-seconds and 13.9 to
13.4 s. uvloop is a dependency where it is built (not on Windows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop

    _RUN: Callable[[Coroutine[Any, Any, Any]], Any] = uvloop.run
except ImportError:  # pragma: no cover - depends on the installation
    _RUN = asyncio.run


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop's loop when it is there."""
    result: T = _RUN(main)
    return result
