from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import make_check, make_link
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.config import SchemaConfig
from auditor.corpus import Document, load_document, parse_document
from auditor.links import extract_links
from auditor.model import Check, Code, DateSource, Hop
from auditor.rules import (
    document_findings,
    flaky_findings,
    link_findings,
    liveness,
    page_findings,
    soft_404_findings,
    titles_match,
    without_soft_404_pages,
)
from auditor.soft404 import HostEvidence

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_6e5f9b61bd50d890.txt"
SCHEMA = SchemaConfig()


def _doc(front: str) -> Any:
    return parse_document("doc.md", f"---\n{front}---\n")


# -- offline ----------------------------------------------------------------
def test_seed_file_is_clean_offline() -> None:
    assert document_findings(load_document(SEED), SCHEMA) == []


def test_schema_problems_name_field_and_line() -> None:
    document = _doc(
        "webUrl: https://a.example/\nquality: high\npublished: 'yes'\ntopics: AI\n"
        "publishedDateTime: 'last tuesday'\nimages:\n  - url: https://a.example/i.png\n    width: -3\n"
        "    height: 2.5\n  - just a string\nrelated:\n  - webUrl: https://b.example/\n"
    )
    found = {(f.field, f.line) for f in document_findings(document, SCHEMA) if f.code == "invalid-metadata"}
    assert ("title", 2) in found  # missing title: the front matter's first line
    assert ("quality", 3) in found
    assert ("published", 4) in found
    assert ("topics", 5) in found
    assert ("publishedDateTime", 6) in found
    assert ("images[0].width", 9) in found
    assert ("images[0].height", 10) in found
    assert ("images[1]", 11) in found
    assert ("related[0].title", 13) in found


def test_unknown_fields_and_valid_types_pass() -> None:
    document = _doc(
        "title: t\nwebUrl: https://a.example/\nquality: 5.5\npublished: true\n"
        "publishedDateTime: '2020-09-22T22:36:00+02:00'\nsomethingNew: [1, 2]\n"
    )
    assert document_findings(document, SCHEMA) == []


def test_amp_cache_mismatch_carries_expected_and_actual() -> None:
    document = _doc(
        "title: t\nwebUrl: https://www.example.com/a\nampWebUrl: https://www.example.com/a?amp\n"
        "cdnAmpWebUrl: https://www-example-org.cdn.ampproject.org/c/s/www.example.com/a?amp\n"
    )
    (finding,) = document_findings(document, SCHEMA)
    assert finding.code == "amp-cache-mismatch"
    assert (finding.field, finding.line) == ("cdnAmpWebUrl", 5)
    assert finding.expected == "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a?amp"
    assert finding.actual.startswith("https://www-example-org")


def _offline(front: str, schema: SchemaConfig = SCHEMA) -> list[Any]:
    """Every offline finding, from the rules and from link extraction, as the pipeline gathers them."""
    document = _doc(front)
    return document_findings(document, schema) + extract_links(document)[1]


def test_an_empty_related_url_is_one_finding_that_says_it_is_empty() -> None:
    findings = _offline(
        'title: t\nwebUrl: https://a.example/\nrelated:\n  - title: r\n    webUrl: ""\n    type: video\n'
    )
    (finding,) = findings
    assert (finding.code, finding.field, finding.line) == ("invalid-metadata", "related[0].webUrl", 6)
    assert finding.message == (
        "related[0].webUrl is empty, so related[0] has no page URL: fill in webUrl or originalUrl"
    )


@pytest.mark.parametrize(
    ("front", "field", "message"),
    [
        (
            "title: t\nwebUrl: https://a.example/\nampWebUrl: ''\n",
            "ampWebUrl",
            "ampWebUrl is empty: write the URL, or remove the field",
        ),
        (
            "title: t\nwebUrl: '  '\noriginalUrl: https://a.example/\n",
            "webUrl",
            "webUrl holds only white space: write the URL, or remove the field",
        ),
        (
            "title: ''\nwebUrl: https://a.example/\n",
            "title",
            "title is empty, so the article has no title: fill in title",
        ),
        ("title: t\nwebUrl: 42\n", "webUrl", "must be text, not a number"),
        (
            "title: t\nwebUrl: https://a.example/\nimages:\n  - url: ''\n",
            "images[0].url",
            "is empty: write the image's URL, or remove the image",
        ),
        ("webUrl: https://a.example/\n", "title", "the article has no title: add title"),
        ("title: t\n", "webUrl", "the article has no page URL: add webUrl or originalUrl"),
    ],
)
def test_one_problem_one_finding(front: str, field: str, message: str) -> None:
    (finding,) = _offline(front)
    assert (finding.code, finding.field, finding.message) == ("invalid-metadata", field, message)


