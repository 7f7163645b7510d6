"""The time one attempt may take: connecting, every redirect hop and the body read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Budget:
    """The per-attempt deadline, spent only while resolving or talking to the
    server: waiting in a host's politeness queue is our choice, not its fault."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    @asynccontextmanager
    async def spend(self) -> AsyncIterator[None]:
        """Run the block against what is left; TimeoutError when it runs out (or already has)."""
        if self.remaining <= 0:
            raise TimeoutError
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.remaining):
                yield
        finally:
            self.remaining -= time.monotonic() - started
