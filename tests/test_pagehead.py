from __future__ import annotations

import dataclasses

import pytest

from auditor.model import DateSource
from auditor.pagehead import HeadParser, PageHead
from auditor.pubdate import MAX_CANDIDATES_PER_SOURCE
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
    published_source=DateSource.ARTICLE_PUBLISHED_TIME,
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
        "published_source": "article:published_time",
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


# -- publication dates: every head source, in order of trust -------------------------
def _dated(head: str, body: str = "", **options: object) -> PageHead:
    return _parse(f"<html><head><title>T</title>{head}</head><body>{body}</body></html>".encode(), **options).result()


@pytest.mark.parametrize(
    ("head", "source", "text"),
    [
        ('<meta property="article:published_time" content="2016-05-24T20:49:03.000Z">', "article:published_time", None),
        ('<meta name="article:published_time" content="2016-05-24T20:49:03Z">', "article:published_time", None),
        (
            '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2016-05-24"}</script>',
            "json-ld",
            "2016-05-24",
        ),
        (
            '<script type="application/ld+json">{"@graph": [{"@type": "WebPage", "datePublished": "2016-01-01"},'
            '{"@type": "Article", "datePublished": "2016-05-24T18:00:03.894Z"}]}</script>',
            "json-ld",
            "2016-05-24T18:00:03.894Z",
        ),
        (
            '<script type="application/ld+json">[{"@type": "Organization"},'
            '{"@type": "BlogPosting", "datePublished": "2016-05-24"}]</script>',
            "json-ld",
            "2016-05-24",
        ),
        ('<meta itemprop="datePublished" content="2016-05-24T11:30:00.000Z">', "itemprop", None),
        ('<meta name="parsely-pub-date" content="2016-05-24T18:00:03.894Z">', "parsely-pub-date", None),
        ('<meta name="sailthru.date" content="2016-05-24 16:38:36 -0700">', "sailthru.date", None),
        ('<meta name="DC.date.issued" content="2016-05-24">', "dc.date", None),
        ('<meta name="dcterms.created" content="2016-05-24">', "dc.date", None),
        ('<meta name="pubdate" content="20160524">', "pubdate", None),
        ('<meta name="publish-date" content="Tue, 24 May 2016 14:44:00 EDT">', "pubdate", None),
        ('<meta name="article.published" content="2016-05-24T11:30:00.000Z">', "pubdate", None),
        ('<meta name="date" content="2016-05-24T14:44:00-04:00">', "date", None),
        ('<meta property="article:published_time" content="Tue May 24 05:55:00 2016">', "article:published_time", None),
    ],
)
def test_each_head_source_gives_its_date(head: str, source: str, text: str | None) -> None:
    result = _dated(head)
    expected = text or head.split('content="')[1].split('"')[0]
    assert (result.published_source, result.published_time) == (DateSource(source), expected)


def test_head_sources_in_order_of_trust_whatever_their_order_on_the_page() -> None:
    head = """
    <meta name="date" content="2016-05-01">
    <meta name="sailthru.date" content="2016-05-02">
    <meta itemprop="datePublished" content="2016-05-03">
    <script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2016-05-04"}</script>
    <meta property="article:published_time" content="2016-05-05">
    """
    assert _dated(head).published_source is DateSource.ARTICLE_PUBLISHED_TIME
    without_og = head.replace("article:published_time", "article:modified_time")
    assert (_dated(without_og).published_source, _dated(without_og).published_time) == (
        DateSource.JSON_LD,
        "2016-05-04",
    )


def test_an_unreadable_date_gives_way_to_the_next_source() -> None:
    head = """<meta property="article:published_time" content="4/6/2016">
    <meta name="parsely-pub-date" content="2016-04-06T16:00:00Z">"""
    assert (_dated(head).published_source, _dated(head).published_time) == (DateSource.PARSELY, "2016-04-06T16:00:00Z")


def test_an_article_in_a_later_json_ld_script_outranks_an_earlier_web_page() -> None:
    head = """
    <script type="application/ld+json">{"@type": "WebPage", "datePublished": "2016-01-01"}</script>
    <script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2016-05-24"}</script>
    """
    assert (_dated(head).published_source, _dated(head).published_time) == (DateSource.JSON_LD, "2016-05-24")
    only_page = head.split("</script>")[0] + "</script>"
    assert _dated(only_page).published_time == "2016-01-01"


