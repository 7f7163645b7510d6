"""auditor serve: real HTTP against a running server on 127.0.0.1, the scheduler, the signals.

The service tests start `auditor serve` as a child process (port 0, the
corpus on the loopback server) and talk to it with httpx; the app tests run
the app under uvicorn in a thread, over a store the test writes; the
scheduler tests drive the scheduler with a stand-in audit.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from auditor import pipeline
from auditor.cli import cli
from auditor.config import Config, CrawlConfig
from auditor.errors import ConfigError
from auditor.interrupt import StopRequests
from auditor.model import Mode, RunStatus
from auditor.serve import metrics, service
from auditor.serve.app import create_app
from auditor.serve.schedule import Scheduler, parse_every
from auditor.store import Store

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_NAME = "<img src=x onerror=window.__xss=1>.md"
WAIT = 20.0  # seconds any one wait in these tests may take before it fails


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _wait_until(what: str, predicate: Callable[[], Any], seconds: float = WAIT) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- the service, as a child process ---------------------------------------------
@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    db: Path
    out: Path
    stderr_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=5.0)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=WAIT)
        finally:
            self.client.close()


def _start_service(tmp_path: Path, corpus: Path, *extra: str) -> Service:
    db, out, stderr_path = tmp_path / "audit.sqlite", tmp_path / "reports", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "auditor", "serve", str(corpus), "--db", str(db), "--out", str(out),
               "--port", "0", "--allow-private", "--retries", "0", *extra]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)

    def listening() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"auditor serve exited {process.returncode}: {stderr_path.read_text()}")
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", stderr_path.read_text())
        return match.group(1) if match else None

    try:
        url = _wait_until("the service to listen", listening)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return Service(process, url, db, out, stderr_path)


def _corpus(tmp_path: Path, loopback: Any, tag: str) -> Path:
    corpus = tmp_path / "corpus"
    _write(corpus / "good.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for(f'/ok/serve-{tag}')}\n---\n")
    _write(corpus / "dead.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for(f'/status/404/serve-{tag}')}\n---\n")
    # The headline changed: a title-mismatch that carries the hostile title, in a hostile file name.
    _write(corpus / HOSTILE_NAME, f"---\ntitle: '{HOSTILE_TITLE}'\nwebUrl: {loopback.url_for(f'/ok/x-{tag}')}\n---\n")
    return corpus


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, loopback: Any) -> Iterator[Service]:
    """One `auditor serve` for the read-only endpoint tests, after its first audit ended."""
    tmp_path = tmp_path_factory.mktemp("served")
    service_ = _start_service(tmp_path, _corpus(tmp_path, loopback, "module"), "--every", "1h", "--timeout", "5")
    try:
        _wait_until("the first audit", lambda: service_.get("/healthz").json()["last_run"])
        yield service_
    finally:
        if service_.process.poll() is None:
            assert service_.stop() == 0, service_.stderr


def test_latest_report_is_the_html_report_with_its_own_csp(served: Service) -> None:
    response = served.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', response.text)
    assert meta is not None
    assert (
        response.headers["content-security-policy"] == meta.group(1).replace("&#39;", "'") + "; frame-ancestors 'none'"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    # The same page as the file in --out, and every corpus value escaped in it.
    assert response.text == (served.out / "report.html").read_text(encoding="utf-8")
    assert HOSTILE_TITLE not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<img src=x" not in response.text
    assert served.get("/runs/1").text == response.text == served.get("/runs/1/report.html").text


def test_report_files_of_a_run(served: Service) -> None:
    report = served.get("/runs/1/report.json")
    assert report.headers["content-type"] == "application/json"
    assert report.json()["run"]["id"] == 1 and report.json()["summary"]["errors"] == 1
    assert report.text == (served.out / "report.json").read_text(encoding="utf-8")
    markdown = served.get("/runs/1/report.md")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text == (served.out / "report.md").read_text(encoding="utf-8")
    junit = served.get("/runs/1/junit.xml")
    assert junit.headers["content-type"] == "application/xml; charset=utf-8"
    assert junit.text.startswith("<?xml") and HOSTILE_TITLE not in junit.text
    assert served.get("/runs/1/report.exe").status_code == 404


def test_runs_page_lists_runs_and_links_them(served: Service) -> None:
    response = served.get("/runs")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="runs/1">1</a>' in response.text and "finished" in response.text
    assert "style-src 'sha256-" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]


def test_api_runs_and_findings_with_filters(served: Service) -> None:
    runs = served.get("/api/runs").json()["runs"]
    assert [(r["id"], r["status"], r["errors"], r["warnings"]) for r in runs] == [(1, "finished", 1, 1)]
    assert runs[0]["links"]["findings"] == "/api/runs/1/findings"
    one = served.get("/api/runs/1").json()
    assert one["run"]["id"] == 1 and one["summary"]["by_code"] == {"dead-link": 1, "title-mismatch": 1}

    every = served.get("/api/runs/1/findings").json()
    assert every["count"] == 2 and {f["code"] for f in every["findings"]} == {"dead-link", "title-mismatch"}
    dead = served.get("/api/runs/1/findings", params={"code": "dead-link"}).json()
    assert [f["document"] for f in dead["findings"]] == ["corpus/dead.md"]  # relative to the service's directory
    warnings = served.get("/api/runs/1/findings", params={"severity": "warning"}).json()["findings"]
    assert [f["code"] for f in warnings] == ["title-mismatch"]
    assert warnings[0]["actual"] == HOSTILE_TITLE  # JSON carries the value as it is; JSON is not markup
    hostile = f"corpus/{HOSTILE_NAME}"
    by_document = served.get("/api/runs/1/findings", params={"document": hostile}).json()
    assert by_document["count"] == 1 and by_document["filters"]["document"] == [hostile]
    both = served.get("/api/runs/1/findings", params=[("code", "dead-link"), ("code", "title-mismatch")]).json()
    assert both["count"] == 2
    assert served.get("/api/runs/1/findings", params={"code": "dead-link", "severity": "warning"}).json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/runs/99/findings", 404, "no run 99"),
        ("/api/runs/abc/findings", 400, "not a run id: 'abc'"),
        ("/api/runs/0", 400, "not a run id: '0'"),
        ("/api/runs/1/findings?code=nope", 400, "code: unknown value 'nope'"),
        ("/api/runs/1/findings?severity=fatal", 400, "severity: unknown value 'fatal'"),
        ("/api/nothing", 404, "Not Found"),
    ],
)
def test_api_errors_are_json(served: Service, path: str, status: int, says: str) -> None:
    response = served.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert says in response.json()["error"]


def test_page_errors_are_plain_text_and_never_markup(served: Service) -> None:
    response = served.get("/runs/<script>alert(1)<%2Fscript>")
    assert response.status_code == 404  # two segments: no such file of a run
    response = served.get("/runs/<b>x")
    assert (
        response.status_code == 400
        and response.text == "400: not a run id: '<b>x' (a run id is a positive whole number)\n"
    )
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert served.get("/runs/42").status_code == 404
    assert served.client.post("/api/runs").status_code == 405  # read-only: GET and HEAD only


def test_healthz_says_the_scheduler_is_alive_and_the_last_runs_age(served: Service) -> None:
    response = served.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["scheduler"]["alive"] is True and health["scheduler"]["every_s"] == 3600
    assert 3000 < health["scheduler"]["next_run_in_s"] <= 3600
    last = health["last_run"]
    assert last["id"] == 1 and last["status"] == "finished" and last["finished_at"]
    assert 0 <= last["age_s"] < 120


def test_metrics_in_prometheus_text_format(served: Service) -> None:
    response = served.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert all(name.startswith("auditor_") for name, _ in samples)
    assert samples[("auditor_runs_total", (("status", "finished"),))] == 1
    assert samples[("auditor_runs_total", (("status", "failed"),))] == 0
    assert samples[("auditor_findings", (("code", "dead-link"), ("severity", "error")))] == 1
    assert samples[("auditor_findings", (("code", "title-mismatch"), ("severity", "warning")))] == 1
    assert samples[("auditor_findings", (("code", "redirect"), ("severity", "warning")))] == 0
    assert samples[("auditor_urls_checked", ())] == 3
    assert samples[("auditor_urls_excluded", ())] == 0
    assert samples[("auditor_urls_reused", ())] == 0
    assert samples[("auditor_scheduler_up", ())] == 1
    assert samples[("auditor_audit_in_progress", ())] == 0
    assert 0 < samples[("auditor_last_run_duration_seconds", ())] < 60
    assert abs(samples[("auditor_last_run_timestamp_seconds", ())] - time.time()) < 300
    assert samples[("auditor_last_run_info", (("mode", "audit"), ("status", "finished")))] == 1


# -- the served report in a real browser ---------------------------------------------


@pytest.mark.browser
def test_served_report_works_in_chromium(served: Service, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(5000)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        response = page.goto(served.url + "/")
        assert response is not None and response.status == 200
        page.wait_for_selector("html[data-ready=true]", state="attached")
        rows = page.eval_on_selector_all(
            "#findings-app tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
        )
        assert sorted(row[1].split()[0] for row in rows) == ["dead-link", "title-mismatch"]
        assert any(HOSTILE_TITLE in cell for row in rows for cell in row)  # shown as text
        page.select_option("#filter-severity", label="warning (1)")
        assert page.locator("#findings-app tbody tr").count() == 1
        assert page.evaluate("() => window.__xss") is None
        # The runs page too: its style is admitted by the header's hash, nothing else runs.
        page.goto(served.url + "/runs")
        page.click("a[href='runs/1']")  # relative links: they work behind a proxy's path prefix too
        page.wait_for_selector("html[data-ready=true]", state="attached")
        assert page.url == served.url + "/runs/1"
        assert problems == []
    finally:
        context.close()


# -- signals --------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_audit_under_way_then_exits_0(tmp_path: Path, loopback: Any, signum: int) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus / "a.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for(f'/ok/term-{signum}')}\n---\n")
    _write(corpus / "b.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for(f'/hang/term-{signum}')}\n---\n")
    service_ = _start_service(tmp_path, corpus, "--every", "30m", "--timeout", "60")
    try:
        # Running, and its run recorded: the flag goes up a moment before the run's row is written.
        health = _wait_until(
            "the first audit to start",
            lambda: (
                (h := service_.get("/healthz").json())["scheduler"]["audit_running"]
                and service_.get("/api/runs").json()["runs"]
                and h
            ),
        )
        assert health["last_run"] is None
        # No audit has ended: no report yet, said so while the audit hangs on its URL.
        first = service_.get("/")
        assert first.status_code == 503 and "under way" in first.text
        assert service_.get("/api/runs").json()["runs"][0]["status"] == "running"
        assert service_.get("/runs/1").status_code == 200  # a running run renders, partial
    except BaseException:
        service_.process.kill()
        raise
    started = time.monotonic()
    assert service_.stop(signum) == 0, service_.stderr
    assert time.monotonic() - started < 10
    assert "Traceback" not in service_.stderr
    with sqlite3.connect(service_.db) as conn:
        assert conn.execute("select id, status from runs").fetchall() == [(1, "interrupted")]
    assert json.loads((service_.out / "report.json").read_text())["run"]["status"] == "interrupted"
    assert f"{signal.Signals(signum).name}: stopping the audit under way" in service_.stderr


# -- the CLI's usage errors ----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "says"),
    [("6x", "'6x' is not a duration"), ("1.5h", "'1.5h' is not a duration"), ("0m", "'0m' is no interval"),
     ("h", "'h' is not a duration"), ("400d", "longer than a year")],
)  # fmt: skip
def test_every_is_parsed_strictly(tmp_path: Path, value: str, says: str) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--every", value, "--port", "0"])
    assert result.exit_code == 2, result.output
    assert says in result.stderr and "Traceback" not in result.output


def test_parse_every() -> None:
    assert [parse_every(text) for text in ("90s", "30m", "6h", "2d", " 1h ")] == [90, 1800, 21600, 172800, 3600]
    assert parse_every("1h30m") == 5400  # one duration syntax for --every, --max-age and --older-than
    with pytest.raises(ConfigError, match="not a duration"):
        parse_every("1.5h")


def test_serve_usage_errors_exit_2_before_anything_starts(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["serve", str(tmp_path / "nope"), "--port", "0", "--db", str(tmp_path / "a.db")])
    assert missing.exit_code == 2 and "no such file or directory" in missing.stderr
    assert not (tmp_path / "a.db").exists()
    garbage = _write(tmp_path / "garbage.db", "not a database")
    bad_db = runner.invoke(cli, ["serve", str(tmp_path), "--port", "0", "--db", str(garbage)])
    assert bad_db.exit_code == 2 and "garbage.db" in bad_db.stderr
    with service.bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        in_use = runner.invoke(cli, ["serve", str(tmp_path), "--port", str(port), "--db", str(tmp_path / "b.db")])
    assert in_use.exit_code == 2 and f"cannot listen on 127.0.0.1 port {port}" in in_use.stderr


# -- the app over a store the test writes -------------------------------------------
@dataclass
class FakeScheduler:
    alive: bool = True
    busy: bool = False
    next_at: float | None = None
    every: float = 60.0
    audits_started: int = 1
    last_error: str | None = None


@contextmanager
def running(app: Any) -> Iterator[httpx.Client]:
    """The app under uvicorn in a thread, on a free loopback port; an httpx client for it."""
    sock = service.bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until("uvicorn to start", lambda: server.started, seconds=10)
        with httpx.Client(base_url=service.url_of(sock).rstrip("/"), timeout=5.0) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _lint_config(tmp_path: Path) -> Config:
    corpus = tmp_path / "corpus"
    _write(corpus / "a.md", "---\ntitle: A\nwebUrl: https://a.example/\nprovider:\n  domain: b.example\n---\n")
    return Config(paths=(corpus,), db=tmp_path / "audit.sqlite", out=tmp_path / "reports", formats=("json",))


def _digest(db: Path) -> str:
    return "".join(
        hashlib.sha256(path.read_bytes()).hexdigest() for path in (db, db.with_name(db.name + "-wal")) if path.exists()
    )


def test_ended_runs_are_cached_running_ones_never_and_nothing_is_written(tmp_path: Path) -> None:
    config = _lint_config(tmp_path)
    pipeline.lint(config)
    pipeline.lint(config)
    writer = Store(config.db)
    running_id = writer.start_run(mode=Mode.LINT, corpus=["x"], tool_version="0", config={})
    before = _digest(config.db)
    app = create_app(config.db, FakeScheduler())
    reports = app.state.reports
    with running(app) as client:
        first = client.get("/runs/2/report.json")
        assert first.status_code == 200 and first.headers["cache-control"] == "max-age=60"
        assert client.get("/runs/2/report.json").text == first.text
        assert client.get("/api/runs/2/findings").json()["count"] == 1
        assert reports.renders == 1  # one rendering, then the cache; the findings API reads the cached model
        assert client.get("/").text == client.get("/runs/2").text  # the latest ended run
        assert reports.renders == 2

        live = client.get(f"/runs/{running_id}/report.json")
        assert live.headers["cache-control"] == "no-cache" and live.json()["run"]["status"] == "running"
        client.get(f"/runs/{running_id}/report.json")
        assert reports.renders == 4  # a run under way is rendered every time
        assert client.get("/").text == client.get("/runs/2").text  # still the latest *ended* run
        for path in ("/runs", "/api/runs", "/healthz", "/metrics", "/runs/1/report.md", "/runs/1/junit.xml"):
            assert client.get(path).status_code == 200, path
        assert _digest(config.db) == before  # serving wrote nothing

        writer.finish_run(running_id, status=RunStatus.INTERRUPTED, documents=0, references=0, urls=0)
        ended = client.get(f"/runs/{running_id}/report.json")
        assert ended.json()["run"]["status"] == "interrupted"  # the new state, not a stale copy
        assert client.get("/healthz").json()["last_run"]["status"] == "interrupted"
    writer.close()


def test_before_the_first_run_and_with_a_dead_scheduler(tmp_path: Path) -> None:
    scheduler = FakeScheduler(alive=False, next_at=None, audits_started=0)
    with running(create_app(tmp_path / "none.sqlite", scheduler)) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {
            "status": "scheduler-dead",
            "scheduler": {"alive": False, "audit_running": False, "audits_started": 0, "every_s": 60.0,
                          "next_run_in_s": None, "last_error": None},
            "last_run": None,
        }  # fmt: skip
        assert client.get("/").status_code == 503
        assert client.get("/api/runs").json() == {"runs": []}
        assert client.get("/api/runs/1").status_code == 404
        metrics = client.get("/metrics").text
        assert "auditor_scheduler_up 0.0" in metrics and 'auditor_runs_total{status="finished"} 0.0' in metrics
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_healthz_is_503_once_the_real_scheduler_thread_died(tmp_path: Path) -> None:
    def dies(config: Config, **_: Any) -> pipeline.Outcome:
        raise SystemExit("gone")  # not an Exception: nothing in the scheduler catches it

    scheduler = Scheduler(_lint_config(tmp_path), 60, audit=dies, log=lambda line: None)
    scheduler.start()
    scheduler.join(5)
    with running(create_app(tmp_path / "audit.sqlite", scheduler)) as client:
        assert client.get("/healthz").status_code == 503


# -- the scheduler ------------------------------------------------------------------
class StandInAudit:
    """An audit that takes `seconds` (or until stopped) and records how many ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.starts: list[float] = []
        self.running = 0
        self.most_at_once = 0
        self.stopped: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, config: Config, *, stops: StopRequests) -> Any:
        with self.lock:
            self.starts.append(time.monotonic())
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline and not stops.requested:
                time.sleep(0.01)
            if stops.requested:
                self.stopped.append(stops.signum or 0)
            raise ValueError("stand-in audits have no outcome")  # logged; the scheduler goes on
        finally:
            with self.lock:
                self.running -= 1


