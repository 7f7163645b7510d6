"""Soft 404s: each signal and each trap on records, then a loopback web end to end."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_check

from auditor.model import Check, Hop, Kind, Soft404Signal
from auditor.simhash import simhash
from auditor.soft404 import (
    HostEvidence,
    is_not_found_title,
    judge,
    landing_pages,
    not_found_titles,
    origin_of,
    probe_url,
)

SITE = "https://news.example"
NO_HOSTS = HostEvidence()


def _head(words: str | None, head: dict[str, Any]) -> dict[str, Any] | None:
    """A head mapping whose text hash is of `words` (a description, say) after its own titles."""
    if not head:
        return None
    return {**head, "text_hash": simhash(" ".join([*map(str, head.values()), words or ""]))}


def _page(
    url: str, *, final: str | None = None, hops: tuple[int, ...] = (301,), words: str | None = None, **head: Any
) -> Check:
    """A page check of `url` that answered 200, redirected to `final` by `hops` when given."""
    redirects = tuple(Hop(status, url) for status in hops) if final else ()
    return make_check(url=url, final_url=final or url, redirects=redirects, head=_head(words, head))


def _signals(url: str, check: Check, hosts: HostEvidence = NO_HOSTS, **options: Any) -> tuple[Soft404Signal, ...]:
    verdict = judge(url, check, hosts, **options)
    return verdict.signals if verdict else ()


# -- redirected away -------------------------------------------------------------------------
def test_an_article_redirected_to_the_home_page_is_a_soft_404() -> None:
    url = f"{SITE}/2010/05/removed-story"
    verdict = judge(url, _page(url, final=f"{SITE}/", title="News home"), NO_HOSTS)
    assert verdict is not None and verdict.signal is Soft404Signal.HOME_PAGE
    assert verdict.matched == f"{SITE}/ is the home page of news.example"
    # www. and http -> https are the same site; index.html is the home page too
    assert _signals(url, _page(url, final="https://www.news.example/index.html")) == (Soft404Signal.HOME_PAGE,)
    # A query-only article (/?p=12) sent home is gone as well.
    assert _signals(f"{SITE}/?p=12", _page(f"{SITE}/?p=12", final=f"{SITE}/")) == (Soft404Signal.HOME_PAGE,)


def test_an_article_redirected_to_a_section_above_it_is_a_soft_404() -> None:
    url = f"{SITE}/us/2009/09/13/tennis-great-jack-kramer-dead/"
    verdict = judge(url, _page(url, final=f"{SITE}/us"), NO_HOSTS)
    assert verdict is not None and verdict.signals == (Soft404Signal.SECTION,)
    assert verdict.matched == "/us is a section above /us/2009/09/13/tennis-great-jack-kramer-dead/"


@pytest.mark.parametrize(
    ("url", "final"),
    [
        # a moved story: another path, not a shorter one
        (f"{SITE}/2011/old-slug", f"{SITE}/2011/new-slug"),
        (f"{SITE}/news/story", f"{SITE}/en/news/story"),
        # the same page: a trailing slash, https, an index document, an AMP variant sent to its article
        (f"{SITE}/news/story", f"{SITE}/news/story/"),
        (f"{SITE}/news/story/index.html", f"{SITE}/news/story"),
        (f"{SITE}/news/story/amp", f"{SITE}/news/story"),
        # another site's home page (a sold domain, a consent wall) is not this site's
        (f"{SITE}/news/story", "https://consent.other.example/"),
        # a section with a query may be an article by query
        (f"{SITE}/news/old-story", f"{SITE}/news?id=456"),
        # the site's home page, cited as such, is no article
        (f"{SITE}/", f"{SITE}/en/"),
        (f"{SITE}/index.html", f"{SITE}/"),
    ],
)
def test_redirects_that_lose_no_article_are_not_soft_404s(url: str, final: str) -> None:
    assert _signals(url, _page(url, final=final)) == ()


def test_a_redirect_to_the_items_own_other_url_is_not_one() -> None:
    amp, web = f"{SITE}/amp/2020/story", f"{SITE}/2020/story"
    assert _signals(amp, _page(amp, final=f"{SITE}/amp/2020")) == (Soft404Signal.SECTION,)
    assert _signals(amp, _page(amp, final=web), own_urls=frozenset({web, amp})) == ()


def test_a_page_that_still_carries_the_headline_is_never_one() -> None:
    url = f"{SITE}/2010/05/story"
    check = _page(url, final=f"{SITE}/", title="Page not found")
    assert _signals(url, check, headline_kept=True) == ()
    assert _signals(url, check, headline_kept=False) == (Soft404Signal.HOME_PAGE, Soft404Signal.NOT_FOUND_TITLE)


def test_only_a_2xx_answer_is_judged() -> None:
    url = f"{SITE}/2010/05/story"
    for check in (
        make_check(url=url, ok=False, status=404),
        make_check(url=url, ok=False, status=None, final_url=None),
    ):
        assert judge(url, check, NO_HOSTS, headline_kept=False) is None


# -- landing pages (logging rules) -----------------------------------------------------------
def test_a_page_where_several_articles_are_permanently_sent_is_a_landing_page() -> None:
    landing = f"{SITE}/archive-notice"

    def sent(path: str, *hops: int) -> tuple[str, str, tuple[Hop, ...]]:
        return (f"{SITE}{path}", landing, tuple(Hop(status, f"{SITE}{path}") for status in hops))

    rows = [sent("/old/1", 301), sent("/old/2", 302, 308), sent("/old/3", 301)]
    assert landing_pages(rows, 3) == {landing: 3}
    assert landing_pages(rows[:2], 3) == {}
    # The last hop decides: a paywall or consent page is a temporary redirect.
    assert landing_pages([sent("/a/1", 301, 302), sent("/a/2", 302), sent("/a/3", 307)], 1) == {}
    # One article cited with different queries, or as its AMP page, is one article; another site's is none.
    variants = [sent("/old/1?utm=a", 301), sent("/old/1?utm=b", 301), sent("/old/1/amp", 301)]
    assert landing_pages(variants, 2) == {}
    elsewhere = [("https://other.example/a", landing, (Hop(301, "https://other.example/a"),))] * 3
    assert landing_pages(elsewhere, 1) == {}

    url = f"{SITE}/old/1"
    hosts = HostEvidence(landings={landing: 3})
    verdict = judge(url, _page(url, final=landing), hosts)
    assert verdict is not None and verdict.signals == (Soft404Signal.LANDING_PAGE,)
    assert verdict.matched == f"3 articles of news.example are permanently sent to {landing}"
    assert _signals(url, _page(url, final=landing, hops=(302,)), hosts) == ()


# -- the host probe --------------------------------------------------------------------------
NOT_FOUND_HEAD = {"title": "Oops | News", "og_title": "Oops"}


def _probe(status: int = 200, *, final: str | None = None, words: str | None = None, **head: Any) -> Check:
    url = probe_url(SITE)
    redirects = (Hop(302, url),) if final else ()
    return make_check(
        url=url, kind=Kind.PROBE, ok=200 <= status < 300, status=status, final_url=final or url, redirects=redirects,
        head=_head(words, head),
    )  # fmt: skip


def test_probe_urls_are_random_paths_on_the_origin() -> None:
    first, second = probe_url("https://news.example:8443"), probe_url("https://news.example:8443")
    assert first != second
    assert first.startswith("https://news.example:8443/") and first.endswith("-auditor-probe")
    assert origin_of(first) == "https://news.example:8443"


def test_a_page_redirected_where_the_probe_ended_answers_as_a_missing_page() -> None:
    url = f"{SITE}/2019/gone"
    hosts = HostEvidence(probes={SITE: _probe(final=f"{SITE}/errors/not-found", **NOT_FOUND_HEAD)})
    verdict = judge(url, _page(url, final=f"{SITE}/errors/not-found", hops=(302,), **NOT_FOUND_HEAD), hosts)
    assert verdict is not None and verdict.signals == (Soft404Signal.PROBE_REDIRECT,)
    assert "-auditor-probe, a path that cannot exist, ends there too" in verdict.matched


def test_a_page_that_reads_as_the_probes_answer_is_one() -> None:
    url = f"{SITE}/2019/gone"
    hosts = HostEvidence(probes={SITE: _probe(**NOT_FOUND_HEAD)})
    verdict = judge(url, _page(url, **NOT_FOUND_HEAD), hosts)
    assert verdict is not None and verdict.signals == (Soft404Signal.PROBE_MATCH,)
    assert verdict.matched.startswith("title 'Oops | News' and head words 0/64 bits from the answer to https://")
    # The same title over other words (a site with one title on every page) is not the probe's page.
    assert _signals(url, _page(url, title="Oops | News", words="The council voted on the budget today."), hosts) == ()


def test_a_well_behaved_or_unreachable_host_gives_no_probe_signal() -> None:
    url = f"{SITE}/2019/gone"
    page = _page(url, **NOT_FOUND_HEAD)
    for probe in (_probe(404, **NOT_FOUND_HEAD), _probe(410), _probe(503, **NOT_FOUND_HEAD)):
        assert _signals(url, page, HostEvidence(probes={SITE: probe})) == ()
    # Another origin's probe says nothing about this one.
    assert _signals(url, page, HostEvidence(probes={"https://other.example": _probe(**NOT_FOUND_HEAD)})) == ()


def test_a_live_article_on_a_host_that_serves_its_home_page_everywhere_is_not_one() -> None:
    home = "Breaking news from Springfield"
    hosts = HostEvidence(probes={SITE: _probe(title="News home", words=home)})
    url = f"{SITE}/2019/live"
    assert _signals(url, _page(url, title="Council passes budget | News", words="The vote"), hosts) == ()
    assert _signals(url, _page(url, title="News home", words=home), hosts) == (Soft404Signal.PROBE_MATCH,)


# -- says so itself --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "title",
    [
        "404",
        "Page not found | Example News",
        "Example News - Page Not Found",
        "Error 404: Page not found",
        "Oops! That page can’t be found.",
        "Seite nicht gefunden – Beispiel",
        "Página no encontrada",
        "Page introuvable | Le Journal",
        "Pagina non trovata",
        "ページが見つかりません",
    ],
)
def test_not_found_titles(title: str) -> None:
    assert is_not_found_title(title)


@pytest.mark.parametrize(
    "title",
    ["How to fix 404 errors", "404 errors cost shops millions | News", "Found: the missing page of Darwin's notebook"],
)
def test_headlines_that_mention_a_404_are_not_not_found_titles(title: str) -> None:
    assert not is_not_found_title(title)


def test_the_data_file_is_read_without_comments() -> None:
    titles = not_found_titles()
    assert {"page not found", "seite nicht gefunden", "página no encontrada"} <= titles
    assert not any(title.startswith("#") or not title for title in titles)


def test_a_not_found_title_counts_alone_only_against_a_headline_known_to_be_gone() -> None:
    url = f"{SITE}/2019/gone"
    page = _page(url, title="Page not found | News")
    verdict = judge(url, page, NO_HOSTS, headline_kept=False)
    assert verdict is not None and verdict.signals == (Soft404Signal.NOT_FOUND_TITLE,)
    assert verdict.matched == "title 'Page not found | News'"
    assert _signals(url, page, headline_kept=None) == ()  # no headline to compare: words alone are not enough
    redirected = _page(url, final=f"{SITE}/", title="Page not found | News")
    assert _signals(url, redirected) == (Soft404Signal.HOME_PAGE, Soft404Signal.NOT_FOUND_TITLE)


def test_a_canonical_home_page_on_an_article_is_one() -> None:
    url = f"{SITE}/2019/gone"
    page = _page(url, title="News", canonical="https://www.news.example/")
    assert _signals(url, page, headline_kept=False) == (Soft404Signal.CANONICAL_HOME,)
    assert _signals(url, page, headline_kept=None) == ()
    other = _page(url, title="News", canonical=f"{SITE}/2019/other-story")
    assert _signals(url, other, headline_kept=False) == ()
