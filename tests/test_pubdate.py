"""Reading publication dates as pages write them, JSON-LD's shapes, and which source wins."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.model import DateSource
from auditor.pubdate import MARKED, PLAIN, WEB_PAGE, DateCandidates, PageDate, json_ld_dates, parse_page_date

MINUS_4 = timezone(timedelta(hours=-4))


@pytest.mark.parametrize(
    ("text", "moment", "has_time"),
    [
        # ISO 8601 and its everyday variants
        ("2020-09-22T22:36:00Z", datetime(2020, 9, 22, 22, 36, tzinfo=UTC), True),
        ("2016-05-24T18:00:03.894Z", datetime(2016, 5, 24, 18, 0, 3, 894000, tzinfo=UTC), True),
        ("2016-05-13T16:43:53+0000", datetime(2016, 5, 13, 16, 43, 53, tzinfo=UTC), True),
        ("2017-06-21 09:51:00 -0400", datetime(2017, 6, 21, 9, 51, tzinfo=MINUS_4), True),
        ("2016-04-30T10:00:00", datetime(2016, 4, 30, 10, 0), True),  # no zone: stays naive
        ("2016-05-26", datetime(2016, 5, 26), False),
        ("20160524", datetime(2016, 5, 24), False),
        ("  2016-05-26\n", datetime(2016, 5, 26), False),
        # RFC 2822, as in feeds and some <time> elements
        ("Fri, 22 Oct 2021 00:44:09 +0000", datetime(2021, 10, 22, 0, 44, 9, tzinfo=UTC), True),
        ("Tue, 24 May 2016 14:44:00 GMT", datetime(2016, 5, 24, 14, 44, tzinfo=UTC), True),
        # ctime, as one newsroom's article:published_time has it
        ("Tue May 24 05:55:00 2016", datetime(2016, 5, 24, 5, 55), True),
        # JavaScript's Date.toString: GMT-0400 is four hours behind UTC (not POSIX's inverted sign)
        (
            "Wed Jan 06 2021 00:34:00 GMT+0000 (Coordinated Universal Time)",
            datetime(2021, 1, 6, 0, 34, tzinfo=UTC),
            True,
        ),
        ("Wed Jan 06 2021 00:34:00 GMT-0400 (EDT)", datetime(2021, 1, 6, 0, 34, tzinfo=MINUS_4), True),
        # written out
        ("September 5, 2025", datetime(2025, 9, 5), False),
        ("Thursday, September 29, 2016", datetime(2016, 9, 29), False),
        # an offset written with a dot, and one followed by a stray Z
        ("2016-05-14T16:34+5.30", datetime(2016, 5, 14, 16, 34, tzinfo=timezone(timedelta(hours=5, minutes=30))), True),
        ("2024-06-24T10:00:00-07:00Z", datetime(2024, 6, 24, 10, 0, tzinfo=timezone(timedelta(hours=-7))), True),
    ],
)
def test_reads_the_forms_newsrooms_write(text: str, moment: datetime, has_time: bool) -> None:
    assert parse_page_date(text) == PageDate(moment, has_time=has_time)


@pytest.mark.parametrize("text", ["Mon, Jan 7 2019 15:37:00 EST", "April 06, 2016 12:00 ET", "2016-05-24 13:30 CET"])
def test_a_zone_name_leaves_the_zone_unknown(text: str) -> None:
    parsed = parse_page_date(text)
    assert parsed is not None and parsed.has_time and not parsed.has_zone


def test_a_zone_name_is_not_read_as_the_machine_s_own_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # dateutil, left to itself, takes a name in time.tzname to mean the local zone.
    monkeypatch.setenv("TZ", "EST+05EDT,M3.2.0,M11.1.0")
    time.tzset()
    try:
        assert time.tzname[0] == "EST"
        parsed = parse_page_date("Mon, Jan 7 2019 15:37:00 EST")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert parsed == PageDate(datetime(2019, 1, 7, 15, 37), has_time=True)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "4/6/2016",  # April 6 or 4 June: no guess
        "04.06.16",
        "May 2016",  # no day
        "24",
        "P24M,37S",  # a duration in a <time datetime>
        "1463398202",  # an epoch, or an id
        "0001-01-01T00:00:00Z",  # a placeholder
        "yesterday",
        "x" * 500,
    ],
)
def test_what_is_not_one_complete_unambiguous_date(text: str | None) -> None:
    assert parse_page_date(text) is None


def test_a_day_and_month_that_cannot_be_swapped_are_read() -> None:
    assert parse_page_date("4/26/2016") == PageDate(datetime(2016, 4, 26), has_time=False)
    assert parse_page_date("6/6/2016") == PageDate(datetime(2016, 6, 6), has_time=False)


def test_iso_format_of_a_date_without_time_is_the_day() -> None:
    assert parse_page_date("2016-05-26").isoformat() == "2016-05-26"  # type: ignore[union-attr]
    assert parse_page_date("2016-05-26T10:00Z").isoformat() == "2016-05-26T10:00:00+00:00"  # type: ignore[union-attr]


# -- JSON-LD -------------------------------------------------------------------------
def _ld(data: object) -> str:
    return json.dumps(data)


def test_json_ld_article_at_the_top() -> None:
    assert json_ld_dates(_ld({"@type": "NewsArticle", "datePublished": "2016-05-24"})) == [(PLAIN, "2016-05-24")]


def test_json_ld_graph_article_before_its_web_page() -> None:
    text = _ld(
        {
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "WebPage", "datePublished": "2016-01-01"},
                {"@type": "ImageObject", "datePublished": "2015-01-01"},  # not the article's date
                {"@type": ["Article", "Thing"], "datePublished": "2016-01-20T21:50:25+00:00"},
            ],
        }
    )
    assert json_ld_dates(text) == [(PLAIN, "2016-01-20T21:50:25+00:00"), (WEB_PAGE, "2016-01-01")]


def test_json_ld_list_of_nodes_and_nested_main_entity() -> None:
    text = _ld(
        [
            {"@type": "BreadcrumbList", "itemListElement": []},
            {"@type": "WebPage", "mainEntity": {"@type": "schema:BlogPosting", "datePublished": "2024-02-03"}},
            {"@type": "http://schema.org/ReportageNewsArticle", "datePublished": ["2024-02-04"]},
        ]
    )
    assert json_ld_dates(text) == [(PLAIN, "2024-02-03"), (PLAIN, "2024-02-04")]


def test_json_ld_value_object() -> None:
    text = _ld({"@type": "Article", "datePublished": {"@value": "2020-01-01", "@type": "Date"}})
    assert json_ld_dates(text) == [(PLAIN, "2020-01-01")]


def test_json_ld_that_templates_broke_is_repaired_where_it_safely_can_be() -> None:
    text = """<!--
    {"@type": "NewsArticle", "image": {"url": "", "width": , "height":
    }, "keywords": ["a", "b",], "datePublished": "2016-05-16T11:30:00.000Z"}
    -->"""
    assert json_ld_dates(text) == [(PLAIN, "2016-05-16T11:30:00.000Z")]
    assert json_ld_dates('{"@type": "Article", "datePublished": ') == []
    assert json_ld_dates("not json at all") == []


def test_json_ld_is_searched_only_so_deep() -> None:
    deep: dict[str, object] = {"@type": "Article", "datePublished": "2020-01-01"}
    for _ in range(20):
        deep = {"@type": "Thing", "about": deep}
    assert json_ld_dates(_ld(deep)) == []


# -- choosing ------------------------------------------------------------------------
def test_the_first_readable_date_in_order_of_trust_wins() -> None:
    candidates = DateCandidates()
    candidates.add(DateSource.NAME_DATE, "2020-01-03")
    candidates.add(DateSource.JSON_LD, "not a date")
    candidates.add(DateSource.JSON_LD, "2020-01-02")
    candidates.add(DateSource.ARTICLE_PUBLISHED_TIME, "garbage")
    best = candidates.best()
    assert best is not None and (best.source, best.text) == (DateSource.JSON_LD, "2020-01-02")
    assert set(candidates.readable()) == {DateSource.JSON_LD, DateSource.NAME_DATE}


def test_within_a_source_rank_then_document_order() -> None:
    candidates = DateCandidates()
    candidates.add(DateSource.BODY_TIME, "2020-01-01")
    candidates.add(DateSource.JSON_LD, "2020-02-01", rank=WEB_PAGE)
    candidates.add(DateSource.JSON_LD, "2020-02-02")
    candidates.add(DateSource.BODY_TIME, "2020-01-02", rank=MARKED)
    assert candidates.best().text == "2020-02-02"  # type: ignore[union-attr]
    assert candidates.best(frozenset({DateSource.BODY_TIME})).text == "2020-01-02"  # type: ignore[union-attr]


def test_no_candidate_no_date() -> None:
    candidates = DateCandidates()
    candidates.add(DateSource.JSON_LD, "")
    candidates.add(DateSource.JSON_LD, None)
    assert candidates.best() is None