def test_one_element_that_is_two_sources() -> None:
    head = '<meta property="article:published_time" itemprop="datePublished" content="2016-05-04T15:40:00Z">'
    parser = _parse(f"<head>{head}</head>".encode())
    assert set(parser.date_candidates().readable()) == {DateSource.ARTICLE_PUBLISHED_TIME, DateSource.ITEMPROP}


def test_no_date_anywhere_is_none_not_an_error() -> None:
    result = _dated('<meta name="description" content="2016-05-24"><meta property="article:modified_time" content="x">')
    assert (result.published_time, result.published_source) == (None, None)


def test_json_ld_split_across_chunks() -> None:
    data = (
        b'<head><script type="application/ld+json">{"@type": "NewsArticle", "headline": "</p> & <b>",'
        b' "datePublished": "2016-05-24T20:29:19Z"}</script></head>'
    )
    for chunk_size in (1, 7, len(data)):
        assert _parse(data, chunk_size).result().published_time == "2016-05-24T20:29:19Z"


# -- publication dates in the body, within its byte budget ----------------------------
BUDGET = 4096


@pytest.mark.parametrize(
    ("body", "source", "text"),
    [
        (
            '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2021-07-01"}</script>',
            "body:json-ld",
            "2021-07-01",
        ),
        (
            '<time itemprop="datePublished" datetime="2016-05-24 13:30:03">May 24</time>',
            "body:itemprop",
            "2016-05-24 13:30:03",
        ),
        ('<meta itemprop="datePublished" content="2016-05-14T16:34+5.30">', "body:itemprop", "2016-05-14T16:34+5.30"),
        (
            '<abbr itemprop="datePublished" title="2024-02-03T20:38:00Z">Feb 3</abbr>',
            "body:itemprop",
            "2024-02-03T20:38:00Z",
        ),
        (
            "<span itemprop='datePublished'>\n Thursday, September 29, 2016\n</span>",
            "body:itemprop",
            "Thursday, September 29, 2016",
        ),
        (
            '<span itemprop="datePublished"><time datetime="2016-04-06T16:00:00Z">April 06, 2016</time></span>',
            "body:itemprop",
            "2016-04-06T16:00:00Z",
        ),
        (
            '<time datetime="2016-04-29T19:31:03-0400" pubdate="pubdate">April 29</time>',
            "body:time",
            "2016-04-29T19:31:03-0400",
        ),
        ('<time datetime="2016-05-16T00:00:00+00:00">May 16</time>', "body:time", "2016-05-16T00:00:00+00:00"),
    ],
)
def test_each_body_source_when_the_head_has_none(body: str, source: str, text: str) -> None:
    result = _dated("", f"<p>intro</p>{body}<p>more</p>", date_body_bytes=BUDGET)
    assert (result.published_source, result.published_time) == (DateSource(source), text)


def test_the_body_is_not_read_for_a_date_unless_allowed() -> None:
    body = '<time datetime="2016-05-16T00:00:00+00:00">May 16</time>'
    assert _dated("", body).published_source is None


def test_a_head_date_wins_and_the_body_is_not_read() -> None:
    data = (
        b'<head><meta name="date" content="2016-05-01"></head><body>'
        b'<time pubdate datetime="2016-05-02">x</time>' + b"x" * 10_000
    )
    parser = HeadParser(BASE, date_body_bytes=BUDGET)
    assert parser.feed(data[:100]) is True
    assert parser.result().published_source is DateSource.NAME_DATE


def test_a_marked_body_date_ends_the_read_a_plain_time_does_not() -> None:
    marked = b'<head></head><body><p>x</p><time datetime="2016-05-02" pubdate>May 2</time>' + b"x" * 20_000
    parser = HeadParser(BASE, date_body_bytes=BUDGET)
    parser.feed(marked[:200])
    assert parser.done and parser.bytes_read == 200
    plain = b'<head></head><body><time datetime="2016-05-01">related</time>' + b"<p>x</p>" * 2000
    parser = HeadParser(BASE, date_body_bytes=BUDGET)
    assert parser.feed(plain[:200]) is False  # a marked date may still come
    _feed_all(parser, plain[200:], 100)
    assert parser.done and parser.bytes_read == 200 + BUDGET
    assert (parser.result().published_source, parser.result().published_time) == (DateSource.BODY_TIME, "2016-05-01")


