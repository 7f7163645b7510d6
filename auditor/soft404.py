"""Soft 404s: pages that answer 200 for an article that is gone.

Newsrooms rarely answer 404 for a removed article: they redirect it to the
home page or a section, or serve a "page not found" page with status 200.
This module judges one page check against what the run knows about its host;
it never fetches (the host probe is fetched by the crawl, see `probe_url`).

The signals (`Soft404Signal`), each with what it matched:

- redirected away: the chain ends on the site's home page, on a page whose
  path is a strict prefix of the article's (a section), or, permanently, on
  the page where `landing_min_articles` or more other articles of the site
  end too (`landing_pages`). A redirect to another article (a moved story: a
  different path, not a shorter one) is not one, nor a redirect to the item's
  own other URL (an AMP page sent to its article).
- host probe: once per host with pages, the crawl asks for a path that cannot
  exist. A 404 or 410 says the host is well behaved. A 200 is kept as the
  host's fingerprint (final URL, title, head text hash): a page redirected
  where the probe ended, or with the probe's title and a head text within
  `max_text_distance` bits of it, answers as a missing page does.
- says so itself: its title or og:title is a not-found title (a whole title,
  or a whole part of one, from data/not_found_titles.txt), or its canonical
  URL is the home page. These count alone only when the document's headline
  is known and missing from the page; otherwise only beside another signal.

Any page that still carries the document's headline is never a soft 404.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from urllib.parse import SplitResult, urlsplit

from auditor import simhash
from auditor.domains import registrable_domain
from auditor.links import InvalidURL, normalize_url
from auditor.model import Check, Hop, Kind, PageHead, Soft404Signal

# The kinds of link a soft 404 is judged for: pages read as HTML.
PAGE_KINDS = frozenset({Kind.PAGE, Kind.AMP})
PROBE_SUFFIX = "-auditor-probe"
PERMANENT_REDIRECTS = frozenset({301, 308})
# A last path segment that names the same page as its parent: "/story/index.html" and
# "/story/amp" are "/story", never a section above it.
_SAME_PAGE_SEGMENTS = frozenset(
    {
        "index.html",
        "index.htm",
        "index.php",
        "index.shtml",
        "index.asp",
        "index.aspx",
        "default.asp",
        "default.aspx",
        "default.htm",
        "default.html",
        "amp",
        "amp.html",
    }
)
_PLAIN = str.maketrans({"‘": "'", "’": "'", "`": "'", "´": "'", "“": '"', "”": '"', "–": "-", "—": "-", "‐": "-"})
# Where a title is split into parts, one of which may be the site's name.
_TITLE_PARTS = re.compile(r"\s+(?:\||-|·|•|::)\s+|:\s+")
_EDGE_PUNCTUATION = " \t\"'.!?¡¿,;:()[]"


@dataclass(frozen=True)
class HostEvidence:
    """What the run knows about hosts, beside each page's own check."""

    probes: Mapping[str, Check] = field(default_factory=dict)  # origin -> its probe's check
    landings: Mapping[str, int] = field(default_factory=dict)  # final URL -> distinct articles sent there


@dataclass(frozen=True)
class Soft404:
    """The verdict on one page: every signal that fired, strongest first, and what the first matched."""

    signals: tuple[Soft404Signal, ...]
    matched: str

    @property
    def signal(self) -> Soft404Signal:
        return self.signals[0]


# -- the host probe ----------------------------------------------------------------------
def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a normalised URL: what one probe stands for."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def probe_url(origin: str) -> str:
    """A path on `origin` that cannot exist: 64 random bits, and a suffix that says who asked."""
    return f"{origin}/{secrets.token_hex(8)}{PROBE_SUFFIX}"


def probe_answered(probe: Check) -> bool:
    """Whether a probe got a 2xx: the host answers a missing page as if it were there."""
    return probe.ok and probe.status is not None and 200 <= probe.status < 300


def probe_fresh(probe: Check, now: float, max_age: float) -> bool:
    """A stored probe is reused like a check within --max-age, if it got an answer at all."""
    if probe.status is None or not probe.checked_at:
        return False
    age = now - datetime.fromisoformat(probe.checked_at).timestamp()
    return 0 <= age <= max_age


# -- landing pages (logging rules) --------------------------------------------------------
def landing_pages(redirected: Iterable[tuple[str, str, tuple[Hop, ...]]], minimum: int) -> dict[str, int]:
    """Final URLs that `minimum` or more distinct articles of their site were permanently sent to.

    `redirected`: (URL, final URL, hops) of the run's page checks that ended elsewhere. Only a
    last hop of 301/308 counts (a paywall or a consent page is a temporary redirect), and only
    articles of the landing page's own site, told apart by path: one article cited with
    different queries, or its AMP variant, is one article.
    """
    articles: defaultdict[str, set[tuple[str, ...]]] = defaultdict(set)
    for url, final, hops in redirected:
        if final == url or not hops or hops[-1].status not in PERMANENT_REDIRECTS:
            continue
        parts, final_parts = urlsplit(url), urlsplit(final)
        identity = _article_identity(parts)
        if identity is None or not _same_site(parts, final_parts) or identity == _segments(final_parts.path):
            continue
        articles[final].add(identity)
    return {final: len(ids) for final, ids in articles.items() if len(ids) >= minimum}


