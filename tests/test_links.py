from __future__ import annotations

from pathlib import Path

import pytest

from auditor.corpus import load_document, parse_document
from auditor.links import InvalidURL, extract_links, normalize_url

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_6e5f9b61bd50d890.txt"


def test_seed_file_has_17_references_and_15_unique_urls() -> None:
    refs, problems = extract_links(load_document(SEED))
    assert problems == []
    assert len(refs) == 17
    assert len({ref.normalized_url for ref in refs}) == 15
    by_field = {ref.field: ref for ref in refs}
    image = by_field["related[1].images[0].url"]
    assert (image.kind, image.line, image.declared_width, image.declared_height) == ("image", 58, 375, 211)
    assert image.item == "related[1]"
    assert by_field["cdnAmpWebUrl"].kind == "amp-cache"
    assert by_field["related[0].ampWebUrl"].kind == "amp"
    assert by_field["originalUrl"].kind == "page" and by_field["originalUrl"].line == 6
    assert by_field["webUrl"].normalized_url == by_field["originalUrl"].normalized_url


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("HTTPS://Example.COM", "https://example.com/"),
        ("https://example.com:443/a#frag", "https://example.com/a"),
        ("http://example.com:80/a?b=C", "http://example.com/a?b=C"),
        ("http://example.com:8080/A", "http://example.com:8080/A"),
        ("https://bücher.ch/x", "https://xn--bcher-kva.ch/x"),
        ("https://example.com./", "https://example.com/"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
    ],
)
def test_normalize(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "unsupported scheme"),
        ("/relative/path", "not an absolute"),
        ("ftp://example.com/", "unsupported scheme"),
        ("https://", "no host"),
        ("https://exa mple.com/", "contains a space at character 12 in the host name: remove it"),
        ("https://example.com:99999/", "malformed"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/a\x7fb", r"control character \(U\+007F\) at character 22: remove it"),
        ("https://example.com/a\x00", "control character"),
        ("https://xn--/", "not a valid internationalised"),
    ],
)
def test_invalid_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason):
        normalize_url(url)


def test_invalid_url_is_a_finding_with_field_and_line() -> None:
    document = parse_document(
        "doc.md",
        "---\ntitle: t\nwebUrl: https://ok.example/\nrelated:\n  - title: r\n    webUrl: javascript:alert(1)\n"
        "    images:\n      - url: //i.example/a.png\n---\n",
    )
    refs, problems = extract_links(document)
    assert [ref.field for ref in refs] == ["webUrl"]
    assert [(p.code, p.field, p.line) for p in problems] == [
        ("invalid-metadata", "related[0].webUrl", 6),
        ("invalid-metadata", "related[0].images[0].url", 8),
    ]
    assert "unsupported scheme 'javascript'" in problems[0].message
    assert problems[0].expected is None  # no mechanical fix: never a made-up one
    assert problems[1].expected == "https://i.example/a.png"


def test_missing_mistyped_and_empty_urls_are_left_to_the_schema_rule() -> None:
    # One problem, one finding: rules.schema_findings reports these, so link extraction must not.
    document = parse_document(
        "doc.md", "---\ntitle: t\nwebUrl: ''\nampWebUrl: 42\noriginalUrl: '  '\nimages:\n  - url: ~\n---\n"
    )
    assert extract_links(document) == ([], [])


@pytest.mark.parametrize(
    ("url", "message", "fixed"),
    [
        (
            "https://apnews.com/Business Wire/5054ac",
            "contains a space at character 28: encode it as %20",
            "https://apnews.com/Business%20Wire/5054ac",
        ),
        ("https://a.example/x.jpg\t", "ends with a tab: remove it", "https://a.example/x.jpg"),
        ("https://a.example/amp/ ", "ends with a space: remove it", "https://a.example/amp/"),
        (
            " https://a.example/a b c",
            ("starts with a space: remove it; contains 2 spaces, the first at character 21: encode them as %20"),
            "https://a.example/a%20b%20c",
        ),
        ("https://a.example/x\ty", "contains a tab at character 20: remove it", "https://a.example/xy"),
        (
            "https://a.example/\r\n",
            "ends with 2 white-space characters (carriage return, line break): remove them",
            "https://a.example/",
        ),
        ("https://a.example/\u00a0", "ends with U+00A0 (no-break space): remove it", "https://a.example/"),
        ("https://a b.example/x", "contains a space at character 10 in the host name: remove it", None),
        ("javascript:alert(1) ", "ends with a space: remove it", None),  # the rest is broken too: no fix offered
    ],
)
def test_white_space_says_where_and_how_to_fix(url: str, message: str, fixed: str | None) -> None:
    with pytest.raises(InvalidURL) as caught:
        normalize_url(url)
    assert str(caught.value) == message
    assert caught.value.suggestion == fixed


def test_declared_sizes_must_be_positive_integers() -> None:
    document = parse_document(
        "doc.md", "---\ntitle: t\nimages:\n  - url: https://i.example/a.png\n    width: '10'\n    height: 0\n---\n"
    )
    (ref,), _ = extract_links(document)
    assert (ref.declared_width, ref.declared_height) == (None, None)