def test_a_video_needs_a_page_url_not_a_webUrl() -> None:
    assert (
        _offline(
            "title: v\ntype: video\noriginalUrl: https://youtube.com/watch?v=x\nprovider:\n  domain: youtube.com\n"
        )
        == []
    )


def test_required_fields_by_type_are_configurable() -> None:
    schema = SchemaConfig(
        required={"default": (("title",), ("webUrl", "originalUrl")), "video": (("title",), ("originalUrl",))}
    )
    (finding,) = _offline("title: v\ntype: video\nwebUrl: https://a.example/\n", schema)
    assert (finding.field, finding.message) == ("originalUrl", "the article has no originalUrl: add originalUrl")
    assert _offline("title: a\ntype: article\nwebUrl: https://a.example/\n", schema) == []
    assert _offline("type: brief\n", SchemaConfig(required={"brief": ()})) == []
    either = SchemaConfig(required={"default": (("title", "headline"),)})
    (finding,) = _offline("webUrl: https://a.example/\n", either)
    assert finding.message == "the article has no title or headline: add title or headline"
    (finding,) = _offline("title: ''\n", either)
    assert finding.message == "title is empty, so the article has no title or headline: fill in title or headline"


@pytest.mark.parametrize(
    ("host", "domain", "mismatch"),
    [
        ("www.govtech.com", "govtech.com", False),
        ("govtech.com", "govtech.com", False),
        ("WWW.GovTech.com", "govtech.COM", False),
        ("evilgovtech.com", "govtech.com", True),
        ("www.govtech.com", "other.com", True),
        ("xn--bcher-kva.ch", "bücher.ch", False),
    ],
)
def test_provider_domain(host: str, domain: str, mismatch: bool) -> None:
    document = _doc(f"title: t\nwebUrl: https://{host}/a\nprovider:\n  domain: {domain}\n")
    codes = [f.code for f in document_findings(document, SCHEMA)]
    assert codes == (["provider-domain-mismatch"] if mismatch else [])


@pytest.mark.parametrize(
    ("page", "domain", "expected"),
    [
        # Another site's page attached: provider.domain should be the page's registrable domain, not its host.
        ("webUrl: https://www.cnn.com/us/live", "newsweek.com", "cnn.com"),
        ("webUrl: http://news.aa.com/coronavirus/", "marketwatch.com", "aa.com"),
        ("webUrl: https://www.bbc.co.uk/news/x", "bbc.com", "bbc.co.uk"),
        # A sibling subdomain of the same site: still not under provider.domain, which should be the site's.
        ("webUrl: https://www.cnn.com/a", "edition.cnn.com", "cnn.com"),
        # A public suffix is under nobody's control: it cannot vouch for a page.
        ("webUrl: https://www.bbc.co.uk/a", "co.uk", "bbc.co.uk"),
        # Without a webUrl the page is the originalUrl.
        ("type: video\noriginalUrl: https://youtube.com/watch?v=x", "vimeo.com", "youtube.com"),
    ],
)
def test_provider_mismatch_expects_the_registrable_domain(page: str, domain: str, expected: str) -> None:
    (finding,) = _offline(f"title: t\n{page}\nprovider:\n  domain: {domain}\n")
    line = 5 + page.count("\n")
    assert (finding.code, finding.field, finding.line) == ("provider-domain-mismatch", "provider.domain", line)
    assert (finding.expected, finding.actual) == (expected, domain)
    assert f"provider.domain should be {expected}" in finding.message