# -- not-found titles ----------------------------------------------------------------------
@functools.cache
def not_found_titles() -> frozenset[str]:
    """The titles in data/not_found_titles.txt, as compared."""
    text = resources.files("auditor").joinpath("data/not_found_titles.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(_plain(line) for line in lines if line and not line.startswith("#"))


def is_not_found_title(title: str) -> bool:
    """The whole title, or one whole part of it ("Page not found | Site"), is a not-found title."""
    known = not_found_titles()
    plain = _plain(title)
    return plain in known or any(_plain(part) in known for part in _TITLE_PARTS.split(plain))


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_PLAIN).casefold()
    return " ".join(text.split()).strip(_EDGE_PUNCTUATION)


# -- the verdict ---------------------------------------------------------------------------
def judge(
    url: str,
    check: Check,
    hosts: HostEvidence,
    *,
    own_urls: frozenset[str] = frozenset(),
    headline_kept: bool | None = None,
    max_text_distance: int = 10,
) -> Soft404 | None:
    """Whether the page at `url` (normalised) is a soft 404, and why.

    `own_urls`: the item's URLs (normalised), where a redirect is no loss. `headline_kept`:
    whether the page carries the document's headline (None: no headline to compare).
    """
    if headline_kept or not (check.ok and check.status is not None and 200 <= check.status < 300):
        return None
    # Under --remap the page answered at its mirror's address: that host's probe and home page apply.
    url = check.fetched_url or url
    parts = urlsplit(url)
    if _article_identity(parts) is None:
        return None  # a home page cited as such is no article that could be gone
    final = check.final_url or url
    moved = final != url and final not in own_urls
    final_parts = urlsplit(final)
    found: list[tuple[Soft404Signal, str]] = []
    if moved and _same_site(parts, final_parts):
        if _is_home(final_parts):
            found.append((Soft404Signal.HOME_PAGE, f"{final} is the home page of {final_parts.netloc}"))
        elif _is_section_of(final_parts, parts):
            found.append((Soft404Signal.SECTION, f"{final_parts.path} is a section above {parts.path}"))
        articles = hosts.landings.get(final)
        if articles and check.redirects and check.redirects[-1].status in PERMANENT_REDIRECTS:
            site = registrable_domain(parts.hostname or "")
            found.append((Soft404Signal.LANDING_PAGE, f"{articles} articles of {site} are permanently sent to {final}"))
    probe = hosts.probes.get(origin_of(url))
    if probe is not None and probe_answered(probe):
        probe_final = probe.final_url or probe.url
        if moved and probe_final != probe.url and final == probe_final:
            found.append((Soft404Signal.PROBE_REDIRECT, f"{probe.url}, a path that cannot exist, ends there too"))
        else:
            alike = _alike(check.head, probe.head, max_text_distance)
            if alike is not None:
                title, bits = alike
                what = f"title {title!r} and head words {bits}/64 bits from the answer to {probe.url}"
                found.append((Soft404Signal.PROBE_MATCH, f"{what}, a path that cannot exist"))
    head = check.head
    # A page's own words count alone only against a headline known to be gone.
    alone = headline_kept is False
    if head is not None and (alone or found):
        says = next((t for t in (head.title, head.og_title) if t and is_not_found_title(t)), None)
        if says is not None:
            found.append((Soft404Signal.NOT_FOUND_TITLE, f"title {says!r}"))
        canonical = _normalized(head.canonical)
        home_found = any(signal is Soft404Signal.HOME_PAGE for signal, _ in found)
        if canonical and not home_found and _same_site(parts, urlsplit(canonical)) and _is_home(urlsplit(canonical)):
            found.append((Soft404Signal.CANONICAL_HOME, f"<link rel=canonical> {canonical}"))
    if not found:
        return None
    return Soft404(signals=tuple(signal for signal, _ in found), matched=found[0][1])


def _alike(head: PageHead | None, probe: PageHead | None, max_distance: int) -> tuple[str, int] | None:
    """(title, bits apart) when a page's head reads as the probe's: the same title, near-equal words."""
    if head is None or probe is None or not head.text_hash or not probe.text_hash:
        return None
    title, probe_title = head.title or head.og_title, probe.title or probe.og_title
    if not title or not probe_title or _plain(title) != _plain(probe_title):
        return None
    bits = simhash.distance(head.text_hash, probe.text_hash)
    return (title, bits) if bits <= max_distance else None


def _segments(path: str) -> tuple[str, ...]:
    """A path's non-empty segments, without a last one that names the same page (index.html, amp)."""
    segments = [segment for segment in path.split("/") if segment]
    while segments and segments[-1].lower() in _SAME_PAGE_SEGMENTS:
        segments.pop()
    return tuple(segments)


def _article_identity(parts: SplitResult) -> tuple[str, ...] | None:
    """What tells an article from others of its site: its path, or its query on a bare path (`/?p=12`)."""
    segments = _segments(parts.path)
    if segments:
        return segments
    return ("?" + parts.query,) if parts.query else None


def _is_home(parts: SplitResult) -> bool:
    return not _segments(parts.path) and not parts.query


def _is_section_of(final: SplitResult, article: SplitResult) -> bool:
    above, below = _segments(final.path), _segments(article.path)
    return not final.query and 0 < len(above) < len(below) and below[: len(above)] == above


def _same_site(a: SplitResult, b: SplitResult) -> bool:
    return bool(a.hostname and b.hostname) and registrable_domain(a.hostname or "") == registrable_domain(
        b.hostname or ""
    )


def _normalized(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return normalize_url(url)
    except InvalidURL:
        return None
