"""The stages together: corpus on disk -> store -> reports, with the network mocked or on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from PIL import Image

import auditor.forked
from auditor import pipeline
from auditor.config import DEFAULT_REQUIRED, Config, CrawlConfig, SchemaConfig
from auditor.crawl import Crawler
from auditor.errors import ConfigError
from auditor.network import AcceptCodes
from auditor.report import build_report
from auditor.report.html import host_rows
from auditor.store import Store

CRAWL = CrawlConfig(timeout=2.0, retries=0, rate=1000.0, allow_private=True)


def _config(tmp_path: Path, *paths: Path, **overrides: Any) -> Config:
    return Config(
        paths=paths or (tmp_path / "corpus",),
        db=tmp_path / "audit.sqlite",
        out=tmp_path / "reports",
        crawl=overrides.pop("crawl", CRAWL),
        **overrides,
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


ARTICLE = """---
title: "Big News"
webUrl: https://news.example/a
ampWebUrl: https://news.example/a?amp
cdnAmpWebUrl: https://news-example.cdn.ampproject.org/c/s/news.example/a?amp
provider:
  domain: news.example
images:
  - url: https://img.example/a.png
    width: 100
    height: 50
---
"""


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    return buffer.getvalue()


@respx.mock
def test_audit_end_to_end_with_respx(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE)
    _write(tmp_path / "corpus" / "b.md", ARTICLE.replace("Big News", "Other"))  # same URLs: fetched once
    # respx ignores the query unless a route names it: the ?amp route goes first.
    respx.get("https://news.example/a?amp").mock(
        return_value=httpx.Response(200, html='<head><link rel="canonical" href="https://news.example/a"></head>')
    )
    web = respx.get("https://news.example/a").mock(
        return_value=httpx.Response(200, html='<head><title>Big News</title><link rel="amphtml" href="/a?amp"></head>')
    )
    respx.head("https://news-example.cdn.ampproject.org/c/s/news.example/a?amp").mock(return_value=httpx.Response(404))
    respx.get("https://news-example.cdn.ampproject.org/c/s/news.example/a?amp").mock(return_value=httpx.Response(200))
    respx.get("https://img.example/a.png").mock(
        return_value=httpx.Response(200, content=_png((120, 50)), headers={"Content-Type": "image/png"})
    )

    outcome = pipeline.audit(_config(tmp_path))

    assert web.call_count == 1
    report = outcome.report
    assert report.summary.documents == 2 and report.summary.references == 8
    assert report.summary.urls == 4
    codes = sorted((f.code, f.document.rsplit("/", 1)[-1]) for f in report.findings)
    assert codes == [("image-size-mismatch", "a.md"), ("image-size-mismatch", "b.md"), ("title-mismatch", "b.md")]
    assert outcome.exit_code == 1
    written = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert written["findings"] == json.loads(json.dumps([f.as_dict() for f in report.findings]))
    assert "image-size-mismatch" in (tmp_path / "reports" / "report.md").read_text()
    image = next(u for u in written["urls"] if u["kind"] == "image")
    assert (image["width"], image["height"], image["image_format"]) == (120, 50, "png")


def test_broken_file_next_to_good_ones_does_not_stop_the_audit(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "1.md", "---\ntitle: ok\nwebUrl: https://x.example/\n---\n")
    _write(tmp_path / "corpus" / "2.md", "---\ntitle: [unclosed\n---\n")
    (tmp_path / "corpus" / "3.md").write_bytes(b"---\ntitle: \xff\n---\n")
    _write(tmp_path / "corpus" / "4.md", "---\ntitle: ok too\nwebUrl: ftp://x.example/\n---\n")
    outcome = pipeline.lint(_config(tmp_path))
    findings = outcome.report.findings
    assert outcome.report.summary.documents == 4
    assert sorted((f.document.rsplit("/", 1)[-1], f.code) for f in findings) == [
        ("2.md", "invalid-metadata"),
        ("3.md", "invalid-metadata"),
        ("4.md", "invalid-metadata"),
    ]
    assert outcome.exit_code == 1
    assert not any(f.url == "x.example/" for f in findings)


def test_required_fields_by_type_reach_the_rules(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "v.md", "---\ntitle: v\ntype: video\noriginalUrl: https://v.example/w\n---\n")
    assert pipeline.lint(_config(tmp_path)).report.findings == ()  # a page URL is all a video needs
    strict = SchemaConfig(required={**DEFAULT_REQUIRED, "video": (("title",), ("webUrl",))})
    findings = pipeline.lint(_config(tmp_path, schema=strict)).report.findings
    assert [(f.code, f.field, f.line) for f in findings] == [("invalid-metadata", "webUrl", 2)]


def test_lint_never_touches_the_network(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE)
    with respx.mock(assert_all_called=False) as mock:
        outcome = pipeline.lint(_config(tmp_path))
        assert not mock.calls
    assert outcome.exit_code == 0 and outcome.report.urls == ()


def test_severity_off_and_fail_on(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE.replace("domain: news.example", "domain: other.example"))
    config = _config(tmp_path)
    outcome = pipeline.lint(config)
    assert [f.code for f in outcome.report.findings] == ["provider-domain-mismatch"]
    assert outcome.exit_code == 0  # a warning, and --fail-on error
    assert pipeline.lint(replace(config, fail_on="warning")).exit_code == 1
    silenced = replace(config, severities={**config.severities, "provider-domain-mismatch": "off"})
    assert pipeline.lint(silenced).report.findings == ()


def test_history_gives_diffs_and_flaky_links(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/ok/flaky-history")
    _write(tmp_path / "corpus" / "a.md", f"---\ntitle: OK\nwebUrl: {url}\n---\n")  # the page's title
    config = _config(tmp_path)
    first = pipeline.audit(config)
    assert first.report.findings == ()
    loopback.add_route("/ok/flaky-history", lambda request: (500, {}, b"down"))
    second = pipeline.audit(config)
    assert [f.code for f in second.report.changes.new] == ["dead-link"]
    loopback.remove_route("/ok/flaky-history")
    third = pipeline.audit(config)
    assert [f.code for f in third.report.findings] == ["flaky-link"]
    assert [f.code for f in third.report.changes.fixed] == ["dead-link"]


def _audit_command(corpus: Path, db: Path, out: Path, *, runner: tuple[str, ...] = ("-m", "auditor")) -> list[str]:
    """`auditor audit` as a child process runs it: loopback allowed, generous timeout, no retries."""
    return [sys.executable, *runner, "audit", str(corpus), "--db", str(db), "--out", str(out), "--allow-private",
            "--timeout", "30", "--retries", "0"]  # fmt: skip


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_marks_the_run_interrupted_and_keeps_checks(
    tmp_path: Path, loopback: Any, signum: int, exit_code: int
) -> None:
    fast = [loopback.url_for(f"/ok/sig{signum}-{i}") for i in range(3)]
    hanging = [loopback.url_for(f"/hang/sig{signum}-{i}") for i in range(3)]
    lines = "".join(f"  - title: r\n    webUrl: {url}\n" for url in fast + hanging)
    _write(tmp_path / "corpus" / "a.md", f"---\ntitle: t\nwebUrl: {fast[0]}\nrelated:\n{lines}---\n")
    db = tmp_path / "audit.sqlite"
    process = subprocess.Popen(
        _audit_command(tmp_path / "corpus", db, tmp_path / "reports"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if db.exists() and _count(db, "checks") >= 3:
            break
    # Checks are flushed in batches; by now the fast ones are done in memory at least.
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == exit_code, stderr.decode()
    assert "Traceback" not in stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from runs").fetchone()[0] == "interrupted"
        checked = {row[0] for row in conn.execute("select url from checks")}
    assert set(fast) <= checked and not (set(hanging) & checked)
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["run"]["status"] == "interrupted"


# A real `auditor audit` process with one step made slow, so a signal lands in the phase under test.
# The step prints a marker on stdout first; the test sends the signal once it reads the marker.
_SLOW_STEP_DRIVER = """
import sys, time
import auditor.pipeline, auditor.report, auditor.report.markdown
from auditor.cli import main