def test_a_path_in_the_domain_field_is_invalid_metadata_and_nothing_else() -> None:
    findings = _offline(
        "title: t\nwebUrl: https://www.cnn.com/us/live\nrelated:\n  - title: r\n"
        "    webUrl: https://www.cnn.com/us/live\n    provider:\n"
        "      domain: cnn.com/us/live-news/us-coronavirus-update-05-04-20/h_17b8\n"
    )
    (finding,) = findings
    assert (finding.code, finding.field, finding.line) == ("invalid-metadata", "related[0].provider.domain", 8)
    assert finding.message == (
        "is not a bare domain name: it has a path (/us/live-news/us-coronavirus-update-05-…); write cnn.com alone"
    )
    assert (finding.expected, finding.actual) == (
        "cnn.com",
        "cnn.com/us/live-news/us-coronavirus-update-05-04-20/h_17b8",
    )


def test_an_empty_domain_expects_the_page_registrable_domain() -> None:
    (finding,) = _offline("title: t\nwebUrl: https://www.cnn.com/a\nprovider:\n  domain: ''\n")
    assert (finding.code, finding.field, finding.expected, finding.actual) == (
        "invalid-metadata",
        "provider.domain",
        "cnn.com",
        None,
    )


# -- links -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("check", "code", "reason"),
    [
        (make_check(status=404, ok=False), "dead-link", "http 404"),
        (make_check(status=410, ok=False), "dead-link", "http 410"),
        (make_check(status=418, ok=False), "dead-link", "http 418"),
        (make_check(status=503, ok=False), "dead-link", "http 503"),
        (make_check(status=None, ok=False, reason="dns"), "dead-link", "dns"),
        (make_check(status=None, ok=False, reason="timeout"), "dead-link", "timeout"),
        (make_check(status=None, ok=False, reason="redirect-loop"), "dead-link", "redirect-loop"),
        (make_check(status=401, ok=False), "link-blocked", "http 401"),
        (make_check(status=403, ok=False), "link-blocked", "http 403"),
        (make_check(status=429, ok=False), "link-blocked", "http 429"),
        (make_check(status=None, ok=False, reason="private-address"), "private-address", "private-address"),
        (make_check(), None, "ok"),
    ],
)
def test_liveness(check: Check, code: str | None, reason: str) -> None:
    assert liveness(check) == (code, reason)


def test_dead_link_finding_keeps_reason_and_message() -> None:
    (finding,) = link_findings(
        make_link(), make_check(status=None, ok=False, reason="dns", message="cannot resolve a.example")
    )
    assert (finding.code, finding.field, finding.line, finding.url) == ("dead-link", "webUrl", 3, "https://a.example/")
    assert finding.details is not None and finding.details.reason == "dns"
    assert "cannot resolve" in finding.message


def test_permanent_redirect_reports_final_url_but_temporary_does_not() -> None:
    chain = [{"status": 301, "url": "https://a.example/"}]
    (finding,) = link_findings(make_link(), make_check(redirects=chain, final_url="https://b.example/"))
    assert (finding.code, finding.expected) == ("redirect", "https://b.example/")
    assert (
        link_findings(
            make_link(),
            make_check(redirects=[{"status": 302, "url": "https://a.example/"}], final_url="https://b.example/"),
        )
        == []
    )


def test_image_size_mismatch_and_not_an_image() -> None:
    image = make_link(kind="image", field="images[0].url", declared_width=1119, declared_height=630)
    (finding,) = link_findings(image, make_check(width=1200, height=630, image_format="jpeg"))
    assert (finding.code, finding.expected, finding.actual) == ("image-size-mismatch", "1200x630", "1119x630")
    assert link_findings(image, make_check(width=1119, height=630)) == []
    (finding,) = link_findings(
        image,
        make_check(width=None, height=None, content_type="text/html", image_error="looks like HTML, not an image"),
    )
    assert finding.code == "not-an-image" and "text/html" in finding.message


def test_svg_without_intrinsic_size_is_checked_only_where_it_has_one() -> None:
    image = make_link(kind="image", field="images[0].url", declared_width=1200, declared_height=630)
    assert link_findings(image, make_check(width=None, height=None, image_format="svg")) == []
    assert link_findings(image, make_check(width=1200, height=None, image_format="svg")) == []
    (finding,) = link_findings(image, make_check(width=None, height=456, image_format="svg"))
    assert (finding.code, finding.expected, finding.actual) == ("image-size-mismatch", "anyx456", "1200x630")