def test_a_pubdate_time_outranks_an_earlier_plain_one() -> None:
    body = '<time datetime="2016-05-01">related</time><time pubdate datetime="2016-05-09">this one</time>'
    assert _dated("", body, date_body_bytes=BUDGET).published_time == "2016-05-09"


def test_a_body_date_past_the_budget_is_not_read() -> None:
    head = b"<html><head><title>T</title></head><body>"
    padding = b"<p>" + b"x" * (2 * BUDGET) + b"</p>"
    data = head + padding + b'<time pubdate datetime="2016-05-02">May 2</time>' + b"x" * 50_000
    parser = _parse(data, chunk_size=512, date_body_bytes=BUDGET)
    assert parser.result().published_source is None
    # The chunk that ended the head is read anyway; the budget counts what is read for the body alone.
    assert parser.bytes_read == 512 + BUDGET


def test_head_date_order_does_not_depend_on_chunking() -> None:
    data = (
        b'<html><head><meta name="date" content="2016-05-01"><script type="application/ld+json">'
        b'{"@type": "Article", "datePublished": "2016-05-03"}</script></head><body>'
    )
    for chunk_size in (1, 5, 64, len(data)):
        result = _parse(data, chunk_size, date_body_bytes=BUDGET).result()
        assert (result.published_source, result.published_time) == (DateSource.JSON_LD, "2016-05-03")


def _feed_all(parser: HeadParser, data: bytes, chunk_size: int) -> None:
    for start in range(0, len(data), chunk_size):
        if parser.feed(data[start : start + chunk_size]):
            return


def test_a_head_end_inside_a_script_does_not_end_the_head() -> None:
    data = (
        b'<html><head><script>document.write("</head><body>");</script>'
        b'<title>Still the head</title><link rel="canonical" href="/c"></head><body><title>body</title>'
    )
    for chunk_size in (7, len(data)):
        head = _parse(data, chunk_size).result()
        assert (head.title, head.canonical) == ("Still the head", "https://news.example.com/c")


@pytest.mark.parametrize(
    "text",
    [
        "<!-- the template's </head> and <body> -->",
        "<title>How to close </head> tags</title>",
        "<style>/* </head> */ body{}</style>",
    ],
)
def test_a_head_end_that_a_browser_reads_as_text_does_not_end_the_head(text: str) -> None:
    data = f'<html><head>{text}<link rel="canonical" href="/c"></head><body><link rel="amphtml" href="/x">'.encode()
    for chunk_size in (1, 9, len(data)):
        parser = _parse(data, chunk_size)
        assert parser.result().canonical == "https://news.example.com/c", (text, chunk_size)
        assert parser.result().amphtml is None


def test_elements_after_one_that_belongs_in_a_body_still_count() -> None:
    # An HTML5 parser moves everything after a body element in the head into the body; the head is
    # over only at its own end tag or the body's start tag, and what comes before that is the head's.
    data = (
        b'<html><head><noscript><img src="/pixel.gif"></noscript><div class="ad"></div>'
        b'<link rel="canonical" href="/c"><title>T</title><meta property="og:title" content="O"></head><body>'
    )
    head = _parse(data).result()
    assert (head.canonical, head.title, head.og_title) == ("https://news.example.com/c", "T", "O")


def test_a_tag_whose_name_starts_with_body_is_not_the_body() -> None:
    parser = HeadParser(BASE)
    assert parser.feed(b'<html><head><bodyguard></bodyguard><link rel="canonical" href="/c">') is False
    assert parser.feed(b"<body >") is True
    assert parser.result().canonical == "https://news.example.com/c"


def test_reading_a_head_that_is_not_over_yet_adds_nothing_to_it() -> None:
    # A source keeps its first few candidates: each reading of the unfinished head must not add its own.
    parser = HeadParser(BASE, encoding="utf-8")
    assert parser.feed(b'<html><head><meta name="date" content="some day">') is False
    for _ in range(MAX_CANDIDATES_PER_SOURCE + 1):
        assert parser.result().published_time is None
    assert parser.feed(b'<meta name="date" content="2016-05-02"></head>') is True
    assert parser.result().published_time == "2016-05-02"
    assert parser.date_candidates().readable()[DateSource.NAME_DATE].text == "2016-05-02"