def test_scheduler_runs_at_start_then_on_the_interval_never_two_at_once(tmp_path: Path) -> None:
    audit = StandInAudit(seconds=0.3)
    lines: list[str] = []
    scheduler = Scheduler(_lint_config(tmp_path), 0.1, audit=audit, log=lines.append)
    scheduler.start()
    _wait_until("three audits", lambda: len(audit.starts) >= 3)
    scheduler.stop(signal.SIGTERM)
    scheduler.join(5)
    assert not scheduler.alive
    assert audit.most_at_once == 1
    gaps = [later - earlier for earlier, later in zip(audit.starts, audit.starts[1:], strict=False)]
    assert all(gap >= 0.29 for gap in gaps), gaps  # an audit longer than the interval delays the next
    assert all("stand-in audits have no outcome" in line for line in lines)  # an error is logged, not fatal
    assert scheduler.last_error == "ValueError: stand-in audits have no outcome"


def test_scheduler_waits_the_interval_and_stop_ends_the_wait(tmp_path: Path) -> None:
    audit = StandInAudit(seconds=0.0)
    scheduler = Scheduler(_lint_config(tmp_path), 3600, audit=audit, log=lambda line: None)
    scheduler.start()
    _wait_until("the first audit to end", lambda: scheduler.next_at is not None)
    assert 3590 < (scheduler.next_at or 0) - time.time() <= 3600
    time.sleep(0.2)
    assert len(audit.starts) == 1
    started = time.monotonic()
    scheduler.stop(signal.SIGTERM)
    scheduler.join(5)
    assert not scheduler.alive and time.monotonic() - started < 2