def test_unchecked_link_has_no_verdict() -> None:
    assert link_findings(make_link(), None) == []


def test_flaky_needs_two_flips() -> None:
    history = [False, True]  # newest first
    (finding,) = flaky_findings(make_link(), make_check(ok=True), history)
    assert finding.code == "flaky-link" and "✓✗✓" in finding.message
    assert flaky_findings(make_link(), make_check(ok=False), [True, True]) == []


# -- pages -------------------------------------------------------------------
PAIR = (
    "title: Big News\nwebUrl: https://a.example/n\nampWebUrl: https://a.example/n/amp\n"
    "publishedDateTime: 2020-09-22T22:36:00Z\n"
)


def _pages(web_head: dict[str, Any], amp_head: dict[str, Any]) -> dict[str, Any]:
    return {
        "https://a.example/n": make_check(url="https://a.example/n", final_url="https://a.example/n", head=web_head),
        "https://a.example/n/amp": make_check(
            url="https://a.example/n/amp", final_url="https://a.example/n/amp", head=amp_head
        ),
    }


def test_amp_pair_that_points_at_each_other_is_fine() -> None:
    checks = _pages({"amphtml": "https://a.example/n/amp", "title": "Big News"}, {"canonical": "https://a.example/n"})
    assert page_findings(_doc(PAIR), checks) == []


def test_amp_pair_mismatches() -> None:
    checks = _pages({"amphtml": "https://a.example/other/amp"}, {"canonical": "https://a.example/n"})
    (finding,) = page_findings(_doc(PAIR), checks)
    assert (finding.code, finding.field, finding.actual) == (
        "amp-pair-mismatch",
        "webUrl",
        "https://a.example/other/amp",
    )
    # Missing link on one side is a mismatch only when the other side claims the pair.
    checks = _pages({}, {"canonical": "https://a.example/n"})
    assert [f.field for f in page_findings(_doc(PAIR), checks)] == ["webUrl"]
    assert page_findings(_doc(PAIR), _pages({}, {})) == []


def test_title_and_date_mismatch() -> None:
    checks = _pages({"og_title": "Bigger News", "published_time": "2020-09-25T10:00:00Z"}, {})
    codes = sorted(f.code for f in page_findings(_doc(PAIR), checks))
    assert codes == ["date-mismatch", "title-mismatch"]
    checks = _pages({"title": "Big News | Example Times", "published_time": "2020-09-23T10:00:00+00:00"}, {})
    assert page_findings(_doc(PAIR), checks) == []


def _date_findings(published_time: str | None, source: str | None, ours: str = "2020-09-22T22:36:00Z") -> list[Any]:
    document = _doc(f"title: Big News\nwebUrl: https://a.example/n\npublishedDateTime: {ours}\n")
    head = {"title": "Big News", "published_time": published_time, "published_source": source}
    checks = {"https://a.example/n": make_check(url="https://a.example/n", head=head)}
    return [f for f in page_findings(document, checks) if f.code == Code.DATE_MISMATCH]


def test_date_mismatch_names_the_source_it_used() -> None:
    (finding,) = _date_findings("2020-09-25T10:00:00Z", DateSource.JSON_LD)
    assert finding.message.startswith("the page's JSON-LD datePublished is 2020-09-25T10:00:00+00:00, more than a day")
    assert (finding.field, finding.expected, finding.actual) == (
        "publishedDateTime",
        "2020-09-25T10:00:00+00:00",
        "2020-09-22T22:36:00+00:00",
    )
    (finding,) = _date_findings("Tue, 29 Sep 2020 14:44:00 GMT", DateSource.PUBDATE)
    assert '<meta name="pubdate">' in finding.message
    assert "'Tue, 29 Sep 2020 14:44:00 GMT' (2020-09-29T14:44:00+00:00)" in finding.message  # as written, and read


def test_a_head_stored_before_sources_were_recorded_was_article_published_time() -> None:
    (finding,) = _date_findings("2020-09-25T10:00:00Z", None)
    assert '<meta property="article:published_time">' in finding.message


