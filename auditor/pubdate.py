"""Publication dates: where pages keep them, which one to trust, and how to read them.

A page may state its date in many places (`DateSource`, in order of trust).
The head parser hands every candidate it meets to a `DateCandidates`; the
winner is the first candidate, in that order, that reads as a date.

Reading a date (`parse_page_date`): ISO 8601 first (`datetime.fromisoformat`),
then python-dateutil for what newsrooms write besides: RFC 2822
("Fri, 22 Oct 2021 00:44:09 +0000"), ctime ("Tue May 24 05:55:00 2016"),
JavaScript's Date.toString ("Wed Jan 06 2021 00:34:00 GMT+0000 (UTC)") and
written-out dates ("September 5, 2025"). A value must name a year, a month
and a day; one whose day and month could be swapped ("4/6/2016") is no date
at all rather than a guess.

The time zone rule: a numeric offset, `Z`, `UTC` or `GMT` is kept; a zone
name (EST, CET, IST: each means different offsets in different countries)
or none leaves the time local to the publisher with its zone unknown. The
`date-mismatch` rule compares such a date, and a date without a time, by
calendar day with a day's tolerance; only a zoned time is compared to the
second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from dateutil import parser as dateutil_parser

from auditor.model import DateSource

# Longer text is prose, not a date.
MAX_DATE_CHARS = 100
# A year outside this is a placeholder (0001, 1970 from a zero timestamp is still inside) or a typo.
PLAUSIBLE_YEARS = range(1900, 2101)
# Candidates kept per source: the first few in document order are what counts.
MAX_CANDIDATES_PER_SOURCE = 8
# How deep and how many JSON-LD nodes are searched for an article: bounded, as every read of network data.
MAX_JSON_LD_DEPTH = 8
MAX_JSON_LD_NODES = 2_000

# <meta name|property> keys (lowercased) and the source each counts as.
META_SOURCES: Mapping[str, DateSource] = {
    "article:published_time": DateSource.ARTICLE_PUBLISHED_TIME,
    "og:article:published_time": DateSource.ARTICLE_PUBLISHED_TIME,
    "parsely-pub-date": DateSource.PARSELY,
    "sailthru.date": DateSource.SAILTHRU,
    "dc.date": DateSource.DUBLIN_CORE,
    "dc.date.issued": DateSource.DUBLIN_CORE,
    "dc.date.created": DateSource.DUBLIN_CORE,
    "dcterms.date": DateSource.DUBLIN_CORE,
    "dcterms.issued": DateSource.DUBLIN_CORE,
    "dcterms.created": DateSource.DUBLIN_CORE,
    "pubdate": DateSource.PUBDATE,
    "publishdate": DateSource.PUBDATE,
    "publish-date": DateSource.PUBDATE,
    "publish_date": DateSource.PUBDATE,
    "pub_date": DateSource.PUBDATE,
    "publication_date": DateSource.PUBDATE,
    "datepublished": DateSource.PUBDATE,
    "article.published": DateSource.PUBDATE,
    "article:published": DateSource.PUBDATE,
    "iso-8601-publish-date": DateSource.PUBDATE,
    "date": DateSource.NAME_DATE,
}

# schema.org types whose datePublished is the article's; a web page's own is the fallback.
ARTICLE_TYPES = frozenset(
    {
        "Article",
        "NewsArticle",
        "AnalysisNewsArticle",
        "AskPublicNewsArticle",
        "BackgroundNewsArticle",
        "OpinionNewsArticle",
        "ReportageNewsArticle",
        "ReviewNewsArticle",
        "SatiricalArticle",
        "ScholarlyArticle",
        "TechArticle",
        "Report",
        "BlogPosting",
        "LiveBlogPosting",
        "SocialMediaPosting",
        "DiscussionForumPosting",
        "AdvertiserContentArticle",
    }
)
PAGE_TYPES = frozenset({"WebPage", "ItemPage", "AboutPage", "CollectionPage", "ProfilePage", "QAPage"})

# Ranks within one source, lowest first (document order among equals): a date marked as the
# publication date (`<time pubdate>`), a plain one, a web page's own (JSON-LD WebPage).
MARKED, PLAIN, WEB_PAGE = -1, 0, 1


@dataclass(frozen=True)
class PageDate:
    """A date read from a page: `moment` is aware when the page gave a usable zone."""

    moment: datetime
    has_time: bool

    @property
    def has_zone(self) -> bool:
        return self.moment.tzinfo is not None

    def isoformat(self) -> str:
        return self.moment.isoformat() if self.has_time else self.moment.date().isoformat()


# -- reading one value -------------------------------------------------------------
_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")
# "4/6/2016", "04.06.16": day and month could be either way round.
_NUMERIC_DAY_MONTH = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.]\d{2,4}\b")
# JavaScript writes "GMT-0500" for five hours behind UTC; dateutil reads "GMT-5" the POSIX way, inverted.
_NAMED_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*(?=[+-]\d)", re.IGNORECASE)
_TRAILING_COMMENT = re.compile(r"\s*\([^()]*\)$")  # "(Coordinated Universal Time)"
_OFFSET_THEN_Z = re.compile(r"([+-]\d{2}:?\d{2})Z$")  # "10:00:00-07:00Z": the offset is meant
_DOTTED_OFFSET = re.compile(r"([+-])(\d{1,2})\.(\d{2})$")  # "16:34+5.30": India's +05:30
# Two defaults that differ in every field: whatever a value leaves out comes out different.
_DEFAULTS = (datetime(2000, 1, 1, 0, 0, 0), datetime(2001, 2, 2, 1, 1, 1))


def parse_page_date(text: str | None) -> PageDate | None:
    """The date a page wrote, or None when it is not one complete, unambiguous date."""
    if text is None:
        return None
    value = " ".join(text.split())
    if not value or len(value) > MAX_DATE_CHARS:
        return None
    parsed = _iso(value) or _written(value)
    if parsed is None or parsed.moment.year not in PLAUSIBLE_YEARS:
        return None
    return parsed


def _iso(value: str) -> PageDate | None:
    try:
        moment = datetime.fromisoformat(_DOTTED_OFFSET.sub(lambda m: f"{m[1]}{int(m[2]):02d}:{m[3]}", value))
    except ValueError:
        return None
    return PageDate(moment, has_time=_DATE_ONLY.fullmatch(value) is None)


def _written(value: str) -> PageDate | None:
    if value.isdigit():
        return None  # a bare number (an epoch, an id) is not a written date; 8 digits were ISO already
    numeric = _NUMERIC_DAY_MONTH.match(value)
    if numeric and numeric.group(1) != numeric.group(2) and max(map(int, numeric.groups())) <= 12:
        return None
    value = _OFFSET_THEN_Z.sub(r"\1", _NAMED_OFFSET.sub("", _TRAILING_COMMENT.sub("", value)))
    try:
        first, second = (dateutil_parser.parse(value, default=default, tzinfos=_zone) for default in _DEFAULTS)
    except (ValueError, OverflowError):
        return None
    if (first.year, first.month, first.day) != (second.year, second.month, second.day):
        return None  # no year, month or day of its own: "May 2016", "24"
    return PageDate(first, has_time=first.hour == second.hour)


def _zone(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil's zone hook: offsets and UTC only; any zone name is left unknown (see the module's rule).

    Asked for every value, so dateutil never falls back to the machine's own zone for a name it shares.
    """
    if offset is not None:
        return UTC if offset == 0 else timezone(timedelta(seconds=offset))
    if name is not None and name.upper() in ("UTC", "GMT", "Z", "UT"):
        return UTC
    return None