def slow_down(phase):
    module, name, nth, seconds = {
        "parsing": (auditor.pipeline, "parse_front_matter", 2, 1.0),
        "judging": (auditor.pipeline, "page_findings", 2, 1.0),
        "reports": (auditor.report.markdown, "render_markdown", 1, 1.0),
        "cleanup": (auditor.report, "write_json", 1, 30.0),
    }[phase]
    real, calls = getattr(module, name), []

    def slow(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            print("IN", phase, flush=True)
            time.sleep(seconds)
        return real(*args, **kwargs)

    setattr(module, name, slow)


if __name__ == "__main__":  # not in the crawl's processes (spawned: they import this file)
    phase, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
    slow_down(phase)
    main()
"""


def _start_slow_audit(tmp_path: Path, phase: str, urls: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    for index, url in enumerate(urls):
        _write(tmp_path / "corpus" / f"{index}.md", f"---\ntitle: OK\nwebUrl: {url}\n---\n")
    driver = _write(tmp_path / "driver.py", _SLOW_STEP_DRIVER)
    db = tmp_path / "audit.sqlite"
    process = subprocess.Popen(
        _audit_command(tmp_path / "corpus", db, tmp_path / "reports", runner=(str(driver), phase)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return process, db


def _wait_for_line(process: subprocess.Popen[bytes], expected: bytes, seconds: float = 15) -> None:
    import select

    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        line = process.stdout.readline() if ready else b""
        if line.strip() == expected:
            return
        if ready and not line:
            break
    process.kill()
    raise AssertionError(f"never saw {expected!r}: {process.communicate()[1].decode()}")


def _no_row_twice(db: Path) -> None:
    """Each document once per run, each content's links once, each URL checked once per run, each finding once."""
    queries = {
        "documents": "select run_id, path from run_documents",
        "links": "select content, field from links",
        "checks": "select run_checks.run_id, url from run_checks join checks on checks.id = run_checks.check_id",
        "findings": "select run_id, code, document, field, url, message from findings",
    }
    with sqlite3.connect(db) as conn:
        for table, query in queries.items():
            rows, distinct = conn.execute(
                f"select count(*), (select count(*) from (select distinct * from ({query}))) from ({query})"
            ).fetchone()
            assert rows == distinct, table


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("phase", ["parsing", "judging", "reports"])
def test_a_signal_in_any_phase_stops_cleanly_with_reports(
    tmp_path: Path, loopback: Any, phase: str, signum: int, exit_code: int
) -> None:
    urls = [loopback.url_for(f"/ok/{phase}-{signum}-{index}") for index in range(3)]
    process, db = _start_slow_audit(tmp_path, phase, urls)
    _wait_for_line(process, f"IN {phase}".encode())
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == exit_code, stderr.decode()
    assert "Traceback" not in stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from runs").fetchone()[0] == "interrupted"
        documents = conn.execute("select count(*) from run_documents").fetchone()[0]
        # The host probe (soft 404s) is a check too, but not one of the corpus's URLs.
        checked = {row[0] for row in conn.execute("select url from checks where kind != 'probe'")}
        judged = {row[0] for row in conn.execute("select distinct document from findings")}
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["run"]["status"] == "interrupted"
    assert (tmp_path / "reports" / "report.md").exists() and (tmp_path / "reports" / "junit.xml").exists()
    _no_row_twice(db)
    if phase == "parsing":  # the document being parsed is kept, then nothing more
        assert (documents, checked) == (2, set())
    else:
        assert (documents, checked) == (3, set(urls))
    if phase == "judging":  # every page says "OK" (no title finding); the judging stopped after document 2
        assert judged == set()
        assert "interrupted" in stderr.decode()


def test_a_second_signal_during_the_cleanup_ends_the_process_at_once(tmp_path: Path, loopback: Any) -> None:
    process, db = _start_slow_audit(tmp_path, "cleanup", [loopback.url_for("/ok/cleanup"), loopback.url_for("/hang/c")])
    deadline = time.monotonic() + 15  # the fast URL is checked; the hanging one keeps the crawl going
    while loopback.hits("/ok/cleanup") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _wait_for_line(process, b"IN cleanup")  # writing reports of the interrupted run, slowly
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - started < 2
    assert process.returncode == 143, stderr.decode()
    assert "SIGTERM again: stopped at once" in stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select status from runs").fetchone()[0] == "interrupted"
    _no_row_twice(db)


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _audit_subprocess(tmp_path: Path, corpus: Path, *extra: str) -> tuple[int, float, int]:
    """`auditor audit` in a child process: (exit code, wall seconds, peak RSS in bytes).

    The child's address space is capped, so a bound that stops working fails
    the test instead of taking the machine down.
    """

    def cap_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    command = [*_audit_command(corpus, tmp_path / f"{corpus.name}.sqlite", tmp_path / f"{corpus.name}-reports"), *extra]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=cap_memory)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.monotonic() - started, usage.ru_maxrss * 1024


