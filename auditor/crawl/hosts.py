"""What requests to each host get: its rule's limits, timeout and headers over the global ones.

The header values are read from the environment here, once, when the crawler is made (a
variable that is not set is a ConfigError); they stay in this object's memory and go out
only on requests to the hosts their rule matches. A redirect hop is a request like any
other: a hop that leaves the host leaves its headers behind, as browsers drop Authorization.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from auditor.config import CrawlConfig
from auditor.network import HostRule, merge_headers


@dataclass(frozen=True)
class HostSettings:
    per_host: int
    rate: float
    timeout: float
    headers: Mapping[str, str]  # resolved: secrets in memory only
    # Per request, for a timeout that is not the client's: httpx's own read/connect limits.
    request_timeout: httpx.Timeout | None


class HostPolicy:
    """The settings of every host: the matching rule's, else the global ones."""

    def __init__(self, config: CrawlConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        environ = os.environ if environ is None else environ
        self._default = self._settings(None, environ)
        self._by_rule = {rule: self._settings(rule, environ) for rule in config.hosts.rules}

    def __call__(self, host: str) -> HostSettings:
        if not self._by_rule:  # asked several times per request: without rules, no name to look up
            return self._default
        rule = self.config.host_rule(host)
        return self._default if rule is None else self._by_rule[rule]

    def for_url(self, url: str) -> HostSettings:
        """The settings of the URL's host; its name is read only when a rule may match it."""
        return self._default if not self._by_rule else self(urlsplit(url).hostname or "")

    def _settings(self, rule: HostRule | None, environ: Mapping[str, str]) -> HostSettings:
        config = self.config
        timeout = rule.timeout if rule is not None and rule.timeout is not None else config.timeout
        headers = {}
        for header in merge_headers(config.headers, rule.headers if rule is not None else ()):
            where = f"hosts[{rule.pattern}]" if rule is not None and header in rule.headers else "--header"
            headers[header.name] = header.resolve(environ, where)
        return HostSettings(
            per_host=rule.concurrency if rule is not None and rule.concurrency is not None else config.per_host,
            rate=rule.rate if rule is not None and rule.rate is not None else config.rate,
            timeout=timeout,
            headers=headers,
            request_timeout=None
            if timeout == config.timeout
            else httpx.Timeout(timeout, connect=min(config.connect_timeout, timeout)),
        )
