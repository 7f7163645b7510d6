from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import yaml

from auditor.amp import amp_cache_subdomain, amp_cache_url

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_6e5f9b61bd50d890.txt"


@pytest.mark.parametrize(
    ("host", "subdomain"),
    [
        ("www.govtech.com", "www-govtech-com"),
        ("en-us.example.com", "0-en--us-example-com-0"),
        ("bücher.ch", "xn--bcher-ch-65a"),
        ("xn--bcher-kva.ch", "xn--bcher-ch-65a"),
        (
            "itwasadarkandstormynight.therainfellintorrents.exceptatoccasionalintervalswhenitwascheckedby"
            ".aviolentgustofwindwhichsweptupthestreets.com",
            "dgz4cnrxufaulnwku4ow5biptyqnenjievjht56hd7wqinbdbteq",
        ),
        ("toplevelnohyphens", "qsgpfjzulvuaxb66z77vlhb5gu2irvcnyp6t67cz6tqo5ae6fysa"),
        # The remaining vectors are amp-toolbox-cache-url's own test suite.
        ("SOMETHING.COM", "something-com"),
        ("hello-world.com", "hello--world-com"),
        ("hello--world.com", "hello----world-com"),
        ("no-dot-domain", "4lxc7wqq7b25walg4rdiil62veijrmqui5z3ept2lyfqqwpowryq"),
        ("點看.com", "xn---com-k47jg78q"),
        # Wholly right-to-left is fine; mixing directions falls back to the hash.
        ("xn--4gbrim.xn----rmckbbajlc6dj7bxne2c.xn--wgbh1c", "xn-------i5fvcbaopc6fkc0de0d9jybegt6cd"),
        (
            "hello.xn--4gbrim.xn----rmckbbajlc6dj7bxne2c.xn--wgbh1c",
            "a6h5moukddengbsjm77rvbosevwuduec2blkjva4223o4bgafgla",
        ),
    ],
)
def test_subdomain_vectors(host: str, subdomain: str) -> None:
    assert amp_cache_subdomain(host) == subdomain


def test_readable_form_longer_than_a_label_falls_back_to_the_hash() -> None:
    host = "-".join(["ab"] * 20) + ".com"  # 63 characters; doubling its hyphens makes 82
    assert len(host) == 63
    digest = hashlib.sha256(host.encode()).digest()
    expected = base64.b32encode(digest).decode().rstrip("=").lower()
    assert amp_cache_subdomain(host) == expected
    assert len(expected) == 52


def test_unicode_and_punycode_spellings_hash_alike() -> None:
    # The hash input is the punycode host, whichever way the host was written.
    long_idn = "bücher." + "x" * 40 + "." + "y" * 20 + ".ch"
    punycode = long_idn.encode("idna").decode()
    digest = hashlib.sha256(punycode.encode()).digest()
    expected = base64.b32encode(digest).decode().rstrip("=").lower()
    assert amp_cache_subdomain(long_idn) == amp_cache_subdomain(punycode) == expected


def _amp_pairs(document: dict[str, object]) -> list[tuple[str, str]]:
    items = [document, *document.get("related", [])]  # type: ignore[list-item]
    return [(item["ampWebUrl"], item["cdnAmpWebUrl"]) for item in items if "ampWebUrl" in item]  # type: ignore[index, operator]


def test_seed_document_pairs_match_exactly() -> None:
    front_matter = SEED.read_text(encoding="utf-8").split("---\n")[1]
    pairs = _amp_pairs(yaml.safe_load(front_matter))
    assert len(pairs) == 4  # top level and related[0..2]
    for amp_url, cache_url in pairs:
        assert amp_cache_url(amp_url) == cache_url


@pytest.mark.parametrize(
    ("url", "content", "expected"),
    [
        ("https://www.example.com", "c", "https://www-example-com.cdn.ampproject.org/c/s/www.example.com"),
        (
            "http://www.example.com/index.html",
            "c",
            "https://www-example-com.cdn.ampproject.org/c/www.example.com/index.html",
        ),
        (
            "https://www.example.com/image.png",
            "i",
            "https://www-example-com.cdn.ampproject.org/i/s/www.example.com/image.png",
        ),
        (
            "http://www.example.com/font.woff2",
            "r",
            "https://www-example-com.cdn.ampproject.org/r/www.example.com/font.woff2",
        ),
        (
            "https://example.com/g?value=Hello%20World#section",
            "c",
            "https://example-com.cdn.ampproject.org/c/s/example.com/g?value=Hello%20World",
        ),
        (
            "HTTPS://News.Example.COM:8443/a/b?amp=1",
            "c",
            "https://news-example-com.cdn.ampproject.org/c/s/news.example.com:8443/a/b?amp=1",
        ),
        ("https://點看.com", "c", "https://xn---com-k47jg78q.cdn.ampproject.org/c/s/點看.com"),
    ],
)
def test_cache_urls(url: str, content: str, expected: str) -> None:
    assert amp_cache_url(url, content) == expected


@pytest.mark.parametrize("url", ["ftp://example.com/a", "//example.com/a", "not a url", "https://example.com:port/"])
def test_cache_url_rejects_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        amp_cache_url(url)


def test_cache_url_rejects_unknown_content_type() -> None:
    with pytest.raises(ValueError, match="content"):
        amp_cache_url("https://example.com/", "x")