def test_stop_reaches_the_audit_under_way(tmp_path: Path) -> None:
    audit = StandInAudit(seconds=60)
    scheduler = Scheduler(_lint_config(tmp_path), 3600, audit=audit, log=lambda line: None)
    scheduler.start()
    _wait_until("the audit to start", lambda: scheduler.busy)
    scheduler.stop(signal.SIGTERM)
    scheduler.join(5)
    assert not scheduler.alive and audit.stopped == [signal.SIGTERM] and len(audit.starts) == 1


def test_a_real_audit_in_the_scheduler_thread_is_stopped_cleanly(tmp_path: Path, loopback: Any) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus / "a.md", f"---\ntitle: OK\nwebUrl: {loopback.url_for('/hang/scheduler-stop')}\n---\n")
    config = Config(
        paths=(corpus,),
        db=tmp_path / "audit.sqlite",
        out=tmp_path / "reports",
        formats=("json",),
        crawl=CrawlConfig(allow_private=True, retries=0, timeout=60),
    )
    scheduler = Scheduler(config, 3600, log=lambda line: None)
    scheduler.start()
    _wait_until("the crawl to reach the hanging URL", lambda: loopback.requests.for_path("/hang/scheduler-stop"))
    scheduler.stop(signal.SIGTERM)
    scheduler.join(10)
    assert not scheduler.alive
    assert scheduler.last is not None and scheduler.last.run_id == 1 and scheduler.last.error is None
    store = Store.open_existing(config.db, read_only=True)
    try:
        assert store.run(1).status is RunStatus.INTERRUPTED
    finally:
        store.close()
    assert json.loads((config.out / "report.json").read_text())["run"]["status"] == "interrupted"


