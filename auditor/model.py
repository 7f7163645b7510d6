"""The closed outcome types every stage speaks in.

Each enum's values are the strings stored in SQLite and written to
report.json, so databases and reports stay readable across versions; code
compares members, never string literals.

    Kind        what a URL field is: page, amp, amp-cache, image; or a host probe
    Reason      why a check failed, and whether a retry could change it
    Code        a finding code, its default severity and the stage that judges it
    Stage       the rule family that produces a code
    Soft404Signal  what made a page that answered 200 a soft 404
    Severity    error, warning, off
    FailOn      the severity that makes a run exit 1 (or never)
    RunStatus   running, finished, interrupted, failed
    Mode        audit or lint
    DateSource  where on a page its publication date was found, in order of trust

and the records the stages hand on: LinkRef (a cited URL), Target (a URL to
check, with its previous check), Check (one fetch of a URL, or the record
that --exclude left it out), Hop (one
redirect of it), PageHead (what a fetched page says), Finding (one problem
found), ArchivedCopy (what the Wayback Machine has of a URL), ArchiveLookups
(how a run's --suggest went), Run (one audit or lint).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any


class Kind(StrEnum):
    PAGE = "page"
    AMP = "amp"
    AMP_CACHE = "amp-cache"
    IMAGE = "image"
    # Not a URL field: a path that cannot exist, asked once per host with pages to learn
    # how it answers one (see auditor/soft404.py). Fetched like a page; never a link of the corpus.
    PROBE = "probe"


class Reason(StrEnum):
    """Why a check has no usable answer. An HTTP status is not a reason: it is the answer."""

    DNS = "dns"
    REFUSED = "refused"
    RESET = "reset"
    TIMEOUT = "timeout"
    TLS = "tls"
    REDIRECT_LOOP = "redirect-loop"
    TOO_MANY_REDIRECTS = "too-many-redirects"
    INVALID_REDIRECT = "invalid-redirect"
    PRIVATE_ADDRESS = "private-address"
    OTHER = "other"
    INTERNAL_ERROR = "internal-error"
    # Not a failure: --exclude/--include left the URL out, so it was never asked. No verdict either way.
    EXCLUDED = "excluded"

    @property
    def retryable(self) -> bool:
        """Whether asking again could give another answer (a reset can; a name that does not exist cannot)."""
        return self in _RETRYABLE_REASONS

    @property
    def label(self) -> str:
        return _REASON_LABELS[self]


_RETRYABLE_REASONS = frozenset({Reason.REFUSED, Reason.RESET, Reason.TIMEOUT, Reason.OTHER})
_REASON_LABELS = {
    Reason.DNS: "the host name does not resolve",
    Reason.REFUSED: "connection refused",
    Reason.RESET: "connection reset or closed early",
    Reason.TIMEOUT: "no complete answer in time",
    Reason.TLS: "TLS error (certificate or handshake)",
    Reason.REDIRECT_LOOP: "redirect loop",
    Reason.TOO_MANY_REDIRECTS: "too many redirects",
    Reason.INVALID_REDIRECT: "redirect to a location that is not an http(s) URL",
    Reason.PRIVATE_ADDRESS: "private or loopback address, not fetched",
    Reason.OTHER: "other network error",
    Reason.INTERNAL_ERROR: "a bug in auditor on this URL",
    Reason.EXCLUDED: "excluded by --exclude/--include, not fetched",
}


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OFF = "off"


class FailOn(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"

    def fails(self, severity: Severity) -> bool:
        """Whether a finding of this severity makes the run exit 1 (and is a JUnit <failure>)."""
        if self is FailOn.NEVER or severity is Severity.OFF:
            return False
        if self is FailOn.WARNING:
            return severity in (Severity.ERROR, Severity.WARNING)
        return severity is Severity.ERROR


class Stage(Enum):
    OFFLINE = "offline"  # what a document says about itself: `lint` runs only these
    LINK = "link"  # one reference against the check of its URL
    PAGE = "page"  # a document against the heads of its fetched pages
    HISTORY = "history"  # a URL against its earlier runs


class Code(StrEnum):
    """Finding codes: the public contract (README's table lists them in this order)."""

    DEAD_LINK = "dead-link"
    LINK_BLOCKED = "link-blocked"
    REDIRECT = "redirect"
    IMAGE_SIZE_MISMATCH = "image-size-mismatch"
    NOT_AN_IMAGE = "not-an-image"
    AMP_CACHE_MISMATCH = "amp-cache-mismatch"
    PROVIDER_DOMAIN_MISMATCH = "provider-domain-mismatch"
    AMP_PAIR_MISMATCH = "amp-pair-mismatch"
    TITLE_MISMATCH = "title-mismatch"
    DATE_MISMATCH = "date-mismatch"
    OG_IMAGE_SIZE_MISMATCH = "og-image-size-mismatch"
    FLAKY_LINK = "flaky-link"
    INVALID_METADATA = "invalid-metadata"
    PRIVATE_ADDRESS = "private-address"
    SOFT_404 = "soft-404"

    @property
    def default_severity(self) -> Severity:
        return _CODE_TRAITS[self][0]

    @property
    def stage(self) -> Stage:
        return _CODE_TRAITS[self][1]


_CODE_TRAITS: dict[Code, tuple[Severity, Stage]] = {
    Code.DEAD_LINK: (Severity.ERROR, Stage.LINK),
    Code.LINK_BLOCKED: (Severity.WARNING, Stage.LINK),
    Code.REDIRECT: (Severity.WARNING, Stage.LINK),
    Code.IMAGE_SIZE_MISMATCH: (Severity.ERROR, Stage.LINK),
    Code.NOT_AN_IMAGE: (Severity.ERROR, Stage.LINK),
    Code.AMP_CACHE_MISMATCH: (Severity.ERROR, Stage.OFFLINE),
    Code.PROVIDER_DOMAIN_MISMATCH: (Severity.WARNING, Stage.OFFLINE),
    Code.AMP_PAIR_MISMATCH: (Severity.WARNING, Stage.PAGE),
    Code.TITLE_MISMATCH: (Severity.WARNING, Stage.PAGE),
    Code.DATE_MISMATCH: (Severity.WARNING, Stage.PAGE),
    Code.OG_IMAGE_SIZE_MISMATCH: (Severity.WARNING, Stage.PAGE),
    Code.FLAKY_LINK: (Severity.WARNING, Stage.HISTORY),
    Code.INVALID_METADATA: (Severity.ERROR, Stage.OFFLINE),
    Code.PRIVATE_ADDRESS: (Severity.ERROR, Stage.LINK),
    Code.SOFT_404: (Severity.ERROR, Stage.LINK),
}


class Soft404Signal(StrEnum):
    """What made a page that answered 200 a soft 404, strongest evidence of its kind first."""

    HOME_PAGE = "home-page"  # redirected to its site's home page
    SECTION = "section"  # redirected to a page whose path is a strict prefix of its own
    LANDING_PAGE = "landing-page"  # permanently redirected where several other articles of the site ended too
    PROBE_REDIRECT = "probe-redirect"  # redirected where the host sends a path that cannot exist
    PROBE_MATCH = "probe-match"  # answers as the host answers a path that cannot exist
    NOT_FOUND_TITLE = "not-found-title"  # its title says "not found"
    CANONICAL_HOME = "canonical-home"  # its <link rel=canonical> names the home page

    @property
    def label(self) -> str:
        return _SOFT_404_LABELS[self]


_SOFT_404_LABELS = {
    Soft404Signal.HOME_PAGE: "redirected to the home page",
    Soft404Signal.SECTION: "redirected to a section page",
    Soft404Signal.LANDING_PAGE: "redirected where other articles of the site end too",
    Soft404Signal.PROBE_REDIRECT: "redirected where the host sends a path that cannot exist",
    Soft404Signal.PROBE_MATCH: "answers as the host answers a path that cannot exist",
    Soft404Signal.NOT_FOUND_TITLE: "its title says the page was not found",
    Soft404Signal.CANONICAL_HOME: "its canonical URL is the home page",
}


class RunStatus(StrEnum):
    RUNNING = "running"  # still going, or killed
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM: what was done is kept and reported
    FAILED = "failed"  # an unexpected error stopped it


class Mode(StrEnum):
    AUDIT = "audit"
    LINT = "lint"


class DateSource(StrEnum):
    """Where a page keeps its publication date; members are in order of trust (README, "Publication dates").

    Head sources come first: the body is read (within a small byte budget) only when the head has no date.
    """

    ARTICLE_PUBLISHED_TIME = "article:published_time"
    JSON_LD = "json-ld"
    ITEMPROP = "itemprop"
    PARSELY = "parsely-pub-date"
    SAILTHRU = "sailthru.date"
    DUBLIN_CORE = "dc.date"
    PUBDATE = "pubdate"
    NAME_DATE = "date"
    BODY_JSON_LD = "body:json-ld"
    BODY_ITEMPROP = "body:itemprop"
    BODY_TIME = "body:time"

    @property
    def label(self) -> str:
        """The source as a finding's message names it."""
        return _DATE_SOURCE_LABELS[self]

    @property
    def in_body(self) -> bool:
        return self in _BODY_DATE_SOURCES


_DATE_SOURCE_LABELS = {
    DateSource.ARTICLE_PUBLISHED_TIME: '<meta property="article:published_time">',
    DateSource.JSON_LD: "JSON-LD datePublished",
    DateSource.ITEMPROP: '<meta itemprop="datePublished">',
    DateSource.PARSELY: '<meta name="parsely-pub-date">',
    DateSource.SAILTHRU: '<meta name="sailthru.date">',
    DateSource.DUBLIN_CORE: "Dublin Core <meta> date (dc.date, dcterms.issued, …)",
    DateSource.PUBDATE: '<meta name="pubdate"> (or publish-date, article.published, …)',
    DateSource.NAME_DATE: '<meta name="date">',
    DateSource.BODY_JSON_LD: "JSON-LD datePublished in the body",
    DateSource.BODY_ITEMPROP: 'itemprop="datePublished" in the body',
    DateSource.BODY_TIME: "<time datetime> in the body",
}
_BODY_DATE_SOURCES = frozenset({DateSource.BODY_JSON_LD, DateSource.BODY_ITEMPROP, DateSource.BODY_TIME})


# -- records ---------------------------------------------------------------
@dataclass(frozen=True)
class PageHead:
    """What a page's <head> says about it (and the start of its body, for a date the head lacks); links are absolute."""

    amphtml: str | None = None  # <link rel=amphtml href>
    canonical: str | None = None  # <link rel=canonical href>
    title: str | None = None  # <title> text, entities decoded
    og_title: str | None = None
    og_image: str | None = None
    og_image_width: int | None = None
    og_image_height: int | None = None
    # The publication date as the page wrote it, from the most trusted source that gave a readable
    # one (`published_source`). Heads stored before sources were recorded read only article:published_time.
    published_time: str | None = None
    published_source: DateSource | None = None
    # A 64-bit simhash (16 hex digits) of the head's own words: title and the descriptive meta
    # tags. Near-equal hashes of two pages mean near-equal heads (auditor/simhash.py). Stored for
    # the soft-404 rule; not in report.json, where it would say nothing to a reader.
    text_hash: str | None = dataclasses.field(default=None, metadata={"reported": False})


@dataclass(frozen=True, kw_only=True)
class LinkRef:
    document: str
    item: str  # "" for the article itself, "related[2]" for a related item
    field: str  # full field path, e.g. "related[2].images[0].url"
    line: int | None
    kind: Kind
    url: str  # as written in the document
    normalized_url: str  # the key checks are made and found by
    declared_width: int | None = None
    declared_height: int | None = None


@dataclass(frozen=True)
class Hop:
    status: int
    url: str


@dataclass(frozen=True, kw_only=True)
class Check:
    url: str  # the normalised URL as cited: the key the run's references find their check by
    kind: Kind
    ok: bool
    status: int | None = None
    reason: Reason | None = None
    message: str | None = None
    final_url: str | None = None
    content_type: str | None = None
    elapsed_ms: int = 0
    checked_at: str = ""
    attempts: int = 1
    redirects: tuple[Hop, ...] = ()
    # What the server asked of the next attempt; the crawl's business, never stored.
    retry_after: float | None = dataclasses.field(default=None, metadata={"stored": False})
    bytes_read: int = 0
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    image_error: str | None = None
    head: PageHead | None = None  # pages only: what their <head> says
    # The validators a 2xx final answer carried, sent back on the next check of the URL
    # (If-None-Match / If-Modified-Since); verbatim, weak ETags included.
    etag: str | None = None
    last_modified: str | None = None
    # This check is a 304 that confirmed an earlier answer: its outcome (status, head, image
    # size, validators) is that answer's; its time, bytes and attempts are this exchange's.
    revalidated: bool = False
    # What was requested instead of `url` when a --remap rule rewrote it (a staging mirror); None otherwise.
    fetched_url: str | None = None
    id: int | None = None  # given by the store; a run that reuses this result points at it

    @property
    def accepted(self) -> bool:
        """OK with a status that is no 2xx: one the config accepts (`--accept`, `hosts:`); nothing was read."""
        return is_accepted(self.ok, self.status)

    @property
    def excluded(self) -> bool:
        """Left out by --exclude/--include: a record that the URL was not asked, not an answer."""
        return self.reason == Reason.EXCLUDED


def is_accepted(ok: bool, status: int | None) -> bool:
    """An OK outcome whose status is not a 2xx: only an accepted status makes one (the crawl never reads it)."""
    return ok and status is not None and not 200 <= status < 300


@dataclass(frozen=True)
class Target:
    """One URL for the crawl: the kind it is checked as and, when it may be revalidated,
    its previous check (whose validators go out as a conditional request)."""

    url: str
    kind: Kind
    previous: Check | None = None


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What a link finding rests on: the check's outcome, and for a flaky link its recent history."""

    reason: str | None = None  # the outcome in words: "http 404", "dns", "ok"
    status: int | None = None
    fetched_url: str | None = None  # the --remap target that was requested instead of the cited URL
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    history: str | None = None  # one ✓ or ✗ per run, oldest first


@dataclass(frozen=True, kw_only=True)
class ArchivedCopy:
    """The Wayback Machine's answer for a URL (--suggest): its closest usable snapshot, or none."""

    url: str  # the URL the archive was asked about (normalised)
    snapshot_url: str | None = None  # None: the archive has no usable copy
    archived_at: str | None = None  # when the snapshot was taken, ISO 8601 UTC
    asked_at: str = ""  # when the archive answered: a cached answer is reused until it is too old

    @property
    def available(self) -> bool:
        return self.snapshot_url is not None


@dataclass(frozen=True, kw_only=True)
class ArchiveLookups:
    """How a run's --suggest went, per unique URL of its dead links."""

    wanted: int = 0  # unique URLs that could get a suggestion
    cached: int = 0  # answered from the database (younger than the TTL)
    asked: int = 0  # answered by the archive in this run
    found: int = 0  # answers, cached or asked, with a snapshot
    failed: int = 0  # the archive did not answer usably (timeout, 5xx, garbage): no suggestion
    skipped: int = 0  # not asked: past max_lookups, or after the archive failed or asked us to slow down
    last_error: str | None = None  # the last failure, as "URL: what went wrong"


@dataclass(frozen=True, kw_only=True)
class Finding:
    code: Code
    document: str
    field: str
    line: int | None
    message: str
    url: str | None = None
    expected: str | None = None
    actual: str | None = None
    details: Evidence | None = None  # link and history findings: what the verdict rests on
    severity: Severity | None = None  # set from the config when the finding is stored
    first_seen: str | None = None  # when the run that first reported it (without a gap since) started
    failing_runs: int | None = None  # consecutive runs that reported it, this one included
    archived: ArchivedCopy | None = None  # --suggest: what the Wayback Machine has of a dead link's URL

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """What makes a finding 'the same' across runs: new, fixed and how long it has failed."""
        return (self.code, self.document, self.field, self.url)


@dataclass(frozen=True, kw_only=True)
class Run:
    """One audit or lint over a corpus; `id` is given by the store."""

    id: int | None = None
    mode: Mode
    started_at: str
    finished_at: str | None = None
    status: RunStatus = RunStatus.RUNNING
    corpus: tuple[str, ...] = ()
    documents: int | None = None
    references: int | None = None
    urls: int | None = None
    tool_version: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # the Config it ran with, as JSON
    # How the run got each URL's result: fetched anew, confirmed by a 304, or reused within --max-age.
    fetched: int | None = None
    revalidated: int | None = None
    reused: int | None = None
    # A finished run keeps no row per URL: its check of a URL is the newest check of that URL
    # up to this id (what it fetched, or the newest it reused). Unfinished runs keep their rows.
    checks_until: int | None = None
    # The run whose document rows this one shares (its corpus was the same, path for path).
    documents_of: int | None = None
    fingerprint: str | None = None  # of the run's documents: paths and contents, in order
    archive: ArchiveLookups | None = None  # --suggest only: how the archive lookups went
    # A shard run (--shard K/N) checked only the URLs of partition `shard` of `shards`; it keeps its rows
    # (never compacted) and judges nothing but the offline rules. A merged run (auditor merge) has
    # `shards` alone: its URLs were checked by that many shard runs, its findings judged on the whole.
    shard: int | None = None
    shards: int | None = None
