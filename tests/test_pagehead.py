from __future__ import annotations

import dataclasses

from auditor.pagehead import HeadParser, PageHead
from auditor.simhash import simhash

BASE = "https://news.example.com/section/article.html"

ARTICLE_HEAD = """<!DOCTYPE html>
<html lang="de"><head>
<meta charset="utf-8">
<title>
  Zürich &amp; Genf: 日本 &eacute;dition &#8211; Live
</title>
<link rel="canonical" href="/section/article.html">
<link rel="amphtml" href="amp/article.html?amp=1&amp;x=2">
<meta property="og:title" content="Zürich &quot;live&quot;">
<meta property="og:image" content="//cdn.example.com/img/a.jpg">
<meta property="og:image:width" content="1200">
<meta property="og:image:height" content="630">
<meta property="article:published_time" content="2020-09-22T22:36:00Z">
</head>
<body><link rel="canonical" href="https://wrong.example.com/"></body></html>
"""

EXPECTED = PageHead(
    amphtml="https://news.example.com/section/amp/article.html?amp=1&x=2",
    canonical="https://news.example.com/section/article.html",
    title="Zürich & Genf: 日本 édition – Live",
    og_title='Zürich "live"',
    og_image="https://cdn.example.com/img/a.jpg",
    og_image_width=1200,
    og_image_height=630,
    published_time="2020-09-22T22:36:00Z",
    # The head's own words, title then og:title (no description here); hashing only looks at words.
    text_hash=simhash('Zürich & Genf: 日本 édition – Live Zürich "live"'),
)


def _parse(data: bytes, chunk_size: int | None = None, **options: object) -> HeadParser:
    parser = HeadParser(BASE, **options)  # type: ignore[arg-type]
    size = chunk_size or len(data) or 1
    for start in range(0, len(data), size):
        if parser.feed(data[start : start + size]):
            break
    return parser


def test_reads_everything_the_head_says() -> None:
    parser = _parse(ARTICLE_HEAD.encode())
    assert parser.result() == EXPECTED
    assert dataclasses.asdict(parser.result()) == {
        "amphtml": EXPECTED.amphtml,
        "canonical": EXPECTED.canonical,
        "title": EXPECTED.title,
        "og_title": EXPECTED.og_title,
        "og_image": EXPECTED.og_image,
        "og_image_width": 1200,
        "og_image_height": 630,
        "published_time": "2020-09-22T22:36:00Z",
        "text_hash": EXPECTED.text_hash,
    }


def test_split_at_every_byte_boundary() -> None:
    data = ARTICLE_HEAD.encode()
    assert data != ARTICLE_HEAD.encode("latin-1", "replace")  # multi-byte characters are in play
    for split in range(len(data) + 1):
        parser = HeadParser(BASE)
        if not parser.feed(data[:split]):
            parser.feed(data[split:])
        assert parser.result() == EXPECTED, split


def test_one_byte_chunks() -> None:
    assert _parse(ARTICLE_HEAD.encode(), chunk_size=1).result() == EXPECTED


def test_stops_at_end_of_head() -> None:
    data = ARTICLE_HEAD.encode()
    head_end = data.index(b"</head>") + len(b"</head>")
    parser = HeadParser(BASE)
    assert parser.feed(data[: head_end - 1]) is False
    assert parser.feed(data[head_end - 1 : head_end]) is True
    assert parser.bytes_read == head_end
    assert parser.feed(b"<link rel=amphtml href=/late>") is True
    assert parser.bytes_read == head_end
    assert parser.result().amphtml == EXPECTED.amphtml


def test_body_without_closing_head_stops_too() -> None:
    parser = HeadParser(BASE)
    assert parser.feed(b"<html><title>T</title><body><p>") is True
    assert parser.result().title == "T"


def test_max_bytes_caps_reading() -> None:
    parser = HeadParser(BASE, max_bytes=100)
    assert parser.feed(b"<html><head><title>" + b"x" * 50) is False
    assert parser.feed(b"y" * 200 + b"</title><link rel=canonical href=/late>") is True
    assert parser.bytes_read == 100
    result = parser.result()
    assert result.title == "x" * 50 + "y" * 31  # what arrived before the cap
    assert result.canonical is None