def test_billion_laughs_next_to_a_good_file_costs_under_a_second_and_50_mb(
    tmp_path: Path, loopback: Any, billion_laughs: str
) -> None:
    good = f"---\ntitle: OK\nwebUrl: {loopback.url_for('/ok/laughs-good')}\n---\n"
    _write(tmp_path / "plain" / "good.md", good)
    _write(tmp_path / "hostile" / "good.md", good)
    _write(tmp_path / "hostile" / "laughs.md", billion_laughs)
    plain_code, plain_seconds, plain_rss = _audit_subprocess(tmp_path, tmp_path / "plain")
    code, seconds, rss = _audit_subprocess(tmp_path, tmp_path / "hostile")
    assert (plain_code, code) == (0, 1)
    assert seconds - plain_seconds < 1.0
    assert rss - plain_rss < 50 * 1024 * 1024
    report = json.loads((tmp_path / "hostile-reports" / "report.json").read_text())
    assert [(f["document"].rsplit("/", 1)[-1], f["code"], f["field"]) for f in report["findings"]] == [
        ("laughs.md", "invalid-metadata", "f")
    ]
    assert [u["url"] for u in report["urls"] if u["ok"]] == [loopback.url_for("/ok/laughs-good")]


def test_every_hostile_case_gets_its_verdict(tmp_path: Path, loopback: Any, refused_url: str) -> None:
    cases = {
        "/status/404/v": ("dead-link", "http 404"),
        "/status/410/v": ("dead-link", "http 410"),
        "/status/500/v": ("dead-link", "http 500"),
        "/flaky/503/v": None,
        "/retry-after/1/v": None,
        "/always-429/v": ("link-blocked", "http 429"),
        "/status/403/v": ("link-blocked", "http 403"),
        "/redirect/301/v": ("redirect", "ok"),
        "/redirect/302/v": None,
        "/loop/a-v": ("dead-link", "redirect-loop"),
        "/hang/v": ("dead-link", "timeout"),
        "/drip/v": ("dead-link", "timeout"),
        "/reset/v": ("dead-link", "reset"),
        "/gzip-bomb/v": None,
        "/redirect-to?url=javascript%3Aalert(1)": ("dead-link", "invalid-redirect"),
    }
    urls = {path: loopback.url_for(path) for path in cases}
    urls["refused"] = refused_url
    cases["refused"] = ("dead-link", "refused")
    related = "".join(f"  - title: OK\n    webUrl: {url}\n" for url in urls.values())
    _write(
        tmp_path / "corpus" / "a.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for('/ok/v')}\nrelated:\n{related}---\n"
    )
    # All on one host: its 429/503 answers hold it back by slow_down_delay, doubling; short here.
    config = _config(tmp_path, crawl=replace(CRAWL, timeout=1.0, retries=1, backoff_base=0.05, slow_down_delay=0.05))
    started = time.monotonic()
    outcome = pipeline.audit(config)
    assert time.monotonic() - started < 20
    verdicts = {f.url: (f.code, f.reason) for f in outcome.report.findings}
    for path, url in urls.items():
        assert verdicts.get(url) == cases[path], path
    assert len(outcome.report.findings) == sum(1 for v in cases.values() if v)


