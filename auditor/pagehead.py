"""What a page's <head> says about itself: AMP pair links, title, Open Graph, publication date.

The crawler streams a page body into `HeadParser.feed` and stops reading as
soon as the head is over, so an article page costs a few kilobytes rather than
its whole body. Only a page whose head gives no publication date is read
further, by at most `date_body_bytes`, for the dates bodies carry (JSON-LD,
`itemprop="datePublished"`, `<time datetime>`; see auditor/pubdate.py).

Bytes become text the way browsers decide: a BOM, else an encoding given
by the caller (the HTTP Content-Type charset), else a `<meta charset>`
within the first 1024 bytes, else UTF-8 — decoded incrementally, so a
character split across chunks survives.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from auditor.model import DateSource, PageHead
from auditor.pubdate import MARKED, META_SOURCES, PLAIN, DateCandidates, json_ld_dates, parse_page_date
from auditor.simhash import simhash

DEFAULT_MAX_BYTES = 512 * 1024
# How far browsers look for <meta charset> before committing to an encoding.
CHARSET_PRESCAN_BYTES = 1024

# The lookahead keeps a label cut off by a chunk boundary ("windows-12") from counting.
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)(?=[\s"'>;/])""", re.IGNORECASE)
_HEAD_OVER = re.compile(rb"</head|<body", re.IGNORECASE)
_HEAD_OVER_TEXT = re.compile(r"</head|<body", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG Encoding: these labels mean windows-1252, and a <meta> naming UTF-16
# is a lie (the bytes were ASCII-compatible enough to read it).
_ENCODING_OVERRIDES = {
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "utf-16": "utf-8",
    "utf-16-le": "utf-8",
    "utf-16-be": "utf-8",
}
_WHITESPACE = re.compile(r"\s+")
# The head's own words, hashed into PageHead.text_hash: what tells one page of a site from another
# (a site's other meta tags, scripts and styles are the same on every page).
TEXT_HASH_META = ("description", "og:title", "og:description", "twitter:title", "twitter:description", "keywords")

# The text of an element marked itemprop="datePublished" is a date or not worth reading further.
MAX_DATE_TEXT_CHARS = 200


class HeadParser:
    """Feed a page's bytes as they arrive; `feed` says when the head is over."""

    def __init__(
        self,
        base_url: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        encoding: str | None = None,
        date_body_bytes: int = 0,
    ) -> None:
        """`max_bytes` bounds the head; `date_body_bytes` the bytes read past it when it has no date."""
        self._max_bytes = max_bytes
        self._date_body_bytes = date_body_bytes
        self._bytes_read = 0
        self._pending = bytearray()  # bytes held back until the encoding is known
        self._decoder: codecs.IncrementalDecoder | None = None
        self._declared_encoding = _known_encoding(encoding) if encoding else None
        self._html = _HeadHTMLParser(base_url, search_body=date_body_bytes > 0)
        self._capped = False
        self._head_ended_at: int | None = None  # bytes read when the head was over

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def done(self) -> bool:
        return self._capped or (self._html.head_over and not self._html.searching_body)

    def feed(self, chunk: bytes) -> bool:
        """Add bytes; True once the head is over (and a body date found or not within its budget) or at the cap."""
        if self.done:
            return True
        chunk = chunk[: self._limit() - self._bytes_read]
        self._bytes_read += len(chunk)
        if self._decoder is None:
            self._pending += chunk
            if self._ready_to_decode():
                self._start_decoding()
        else:
            self._parse(self._decoder.decode(chunk))
        if self._html.head_over and self._head_ended_at is None:
            # The chunk that ended the head was read anyway; the budget counts what is read for the body alone.
            self._head_ended_at = self._bytes_read
        if self._bytes_read >= self._limit():
            self._capped = True
        return self.done

    def _limit(self) -> int:
        if self._head_ended_at is None:
            return self._max_bytes
        return self._head_ended_at + self._date_body_bytes

    def result(self) -> PageHead:
        """What the head said so far; bytes still held back for charset sniffing are parsed first."""
        if self._decoder is None:
            self._start_decoding()
        return self._html.page_head()

    def date_candidates(self) -> DateCandidates:
        """Every date the page offered so far, per source (`result` keeps only the winner)."""
        return self._html.date_candidates()

    def _ready_to_decode(self) -> bool:
        pending = bytes(self._pending)
        if _could_be_bom(pending):
            return False
        return (
            self._declared_encoding is not None
            or len(pending) >= CHARSET_PRESCAN_BYTES
            or _bom_encoding(pending) is not None
            or _META_CHARSET.search(pending) is not None
            or _HEAD_OVER.search(pending) is not None
            or self._bytes_read >= self._max_bytes
        )

    def _start_decoding(self) -> None:
        pending = bytes(self._pending)
        self._pending.clear()
        encoding = _bom_encoding(pending)
        if encoding is not None:
            pending = pending[_bom_length(pending) :]
        else:
            encoding = self._declared_encoding or _sniffed_encoding(pending) or "utf-8"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._parse(self._decoder.decode(pending))

    def _parse(self, text: str) -> None:
        # The head is fed up to the tag that may end it, so the body in the same chunk is not tokenised
        # for nothing (html.parser is pure Python); a `</head` inside a script just means feeding on.
        while text and not self._html.head_over:
            end = _HEAD_OVER_TEXT.search(text)
            cut = len(text) if end is None else text.find(">", end.end()) + 1 or len(text)
            self._html.feed(text[:cut])
            text = text[cut:]
        if text and self._html.searching_body:
            self._html.feed(text)


class _HeadHTMLParser(HTMLParser):
    def __init__(self, base_url: str, *, search_body: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.head_over = False
        # Whether the body is being read for a date: only when allowed and the head had none.
        self.searching_body = False
        self._may_search_body = search_body
        self._base_url = base_url
        self._base_seen = False
        self._links: dict[str, str] = {}
        self._meta: dict[str, str] = {}
        self._title_parts: list[str] | None = None  # collecting while inside <title>
        self._title: str | None = None
        self._dates = DateCandidates()
        self._json_ld: tuple[DateSource, list[str]] | None = None  # collecting while inside a JSON-LD script
        self._itemprop_text: tuple[str, list[str]] | None = None  # (tag, text) of a body date element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value for name, value in reversed(attrs) if value is not None}
        if self.head_over:
            if self.searching_body:
                # A bare attribute (`<time pubdate>`) has no value, but it is there.
                self._body_starttag(tag, attributes, pubdate=any(name == "pubdate" for name, _ in attrs))
            return
        if tag == "script" and _is_json_ld(attributes):
            self._json_ld = (DateSource.JSON_LD, [])
        elif tag == "body":
            self._end_head()
        elif tag == "base" and not self._base_seen and attributes.get("href", "").strip():
            # Only the first <base> counts, and only for URLs after it.
            self._base_seen = True
            self._base_url = urljoin(self._base_url, attributes["href"].strip())
        elif tag == "link" and attributes.get("href", "").strip():
            href = urljoin(self._base_url, attributes["href"].strip())
            for relation in attributes.get("rel", "").lower().split():
                self._links.setdefault(relation, href)
        elif tag == "meta":
            key = (attributes.get("property") or attributes.get("name") or "").strip().lower()
            content = attributes.get("content")
            if key and content is not None:
                if key == "og:image:url":  # an alias of og:image
                    key = "og:image"
                if key == "og:image":
                    content = urljoin(self._base_url, content.strip())
                self._meta.setdefault(key, content)
                if key in META_SOURCES:
                    self._dates.add(META_SOURCES[key], content)
            if _is_date_published(attributes):
                self._dates.add(DateSource.ITEMPROP, content)
        elif tag == "title" and self._title is None:
            self._title_parts = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._json_ld is not None:
            self._finish_json_ld()
        if self.head_over:
            if self.searching_body and self._itemprop_text is not None and tag == self._itemprop_text[0]:
                text = _WHITESPACE.sub(" ", "".join(self._itemprop_text[1])).strip()
                self._itemprop_text = None
                self._body_date(DateSource.BODY_ITEMPROP, text)
            return
        if tag == "head":
            self._end_head()
        elif tag == "title" and self._title_parts is not None:
            self._finish_title()

    def handle_data(self, data: str) -> None:
        if self._json_ld is not None:
            self._json_ld[1].append(data)
        elif self._title_parts is not None and not self.head_over:
            self._title_parts.append(data)
        elif self._itemprop_text is not None and self.searching_body:
            parts = self._itemprop_text[1]
            if sum(map(len, parts)) < MAX_DATE_TEXT_CHARS:
                parts.append(data)

    def _end_head(self) -> None:
        self.head_over = True
        self.searching_body = self._may_search_body and self._dates.best() is None

    def _body_starttag(self, tag: str, attributes: dict[str, str], *, pubdate: bool) -> None:
        if tag == "script" and _is_json_ld(attributes):
            self._json_ld = (DateSource.BODY_JSON_LD, [])
        elif _is_date_published(attributes):
            value = attributes.get("datetime") or attributes.get("content") or attributes.get("title")
            if value:
                self._body_date(DateSource.BODY_ITEMPROP, value)
            elif tag not in _VOID_ELEMENTS:
                self._itemprop_text = (tag, [])  # its text, or a <time datetime> inside it
        elif tag == "time" and attributes.get("datetime"):
            if self._itemprop_text is not None:
                self._itemprop_text = None
                self._body_date(DateSource.BODY_ITEMPROP, attributes["datetime"])
            elif pubdate:
                self._body_date(DateSource.BODY_TIME, attributes["datetime"], rank=MARKED)
            else:
                # A plain <time> may be any date on the page: kept, but reading goes on for a marked one.
                self._dates.add(DateSource.BODY_TIME, attributes["datetime"])

    def _body_date(self, source: DateSource, text: str, *, rank: int = PLAIN) -> None:
        """A date the body marks as the publication date: the search ends once one reads as a date."""
        self._dates.add(source, text, rank=rank)
        if parse_page_date(text) is not None:
            self.searching_body = False

    def _finish_json_ld(self) -> None:
        assert self._json_ld is not None
        source, parts = self._json_ld
        self._json_ld = None
        for rank, value in json_ld_dates("".join(parts)):
            if source is DateSource.BODY_JSON_LD and self.searching_body:
                self._body_date(source, value, rank=rank)
            else:
                self._dates.add(source, value, rank=rank)

    def _finish_title(self) -> None:
        assert self._title_parts is not None
        # Like document.title: surrounding whitespace stripped, runs collapsed.
        self._title = _WHITESPACE.sub(" ", "".join(self._title_parts)).strip()
        self._title_parts = None

    def page_head(self) -> PageHead:
        title = self._title
        if title is None and self._title_parts is not None:  # the stream ended inside <title>
            title = _WHITESPACE.sub(" ", "".join(self._title_parts)).strip()
        published = self._dates.best()
        return PageHead(
            amphtml=self._links.get("amphtml"),
            canonical=self._links.get("canonical"),
            title=title,
            og_title=self._meta.get("og:title"),
            og_image=self._meta.get("og:image"),
            og_image_width=_dimension(self._meta.get("og:image:width")),
            og_image_height=_dimension(self._meta.get("og:image:height")),
            published_time=published.text if published else None,
            published_source=published.source if published else None,
            text_hash=simhash("\n".join([title or "", *(self._meta.get(key, "") for key in TEXT_HASH_META)])),
        )

    def date_candidates(self) -> DateCandidates:
        return self._dates


_VOID_ELEMENTS = frozenset({"meta", "link", "img", "br", "hr", "input", "source", "wbr", "area", "base", "col"})


def _is_json_ld(attributes: dict[str, str]) -> bool:
    return attributes.get("type", "").split(";")[0].strip().lower() == "application/ld+json"


def _is_date_published(attributes: dict[str, str]) -> bool:
    return "datepublished" in attributes.get("itemprop", "").lower().split()


def _dimension(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().removesuffix("px")
    return int(text) if text.isdecimal() else None


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _could_be_bom(data: bytes) -> bool:
    return any(len(data) < len(bom) and bom.startswith(data) for bom, _ in _BOMS)


def _bom_length(data: bytes) -> int:
    for bom, _ in _BOMS:
        if data.startswith(bom):
            return len(bom)
    return 0


def _sniffed_encoding(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:CHARSET_PRESCAN_BYTES])
    if match is None:
        return None
    return _known_encoding(match.group(1).decode("ascii"))


def _known_encoding(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None
    return _ENCODING_OVERRIDES.get(name, name)
