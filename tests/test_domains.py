from __future__ import annotations

import pytest

from auditor.domains import domain_problem, is_public_suffix, registrable_domain


@pytest.mark.parametrize(
    ("host", "registrable"),
    [
        ("www.cnn.com", "cnn.com"),
        ("edition.cnn.com", "cnn.com"),
        ("cnn.com", "cnn.com"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("news.aa.com", "aa.com"),
        ("someone.github.io", "someone.github.io"),
        ("xn--bcher-kva.ch", "xn--bcher-kva.ch"),
        ("192.0.2.7", "192.0.2.7"),
        ("::1", "::1"),
    ],
)
def test_registrable_domain_follows_the_public_suffix_list(host: str, registrable: str) -> None:
    assert registrable_domain(host) == registrable


def test_public_suffixes_are_no_publisher_domain() -> None:
    assert is_public_suffix("co.uk") and is_public_suffix("com") and is_public_suffix("github.io")
    assert not is_public_suffix("cnn.com") and not is_public_suffix("192.0.2.7")


@pytest.mark.parametrize(
    "value", ["cnn.com", "CNN.com", "cnn.com.", "www.cbc.ca", "bücher.ch", "my_site.example", "192.0.2.7"]
)
def test_host_names_are_fine(value: str) -> None:
    assert domain_problem(value) is None


@pytest.mark.parametrize(
    ("value", "message", "suggestion"),
    [
        (
            "cnn.com/us/live-news/us-coronavirus-update-05-04-20/h_17b8da66f77197b8ddec455b3baad2b8",
            "is not a bare domain name: it has a path (/us/live-news/us-coronavirus-update-05-…); write cnn.com alone",
            "cnn.com",
        ),
        (
            "https://www.cnn.com/",
            ("is not a bare domain name: it has a scheme (https://) and a trailing '/'; write www.cnn.com alone"),
            "www.cnn.com",
        ),
        ("cnn.com:8080", "is not a bare domain name: it has a port (:8080); write cnn.com alone", "cnn.com"),
        ("cnn .com", "is not a bare domain name: it has a space at character 4; write cnn.com alone", "cnn.com"),
        (
            " cnn.com",
            "is not a bare domain name: it has white space at the start or end; write cnn.com alone",
            "cnn.com",
        ),
        ("cnn.com?x=1", "is not a bare domain name: it has a query (?x=1); write cnn.com alone", "cnn.com"),
        ("", "is empty: write the publisher's domain, e.g. example.com", None),
        ("  ", "holds only white space: write the publisher's domain, e.g. example.com", None),
        (
            "cnn..com",
            ("is not a valid domain name (it has an empty label): write the publisher's domain, e.g. example.com"),
            None,
        ),
        (
            "a@cnn.com",
            "is not a valid domain name (it holds '@'): write the publisher's domain, e.g. example.com",
            None,
        ),
    ],
)
def test_what_is_not_a_domain_says_why_and_how_to_fix_it(value: str, message: str, suggestion: str | None) -> None:
    problem = domain_problem(value)
    assert problem is not None
    assert (problem.message, problem.suggestion) == (message, suggestion)