def test_an_unexpected_error_marks_the_run_failed_and_keeps_the_ingest(tmp_path: Path) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE)

    class BrokenCrawler(Crawler):
        async def __aenter__(self) -> Crawler:
            raise RuntimeError("crawler exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        pipeline.audit(_config(tmp_path), crawler=BrokenCrawler(CRAWL))
    with sqlite3.connect(tmp_path / "audit.sqlite") as conn:
        assert conn.execute("select status, documents, [references] from runs").fetchone() == ("failed", 1, 4)


# -- scheduled audits: reuse, revalidation, history, flaky, dead-after, resume, prune, growth ------------
def _page_doc(*urls: str, title: str = "OK") -> str:
    related = "".join(f"  - title: {title}\n    webUrl: {url}\n" for url in urls[1:])
    return f"---\ntitle: {title}\nwebUrl: {urls[0]}\n" + (f"related:\n{related}" if related else "") + "---\n"


def test_max_age_reuses_fine_urls_and_checks_failures_again(tmp_path: Path, loopback: Any) -> None:
    fine, gone = loopback.url_for("/ok/reuse-fine"), loopback.url_for("/status/404/reuse-gone")
    _write(tmp_path / "corpus" / "a.md", _page_doc(fine, gone))
    config = _config(tmp_path, max_age=86_400.0)
    first = pipeline.audit(config)
    fine_hits, gone_hits = loopback.hits("/ok/reuse-fine"), loopback.hits("/status/404/reuse-gone")
    second = pipeline.audit(config)
    assert loopback.hits("/ok/reuse-fine") == fine_hits  # no request for a URL that was fine
    assert loopback.hits("/status/404/reuse-gone") == gone_hits + 1  # a failure is always checked again
    summary = second.report.summary
    assert (summary.fetched, summary.revalidated, summary.reused, summary.checked) == (1, 0, 1, 2)
    (dead,) = [f for f in second.report.findings if f.code == "dead-link"]
    assert (dead.failing_runs, dead.first_seen) == (2, first.report.run.started_at)
    assert {u.url for u in second.report.urls} == {fine, gone}


def test_a_result_ok_by_an_accepted_status_is_reused_only_while_it_is_accepted(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/status/403/reuse-accepted")
    _write(tmp_path / "corpus" / "a.md", _page_doc(url))
    accepting = _config(tmp_path, max_age=86_400.0, crawl=replace(CRAWL, accept=AcceptCodes.parse("403")))
    first = pipeline.audit(accepting)
    assert first.report.findings == () and [(u.status, u.ok) for u in first.report.urls] == [(403, True)]
    hits = loopback.hits("/status/403/reuse-accepted")
    assert pipeline.audit(accepting).report.summary.reused == 1
    assert loopback.hits("/status/403/reuse-accepted") == hits
    # The config no longer accepts 403: the stored OK is not this config's verdict, so it is asked again.
    strict = pipeline.audit(_config(tmp_path, max_age=86_400.0))
    assert loopback.hits("/status/403/reuse-accepted") == hits + 1
    assert [f.code for f in strict.report.findings] == ["link-blocked"]


def test_a_url_cited_as_another_kind_is_checked_again(tmp_path: Path, loopback: Any) -> None:
    url = loopback.add_file("kind-change.png", _png((4, 3)), "image/png")
    _write(tmp_path / "corpus" / "a.md", _page_doc(url))
    config = _config(tmp_path, max_age=86_400.0)
    pipeline.audit(config)
    before = loopback.hits("/image/kind-change.png")
    _write(tmp_path / "corpus" / "a.md", f"---\ntitle: OK\nimages:\n  - url: {url}\n    width: 4\n    height: 3\n---\n")
    outcome = pipeline.audit(config)
    assert loopback.hits("/image/kind-change.png") == before + 1
    assert (outcome.report.summary.reused, outcome.report.summary.fetched) == (0, 1)
    assert [u.image_format for u in outcome.report.urls] == ["png"]


def test_an_unchanged_resource_is_revalidated_with_a_304(tmp_path: Path, loopback: Any) -> None:
    loopback.add_file("revalidate.png", _png((5, 7)), "image/png")
    url = loopback.url_for("/conditional/revalidate.png")
    page = loopback.url_for("/ok/revalidate-page")  # no validators: fetched again
    image = f"images:\n  - url: {url}\n    width: 5\n    height: 7\n"
    _write(tmp_path / "corpus" / "a.md", f"---\ntitle: OK\nwebUrl: {page}\n{image}---\n")
    pipeline.audit(_config(tmp_path))
    outcome = pipeline.audit(_config(tmp_path))  # no --max-age: asked again, conditionally
    assert (outcome.report.summary.revalidated, outcome.report.summary.fetched) == (1, 1)
    assert outcome.report.findings == ()
    assert [(u.url, u.width, u.height) for u in outcome.report.urls if u.kind == "image"] == [(url, 5, 7)]


def _toggling_route(loopback: Any, path: str, statuses: list[int]) -> str:
    """A page that answers each status of `statuses` in turn, one per request."""
    answers = iter(statuses)

    def handler(request: Any) -> tuple[int, dict[str, str], str]:
        return next(answers), {}, "<html><head><title>OK</title></head></html>"

    return str(loopback.add_route(path, handler))


def test_a_flip_flopping_url_is_flaky_not_dead(tmp_path: Path, loopback: Any) -> None:
    url = _toggling_route(loopback, "/toggle/flaky", [200, 404, 200, 404])
    _write(tmp_path / "corpus" / "a.md", _page_doc(url))
    codes = [[f.code for f in pipeline.audit(_config(tmp_path)).report.findings] for _ in range(4)]
    # ✓, ✓✗ (one flip: dead), ✓✗✓ (two flips: flaky), ✓✗✓✗ (flaky, not dead)
    assert codes == [[], ["dead-link"], ["flaky-link"], ["flaky-link"]]


def test_dead_after_makes_a_dead_link_an_error_only_after_n_failing_runs(tmp_path: Path, loopback: Any) -> None:
    _write(tmp_path / "corpus" / "a.md", _page_doc(loopback.url_for("/status/404/dead-after")))
    config = _config(tmp_path, dead_after=2)
    first, second = pipeline.audit(config), pipeline.audit(config)
    (early,), (late,) = first.report.findings, second.report.findings
    assert (early.code, early.severity, early.failing_runs) == ("dead-link", "warning", 1)
    assert "an error from 2" in early.message and first.exit_code == 0
    assert (late.severity, late.failing_runs, late.first_seen) == ("error", 2, first.report.run.started_at)
    assert second.exit_code == 1


def test_a_killed_audit_resumes_checking_only_what_it_had_not(tmp_path: Path, loopback: Any) -> None:
    fast = [loopback.url_for(f"/ok/resume-{index}") for index in range(3)]
    slow_calls: list[int] = []

    async def slow_once(request: Any) -> tuple[int, dict[str, str], str]:
        slow_calls.append(1)
        if len(slow_calls) == 1:
            await asyncio.sleep(30)  # the first audit is killed while it waits here
        return 200, {}, "<html><head><title>OK</title></head></html>"

    slow = loopback.add_route("/resume/slow", slow_once)
    _write(tmp_path / "corpus" / "a.md", _page_doc(*fast, slow))
    db = tmp_path / "audit.sqlite"
    process = subprocess.Popen(_audit_command(tmp_path / "corpus", db, tmp_path / "reports"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _count(db, "checks") < 3:
        time.sleep(0.2)
    process.kill()  # SIGKILL: no cleanup at all
    process.wait(timeout=5)
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select status from runs").fetchone()[0] == "running"
    hits = [loopback.hits(urllib.parse.urlsplit(url).path) for url in fast]
    outcome = pipeline.audit(_config(tmp_path, resume=True))
    assert outcome.exit_code == 0 and outcome.report.run.id == 1
    assert [loopback.hits(urllib.parse.urlsplit(url).path) for url in fast] == hits  # not asked again
    assert len(slow_calls) == 2 and {u.url for u in outcome.report.urls} == {*fast, slow}
    with sqlite3.connect(db) as conn:
        assert conn.execute("select id, status from runs").fetchall() == [(1, "finished")]


def test_resume_without_an_unfinished_run_is_a_usage_error(tmp_path: Path, loopback: Any) -> None:
    _write(tmp_path / "corpus" / "a.md", _page_doc(loopback.url_for("/ok/resume-none")))
    pipeline.audit(_config(tmp_path))
    with pytest.raises(ConfigError, match="nothing to resume"):
        pipeline.audit(_config(tmp_path, resume=True))


def test_prune_keeps_what_the_kept_runs_reference(tmp_path: Path, loopback: Any) -> None:
    urls = [loopback.url_for(f"/ok/prune-{index}") for index in range(3)]
    for url in urls:  # a document that changes every run
        _write(tmp_path / "corpus" / "a.md", _page_doc(url))
        last = pipeline.audit(_config(tmp_path))
    store = Store(tmp_path / "audit.sqlite")
    try:
        assert store.prune([last.run_id]) == 2
        names = ("runs", "contents", "run_documents", "links", "checks", "run_checks", "host_probes")
        tables = {name: store.db.execute(f"select count(*) from {name}").fetchone()[0] for name in names}
        # A finished run keeps no row per URL: its check is the newest up to its mark. Beside it, the
        # kept run's host probe (a check of its own) stays, and the dropped runs' probes go.
        assert tables == {
            "runs": 1, "contents": 1, "run_documents": 1, "links": 1, "checks": 2, "run_checks": 0, "host_probes": 1
        }  # fmt: skip
        report = build_report(store, last.run_id)
    finally:
        store.close()
    assert (report.findings, report.urls, tuple(report.references)) == (
        last.report.findings, last.report.urls, tuple(last.report.references))  # fmt: skip


def test_the_store_grows_with_change_not_with_runs(tmp_path: Path, loopback: Any) -> None:
    urls = [loopback.url_for(f"/ok/growth-{index}") for index in range(40)]
    for index in range(200):
        _write(tmp_path / "corpus" / f"{index}.md", _page_doc(urls[index % 40], urls[(index + 1) % 40]))
    config = _config(tmp_path, max_age=86_400.0, formats=("json",))
    pipeline.audit(config)
    one_run = (tmp_path / "audit.sqlite").stat().st_size
    for _ in range(9):
        outcome = pipeline.audit(config)
    assert outcome.report.summary.reused == 40
    assert (tmp_path / "audit.sqlite").stat().st_size <= 1.5 * one_run
    store = Store(tmp_path / "audit.sqlite")
    try:  # the last run shares the first run's documents: pruning the first must not lose them
        store.prune([outcome.run_id])
        report = build_report(store, outcome.run_id)
    finally:
        store.close()
    assert (len(report.references), len(report.urls)) == (400, 40)


# -- include / exclude / exclude_paths / remap ---------------------------------
def test_an_excluded_url_is_recorded_counted_and_never_fetched(tmp_path: Path, loopback: Any) -> None:
    kept, skipped = loopback.url_for("/ok/excl-kept"), loopback.url_for("/status/404/excl-skipped")
    _write(tmp_path / "corpus" / "a.md", _page_doc(kept, skipped))
    _write(tmp_path / "corpus" / "b.md", _page_doc(skipped))
    config = _config(tmp_path, exclude=("excl-skipped",))
    outcome = pipeline.audit(config)
    assert loopback.hits("/status/404/excl-skipped") == 0 and loopback.hits("/ok/excl-kept") == 1
    report = outcome.report
    assert report.findings == () and outcome.exit_code == 0  # a 404 nobody asked for is no dead link
    summary = report.summary
    assert (summary.urls, summary.checked, summary.excluded, summary.by_reason) == (2, 1, 1, {})
    (excluded,) = [u for u in report.urls if u.url == skipped]
    assert (excluded.ok, excluded.status, excluded.error, excluded.attempts) == (False, None, "excluded", 0)
    assert excluded.message == "matches exclude pattern 'excl-skipped'"
    written = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert written["summary"]["excluded"] == 1
    assert "excluded by --exclude/--include (not fetched): 1" in (tmp_path / "reports" / "report.md").read_text()
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert junit.count("<skipped message=\"excluded, not fetched: matches exclude pattern 'excl-skipped'\"") == 2
    html = (tmp_path / "reports" / "report.html").read_text()
    assert '<span id="excluded-count">1</span> excluded, not fetched' in html
    (host,) = host_rows(report)
    assert (host.urls, host.checked, host.excluded, host.ok, host.dead) == (2, 1, 1, 1, 0)

    # Excluded again for the same reason: the run points at the record, the store gains no row.
    again = pipeline.audit(config)
    assert loopback.hits("/status/404/excl-skipped") == 0
    assert [u.error for u in again.report.urls if u.url == skipped] == ["excluded"]
    with closing(sqlite3.connect(tmp_path / "audit.sqlite")) as db:
        assert db.execute("select count(*) from checks where url = ?", [skipped]).fetchone() == (1,)
    # Once no longer excluded it is fetched, and the run that excluded it says nothing of its health.
    third = pipeline.audit(_config(tmp_path))
    assert loopback.hits("/status/404/excl-skipped") == 1
    assert [(f.code, f.failing_runs) for f in third.report.findings] == [("dead-link", 1), ("dead-link", 1)]


def test_an_include_wins_over_the_excludes(tmp_path: Path, loopback: Any) -> None:
    wanted, other = loopback.url_for("/ok/incl-wanted"), loopback.url_for("/ok/incl-other")
    _write(tmp_path / "corpus" / "a.md", _page_doc(wanted, other))
    outcome = pipeline.audit(_config(tmp_path, exclude=(r"127\.0\.0\.1",), include=("incl-wanted$",)))
    assert (loopback.hits("/ok/incl-wanted"), loopback.hits("/ok/incl-other")) == (1, 0)
    assert {u.url: u.error for u in outcome.report.urls} == {wanted: None, other: "excluded"}


def test_exclude_paths_skip_documents(tmp_path: Path, loopback: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "corpus" / "a.md", _page_doc(loopback.url_for("/ok/paths-kept")))
    _write(tmp_path / "corpus" / "drafts" / "b.md", _page_doc(loopback.url_for("/ok/paths-draft")))
    _write(tmp_path / "corpus" / "c.old.md", "---\ntitle: [unclosed\n---\n")  # never read, so no finding
    outcome = pipeline.audit(_config(tmp_path, exclude_paths=("corpus/drafts/", "*.old.md")))
    assert loopback.hits("/ok/paths-draft") == 0 and loopback.hits("/ok/paths-kept") == 1
    assert outcome.report.summary.documents == 1 and outcome.report.findings == ()
    assert {r.document for r in outcome.report.references} == {"corpus/a.md"}


def test_a_remapped_url_is_fetched_at_the_mirror_and_reported_under_both(tmp_path: Path, loopback: Any) -> None:
    mirror = loopback.url_for("/")
    _write(
        tmp_path / "corpus" / "a.md",
        _page_doc("https://news.example/status/404/remap-gone", "https://news.example/ok/remap-fine"),
    )
    config = _config(tmp_path, remap=(rf"^https://news\.example/ {mirror}",))
    outcome = pipeline.audit(config)
    assert (loopback.hits("/status/404/remap-gone"), loopback.hits("/ok/remap-fine")) == (1, 1)
    report = outcome.report
    gone_at = loopback.url_for("/status/404/remap-gone")
    assert {(u.url, u.fetched_url, u.status) for u in report.urls} == {
        ("https://news.example/status/404/remap-gone", gone_at, 404),
        ("https://news.example/ok/remap-fine", loopback.url_for("/ok/remap-fine"), 200),
    }
    assert report.summary.remapped == 2
    (dead,) = report.findings
    assert (dead.code, dead.url, dead.fetched_url) == (
        "dead-link",
        "https://news.example/status/404/remap-gone",
        gone_at,
    )
    assert dead.message.endswith(f"(fetched as {gone_at})")
    reports = tmp_path / "reports"
    written = json.loads((reports / "report.json").read_text())
    assert written["findings"][0]["url"] == dead.url and written["findings"][0]["fetched_url"] == gone_at
    markdown = (reports / "report.md").read_text()
    assert f"| https://news.example/status/404/remap-gone (fetched as {gone_at}) |" in markdown
    assert f"fetched as: {gone_at}" in (reports / "junit.xml").read_text()
    assert f'<div class="fetched">fetched as <a href="{gone_at}"' in (reports / "report.html").read_text()
    with closing(sqlite3.connect(tmp_path / "audit.sqlite")) as db:
        rows = db.execute("select url, fetched_url from url_status order by url").fetchall()
    assert rows[0] == ("https://news.example/ok/remap-fine", loopback.url_for("/ok/remap-fine"))


def test_a_remapped_url_still_meets_the_private_address_guard(tmp_path: Path, loopback: Any) -> None:
    _write(tmp_path / "corpus" / "a.md", _page_doc("https://news.example/ok/remap-private"))
    strict = replace(CRAWL, allow_private=False)
    outcome = pipeline.audit(
        _config(tmp_path, crawl=strict, remap=(rf"^https://news\.example/ {loopback.url_for('/')}",))
    )
    assert loopback.hits("/ok/remap-private") == 0
    assert [(f.code, f.url) for f in outcome.report.findings] == [
        ("private-address", "https://news.example/ok/remap-private")
    ]


def test_an_answer_from_another_address_is_not_reused(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/ok/remap-reuse")
    _write(tmp_path / "corpus" / "a.md", _page_doc(url))
    pipeline.audit(_config(tmp_path, max_age=86_400.0))
    mirrored = pipeline.audit(_config(tmp_path, max_age=86_400.0, remap=("/ok/remap-reuse /ok/remap-mirror",)))
    assert loopback.hits("/ok/remap-mirror") == 1  # the fine answer of the real URL says nothing of the mirror
    assert mirrored.report.summary.reused == 0
    again = pipeline.audit(_config(tmp_path, max_age=86_400.0, remap=("/ok/remap-reuse /ok/remap-mirror",)))
    assert loopback.hits("/ok/remap-mirror") == 1 and again.report.summary.reused == 1
    assert [u.fetched_url for u in again.report.urls] == [loopback.url_for("/ok/remap-mirror")]


# -- publication dates and og:image, through the crawler and the store --------------------
def test_a_page_s_json_ld_date_and_og_image_size_reach_the_findings(tmp_path: Path, loopback: Any) -> None:
    image = loopback.add_file("og-lead.png", _png((40, 20)), "image/png")
    head = (
        "<html><head><title>Dated</title>"
        f'<meta property="og:image" content="{image}"><meta property="og:image:width" content="1200">'
        '<meta property="og:image:height" content="630"><script type="application/ld+json">'
        '{"@context": "https://schema.org", "@graph": [{"@type": "WebPage", "datePublished": "2020-09-22"},'
        ' {"@type": "NewsArticle", "datePublished": "2020-10-01T08:00:00+02:00"}]}</script></head><body>'
    )
    page = loopback.add_route("/page/dated", lambda request: (200, {"Content-Type": "text/html"}, head.encode()))
    undated = loopback.add_route(
        "/page/undated", lambda request: (200, {"Content-Type": "text/html"}, b"<head><title>Undated</title></head>")
    )
    document = (
        f"---\ntitle: Dated\nwebUrl: {page}\npublishedDateTime: 2020-09-22T22:36:00Z\n"
        f"images:\n  - url: {image}\n    width: 40\n    height: 20\n"
        f"related:\n  - title: Undated\n    webUrl: {undated}\n    publishedDateTime: 2001-01-01T00:00:00Z\n---\n"
    )
    _write(tmp_path / "corpus" / "a.md", document)
    outcome = pipeline.audit(_config(tmp_path))
    by_code = {f.code: f for f in outcome.report.findings}
    assert set(by_code) == {"date-mismatch", "og-image-size-mismatch"}  # the undated page: no finding, no error
    date = by_code["date-mismatch"]
    assert (date.field, date.expected) == ("publishedDateTime", "2020-10-01T08:00:00+02:00")
    assert date.message.startswith("the page's JSON-LD datePublished is 2020-10-01T08:00:00+02:00")
    og = by_code["og-image-size-mismatch"]
    assert (og.field, og.severity, og.expected, og.actual) == ("images[0].url", "warning", "40x20", "1200x630")
    (head_of_page,) = [u.head for u in outcome.report.urls if u.url == page]
    assert head_of_page is not None and head_of_page["published_source"] == "json-ld"


# -- the crawl in several processes ----------------------------------------------------
def test_an_audit_in_processes_judges_as_one_process_does(tmp_path: Path, loopback: Any) -> None:
    urls = [loopback.url_for(f"/ok/procs-{n}") for n in range(4)] + [loopback.url_for("/status/404/procs-gone")]
    _write(tmp_path / "corpus" / "a.md", _page_doc(*urls))
    spread = pipeline.audit(_config(tmp_path, crawl=replace(CRAWL, processes=2))).report
    assert [(f.code, f.url) for f in spread.findings] == [("dead-link", urls[-1])]
    assert sorted((u.url, u.status) for u in spread.urls) == sorted(zip(urls, [200] * 4 + [404], strict=True))
    assert all(loopback.hits(u.split(str(loopback.port), 1)[1]) == 1 for u in urls)


def test_auto_spreads_a_large_crawl_over_the_cores_and_keeps_a_small_one_here(
    tmp_path: Path, loopback: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.crawl import processes

    urls = [loopback.url_for(f"/ok/auto-{n}") for n in range(3)] + [loopback.url_for("/status/404/auto-gone")]
    _write(tmp_path / "corpus" / "a.md", _page_doc(*urls))
    started: list[int] = []
    crawlers: list[processes.ProcessCrawler] = []
    in_a_loop: list[bool] = []  # whether an event loop ran in this process when its crawl processes forked
    real_start = processes.ProcessCrawler.start

    def start(crawler: processes.ProcessCrawler) -> None:
        if all(known is not crawler for known in crawlers):  # start() again is a no-op
            crawlers.append(crawler)
            started.append(crawler.count)
            in_a_loop.append(_loop_running())
        real_start(crawler)

    monkeypatch.setattr(processes.ProcessCrawler, "start", start)
    monkeypatch.setattr(processes, "usable_cores", lambda: 2)
    auto = replace(CRAWL, processes=None)
    small = pipeline.audit(_config(tmp_path, crawl=auto)).report
    assert started == []  # four URLs: one process
    monkeypatch.setattr(processes, "AUTO_PROCESSES_FROM", 4)
    large = pipeline.audit(_config(tmp_path, crawl=auto)).report
    assert started == [2] and in_a_loop == [False]
    assert [(f.code, f.url) for f in large.findings] == [(f.code, f.url) for f in small.findings]
    assert [(f.code, f.url) for f in large.findings] == [("dead-link", urls[-1])]
    # Scheduled again within --max-age: the three answers that were fine are reused, one URL is fetched,
    # and the progress line counts to that one, not to the four the corpus cites.
    seen: list[tuple[int, int]] = []
    again = pipeline.audit(
        _config(tmp_path, crawl=auto, max_age=3600.0), progress=lambda _, done, total: seen.append((done, total))
    ).report
    assert started == [2] and again.summary.reused == 3 and again.summary.fetched == 1
    assert seen == [(1, 1)]
    assert [(f.code, f.url) for f in again.findings] == [("dead-link", urls[-1])]


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_a_signal_stops_the_crawl_processes_too(tmp_path: Path, loopback: Any) -> None:
    hanging = [loopback.url_for(f"/hang/procs-sig-{n}") for n in range(3)]
    _write(tmp_path / "corpus" / "a.md", _page_doc(loopback.url_for("/ok/procs-sig"), *hanging))
    db = tmp_path / "audit.sqlite"
    command = [*_audit_command(tmp_path / "corpus", db, tmp_path / "reports"), "--processes", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while loopback.hits("/ok/procs-sig") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    children = _children(process.pid)
    assert len(children) >= 2  # the crawl's processes
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 130, stderr.decode()
    assert "Traceback" not in stderr.decode()
    deadline = time.monotonic() + 5  # multiprocessing's resource tracker ends once it sees its parent gone
    while [pid for pid in children if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from runs").fetchone()[0] == "interrupted"


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


@respx.mock
def test_judging_split_over_forked_children_finds_what_one_process_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five documents in three parts (a part per core, patched): the same findings in the same order,
    the later parts judged in children (the parent never runs them), a child's failure raised."""
    for n in range(5):
        article = ARTICLE.replace("Big News", f"Story {n}").replace("/a", f"/a{n}")
        _write(tmp_path / "corpus" / f"d{n}.md", article.replace("width: 100", f"width: {100 + n % 2 * 20}"))
    respx.route(method="HEAD").mock(return_value=httpx.Response(200))
    respx.get(url__regex=r"\.png$").mock(
        return_value=httpx.Response(200, content=_png((120, 50)), headers={"Content-Type": "image/png"})
    )
    # Only the articles and their AMP pages: the host probe's random path may start with "a" and a digit too.
    respx.get(url__regex=r"/a\d(\?amp)?$").mock(
        return_value=httpx.Response(200, html="<head><title>Story 1</title></head>")
    )
    respx.get(url__regex=r"auditor-probe$").mock(return_value=httpx.Response(404))
    config = _config(tmp_path)
    one = pipeline.audit(config).report.findings
    assert len(one) > 5  # image sizes and titles, in every document but one

    monkeypatch.setattr(pipeline, "PARALLEL_JUDGING", 2)
    monkeypatch.setattr(auditor.forked, "single_threaded", lambda: True)  # the test runner may have threads
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    store = Store(config.db)
    assert pipeline._judging_parts(store, 1) == [range(0, 2), range(2, 4), range(4, 5)]
    store.close()
    judged_here, real_judged = [], pipeline._judged

    def judged(store: Store, run_id: int, *args: Any) -> Any:
        judged_here.append(args[3])  # in a child: the parent never sees it
        return real_judged(store, run_id, *args)

    monkeypatch.setattr(pipeline, "_judged", judged)
    spread = pipeline.audit(config).report.findings
    assert judged_here == [range(0, 2)]
    assert [(f.code, f.document, f.field, f.message) for f in spread] == [
        (f.code, f.document, f.field, f.message) for f in one
    ]

    def failing(store: Store, run_id: int, *args: Any) -> Any:
        if args[3].start > 0:
            raise ValueError("a rule broke")
        return real_judged(store, run_id, *args)

    monkeypatch.setattr(pipeline, "_judged", failing)
    with pytest.raises(RuntimeError, match=r"judging documents 3-4: ValueError\('a rule broke'\)"):
        pipeline.audit(config)


def test_crawl_processes_started_while_parsing_end_with_a_stop_before_the_crawl(tmp_path: Path, loopback: Any) -> None:
    for index in range(3):
        _write(tmp_path / "corpus" / f"{index}.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for('/ok/early')}\n---\n")
    driver = _write(tmp_path / "driver.py", _SLOW_STEP_DRIVER)
    command = _audit_command(
        tmp_path / "corpus", tmp_path / "audit.sqlite", tmp_path / "reports", runner=(str(driver), "parsing")
    )
    process = subprocess.Popen([*command, "--processes", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_line(process, b"IN parsing")
    started = _children(process.pid)
    assert len(started) >= 2  # the crawl's processes, before any URL is fetched
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 130 and "Traceback" not in stderr.decode(), stderr.decode()
    deadline = time.monotonic() + 5
    while [pid for pid in started if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if Path(f"/proc/{pid}").exists()] == []
    assert loopback.hits("/ok/early") == 0


# -- parses kept between runs ----------------------------------------------------------------
def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = pipeline.parse_front_matter

    def counting(name: str, raw: bytes, *args: Any) -> Any:
        parsed.append(name.rsplit("/", 1)[-1])
        return real(name, raw, *args)

    monkeypatch.setattr(pipeline, "parse_front_matter", counting)
    return parsed


def _outcome_of(outcome: pipeline.Outcome) -> list[tuple[str, str, str, int | None, str]]:
    return [(f.code, f.document, f.field, f.line, f.message) for f in outcome.report.findings]


def test_an_unchanged_file_is_not_parsed_again_and_keeps_its_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE)
    _write(tmp_path / "corpus" / "b.md", ARTICLE.replace("domain: news.example", "domain: other.example"))
    _write(tmp_path / "corpus" / "c.md", "---\ntitle: [unclosed\n---\n")
    parsed = _counting_parses(monkeypatch)
    config = _config(tmp_path)
    first = pipeline.lint(config)
    assert sorted(parsed) == ["a.md", "b.md", "c.md"]
    assert {f.document.rsplit("/", 1)[-1] for f in first.report.findings} == {"b.md", "c.md"}

    parsed.clear()
    second = pipeline.lint(config)
    assert parsed == []
    assert _outcome_of(second) == _outcome_of(first)
    assert second.report.summary.references == first.report.summary.references

    _write(tmp_path / "corpus" / "a.md", ARTICLE.replace("Big News", "Bigger News"))
    assert _outcome_of(pipeline.lint(config)) == _outcome_of(first) and parsed == ["a.md"]
    parsed.clear()
    stricter = replace(config, schema=SchemaConfig(required={"default": (("title",), ("author",))}))
    findings = pipeline.lint(stricter).report.findings
    assert sorted(parsed) == ["a.md", "b.md", "c.md"]  # what the parse depends on changed
    assert {f.field for f in findings if f.document.endswith("a.md")} == {"author"}


def test_a_parse_whose_content_was_pruned_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "corpus" / "a.md", ARTICLE)
    parsed = _counting_parses(monkeypatch)
    config = _config(tmp_path)
    first = pipeline.lint(config)
    _write(tmp_path / "corpus" / "a.md", ARTICLE.replace("Big News", "Other"))
    second = pipeline.lint(config)
    with closing(Store(config.db)) as store:
        store.prune([second.run_id])  # the first content is gone, and its kept parse with it
        assert store.db.execute("select count(*) from parsed_files").fetchone()[0] == 1
    _write(tmp_path / "corpus" / "a.md", ARTICLE)
    parsed.clear()
    third = pipeline.lint(config)
    assert parsed == ["a.md"] and _outcome_of(third) == _outcome_of(first)


def _judged_documents(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The documents judging reads from now on (page_findings runs for every document judged)."""
    judged: list[str] = []
    real = pipeline.page_findings

    def counting(document: Any, checks: Any) -> Any:
        judged.append(Path(document.path).name)
        return real(document, checks)

    monkeypatch.setattr(pipeline, "page_findings", counting)
    return judged


def _stories(tmp_path: Path, loopback: Any, names: str, *, gone: str = "") -> None:
    """A document per name whose page's <title> is another story's (a title-mismatch each)."""
    for name in names:
        page = loopback.add_route(
            f"/judged/{tmp_path.name}/{name}", lambda request: (200, {}, "<head><title>Other news</title></head>")
        )
        related = f"related:\n  - title: Gone\n    webUrl: {gone}\n" if gone and name == names[-1] else ""
        _write(tmp_path / "corpus" / f"{name}.md", f"---\ntitle: Story {name}\nwebUrl: {page}\n{related}---\n")


def _verdicts(outcome: pipeline.Outcome) -> list[tuple[str, str, str, str]]:
    return [(f.code, f.document, f.field, f.message) for f in outcome.report.findings]


def test_a_scheduled_run_takes_the_verdicts_on_unchanged_documents_from_the_last_judging(
    tmp_path: Path, loopback: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stories(tmp_path, loopback, "abc")
    config = _config(tmp_path, max_age=86_400.0)
    first = pipeline.audit(config)
    assert [code for code, *_ in _verdicts(first)] == ["title-mismatch"] * 3
    judged = _judged_documents(monkeypatch)
    second = pipeline.audit(config)
    assert judged == []  # every check reused and every document as it was: nothing judged again
    assert _verdicts(second) == _verdicts(first)
    assert {f.failing_runs for f in second.report.findings} == {2}  # still counted as the second run's
    with closing(sqlite3.connect(config.db)) as db:
        assert db.execute("select run_id, count(*) from judged_documents group by run_id").fetchall() == [(2, 3)]

    _write(tmp_path / "corpus" / "b.md", (tmp_path / "corpus" / "b.md").read_text().replace("Story b", "Other news"))
    third = pipeline.audit(config)
    assert judged == ["b.md"]  # the edited document only
    assert [document for _, document, *_ in _verdicts(third)] == [d for _, d, *_ in _verdicts(first) if "b.md" not in d]


def test_documents_are_judged_again_when_what_judging_reads_changes(
    tmp_path: Path, loopback: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = loopback.url_for(f"/status/404/judged-{tmp_path.name}")
    _stories(tmp_path, loopback, "abc", gone=gone)
    config = _config(tmp_path, max_age=86_400.0)
    first = pipeline.audit(config)
    judged = _judged_documents(monkeypatch)
    # c.md cites a URL that failed before: its history may make it flaky, so it is judged every run.
    assert _verdicts(pipeline.audit(config)) == _verdicts(first)
    assert judged == ["c.md"]
    judged.clear()
    # A setting judging reads: every document judged again.
    pipeline.audit(replace(config, flaky_window=config.flaky_window + 1))
    assert judged == ["a.md", "b.md", "c.md"]
    judged.clear()
    # Checks made afresh (no --max-age): new answers, so every document is judged again.
    pipeline.audit(replace(config, max_age=None))
    assert judged == ["a.md", "b.md", "c.md"]


def test_a_url_that_failed_before_is_judged_with_its_history_every_run(tmp_path: Path, loopback: Any) -> None:
    answers = iter([200, 500, 200])
    flaky = loopback.add_route(
        f"/judged/flaky-{tmp_path.name}", lambda request: (next(answers, 200), {}, b"<head></head>")
    )
    _write(tmp_path / "corpus" / "a.md", f"---\ntitle: Story\nwebUrl: {flaky}\n---\n")
    fetching = _config(tmp_path)
    pipeline.audit(fetching)  # ok
    pipeline.audit(fetching)  # failing
    reusing = replace(fetching, max_age=86_400.0)
    third = pipeline.audit(reusing)  # asked again (it failed): ok, a second flip
    assert [f.message for f in third.report.findings if f.code == "flaky-link"] == [
        "flipped between ok and failing 2 times in the last 3 runs (✓✗✓, oldest first)"
    ]
    # The same check reused, the same document: still judged, as its history has grown by a run.
    fourth = pipeline.audit(reusing)
    assert [f.message for f in fourth.report.findings if f.code == "flaky-link"] == [
        "flipped between ok and failing 2 times in the last 4 runs (✓✗✓✓, oldest first)"
    ]
