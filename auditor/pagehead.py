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

The head is parsed as browsers parse it, by lexbor's HTML5 parser (selectolax),
once its end has arrived. Real heads are large (inline scripts and styles:
90 KB of text on average over the 91 peer pages); reading one took 1.5 ms
when Python's html.parser tokenized it, 0.7 ms now. The head ends at the
first `</head>` or `<body>` that is a tag: one inside a script, a comment or
a title is text, as in a browser. A body read for a date (only when the head
has none: 31 of the 91 peer pages) is still tokenized by html.parser as it
arrives.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from auditor.model import DateSource, PageHead
from auditor.pubdate import MARKED, META_SOURCES, PLAIN, DateCandidates, json_ld_dates, parse_page_date
from auditor.simhash import simhash

DEFAULT_MAX_BYTES = 512 * 1024
# How far browsers look for <meta charset> before committing to an encoding.
CHARSET_PRESCAN_BYTES = 1024

# The lookahead keeps a label cut off by a chunk boundary ("windows-12") from counting.
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)(?=[\s"'>;/])""", re.IGNORECASE)
_HEAD_OVER = re.compile(rb"</head|<body", re.IGNORECASE)
# Where the head may end: an end tag of head or a start tag of body (the name whole, not <bodyguard>).
_HEAD_END = re.compile(r"</head(?=[\s/>])|<body(?=[\s/>])", re.IGNORECASE)
_HEAD_END_LONGEST = len("</head") + 1  # what a match that began in the text before needs of it
# Put before a possible end of the head: an element where the tokenizer reads tags there, else text.
_SENTINEL_ATTRIBUTE = "data-auditor-head-end"
_HEAD_ELEMENTS = "base, link, meta, title, script"
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
        self._base_url = base_url
        self._max_bytes = max_bytes
        self._date_body_bytes = date_body_bytes
        self._bytes_read = 0
        self._pending = bytearray()  # bytes held back until the encoding is known
        self._decoder: codecs.IncrementalDecoder | None = None
        self._declared_encoding = _known_encoding(encoding) if encoding else None
        self._capped = False
        self._head_ended_at: int | None = None  # bytes read when the head was over
        self._dates = DateCandidates()
        self._text: list[str] = []  # the head's text so far, as decoded
        self._tail = ""  # its last characters: where a possible end that the next piece completes begins
        self._decided = 0  # offset in it before which no tag can end the head
        self._head: _Head | None = None  # once the head is over
        self._body: _BodyDates | None = None  # while the body is read for a date

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def done(self) -> bool:
        return self._capped or (self._head is not None and not (self._body is not None and self._body.searching))

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
        if self._head is not None and self._head_ended_at is None:
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
        head, dates = self._read_so_far()
        return head.page_head(dates)

    def date_candidates(self) -> DateCandidates:
        """Every date the page offered so far, per source (`result` keeps only the winner)."""
        return self._read_so_far()[1]

    def _read_so_far(self) -> tuple[_Head, DateCandidates]:
        """The head once it is over; before, what its text so far says (the cap or the page's end cut it off)."""
        if self._head is not None:
            return self._head, self._dates
        dates = DateCandidates()
        return _Head.of(_head_elements(LexborHTMLParser("".join(self._text))), self._base_url, dates), dates

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
        if self._head is None:
            text = self._read_head(text)
        if text and self._body is not None and self._body.searching:
            self._body.feed(text)

    def _read_head(self, text: str) -> str:
        """Adds text to the head; once a tag in it ends the head, parses the head and returns what follows."""
        recent = self._tail + text
        self._tail = recent[-_HEAD_END_LONGEST:]
        self._text.append(text)
        if not text or _HEAD_END.search(recent) is None:
            return ""  # the head goes on: parsed once it is over, not piece by piece
        whole = "".join(self._text)
        self._text = [whole]
        ends = []  # where each possible end starts, and where its tag closes
        for match in _HEAD_END.finditer(whole, self._decided):
            close = whole.find(">", match.end())
            if close < 0:
                break  # the tag goes on in the next piece
            ends.append((match.start(), close + 1))
        if not ends:
            return ""
        found = _first_tag(whole, [start for start, _ in ends])
        if found is None:  # every one was text: inside a script, a comment, a title
            self._decided = ends[-1][1]
            return ""
        index, elements = found
        start, end = ends[index]
        if index > 0:  # the sentinels before it are text of the head's elements: read them without
            elements = _head_elements(LexborHTMLParser(whole[:start]))
        self._head = _Head.of(elements, self._base_url, self._dates)
        self._text = []
        if self._date_body_bytes > 0 and self._dates.best() is None:
            self._body = _BodyDates(self._dates)
        return whole[end:]


def _first_tag(text: str, starts: list[int]) -> tuple[int, list[LexborNode]] | None:
    """Which of these possible ends of the head (offsets in `text`) is the first that is a tag, with the
    head's elements before it. One parse, with a sentinel element put before each: where the tokenizer
    is inside a script, a comment or a title, the sentinel is text there, and so is the tag after it."""
    pieces, at = [], 0
    for index, start in enumerate(starts):
        pieces += [text[at:start], f'<meta {_SENTINEL_ATTRIBUTE}="{index}">']
        at = start
    tree = LexborHTMLParser("".join(pieces))
    elements: list[LexborNode] = []
    for node in tree.css(_HEAD_ELEMENTS):
        sentinel = node.attributes.get(_SENTINEL_ATTRIBUTE) if node.tag == "meta" else None
        if sentinel is not None:
            return int(sentinel), elements
        elements.append(node)
    return None


def _head_elements(tree: LexborHTMLParser) -> list[LexborNode]:
    return list(tree.css(_HEAD_ELEMENTS))


class _Head:
    """What the head's elements say, in document order; the dates go to the page's candidates."""

    def __init__(self) -> None:
        # URLs as written with the base they were written under, made absolute only if used: a head
        # links many stylesheets, icons and preloads, and urljoin took half of reading a real one.
        self.links: dict[str, tuple[str, str]] = {}  # rel -> (href, base)
        self.og_image: tuple[str, str] | None = None
        self.meta: dict[str, str] = {}
        self.title: str | None = None

    @classmethod
    def of(cls, elements: Iterable[LexborNode], base_url: str, dates: DateCandidates) -> _Head:
        head = cls()
        base_seen = False
        for node in elements:
            tag = node.tag
            # A bare attribute (`<meta content>`) has no value: as if it were not there.
            attributes = {name: value for name, value in node.attributes.items() if value is not None}
            if tag == "script":
                if _is_json_ld(attributes):
                    for rank, value in json_ld_dates(node.text(deep=True)):
                        dates.add(DateSource.JSON_LD, value, rank=rank)
            elif tag == "base":
                # Only the first <base> counts, and only for URLs after it.
                if not base_seen and attributes.get("href", "").strip():
                    base_seen = True
                    base_url = urljoin(base_url, attributes["href"].strip())
            elif tag == "link":
                if href := attributes.get("href", "").strip():
                    for relation in attributes.get("rel", "").lower().split():
                        head.links.setdefault(relation, (href, base_url))
            elif tag == "meta":
                head._meta(attributes, base_url, dates)
            elif tag == "title" and head.title is None:
                # Like document.title: surrounding whitespace stripped, runs collapsed.
                head.title = _WHITESPACE.sub(" ", node.text(deep=True)).strip()
        return head

    def _meta(self, attributes: dict[str, str], base_url: str, dates: DateCandidates) -> None:
        key = (attributes.get("property") or attributes.get("name") or "").strip().lower()
        content = attributes.get("content")
        if key and content is not None:
            if key in ("og:image", "og:image:url"):  # the second an alias of the first
                self.og_image = self.og_image or (content.strip(), base_url)
            else:
                self.meta.setdefault(key, content)
            if key in META_SOURCES:
                dates.add(META_SOURCES[key], content)
        if _is_date_published(attributes):
            dates.add(DateSource.ITEMPROP, content)

    def page_head(self, dates: DateCandidates) -> PageHead:
        published = dates.best()
        return PageHead(
            amphtml=_absolute(self.links.get("amphtml")),
            canonical=_absolute(self.links.get("canonical")),
            title=self.title,
            og_title=self.meta.get("og:title"),
            og_image=_absolute(self.og_image),
            og_image_width=_dimension(self.meta.get("og:image:width")),
            og_image_height=_dimension(self.meta.get("og:image:height")),
            published_time=published.text if published else None,
            published_source=published.source if published else None,
            text_hash=simhash("\n".join([self.title or "", *(self.meta.get(key, "") for key in TEXT_HASH_META)])),
        )


def _absolute(written: tuple[str, str] | None) -> str | None:
    """A URL as written and the base it was written under, as an absolute URL."""
    return urljoin(written[1], written[0]) if written is not None else None


class _BodyDates(HTMLParser):
    """The start of a body whose head gave no date, read for one (JSON-LD, itemprop, <time>) as it arrives."""

    def __init__(self, dates: DateCandidates) -> None:
        super().__init__(convert_charrefs=True)
        self.searching = True  # until a date that reads as one is found
        self._dates = dates
        self._json_ld: list[str] | None = None  # collecting while inside a JSON-LD script
        self._itemprop_text: tuple[str, list[str]] | None = None  # (tag, text) of a body date element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.searching:
            return
        attributes = {name: value for name, value in reversed(attrs) if value is not None}
        if tag == "script" and _is_json_ld(attributes):
            self._json_ld = []
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
            elif any(name == "pubdate" for name, _ in attrs):  # a bare attribute has no value, but it is there
                self._body_date(DateSource.BODY_TIME, attributes["datetime"], rank=MARKED)
            else:
                # A plain <time> may be any date on the page: kept, but reading goes on for a marked one.
                self._dates.add(DateSource.BODY_TIME, attributes["datetime"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._json_ld is not None:
            text, self._json_ld = "".join(self._json_ld), None
            for rank, value in json_ld_dates(text):
                if self.searching:
                    self._body_date(DateSource.BODY_JSON_LD, value, rank=rank)
                else:
                    self._dates.add(DateSource.BODY_JSON_LD, value, rank=rank)
        elif self.searching and self._itemprop_text is not None and tag == self._itemprop_text[0]:
            text = _WHITESPACE.sub(" ", "".join(self._itemprop_text[1])).strip()
            self._itemprop_text = None
            self._body_date(DateSource.BODY_ITEMPROP, text)

    def handle_data(self, data: str) -> None:
        if self._json_ld is not None:
            self._json_ld.append(data)
        elif self._itemprop_text is not None and self.searching:
            parts = self._itemprop_text[1]
            if sum(map(len, parts)) < MAX_DATE_TEXT_CHARS:
                parts.append(data)

    def _body_date(self, source: DateSource, text: str, *, rank: int = PLAIN) -> None:
        """A date the body marks as the publication date: the search ends once one reads as a date."""
        self._dates.add(source, text, rank=rank)
        if parse_page_date(text) is not None:
            self.searching = False


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