def test_the_cli_passes_audit_options_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(config: Config, **kwargs: Any) -> int:
        seen.update(config=config, **kwargs)
        return 0

    monkeypatch.setattr(service, "serve", fake_serve)
    result = CliRunner().invoke(
        cli,
        ["serve", str(tmp_path), "--every", "30m", "--host", "::1", "--port", "9", "--concurrency", "3",
         "--allow-private", "--fail-on", "warning", "--format", "json,html"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen["every"] == 1800 and seen["host"] == "::1" and seen["port"] == 9
    config = seen["config"]
    assert config.crawl.concurrency == 3 and config.crawl.allow_private and config.formats == ("json", "html")
    assert str(config.fail_on) == "warning" and config.paths == (tmp_path,)


def test_serve_is_in_the_help_with_audit_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--every", "--host", "--port", "--concurrency", "--timeout", "--db", "--out", "--allow-private"):
        assert option in result.output


def test_metrics_count_excluded_urls_apart_from_checked(tmp_path: Path, loopback: Any) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    urls = [loopback.url_for("/ok/metrics-kept"), loopback.url_for("/ok/metrics-excluded")]
    (corpus / "a.md").write_text(f"---\ntitle: OK\nwebUrl: {urls[0]}\noriginalUrl: {urls[1]}\n---\n")
    config = Config(
        paths=(corpus,),
        db=tmp_path / "audit.sqlite",
        out=tmp_path / "reports",
        crawl=CrawlConfig(allow_private=True, retries=0),
        exclude=("metrics-excluded",),
    )
    # In a thread of its own: the browser fixture of this module keeps an event loop in this one.
    audit = threading.Thread(target=pipeline.audit, args=(config,))
    audit.start()
    audit.join()
    collector = metrics.StoreCollector(config.db, scheduler_alive=lambda: True, audit_running=lambda: False)
    text = metrics.exposition(metrics.registry_for(collector)).decode()
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert (samples["auditor_urls_checked"], samples["auditor_urls_excluded"]) == (1, 1)