def test_a_zoned_page_time_is_compared_to_the_second() -> None:
    assert _date_findings("2020-09-23T22:36:00Z", DateSource.ARTICLE_PUBLISHED_TIME) == []  # exactly a day
    assert len(_date_findings("2020-09-23T22:36:01Z", DateSource.ARTICLE_PUBLISHED_TIME)) == 1


@pytest.mark.parametrize(
    ("page", "findings"),
    [
        # Zone unknown: the publisher's calendar day, a day's tolerance either way.
        ("2020-09-21T01:00:00", 0),
        ("2020-09-23T23:59:00", 0),
        ("2020-09-20T23:00:00", 1),
        ("2020-09-24T00:30:00", 1),
        ("Tue Sep 22 05:55:00 2020", 0),  # ctime: no zone
        ("Mon, 21 Sep 2020 23:50:00 EDT", 0),  # a zone name is no zone
        # No time: the day itself.
        ("2020-09-23", 0),
        ("2020-09-24", 1),
        ("September 20, 2020", 1),
    ],
)
def test_a_page_date_without_zone_or_time_is_compared_by_calendar_day(page: str, findings: int) -> None:
    found = _date_findings(page, DateSource.NAME_DATE)
    assert len(found) == findings
    if found:
        assert "compared by calendar day" in found[0].message and "days from 2020-09-22" in found[0].message


def test_no_date_on_the_page_or_an_unreadable_one_is_no_finding() -> None:
    assert _date_findings(None, None) == []
    assert _date_findings("4/6/2016", DateSource.DUBLIN_CORE) == []
    assert _date_findings("2016-05-24", DateSource.NAME_DATE, ours="'not a date'") == []


# -- og:image size -------------------------------------------------------------------
OG_ARTICLE = (
    "title: Big News\nwebUrl: https://a.example/n\nimages:\n"
    "  - url: https://img.example/other.jpg\n    width: 10\n    height: 10\n"
    "  - url: https://img.example/lead.jpg\n    width: {width}\n    height: {height}\n"
)


def _og_findings(
    og: tuple[int | None, int | None], declared: tuple[int, int], real: tuple[int | None, int | None]
) -> Any:
    document = _doc(OG_ARTICLE.format(width=declared[0], height=declared[1]))
    head = {"og_image": "https://img.example/lead.jpg", "og_image_width": og[0], "og_image_height": og[1]}
    checks = {
        "https://a.example/n": make_check(url="https://a.example/n", head=head),
        "https://img.example/lead.jpg": make_check(
            url="https://img.example/lead.jpg", kind="image", width=real[0], height=real[1], image_format="jpeg"
        ),
        "https://img.example/other.jpg": make_check(
            url="https://img.example/other.jpg", kind="image", width=99, height=99, image_format="jpeg"
        ),
    }
    return [f for f in page_findings(document, checks) if f.code == Code.OG_IMAGE_SIZE_MISMATCH]


def test_og_image_size_that_is_neither_the_real_nor_the_declared_one() -> None:
    (finding,) = _og_findings(og=(1200, 630), declared=(1024, 576), real=(1024, 576))
    assert (finding.field, finding.line, finding.url) == ("images[1].url", 8, "https://img.example/lead.jpg")
    assert (finding.expected, finding.actual) == ("1024x576", "1200x630")
    assert finding.message == (
        "the page's og:image:width/height declare this image 1200x630, but it is 1024x576 (and images[1] says 1024x576)"
    )
    assert Code.OG_IMAGE_SIZE_MISMATCH.default_severity == "warning"
    # A document that declares no size: the page's size against the image's alone.
    document = _doc(OG_ARTICLE.replace("    width: {width}\n    height: {height}\n", ""))
    head = {"og_image": "https://img.example/lead.jpg", "og_image_width": 1200, "og_image_height": 630}
    checks = {
        "https://a.example/n": make_check(url="https://a.example/n", head=head),
        "https://img.example/lead.jpg": make_check(
            url="https://img.example/lead.jpg", kind="image", width=1024, height=576
        ),
    }
    (finding,) = [f for f in page_findings(document, checks) if f.code == Code.OG_IMAGE_SIZE_MISMATCH]
    assert finding.message == "the page's og:image:width/height declare this image 1200x630, but it is 1024x576"


