"""Every default of the tool, in one place.

The command line, AUDITOR_* variables and the config file (auditor/settings.py
reads and validates all three) only ever override these values; no other
module hard-codes a limit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.errors import ConfigError
from auditor.model import Code, FailOn, Severity
from auditor.network import AcceptCodes, Header, HostRule, HostRules, Redacted

PROJECT_URL = "https://github.com/auditor-project/auditor"
USER_AGENT = f"auditor/{__version__} (+{PROJECT_URL})"

FAIL_ON = tuple(fail_on.value for fail_on in FailOn)
# The public contract: every finding code and its default severity (the model owns both).
DEFAULT_SEVERITIES: Mapping[Code, Severity] = {code: code.default_severity for code in Code}


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """Bounds on what one document may cost to read: a hostile file is a finding, not an outage."""

    max_front_matter_bytes: int = 1024 * 1024
    # Scalars, mappings and lists built per document; an alias counts every time it is expanded.
    max_values: int = 100_000
    # Characters of text and field paths built per document, alias expansions included.
    max_built_chars: int = 4 * 1024 * 1024
    max_depth: int = 32


DEFAULT_LIMITS = ParseLimits()


# The `type` whose requirements apply to an item of any other type, or of none.
DEFAULT_TYPE = "default"
# Each requirement is met by any one of its fields ("webUrl|originalUrl" in the config file):
# a video may have only its originalUrl, but every item needs some page to point at.
DEFAULT_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    DEFAULT_TYPE: (("title",), ("webUrl", "originalUrl")),
}


@dataclass(frozen=True, kw_only=True)
class SchemaConfig:
    """Which fields an article or related item must have, by its `type`."""

    required: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=lambda: dict(DEFAULT_REQUIRED))

    def requirements(self, item_type: Any) -> tuple[tuple[str, ...], ...]:
        if isinstance(item_type, str) and item_type in self.required:
            return self.required[item_type]
        return self.required.get(DEFAULT_TYPE, ())


@dataclass(frozen=True, kw_only=True)
class CrawlConfig:
    concurrency: int = 32
    per_host: int = 4
    rate: float = 10.0  # requests per second per host
    timeout: float = 20.0  # total seconds per URL: connect, every hop, body
    connect_timeout: float = 10.0
    retries: int = 2
    backoff_base: float = 0.5  # seconds before the first retry; doubles per retry
    backoff_max: float = 10.0
    # The wait is drawn from [1 - jitter, 1] x the backoff, so retries of many URLs do not march in step.
    backoff_jitter: float = 0.5
    max_retry_wait: float = 60.0  # a Retry-After beyond this ends the retries; also caps a host's slow-down
    # A 429/503 holds every request to that host back by this much at first, doubling per further one
    # (up to max_retry_wait): a server that asks us to slow down gets room at once.
    slow_down_delay: float = 1.0
    # Each answer below 400 halves the host's delay; once it is below this it is dropped, not halved forever.
    recovered_below: float = 0.2
    max_redirects: int = 10
    max_body_bytes: int = 1024 * 1024  # after decompression
    max_head_bytes: int = 512 * 1024
    # Read past a head that gives no publication date, for one in the body (bench/peer_pages.py measured it).
    max_date_body_bytes: int = 64 * 1024
    max_image_bytes: int = 256 * 1024
    # The rest of a body up to this size is read after we have what we need, so its connection is reused
    # (a new TLS handshake costs more); a bigger or slower rest closes the connection instead.
    drain_bytes: int = 64 * 1024
    drain_timeout: float = 1.0
    # Processes the crawl runs in (processes.py): above 1, the hosts are split between them by a stable hash.
    # None (`auto`): one per usable core, at most AUTO_PROCESSES, for a crawl that fetches AUTO_PROCESSES_FROM
    # URLs or more (those reused under --max-age do not count); one below that (a process of its own costs more
    # than it saves on a small crawl).
    processes: int | None = None
    # Keep-alive: origins whose connection pools are kept (least recently used closed first); each pool
    # keeps up to `per_host` idle connections.
    max_idle_origins: int = 256
    allow_private: bool = False
    user_agent: str = USER_AGENT
    accept: AcceptCodes = field(default_factory=AcceptCodes)  # statuses OK besides 2xx, on every host
    headers: tuple[Header, ...] = ()  # sent to every host; values are masked wherever the config is shown
    hosts: HostRules = field(default_factory=HostRules)  # per-host limits, headers and accepted statuses
    proxy: Redacted | None = None  # every request through this proxy; None: HTTP(S)_PROXY/NO_PROXY apply
    ca_bundle: Path | None = None  # PEM certificates trusted besides SSL_CERT_FILE/SSL_CERT_DIR (or certifi's)

    def host_rule(self, host: str) -> HostRule | None:
        return self.hosts.rule_for(host)

    def accepts(self, host: str, status: int) -> bool:
        """Whether `status` from `host` counts as OK: any 2xx, `accept`, or the host's own `accept`."""
        if self.accept.accepts(status):
            return True
        rule = self.hosts.rule_for(host)
        return rule is not None and rule.accept.accepts(status)


