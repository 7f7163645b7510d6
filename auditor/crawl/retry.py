"""What may be asked again, and how long to wait first.

A status is retried when the server may answer differently later (408, 429,
5xx that mean "not now"); a check without a status when its `Reason` is
`retryable` (a reset can pass, a name that does not exist cannot). The wait
is the server's Retry-After when it gave one (beyond `max_retry_wait`: give
up now), else an exponential backoff with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from http import HTTPStatus

from auditor.config import CrawlConfig
from auditor.model import Check

RETRY_STATUSES = frozenset(
    {
        HTTPStatus.REQUEST_TIMEOUT,
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)


def may_retry(check: Check) -> bool:
    """Whether asking again could give another answer (an OK one, even an accepted 503, is the answer)."""
    if check.ok:
        return False
    if check.status is not None:
        return check.status in RETRY_STATUSES
    return check.reason is not None and check.reason.retryable


class RetryPolicy:
    def __init__(self, config: CrawlConfig, *, uniform: Callable[[float, float], float] = random.uniform) -> None:
        self.config = config
        self._uniform = uniform

    def wait(self, check: Check, attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to stop at this one."""
        if attempt > self.config.retries or not may_retry(check):
            return None
        if check.retry_after is not None:
            # The server said when; a wait beyond our cap means give up now.
            return check.retry_after if check.retry_after <= self.config.max_retry_wait else None
        backoff = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** (attempt - 1))
        return backoff * self._uniform(1.0 - self.config.backoff_jitter, 1.0)


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
