"""Soft 404s: each signal and each trap on records, then a loopback web end to end."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import LoopbackServer, make_check
from PIL import Image

from auditor import pipeline
from auditor.config import Config, CrawlConfig, Soft404Config
from auditor.model import Check, Code, Hop, Kind, Severity, Soft404Signal
from auditor.report import Report
from auditor.simhash import simhash
from auditor.soft404 import (
    PROBE_SUFFIX,
    HostEvidence,
    is_not_found_title,
    judge,
    landing_pages,
    not_found_titles,
    origin_of,
    probe_url,
)
from auditor.store import Store

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


# -- a loopback web, end to end ------------------------------------------------------------
def _html(title: str, description: str = "") -> str:
    return (
        f'<html><head><title>{title}</title><meta name="description" content="{description}"></head>'
        "<body><p>…</p></body></html>"
    )


def _redirect(location: str, status: int = 301) -> Any:
    return lambda request: (status, {"Location": location}, "")


@dataclass
class Web:
    """Five sites on loopback, one per way of answering for what is gone, and a corpus citing them."""

    proper: LoopbackServer  # 404s unknown paths; redirects some removed articles itself
    home_everywhere: LoopbackServer  # serves its home page at every unknown path (200, no redirect)
    redirect_home: LoopbackServer  # redirects every unknown path to its home page
    oops: LoopbackServer  # a "page not found" page with status 200 at every unknown path
    images: LoopbackServer  # only images: no page, so no probe
    dead: LoopbackServer  # its only page is gone (410): no page answered, so no probe
    documents: dict[str, tuple[str, str]]  # file name -> (title, webUrl)

    @property
    def sites(self) -> dict[str, LoopbackServer]:
        return {
            name: getattr(self, name)
            for name in ("proper", "home_everywhere", "redirect_home", "oops", "images", "dead")
        }

    def probes(self) -> dict[str, int]:
        """Probe requests each site received."""
        return {
            name: sum(1 for request in server.requests if request.path_only.endswith(PROBE_SUFFIX))
            for name, server in self.sites.items()
        }

    def write_corpus(self, root: Path) -> Path:
        corpus = root / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        image = self.images.url_for("/image/photo.png")
        for name, (title, url) in self.documents.items():
            text = f"---\ntitle: {json.dumps(title)}\nwebUrl: {url}\nimages:\n  - url: {image}\n---\n"
            (corpus / name).write_text(text)
        return corpus


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    with (
        LoopbackServer() as proper,
        LoopbackServer() as home_everywhere,
        LoopbackServer() as redirect_home,
        LoopbackServer() as oops,
        LoopbackServer() as images,
        LoopbackServer() as dead,
    ):
        # The home page sends ?from=loop back where it came from: a redirect loop through the home page.
        proper.add_route(
            "/", lambda r: (302, {"Location": "/loop-home/x"}, "") if r.query else (200, {}, _html("News"))
        )
        proper.add_route("/live/story-1", lambda r: (200, {}, _html("Live story one | News", "The council met.")))
        proper.add_route("/us/2009/09/13/tennis-great-jack-kramer-dead/", _redirect("/us"))
        proper.add_route("/us", lambda r: (200, {}, _html("U.S. | News", "News from the whole country")))
        proper.add_route("/2010/removed-story", _redirect("/"))
        proper.add_route("/2011/old-slug", _redirect("/2011/new-slug"))
        proper.add_route("/2011/new-slug", lambda r: (200, {}, _html("Moved story | News", "It moved.")))
        proper.add_route("/tech/how-to-fix-404-errors", lambda r: (200, {}, _html("How to fix 404 errors | News")))
        proper.add_route("/loop-home/x", _redirect("/?from=loop", 302))
        proper.add_route("/gone/says-so", lambda r: (200, {}, _html("Page not found | News")))
        for index in (1, 2, 3):
            proper.add_route(f"/old/{index}", _redirect("/archive-notice"))
            proper.add_route(f"/paid/{index}", _redirect("/subscribe", 302))
        proper.add_route("/archive-notice", lambda r: (200, {}, _html("Archive | News", "Our older stories")))
        proper.add_route("/subscribe", lambda r: (200, {}, _html("Subscribe | News", "Read everything")))

        daily_home = _html("Daily", "Everything from the Daily, every day")
        home_everywhere.set_fallback(lambda r: (200, {}, daily_home))
        home_everywhere.add_route("/live/article", lambda r: (200, {}, _html("A live article | Daily", "Details.")))

        redirect_home.set_fallback(_redirect("/", 302))
        redirect_home.add_route("/", lambda r: (200, {}, _html("Gazette front page")))
        redirect_home.add_route("/live/y", lambda r: (200, {}, _html("Live Y | Gazette", "Why it is live")))

        oops.set_fallback(lambda r: (200, {}, _html("Oops! That page can’t be found.", "Try the search")))
        oops.add_route("/live/w", lambda r: (200, {}, _html("Live W | Oops Times", "Double-u")))

        images.add_file("photo.png", _png(), "image/png")  # cited, so fetched; never probed
        documents = {
            "live.md": ("Live story one", proper.url_for("/live/story-1")),
            "section.md": ("Jack Kramer dead", proper.url_for("/us/2009/09/13/tennis-great-jack-kramer-dead/")),
            "home.md": ("A removed story", proper.url_for("/2010/removed-story")),
            "moved.md": ("Moved story", proper.url_for("/2011/old-slug")),
            "how-to.md": ("How to fix 404 errors", proper.url_for("/tech/how-to-fix-404-errors")),
            "loop.md": ("Looping", proper.url_for("/loop-home/x")),
            "says-so.md": ("A story that was removed", proper.url_for("/gone/says-so")),
            **{f"old-{i}.md": (f"Old story {i}", proper.url_for(f"/old/{i}")) for i in (1, 2, 3)},
            **{f"paid-{i}.md": (f"Paid story {i}", proper.url_for(f"/paid/{i}")) for i in (1, 2, 3)},
            "daily-live.md": ("A live article", home_everywhere.url_for("/live/article")),
            "daily-removed.md": ("A removed article", home_everywhere.url_for("/removed/article")),
            "gazette-live.md": ("Live Y", redirect_home.url_for("/live/y")),
            "gazette-removed.md": ("Removed X", redirect_home.url_for("/removed/x")),
            "oops-live.md": ("Live W", oops.url_for("/live/w")),
            "oops-removed.md": ("Deleted Z", oops.url_for("/deleted/z")),
            "dead.md": ("Dead", dead.url_for("/status/410/gone")),
        }  # fmt: skip
        yield Web(proper, home_everywhere, redirect_home, oops, images, dead, documents)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    return buffer.getvalue()


def _audit(web: Web, tmp_path: Path, **overrides: Any) -> Report:
    for server in web.sites.values():
        server.requests.clear()
    config = Config(
        paths=(web.write_corpus(tmp_path),),
        db=tmp_path / "audit.sqlite",
        out=tmp_path / "reports",
        crawl=CrawlConfig(timeout=2.0, retries=0, rate=1000.0, allow_private=True),
        **overrides,
    )
    return pipeline.audit(config).report


def _by_document(report: Report, code: Code) -> dict[str, str | None]:
    return {Path(f.document).name: f.reason for f in report.findings if f.code is code}


def test_each_soft_404_shape_is_found_and_each_trap_is_not(web: Web, tmp_path: Path) -> None:
    report = _audit(web, tmp_path)
    assert _by_document(report, Code.SOFT_404) == {
        "section.md": "section",
        "home.md": "home-page",
        "says-so.md": "not-found-title",
        "old-1.md": "landing-page",
        "old-2.md": "landing-page",
        "old-3.md": "landing-page",
        "daily-removed.md": "probe-match",
        "gazette-removed.md": "home-page",
        "oops-removed.md": "probe-match",
    }
    findings = {Path(f.document).name: f for f in report.findings if f.code is Code.SOFT_404}
    assert all(f.severity is Severity.ERROR for f in findings.values())
    gazette = findings["gazette-removed.md"]
    assert gazette.final_url == web.redirect_home.url_for("/") and gazette.status == 200
    home = web.redirect_home.url_for("/")
    assert gazette.message == (
        f"soft 404: redirected to the home page: {home} is the home page of 127.0.0.1:{web.redirect_home.port} "
        "(also: redirected where the host sends a path that cannot exist)"
    )
    assert [hop.status for hop in gazette.redirects] == [302]
    oops = findings["oops-removed.md"]
    assert oops.message.startswith("soft 404: answers as the host answers a path that cannot exist: title 'Oops!")
    assert oops.message.endswith("(also: its title says the page was not found)")
    # The traps: a moved article is a redirect, a loop through the home page a dead link, a paywall
    # (temporary redirects of several articles to one page) and a headline about 404s nothing.
    assert _by_document(report, Code.REDIRECT) == {"moved.md": "ok"}
    assert _by_document(report, Code.DEAD_LINK) == {"loop.md": "redirect-loop", "dead.md": "http 410"}
    # A soft 404's page is not the article: no redirect to adopt, no headline that "changed".
    soft = set(findings)
    assert not [f for f in report.findings if Path(f.document).name in soft and f.code is not Code.SOFT_404]
    assert set(_by_document(report, Code.TITLE_MISMATCH)) <= {"paid-1.md", "paid-2.md", "paid-3.md"}


def test_the_probe_costs_one_request_per_host_with_pages(web: Web, tmp_path: Path) -> None:
    report = _audit(web, tmp_path)
    assert web.probes() == {"proper": 1, "home_everywhere": 1, "redirect_home": 1, "oops": 1, "images": 0, "dead": 0}
    # The probes are checks of their own, never URLs of the corpus.
    assert report.summary.urls == len(web.documents) + 1  # + the one image
    assert not [u for u in report.urls if u.url.endswith(PROBE_SUFFIX)]
    store = Store(tmp_path / "audit.sqlite")
    try:
        probes = store.run_probes(report.run.id)
    finally:
        store.close()
    assert {origin: probe.status for origin, probe in probes.items()} == {
        web.proper.url: 404,
        web.home_everywhere.url: 200,
        web.redirect_home.url: 200,
        web.oops.url: 200,
    }
    assert all(probe.kind is Kind.PROBE for probe in probes.values())


def test_no_soft_404_probe_asks_nothing_extra_and_keeps_the_free_signals(web: Web, tmp_path: Path) -> None:
    report = _audit(web, tmp_path, soft_404=Soft404Config(probe=False))
    assert web.probes() == dict.fromkeys(web.sites, 0)
    found = _by_document(report, Code.SOFT_404)
    assert found["home.md"] == "home-page" and found["gazette-removed.md"] == "home-page"
    assert "daily-removed.md" not in found  # only the probe could tell
    # The soft-404 severity off costs no probe either.
    _audit(web, tmp_path / "off", severities={Code.SOFT_404: Severity.OFF})
    assert web.probes() == dict.fromkeys(web.sites, 0)


def test_a_scheduled_run_reuses_the_probe_within_max_age(web: Web, tmp_path: Path) -> None:
    first = _audit(web, tmp_path, max_age=3600.0)
    assert sum(web.probes().values()) == 4
    second = _audit(web, tmp_path, max_age=3600.0)
    assert sum(web.probes().values()) == 0  # pages and probes alike reused
    assert _by_document(second, Code.SOFT_404) == _by_document(first, Code.SOFT_404)
    third = _audit(web, tmp_path)  # without --max-age every host with pages is asked again
    assert web.probes() == {"proper": 1, "home_everywhere": 1, "redirect_home": 1, "oops": 1, "images": 0, "dead": 0}
    assert _by_document(third, Code.SOFT_404) == _by_document(first, Code.SOFT_404)