WAYBACK_AVAILABILITY_API = "https://archive.org/wayback/available"


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig:
    """--suggest: how politely the Wayback Machine's availability API is asked, and how long answers keep.

    One public host that serves everyone: few requests, one at a time by
    default, and a run stops asking once it fails or asks us to slow down.
    """

    api_url: str = WAYBACK_AVAILABILITY_API
    rate: float = 1.0  # requests per second
    concurrency: int = 1  # requests in flight at once
    timeout: float = 15.0  # seconds per request, connect to the last byte
    max_response_bytes: int = 64 * 1024  # an answer is a few hundred bytes of JSON
    ttl: float = 30 * 86400.0  # seconds an answer (a snapshot, or none) is reused before asking again
    max_lookups: int = 500  # requests per run; the rest wait for the next run (the cache fills up)
    give_up_after: int = 3  # failures in a row after which the run asks no more


@dataclass(frozen=True, kw_only=True)
class Soft404Config:
    """How pages that answer 200 for content that is gone are found (auditor/soft404.py)."""

    # Ask each host with pages a path that cannot exist, once per run (`--no-soft-404`: never).
    probe: bool = True
    # Distinct article paths of one site permanently redirected to one page before that page
    # counts as where the site sends what it removed.
    landing_min_articles: int = 3
    # Bits (of 64) two heads' simhashes may differ by and still be "the same page".
    max_text_distance: int = 10


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: this process checks the URLs of the K-th of N host partitions (auditor/shards.py)."""

    index: int  # from 1
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


MAX_SHARDS = 100_000  # a bound on --shard N, far beyond any scheduler's array


# `auditor serve`: audit at start, then every SERVE_EVERY (a duration as --every takes it), listening here.
SERVE_EVERY = "6h"
SERVE_HOST = "127.0.0.1"  # loopback only, unless told otherwise
SERVE_PORT = 8080


@dataclass(frozen=True, kw_only=True)
class Config:
    paths: tuple[Path, ...] = (Path("seeds"),)
    db: Path = Path("audit.sqlite")
    out: Path = Path("reports")
    formats: tuple[str, ...] = ("json", "md", "html", "junit")
    fail_on: FailOn = FailOn.ERROR
    severities: Mapping[Code, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    limits: ParseLimits = field(default_factory=ParseLimits)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    soft_404: Soft404Config = field(default_factory=Soft404Config)
    offline: bool = False
    # Scheduled audits: reuse a URL's OK result younger than this many seconds (None: always fetch).
    max_age: float | None = None
    dead_after: int = 1  # consecutive failing runs before a dead link is an error (a warning until then)
    flaky_window: int = 5  # runs, this one included, in which two flips make a link flaky
    resume: bool = False  # continue the last unfinished run instead of starting one
    # Which URLs are fetched and where (auditor/filters.py says how they combine): regexes searched
    # in the normalised URL; an include match wins over any exclude.
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()  # .gitignore-style globs: corpus files not read at all
    remap: tuple[str, ...] = ()  # 'REGEX REPLACEMENT', first matching rule wins
    suggest: bool = False  # ask the Wayback Machine for an archived copy of each dead link
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    shard: Shard | None = None  # check one host partition of the corpus's URLs; `auditor merge` joins them

    def __post_init__(self) -> None:
        # Library callers may pass the plain strings; the rest of the run sees the enums.
        object.__setattr__(self, "fail_on", FailOn(self.fail_on))
        severities = {Code(code): Severity(severity) for code, severity in self.severities.items()}
        object.__setattr__(self, "severities", severities)

    def severity(self, code: Code) -> Severity:
        return self.severities.get(code, Code(code).default_severity)

    def fails(self, severity: Severity) -> bool:
        """Whether a finding of this severity makes the run exit 1: `FailOn.fails`, as for JUnit's <failure>."""
        return self.fail_on.fails(Severity(severity))

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_DURATION = re.compile(r"(\d+)([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Seconds in a duration of whole numbers and units: 45s, 30m, 6h, 2d, 1w, 1h30m; a ConfigError names a bad one.

    `what` (the option) starts the message; empty, the caller says where the text came from.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = list(_DURATION.finditer(compact))
    if not compact or "".join(p.group(0) for p in parts) != compact:
        raise ConfigError(f"{what + ': ' if what else ''}{text!r} is not a duration like 30m, 6h or 2d")
    return sum(float(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in parts)