# -- JSON-LD -----------------------------------------------------------------------
_JSON_WRAPPERS = re.compile(r"^\s*(?://\s*)?(?:<!--|<!\[CDATA\[)|(?://\s*)?(?:-->|\]\]>)\s*$")
# What templates leave behind when a value is missing: `"width": ,` and `[1, 2,]`.
_EMPTY_VALUE = re.compile(r":\s*(?=[,}\]])")
_TRAILING_COMMA = re.compile(r",\s*(?=[}\]])")


def json_ld_dates(text: str) -> list[tuple[int, str]]:
    """(rank, datePublished) of a JSON-LD script's nodes: articles (PLAIN), then web pages (WEB_PAGE).

    Nodes are found at the top, in lists, in `@graph` and nested in other nodes
    (`mainEntity`); text that is not JSON, even after repairing empty values and
    trailing commas, gives nothing.
    """
    text = _JSON_WRAPPERS.sub("", text)
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        try:  # the two breakages templates make most (a repair can touch only text that held them)
            data = json.loads(_TRAILING_COMMA.sub("", _EMPTY_VALUE.sub(": null", text)), strict=False)
        except ValueError:
            return []
    found: list[tuple[int, str]] = []
    for node in _nodes(data):
        value = _text_value(node.get("datePublished"))
        if value is None:
            continue
        types = _types(node.get("@type"))
        if types & ARTICLE_TYPES:
            found.append((PLAIN, value))
        elif types & PAGE_TYPES:
            found.append((WEB_PAGE, value))
    return sorted(found, key=lambda pair: pair[0])  # stable: document order among equals


