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
    assert len({ref.normalized for ref in refs}) == 15
    by_field = {ref.field: ref for ref in refs}
    image = by_field["related[1].images[0].url"]
    assert (image.kind, image.line, image.declared_width, image.declared_height) == ("image", 58, 375, 211)
    assert image.item == "related[1]"
    assert by_field["cdnAmpWebUrl"].kind == "amp-cache"
    assert by_field["related[0].ampWebUrl"].kind == "amp"
    assert by_field["originalUrl"].kind == "page" and by_field["originalUrl"].line == 6
    assert by_field["webUrl"].normalized == by_field["originalUrl"].normalized


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
        ("https://exa mple.com/", "white space"),
        ("https://example.com:99999/", "malformed"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/a\x7fb", "control character"),
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
        "    images:\n      - url: 42\n---\n",
    )
    refs, problems = extract_links(document)
    assert [ref.field for ref in refs] == ["webUrl"]
    assert [(p.code, p.field, p.line) for p in problems] == [
        ("invalid-metadata", "related[0].webUrl", 6),
        ("invalid-metadata", "related[0].images[0].url", 8),
    ]
    assert "unsupported scheme 'javascript'" in problems[0].message


def test_declared_sizes_must_be_positive_integers() -> None:
    document = parse_document(
        "doc.md", "---\ntitle: t\nimages:\n  - url: https://i.example/a.png\n    width: '10'\n    height: 0\n---\n"
    )
    (ref,), _ = extract_links(document)
    assert (ref.declared_width, ref.declared_height) == (None, None)