def test_result_without_end_of_head_still_parses_what_arrived() -> None:
    # Short and without a charset, these bytes are held back for charset sniffing.
    parser = HeadParser(BASE)
    assert parser.feed(b"<html><head><title>Short &lt;page&gt;</title><link rel=amphtml href=a>") is False
    assert parser.result() == PageHead(
        title="Short <page>", amphtml="https://news.example.com/section/a", text_hash=simhash("Short <page>")
    )


def test_rel_is_a_case_insensitive_token_list_and_first_wins() -> None:
    head = b"""<head>
    <link rel="stylesheet" href="/s.css">
    <link rel="Canonical  AMPHTML" href="/both">
    <link rel="canonical" href="/second">
    <link rel=amphtml href="">
    <meta property="og:title" content="first"><meta property="og:title" content="second">
    </head>"""
    result = _parse(head).result()
    assert result.canonical == "https://news.example.com/both"
    assert result.amphtml == "https://news.example.com/both"
    assert result.og_title == "first"


def test_base_href_applies_to_links_after_it() -> None:
    head = b"""<head>
    <link rel=canonical href="early.html">
    <base href="https://static.example.org/base/">
    <base href="https://ignored.example.org/">
    <link rel=amphtml href="amp.html">
    <meta name="og:image" content="i/photo.png">
    </head>"""
    result = _parse(head).result()
    assert result.canonical == "https://news.example.com/section/early.html"
    assert result.amphtml == "https://static.example.org/base/amp.html"
    assert result.og_image == "https://static.example.org/base/i/photo.png"


def test_meta_charset_decides_the_encoding() -> None:
    head = '<html><head><meta charset="windows-1252"><title>Café – “quoted”</title></head>'
    data = head.encode("cp1252")
    for chunk_size in (1, 3, len(data)):
        assert _parse(data, chunk_size).result().title == "Café – “quoted”"


def test_http_equiv_charset_and_latin1_label() -> None:
    head = '<head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><title>Ça “va”</title></head>'
    # Browsers read "ISO-8859-1" as windows-1252, which has the curly quotes.
    assert _parse(head.encode("cp1252"), chunk_size=5).result().title == "Ça “va”"


def test_declared_encoding_and_bom() -> None:
    head = "<head><title>Grüße</title></head>"
    assert _parse(head.encode("latin-1"), 2, encoding="latin-1").result().title == "Grüße"
    assert _parse("\ufeff".encode("utf-8") + head.encode(), 1).result().title == "Grüße"
    assert _parse(head.encode("utf-16"), 1).result().title == "Grüße"


def test_undecodable_bytes_are_replaced_not_fatal() -> None:
    assert _parse(b"<head><title>bad \xff\xfe byte</title></head>").result().title == "bad \ufffd\ufffd byte"


def test_bad_dimensions_are_none() -> None:
    head = b"""<head><meta property="og:image:width" content="wide">
    <meta property="og:image:height" content="630px"></head>"""
    result = _parse(head).result()
    assert result.og_image_width is None
    assert result.og_image_height == 630


def test_script_mentioning_end_of_head_does_not_crash() -> None:
    head = b"""<html><head><title>Before</title>
    <script>var html = "</head><body>"; if (a < b && c > d) {}</script>
    <link rel=canonical href="/after-script">
    </head><body>"""
    for chunk_size in (1, 13, len(head)):
        parser = _parse(head, chunk_size)
        result = parser.result()
        assert parser.feed(b"more") is True
        assert result.title == "Before"
        # Stopping inside the script is acceptable; not stopping is better.
        assert result.canonical in (None, "https://news.example.com/after-script")


def test_empty_input() -> None:
    parser = HeadParser(BASE)
    assert parser.feed(b"") is False
    assert parser.result() == PageHead()
    assert parser.bytes_read == 0


def test_the_text_hash_reads_the_heads_own_words_only() -> None:
    def text_hash(head: str) -> str | None:
        return _parse(f"<html><head>{head}</head><body>".encode()).result().text_hash

    words = '<title>Page not found</title><meta name="description" content="Try the search">'
    assert text_hash(words) == simhash("Page not found Try the search")
    # Scripts, styles and other meta tags are the same on every page of a site: they do not count.
    noise = '<script>var a = "words";</script><meta property="og:site_name" content="Example"><link rel=x href=/y>'
    assert text_hash(words + noise) == text_hash(words)
    assert text_hash(words.replace("Try the search", "The mayor resigned")) != text_hash(words)
    assert text_hash("<title> </title>") is None