def _nodes(data: Any) -> Iterator[dict[str, Any]]:
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack and seen < MAX_JSON_LD_NODES:
        value, depth = stack.pop()
        if depth > MAX_JSON_LD_DEPTH:
            continue
        children: list[Any] = []
        if isinstance(value, dict):
            seen += 1
            yield value
            children = [child for child in value.values() if isinstance(child, dict | list)]
        elif isinstance(value, list):
            children = [child for child in value if isinstance(child, dict | list)]
        # Reversed onto the stack, so nodes come out in document order.
        stack.extend((child, depth + 1) for child in reversed(children))


def _types(value: Any) -> set[str]:
    names = value if isinstance(value, list) else [value]
    # "schema:NewsArticle" and "https://schema.org/NewsArticle" name the same type.
    return {re.split(r"[/:#]", name)[-1] for name in names if isinstance(name, str)}


def _text_value(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value")
    return value if isinstance(value, str) else None


# -- choosing ----------------------------------------------------------------------
@dataclass(frozen=True)
class FoundDate:
    source: DateSource
    text: str  # as the page wrote it
    date: PageDate


class DateCandidates:
    """Every date a page offered, per source; `best` is the first, in order of trust, that reads as one."""

    def __init__(self) -> None:
        self._found: dict[DateSource, list[tuple[int, str]]] = {}

    def add(self, source: DateSource, text: str | None, *, rank: int = PLAIN) -> None:
        """Keep a candidate: ahead of its source's candidates of a higher rank, after those of its own."""
        if text is None or not text.strip():
            return
        found = self._found.setdefault(source, [])
        if len(found) < MAX_CANDIDATES_PER_SOURCE:
            found.append((rank, text.strip()))
            found.sort(key=lambda pair: pair[0])  # stable: document order among equals

    def best(self, sources: frozenset[DateSource] | None = None) -> FoundDate | None:
        for source in DateSource:
            if sources is not None and source not in sources:
                continue
            for _, text in self._found.get(source, ()):
                date = parse_page_date(text)
                if date is not None:
                    return FoundDate(source, text, date)
        return None

    def readable(self) -> dict[DateSource, FoundDate]:
        """The first readable date of each source (what `bench/peer_pages.py` counts)."""
        found = {}
        for source in DateSource:
            best = self.best(frozenset({source}))
            if best is not None:
                found[source] = best
        return found