@pytest.mark.parametrize(
    ("og", "declared", "real"),
    [
        ((1024, 576), (1200, 630), (1024, 576)),  # the page is right (image-size-mismatch blames the document)
        ((1200, 630), (1200, 630), (1024, 576)),  # page and document agree: image-size-mismatch says both are wrong
        ((1024, None), (1200, 630), (1024, 576)),  # only a width, and it is right
        ((1200, 630), (1024, 576), (None, None)),  # the image's size is unknown
        ((1200, 630), (1024, 576), (1200, None)),  # an SVG without a height: the width agrees
        ((None, None), (1024, 576), (1024, 576)),  # no size declared on the page
    ],
)
def test_og_image_size_that_is_no_finding(
    og: tuple[int | None, int | None], declared: tuple[int, int], real: tuple[int | None, int | None]
) -> None:
    assert _og_findings(og, declared, real) == []


def test_og_image_that_is_not_the_document_s_image_is_not_judged() -> None:
    document = _doc(OG_ARTICLE.format(width=1024, height=576))
    head = {"og_image": "https://img.example/social-card.jpg", "og_image_width": 1200, "og_image_height": 630}
    checks = {
        "https://a.example/n": make_check(url="https://a.example/n", head=head),
        "https://img.example/lead.jpg": make_check(
            url="https://img.example/lead.jpg", kind="image", width=1024, height=576
        ),
    }
    assert [f for f in page_findings(document, checks) if f.code == Code.OG_IMAGE_SIZE_MISMATCH] == []


def test_og_image_reached_through_a_redirect_of_the_document_s_image() -> None:
    document = _doc(OG_ARTICLE.format(width=1024, height=576))
    head = {"og_image": "https://cdn.example/lead.jpg", "og_image_width": 1200, "og_image_height": 630}
    checks = {
        "https://a.example/n": make_check(url="https://a.example/n", head=head),
        "https://img.example/lead.jpg": make_check(
            url="https://img.example/lead.jpg",
            final_url="https://cdn.example/lead.jpg",
            kind="image",
            width=1024,
            height=576,
        ),
    }
    assert [f.field for f in page_findings(document, checks)] == ["images[1].url"]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("It’s “big” — news", 'It\'s "big" - news'),
        ("A  B", "a b"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("Headline", "Headline - Site Name"),
        ("Headline", "Headline | Site"),
    ],
)
def test_titles_match_after_normalising(ours: str, theirs: str) -> None:
    assert titles_match(ours, theirs)


def test_titles_that_differ() -> None:
    assert not titles_match("LAPD used facial recognition", "LAPD denies facial recognition")


# -- soft 404s ---------------------------------------------------------------
def test_a_soft_404_finding_says_which_signal_fired_and_what_it_matched() -> None:
    document = _doc(PAIR)
    refs, _ = extract_links(document)
    home = [Hop(301, "https://a.example/n")]
    checks = _pages({"title": "Example front page"}, {"canonical": "https://a.example/n"})
    checks["https://a.example/n"] = make_check(
        url="https://a.example/n", final_url="https://a.example/", redirects=home, head={"title": "Example"}
    )
    (finding,) = soft_404_findings(document, refs, checks, HostEvidence())
    assert (finding.code, finding.field, finding.line, finding.url) == (
        Code.SOFT_404,
        "webUrl",
        3,
        "https://a.example/n",
    )
    assert finding.message == "soft 404: redirected to the home page: https://a.example/ is the home page of a.example"
    assert finding.actual == "https://a.example/ is the home page of a.example" and finding.expected is None
    assert finding.details is not None
    assert (finding.details.reason, finding.details.status, finding.details.final_url, finding.details.redirects) == (
        "home-page", 200, "https://a.example/", tuple(home))  # fmt: skip
    # The page's redirect, headline and AMP link are not the article's: those verdicts go, others stay.
    verdicts = [f for ref in refs for f in link_findings(ref, checks.get(ref.normalized_url))]
    verdicts += page_findings(document, checks)
    assert sorted((f.code, f.field) for f in verdicts) == [
        ("amp-pair-mismatch", "webUrl"), ("redirect", "webUrl"), ("title-mismatch", "title")]  # fmt: skip
    elsewhere = dataclasses.replace(verdicts[0], field="related[0].webUrl", url="https://b.example/")
    assert without_soft_404_pages([*verdicts, elsewhere], [finding]) == [elsewhere]


