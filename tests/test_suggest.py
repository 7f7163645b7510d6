"""--suggest: archived copies of dead links from the Wayback Machine, asked with respx, and on loopback for sockets."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from test_pipeline import _config, _write

from auditor import pipeline
from auditor.config import ArchiveConfig, Config
from auditor.interrupt import StopRequests
from auditor.model import ArchivedCopy, Code, RunStatus
from auditor.report.github import github_annotations
from auditor.store import Store
from auditor.suggest import ArchiveError, parse_answer

API = "https://archive.org/wayback/available"
GONE = "https://news.example/gone"
SNAPSHOT = "https://web.archive.org/web/20130919044612/https://news.example/gone"
# Quick and unthrottled unless a test says otherwise; the defaults are the polite ones.
FAST = ArchiveConfig(rate=1000.0, timeout=2.0)


def _found(snapshot: str = SNAPSHOT, timestamp: str = "20130919044612", status: str = "200") -> httpx.Response:
    closest = {"available": True, "url": snapshot, "timestamp": timestamp, "status": status}
    return httpx.Response(200, json={"url": GONE, "archived_snapshots": {"closest": closest}})


NONE = httpx.Response(200, json={"url": GONE, "archived_snapshots": {}})


def _corpus(tmp_path: Path, *urls: str) -> None:
    """One document per URL, each its webUrl (line 3)."""
    for index, url in enumerate(urls):
        _write(tmp_path / "corpus" / f"{index}.md", f"---\ntitle: OK\nwebUrl: {url}\n---\n")


def _suggesting(tmp_path: Path, **archive: Any) -> Config:
    return _config(tmp_path, suggest=True, archive=ArchiveConfig(**{**vars(FAST), **archive}))


def _dead(router: respx.MockRouter, *urls: str) -> None:
    for url in urls:
        router.get(url).mock(return_value=httpx.Response(404))


def _api(router: respx.MockRouter, url: str = GONE) -> respx.Route:
    return router.get(API, params={"url": url})


def _reports(tmp_path: Path) -> dict[str, str]:
    out = tmp_path / "reports"
    return {name: (out / name).read_text(encoding="utf-8") for name in ("report.json", "report.md", "report.html")}


# -- the API's answers ------------------------------------------------------------------------
def test_a_snapshot_is_taken_over_https_with_its_time() -> None:
    answer = parse_answer(GONE, _found(SNAPSHOT.replace("https://", "http://", 1)).content, asked_at="now")
    assert answer == ArchivedCopy(url=GONE, snapshot_url=SNAPSHOT, archived_at="2013-09-19T04:46:12Z", asked_at="now")
    assert answer.available


@pytest.mark.parametrize(
    "body",
    [
        NONE.content,
        _found(status="404").content,  # a capture of the dead page is no copy of it
        _found(status="302").content,
        json.dumps({"archived_snapshots": {"closest": {"available": False, "url": SNAPSHOT}}}).encode(),
    ],
)
def test_no_usable_snapshot_is_none_available(body: bytes) -> None:
    answer = parse_answer(GONE, body, asked_at="now")
    assert not answer.available and answer.snapshot_url is None and answer.asked_at == "now"


def test_a_snapshot_with_a_strange_time_keeps_its_url() -> None:
    assert parse_answer(GONE, _found(timestamp="yesterday").content, asked_at="now").archived_at is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Service Unavailable</html>",
        b"\xff\xfe",
        b"[]",
        b'{"results": []}',
        json.dumps({"archived_snapshots": {"closest": "yes"}}).encode(),
        _found(snapshot="javascript:alert(1)").content,
        _found(snapshot="https://web.archive.org/web/2013/ a b").content,
        _found(snapshot="https://web.archive.org/" + "a" * 9000).content,
    ],
)
def test_garbage_is_an_error_not_an_answer(body: bytes) -> None:
    with pytest.raises(ArchiveError):
        parse_answer(GONE, body, asked_at="now")


# -- an audit with --suggest ------------------------------------------------------------------
def test_a_dead_link_gets_its_archived_copy_in_every_report(tmp_path: Path) -> None:
    fine = "https://news.example/fine"
    _corpus(tmp_path, GONE, fine)
    with respx.mock() as router:
        _dead(router, GONE)
        router.get(fine).mock(return_value=httpx.Response(200, html="<title>OK</title>"))
        api = _api(router).mock(return_value=_found())
        outcome = pipeline.audit(_suggesting(tmp_path))
    assert api.call_count == 1
    request = api.calls.last.request
    assert request.url.params["url"] == GONE and request.headers["user-agent"].startswith("auditor/")
    assert outcome.exit_code == 1  # still a dead link: a suggestion changes no verdict
    (finding,) = outcome.report.findings
    assert finding.code is Code.DEAD_LINK and finding.archived is not None
    assert (finding.archived.snapshot_url, finding.archived.archived_at) == (SNAPSHOT, "2013-09-19T04:46:12Z")
    summary = outcome.report.summary.archive
    assert summary is not None and (summary.wanted, summary.asked, summary.found, summary.failed) == (1, 1, 1, 0)

    reports = _reports(tmp_path)
    written = json.loads(reports["report.json"])
    assert written["findings"][0]["archived_copy"] == {
        "available": True,
        "url": SNAPSHOT,
        "archived_at": "2013-09-19T04:46:12Z",
        "asked_at": finding.archived.asked_at,
    }
    assert written["summary"]["archive"]["found"] == 1
    assert "archived copy: https://web.archive.org/web/20130919044612/https://news.example/gone" in (
        reports["report.md"].replace("&#95;", "_")
    )
    assert "1 of 1 dead-link URLs have one" in reports["report.md"]
    assert f'<a class="archived" href="{SNAPSHOT}" rel="noopener noreferrer"' in reports["report.html"]
    junit = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    failure = junit.find(".//failure")
    assert failure is not None and f"archived copy: {SNAPSHOT} (archived 2013-09-19)" in failure.get("message", "")
    assert f"  archived copy: {SNAPSHOT}" in (failure.text or "")
    (annotation,) = github_annotations(outcome.report)
    assert f"%0Aarchived copy: {SNAPSHOT} (archived 2013-09-19)" in annotation


def test_none_available_is_kept_and_shown_as_such(tmp_path: Path) -> None:
    _corpus(tmp_path, GONE)
    with respx.mock() as router:
        _dead(router, GONE)
        _api(router).mock(return_value=NONE)
        outcome = pipeline.audit(_suggesting(tmp_path))
    (finding,) = outcome.report.findings
    assert finding.archived is not None and not finding.archived.available
    assert finding.archived_copy is None  # nothing to suggest, in words
    written = json.loads(_reports(tmp_path)["report.json"])
    assert written["findings"][0]["archived_copy"]["available"] is False
    assert "0 of 1 dead-link URLs have one" in _reports(tmp_path)["report.md"]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("[Errno -2] Name or service not known"),
        RuntimeError("a bug of ours"),
    ],
    ids=["5xx", "html", "wrong-json", "timeout", "dns", "bug"],
)
def test_an_archive_failure_never_fails_the_audit(tmp_path: Path, failure: Any) -> None:
    _corpus(tmp_path, GONE)
    with respx.mock() as router:
        _dead(router, GONE)
        api = _api(router)
        api.mock(side_effect=failure) if isinstance(failure, Exception) else api.mock(return_value=failure)
        outcome = pipeline.audit(_suggesting(tmp_path))
        assert outcome.exit_code == 1 and outcome.report.run.status is RunStatus.FINISHED
        (finding,) = outcome.report.findings
        assert finding.archived is None  # simply no suggestion
        lookups = outcome.report.summary.archive
        assert lookups is not None and (lookups.failed, lookups.found) == (1, 0)
        assert lookups.last_error is not None and lookups.last_error.startswith(f"{GONE}: ")
        assert "1 lookups failed" in _reports(tmp_path)["report.md"]
        # A failure is not an answer: the next run asks again.
        api.mock(return_value=_found(), side_effect=None)
        again = pipeline.audit(_suggesting(tmp_path))
        assert api.call_count == 2 and again.report.findings[0].archived is not None


def test_a_cached_answer_is_reused_until_it_is_older_than_the_ttl(tmp_path: Path) -> None:
    _corpus(tmp_path, GONE)
    config = _suggesting(tmp_path)
    with respx.mock() as router:
        _dead(router, GONE)
        api = _api(router).mock(return_value=_found())
        pipeline.audit(config)
        second = pipeline.audit(config)
        assert api.call_count == 1  # the second run asked nothing
        (finding,) = second.report.findings
        assert finding.archived is not None and finding.archived.snapshot_url == SNAPSHOT
        lookups = second.report.summary.archive
        assert lookups is not None and (lookups.cached, lookups.asked, lookups.found) == (1, 0, 1)
        with sqlite3.connect(config.db) as connection:
            connection.execute("update archived_copies set asked_at = '2020-01-01T00:00:00.000+00:00'")
        connection.close()
        pipeline.audit(config)
        assert api.call_count == 2  # older than 30 days: asked again
        pipeline.audit(config.replace(archive=ArchiveConfig(**{**vars(FAST), "ttl": 0.0})))
        assert api.call_count == 3


def test_only_dead_links_are_looked_up_once_per_url(tmp_path: Path) -> None:
    blocked, written_otherwise = "https://news.example/members", "HTTPS://NEWS.EXAMPLE/gone#top"
    amp_cache = "https://news-example.cdn.ampproject.org/c/s/news.example/gone"
    _corpus(tmp_path, GONE, written_otherwise, blocked, amp_cache)
    with respx.mock() as router:
        _dead(router, GONE)
        router.get(blocked).mock(return_value=httpx.Response(403))
        router.get(amp_cache).mock(return_value=httpx.Response(404))
        api = _api(router).mock(return_value=_found())
        outcome = pipeline.audit(_suggesting(tmp_path))
    # Two spellings of one URL; the blocked link is alive to a person; an AMP-cache URL is no article.
    assert api.call_count == 1
    archived = {f.url: f.archived for f in outcome.report.findings if f.code is Code.DEAD_LINK or f.url == blocked}
    assert archived[GONE] == archived[written_otherwise] is not None
    assert archived[blocked] is None and archived[amp_cache] is None


def test_without_suggest_or_offline_nothing_is_asked(tmp_path: Path) -> None:
    _corpus(tmp_path, GONE)
    with respx.mock(assert_all_called=False) as router:
        _dead(router, GONE)
        api = _api(router).mock(return_value=_found())
        plain = pipeline.audit(_config(tmp_path))
        pipeline.lint(_suggesting(tmp_path))
        pipeline.audit(_suggesting(tmp_path).replace(offline=True))
    assert api.call_count == 0
    assert plain.report.findings[0].archived is None and plain.report.summary.archive is None
    assert json.loads(_reports(tmp_path)["report.json"])["summary"]["archive"] is None


# -- politeness -------------------------------------------------------------------------------
def test_requests_are_spaced_by_the_rate_and_one_at_a_time(tmp_path: Path) -> None:
    urls = [f"https://news.example/gone/{i}" for i in range(4)]
    _corpus(tmp_path, *urls)
    times: list[tuple[float, float]] = []
    in_flight = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        started = time.monotonic()
        assert in_flight == 1
        await __import__("asyncio").sleep(0.02)
        in_flight -= 1
        times.append((started, time.monotonic()))
        return NONE

    with respx.mock() as router:
        _dead(router, *urls)
        router.get(API).mock(side_effect=answer)
        pipeline.audit(_suggesting(tmp_path, rate=10.0, concurrency=1))
    starts = sorted(start for start, _ in times)
    assert len(starts) == 4
    assert all(later - earlier >= 0.09 for earlier, later in zip(starts, starts[1:], strict=False))


def test_max_lookups_leaves_the_rest_for_the_next_run(tmp_path: Path) -> None:
    urls = [f"https://news.example/gone/{i}" for i in range(3)]
    _corpus(tmp_path, *urls)
    with respx.mock() as router:
        _dead(router, *urls)
        api = router.get(API).mock(return_value=NONE)
        first = pipeline.audit(_suggesting(tmp_path, max_lookups=2))
        assert api.call_count == 2
        lookups = first.report.summary.archive
        assert lookups is not None and (lookups.asked, lookups.skipped) == (2, 1)
        assert "1 not asked this run" in _reports(tmp_path)["report.md"]
        second = pipeline.audit(_suggesting(tmp_path, max_lookups=2))
    assert api.call_count == 3  # only the one not asked before
    assert all(f.archived is not None for f in second.report.findings)


def test_a_failing_archive_is_given_up_on_and_429_stops_at_once(tmp_path: Path) -> None:
    urls = [f"https://news.example/gone/{i}" for i in range(5)]
    _corpus(tmp_path, *urls)
    with respx.mock() as router:
        _dead(router, *urls)
        api = router.get(API).mock(return_value=httpx.Response(500))
        outcome = pipeline.audit(_suggesting(tmp_path, give_up_after=2))
        assert api.call_count == 2
        lookups = outcome.report.summary.archive
        assert lookups is not None and (lookups.failed, lookups.skipped) == (2, 3)
        api.mock(return_value=httpx.Response(429, headers={"Retry-After": "60"}))
        outcome = pipeline.audit(_suggesting(tmp_path, give_up_after=2))
        assert api.call_count == 3
        lookups = outcome.report.summary.archive
        assert lookups is not None and (lookups.failed, lookups.skipped) == (1, 4)
        assert outcome.exit_code == 1 and all(f.archived is None for f in outcome.report.findings)


def test_a_stop_during_the_lookups_keeps_what_was_answered(tmp_path: Path) -> None:
    urls = [f"https://news.example/gone/{i}" for i in range(3)]
    _corpus(tmp_path, *urls)
    stops = StopRequests()
    config = _suggesting(tmp_path, rate=1000.0)

    def answer(request: httpx.Request) -> httpx.Response:
        stops.request(signal.SIGTERM)  # as if SIGTERM came while the archive was asked
        return _found()

    with respx.mock() as router:
        _dead(router, *urls)
        api = router.get(API).mock(side_effect=answer)
        outcome = pipeline.audit(config, stops=stops)
    assert outcome.interrupted and outcome.exit_code == 143
    assert outcome.report.run.status is RunStatus.INTERRUPTED
    assert api.call_count == 1
    assert len(outcome.report.findings) == 3  # judged before the stop: kept
    assert (tmp_path / "reports" / "report.html").exists()


# -- escaping -----------------------------------------------------------------------------------
HOSTILE = 'https://web.archive.org/web/2020/https://x.example/"><script>alert(1)</script><b>|`*[x](javascript:y)'


def test_a_hostile_snapshot_url_is_inert_in_html_and_markdown(tmp_path: Path) -> None:
    _corpus(tmp_path, GONE)
    with respx.mock() as router:
        _dead(router, GONE)
        _api(router).mock(return_value=_found(snapshot=HOSTILE))
        outcome = pipeline.audit(_suggesting(tmp_path))
    assert outcome.report.findings[0].archived_copy is not None  # an http(s) URL, so kept: made inert below
    reports = _reports(tmp_path)
    html, markdown = reports["report.html"], reports["report.md"]
    assert "<script>alert" not in html and "<b>" not in html
    assert 'href="https://web.archive.org/web/2020/https://x.example/&#34;&gt;&lt;script&gt;' in html
    assert "<script>" not in markdown and "<b>" not in markdown and "](javascript" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "&#124;&#96;&#42;&#91;x&#93;" in markdown
    assert json.loads(reports["report.json"])["findings"][0]["archived_copy"]["url"] == HOSTILE


# -- real sockets: the bounds hold against a server that misbehaves -----------------------------
@pytest.mark.parametrize(("path", "why"), [("/hang/wayback", "no answer within"), ("/big/wayback", "larger than")])
def test_a_hanging_or_endless_archive_is_cut_off(tmp_path: Path, loopback: Any, path: str, why: str) -> None:
    gone = loopback.url_for(f"/status/404/suggest{path}")
    _corpus(tmp_path, gone)
    config = _suggesting(tmp_path, api_url=loopback.url_for(path), timeout=0.5, max_response_bytes=4096)
    started = time.monotonic()
    outcome = pipeline.audit(config)
    assert time.monotonic() - started < 10
    assert outcome.exit_code == 1 and outcome.report.findings[0].archived is None
    lookups = outcome.report.summary.archive
    assert lookups is not None and lookups.failed == 1 and why in (lookups.last_error or "")
    assert loopback.requests.for_prefix(path)[0].query == {"url": gone}


def test_prune_drops_answers_about_urls_no_run_checks_any_more(tmp_path: Path) -> None:
    _corpus(tmp_path, GONE)
    config = _suggesting(tmp_path)
    with respx.mock() as router:
        _dead(router, GONE)
        _api(router).mock(return_value=_found())
        pipeline.audit(config)
    (tmp_path / "corpus" / "0.md").unlink()
    _corpus(tmp_path, "https://news.example/other")
    with respx.mock() as router:
        router.get("https://news.example/other").mock(return_value=httpx.Response(200, html="<title>OK</title>"))
        pipeline.audit(config)
    store = Store(config.db)
    try:
        assert list(store.archived_copies([GONE])) == [GONE]
        store.prune([store.latest_run_id()])
        assert store.archived_copies([GONE]) == {}
    finally:
        store.close()
