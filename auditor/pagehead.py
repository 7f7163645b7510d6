"""What a page's <head> says about itself: AMP pair links, title, Open Graph.

The crawler streams a page body into `HeadParser.feed` and stops reading as
soon as the head is over, so an article page costs a few kilobytes rather than
its whole body. Bytes become text the way browsers decide: a BOM, else an
encoding given by the caller (the HTTP Content-Type charset), else a
`<meta charset>` within the first 1024 bytes, else UTF-8 — decoded
incrementally, so a character split across chunks survives.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from auditor.model import PageHead
from auditor.simhash import simhash

DEFAULT_MAX_BYTES = 512 * 1024
# How far browsers look for <meta charset> before committing to an encoding.
CHARSET_PRESCAN_BYTES = 1024

# The lookahead keeps a label cut off by a chunk boundary ("windows-12") from counting.
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)(?=[\s"'>;/])""", re.IGNORECASE)
_HEAD_OVER = re.compile(rb"</head|<body", re.IGNORECASE)
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


class HeadParser:
    """Feed a page's bytes as they arrive; `feed` says when the head is over."""

    def __init__(self, base_url: str, max_bytes: int = DEFAULT_MAX_BYTES, *, encoding: str | None = None) -> None:
        self._max_bytes = max_bytes
        self._bytes_read = 0
        self._pending = bytearray()  # bytes held back until the encoding is known
        self._decoder: codecs.IncrementalDecoder | None = None
        self._declared_encoding = _known_encoding(encoding) if encoding else None
        self._html = _HeadHTMLParser(base_url)
        self._capped = False

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def done(self) -> bool:
        return self._html.head_over or self._capped

    def feed(self, chunk: bytes) -> bool:
        """Add bytes; True once `</head>` or `<body>` was seen or `max_bytes` were read."""
        if self.done:
            return True
        chunk = chunk[: self._max_bytes - self._bytes_read]
        self._bytes_read += len(chunk)
        if self._decoder is None:
            self._pending += chunk
            if self._ready_to_decode():
                self._start_decoding()
        else:
            self._parse(self._decoder.decode(chunk))
        if self._bytes_read >= self._max_bytes:
            self._capped = True
        return self.done

    def result(self) -> PageHead:
        """What the head said so far; bytes still held back for charset sniffing are parsed first."""
        if self._decoder is None:
            self._start_decoding()
        return self._html.page_head()

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
        if text and not self._html.head_over:
            self._html.feed(text)


class _HeadHTMLParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.head_over = False
        self._base_url = base_url
        self._base_seen = False
        self._links: dict[str, str] = {}
        self._meta: dict[str, str] = {}
        self._title_parts: list[str] | None = None  # collecting while inside <title>
        self._title: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.head_over:
            return
        attributes = {name: value for name, value in reversed(attrs) if value is not None}
        if tag == "body":
            self.head_over = True
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
        elif tag == "title" and self._title is None:
            self._title_parts = []

    def handle_endtag(self, tag: str) -> None:
        if self.head_over:
            return
        if tag == "head":
            self.head_over = True
        elif tag == "title" and self._title_parts is not None:
            self._finish_title()

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None and not self.head_over:
            self._title_parts.append(data)

    def _finish_title(self) -> None:
        assert self._title_parts is not None
        # Like document.title: surrounding whitespace stripped, runs collapsed.
        self._title = _WHITESPACE.sub(" ", "".join(self._title_parts)).strip()
        self._title_parts = None

    def page_head(self) -> PageHead:
        title = self._title
        if title is None and self._title_parts is not None:  # the stream ended inside <title>
            title = _WHITESPACE.sub(" ", "".join(self._title_parts)).strip()
        return PageHead(
            amphtml=self._links.get("amphtml"),
            canonical=self._links.get("canonical"),
            title=title,
            og_title=self._meta.get("og:title"),
            og_image=self._meta.get("og:image"),
            og_image_width=_dimension(self._meta.get("og:image:width")),
            og_image_height=_dimension(self._meta.get("og:image:height")),
            published_time=_stripped(self._meta.get("article:published_time")),
            text_hash=simhash("\n".join([title or "", *(self._meta.get(key, "") for key in TEXT_HASH_META)])),
        )


def _dimension(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().removesuffix("px")
    return int(text) if text.isdecimal() else None


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


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
