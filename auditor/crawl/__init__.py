"""Stage 3: unique URLs -> checks. The only stage that touches the network.

One concept per module, read top-down:

    pool         Crawler: the shared client, the worker pool, retries per URL, the
                 boundary where every outcome becomes a Check
    retry        what may be asked again and how long to wait (backoff, Retry-After)
    fetch        one attempt: the redirect chain hop by hop, then the body its kind needs
    conditional  revalidation: the previous check's validators sent again, a 304 as that check
    redirects    following redirects ourselves, with cookies; loops, limits, unusable Locations
    guard        the private-address guard and the resolver it asks
    politeness   per-host concurrency, rate and the delay that adapts to 429/503
    hosts        what each host's requests get: its `hosts:` rule's limits, timeout, headers
    budget       the time one attempt may spend talking to servers
    client       the httpx client (proxy, CA bundle) and how a request is built for its kind of URL
    body         bounded reading, with our own bounded decompression
    page         a page's head (via auditor.pagehead)
    image        asking for the bytes an image probe (auditor.images) names
    errors       CrawlError and the one mapping of foreign exceptions to a Reason

A failed link is data: `Check.reason` says why, and nothing here raises for a
network failure. Verdicts (dead, blocked, ...) are the rules stage's job.
"""

from __future__ import annotations

from auditor.crawl.budget import Budget
from auditor.crawl.errors import CrawlError, UnusableRedirect, map_exception
from auditor.crawl.guard import AddressGuard, Resolver, is_public_address, system_resolver
from auditor.crawl.hosts import HostPolicy, HostSettings
from auditor.crawl.politeness import HostGate, Politeness, Spacing, host_bucket
from auditor.crawl.pool import Crawler, check_settings
from auditor.crawl.redirects import RedirectChain, redirect_target
from auditor.crawl.retry import RetryPolicy, may_retry, parse_retry_after

__all__ = [
    "AddressGuard",
    "Budget",
    "CrawlError",
    "Crawler",
    "HostGate",
    "HostPolicy",
    "HostSettings",
    "Politeness",
    "RedirectChain",
    "Resolver",
    "RetryPolicy",
    "Spacing",
    "UnusableRedirect",
    "check_settings",
    "host_bucket",
    "is_public_address",
    "map_exception",
    "may_retry",
    "parse_retry_after",
    "redirect_target",
    "system_resolver",
]