def test_the_documents_headline_decides_whether_a_pages_own_words_count() -> None:
    checks = _pages({"title": "Page not found"}, {"canonical": "https://a.example/n"})
    refs, _ = extract_links(_doc(PAIR))
    (finding,) = soft_404_findings(_doc(PAIR), refs, checks, HostEvidence())
    assert finding.details is not None and finding.details.reason == "not-found-title"
    untitled = _doc(PAIR.replace("title: Big News\n", ""))
    assert soft_404_findings(untitled, extract_links(untitled)[0], checks, HostEvidence()) == []
    # A headline that is still there, however the page is reached, is no soft 404.
    kept = _pages({"title": "Big News | Example"}, {})
    kept["https://a.example/n"] = make_check(
        url="https://a.example/n", final_url="https://a.example/", head={"title": "Big News | Example"}
    )
    assert soft_404_findings(_doc(PAIR), refs, kept, HostEvidence()) == []


def test_an_amp_page_sent_to_its_article_is_no_soft_404() -> None:
    checks = _pages({"title": "Big News"}, {})
    checks["https://a.example/n/amp"] = make_check(
        url="https://a.example/n/amp", final_url="https://a.example/n", redirects=[Hop(301, "https://a.example/n/amp")]
    )
    document = _doc(PAIR.replace("https://a.example/n/amp", "https://a.example/amp/n"))
    checks["https://a.example/amp/n"] = checks.pop("https://a.example/n/amp")
    assert soft_404_findings(document, extract_links(document)[0], checks, HostEvidence()) == []


# -- property: no document shape crashes the rules ---------------------------
FIELDS = [
    "title",
    "webUrl",
    "originalUrl",
    "ampWebUrl",
    "cdnAmpWebUrl",
    "images",
    "related",
    "provider",
    "domain",
    "url",
    "width",
    "height",
    "publishedDateTime",
    "quality",
    "published",
    "topics",
    "isCached",
    "type",
]
scalars = st.one_of(
    # No generated text says "None", so any "None" in a finding is a Python None leaking out.
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30).filter(lambda text: "None" not in text),
    st.sampled_from(
        [
            "https://a.example/x",
            "http://bücher.ch/",
            "javascript:alert(1)",
            "https://",
            "//x",
            "https://a.example:99999/",
            "2020-09-22T22:36:00Z",
            "a.example",
            "",
            "  ",
            "https://a.example/a b\t",
            "https://www.cnn.com/x",
            "cnn.com/us/x",
            "https://cnn.com:8080",
            "co.uk",
            "video",
            "article",
            "youtube.com",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(FIELDS), children, max_size=6)
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(FIELDS), values, max_size=10)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_document_shape_is_judged_without_crashing(data: dict[str, Any]) -> None:
    document = Document(path="fuzz.md", data=data, lines={"": 2})
    refs, problems = extract_links(document)
    findings = document_findings(document, SCHEMA) + problems
    assert all(f.document == "fuzz.md" and f.code for f in findings)
    checks = {
        ref.normalized_url: make_check(
            url=ref.normalized_url,
            head={
                "amphtml": "/x",
                "canonical": 5,
                "title": "t",
                "og_title": None,
                "published_time": datetime.now(UTC).isoformat(),
            },
        )
        for ref in refs
    }
    findings += page_findings(document, checks)
    findings += soft_404_findings(document, refs, checks, HostEvidence())
    for finding in findings:
        shown = [finding.message, finding.expected, finding.actual]
        assert not any("None" in text for text in shown if text is not None), finding
    # One problem, one finding: never two findings on one field of one kind.
    keys = [(f.code, f.field) for f in findings]
    assert len(keys) == len(set(keys)), keys
