from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from auditor import settings
from auditor.config import Config
from auditor.model import Check, Code, FailOn, Hop, Kind, LinkRef, Mode, PageHead, Reason, RunStatus, Severity
from auditor.report.model import Changes, Reference, References, Report, ReportFinding, RunInfo, Summary, UrlResult

try:
    from tests.loopback import LoopbackProxy, LoopbackServer, refused_port
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from loopback import LoopbackProxy, LoopbackServer, refused_port  # type: ignore[no-redef]


@pytest.fixture(autouse=True)
def _no_auditor_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDITOR_* variables configure the CLI; one set in the shell running the tests must not steer them."""
    for name in [name for name in os.environ if name.startswith("AUDITOR_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def loopback() -> Iterator[LoopbackServer]:
    """Plain HTTP server on 127.0.0.1, shared by the session: use unique paths."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture(scope="session")
def loopback_tls() -> Iterator[LoopbackServer]:
    """HTTPS server on 127.0.0.1; trust ``loopback_tls.ca_pem_path`` or ``.client_ssl_context()``."""
    with LoopbackServer(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def loopback_tls_wrong_name(loopback_tls: LoopbackServer) -> Iterator[LoopbackServer]:
    """HTTPS server whose cert (same CA as ``loopback_tls``) names only wrong.example."""
    with loopback_tls.wrong_name_server("wrong.example") as server:
        yield server


@pytest.fixture
def loopback_proxy() -> Iterator[LoopbackProxy]:
    """An HTTP proxy on 127.0.0.1 that reaches only 127.0.0.1 (at the port a request names), per test."""
    with LoopbackProxy() as proxy:
        yield proxy


@pytest.fixture
def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens, so connecting is refused."""
    return f"http://127.0.0.1:{refused_port()}/"


@pytest.fixture
def billion_laughs() -> str:
    """A front matter of nine levels of nine aliases: 370 bytes that stand for 387 million strings.

    Fields a..e build 9 + 81 + ... + 59,049 values; `f` (line 8) crosses the default 100,000.
    """
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=False):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "---\ntitle: laughs\n" + "\n".join(levels) + "\ntopics: *i\n---\n"


# -- records for tests: one factory per record, defaults a plain good page ------------
def config_from_file(path: Path) -> Config:
    """The config a config file alone gives: no flags, no AUDITOR_* variables."""
    return settings.resolve(command_line={}, flags={}, environ={}, config_file=path).config()


def make_link(**overrides: Any) -> LinkRef:
    """A reference to https://a.example/ from doc.md's webUrl, line 3, unless told otherwise."""
    url = overrides.pop("url", "https://a.example/")
    fields: dict[str, Any] = {
        "document": "doc.md",
        "item": "",
        "field": "webUrl",
        "line": 3,
        "kind": Kind.PAGE,
        "url": url,
        "normalized_url": url,
    }
    return LinkRef(**{**fields, **overrides})


def make_check(**overrides: Any) -> Check:
    """A 200 for https://a.example/ unless told otherwise; a `head` mapping becomes a PageHead."""
    head = overrides.pop("head", None)
    redirects = overrides.pop("redirects", ())
    fields: dict[str, Any] = {
        "url": "https://a.example/",
        "kind": Kind.PAGE,
        "ok": True,
        "status": 200,
        "final_url": overrides.get("url", "https://a.example/"),
        "head": PageHead(**head) if isinstance(head, dict) else head,
        "redirects": tuple(Hop(**hop) if isinstance(hop, dict) else hop for hop in redirects),
    }
    return Check(**{**fields, **overrides})


# -- report records: one factory for every renderer's tests -----------------
# Tests import these (`from conftest import make_finding, ...`); codes, severities, kinds
# and reasons may be given as their strings, redirects as (status, url) pairs.
def make_finding(**fields: Any) -> ReportFinding:
    """A finding as build_report makes it; by default a dead link (dns) on seeds/a.txt:7 webUrl."""
    values: dict[str, Any] = {
        "code": Code.DEAD_LINK,
        "document": "seeds/a.txt",
        "field": "webUrl",
        "line": 7,
        "url": "https://a.example/",
        "message": "dead link: dns",
        "reason": "dns",
        **fields,
    }
    values["code"] = Code(values["code"])
    values["severity"] = Severity(values.get("severity") or values["code"].default_severity)
    values["redirects"] = _hops(values.get("redirects", ()))
    return ReportFinding(**values)


def make_url(url: str, **fields: Any) -> UrlResult:
    """A checked URL; by default a page that answered 200. OK when its status is a 2xx, unless told (an
    accepted 403 is `status=403, ok=True`)."""
    values: dict[str, Any] = {"kind": Kind.PAGE, "status": 200, "error": None, **fields}
    values.setdefault("ok", values["status"] is not None and 200 <= values["status"] < 300)
    values["kind"] = Kind(values["kind"])
    values["error"] = None if values["error"] is None else Reason(values["error"])
    values["redirects"] = _hops(values.get("redirects", ()))
    return UrlResult(url=url, **values)


def make_reference(document: str, field: str, line: int | None, url: str, **fields: Any) -> Reference:
    """A cited URL; by default a page, already normalised."""
    values: dict[str, Any] = {"kind": Kind.PAGE, "normalized_url": url, **fields}
    return Reference(document=document, field=field, line=line, url=url, kind=Kind(values.pop("kind")), **values)


def make_report(
    findings: Sequence[ReportFinding] = (),
    *,
    urls: Sequence[UrlResult] = (),
    references: Sequence[Reference] = (),
    changes: Changes | None = None,
    run: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Report:
    """A whole report, findings in the order given; the summary is counted from them unless overridden."""
    run_values: dict[str, Any] = {
        "id": 1,
        "mode": Mode.AUDIT,
        "status": RunStatus.FINISHED,
        "started_at": "2026-11-26T10:00:00+00:00",
        "finished_at": "2026-11-26T10:00:01+00:00",
        "duration_s": 1.0,
        "corpus": ("seeds",),
        "tool_version": "0.1.0",
        "fail_on": FailOn.ERROR,
        "previous_run": None,
        **(run or {}),
    }
    run_values.update(
        mode=Mode(run_values["mode"]),
        status=RunStatus(run_values["status"]),
        fail_on=FailOn(run_values["fail_on"]),
        corpus=tuple(run_values["corpus"]),
    )
    counted = Summary.of(
        findings,
        urls,
        documents=len({f.document for f in findings} | {r.document for r in references}),
        references=len(references),
        unique_urls=len(urls),
    )
    summary_values = dict(summary or {})
    if "by_code" in summary_values:
        summary_values["by_code"] = {Code(code): n for code, n in summary_values["by_code"].items()}
    return Report(
        run=RunInfo(**run_values),
        summary=dataclasses.replace(counted, **summary_values),
        changes=changes,
        findings=tuple(findings),
        urls=tuple(urls),
        references=References.of(references),
    )


def _hops(redirects: Any) -> tuple[Hop, ...]:
    return tuple(hop if isinstance(hop, Hop) else Hop(*hop) for hop in redirects)


# -- headless Chromium, for the HTML report and the served pages ---------------------
CHROMIUM = shutil.which("chromium") or next(
    (path for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if Path(path).exists()), None
)
# No background networking: this machine has no internet, and Chromium would keep trying.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module-scoped: Playwright's sync API keeps an event loop running in this thread while a
# browser is open, and later modules' asyncio.run() refuses to start beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no Chromium found (.ci/run installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
