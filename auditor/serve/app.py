"""The read-only HTTP side of `auditor serve`: a Starlette app over the store.

    /                                   the latest ended run's report.html (the same self-contained page)
    /runs                               every run, newest first, with its counts
    /runs/ID  (and /runs/ID/report.html) that run's report.html
    /runs/ID/report.json|report.md|junit.xml
    /api/runs                           the runs as JSON
    /api/runs/ID                        one run and its summary as JSON
    /api/runs/ID/findings?code=&severity=&document=   its findings as JSON (each filter may repeat)
    /healthz                            200 while the scheduler is alive (503 when it died), the last run's age
    /metrics                            Prometheus text format (metrics.py)

Nothing here writes: every request opens the store read-only
(`Store.open_existing(read_only=True)`) and closes it. Reports are rendered
from the store on request by the report package's own renderers, so they are
escaped exactly as the files in --out; an ended run never changes, so its
renderings are kept in a bounded cache keyed by the run's id, status and end
time (a run still under way is never cached).

Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy:
no-referrer` and a Content-Security-Policy: the report's own (the one in its
meta tag), `default-src 'none'` plus the page's style hash for the pages
here, `default-src 'none'` for everything else; none may be framed.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import jinja2
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auditor.errors import DatabaseError
from auditor.model import Code, Run, RunStatus, Severity
from auditor.report import build_report, junit, markdown, render_json
from auditor.report import html as html_report
from auditor.report.model import Report
from auditor.serve.metrics import StoreCollector, ended_runs, exposition, registry_for
from auditor.store import Store

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Rendered reports kept for ended runs; one 50,000-finding report.html is ~10 MiB.
CACHE_BYTES = 64 * 1024 * 1024
MODELS_CACHED = 4
_RUN_ID = re.compile(r"[1-9][0-9]{0,17}")
_META_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')

PAGE_CSS = """
:root { color-scheme: light dark; }
body { margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 90rem;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #8884; vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.status-failed td, tr.status-interrupted td { color: #b42318; }
tr.status-running td { font-style: italic; }
.links a { margin-right: 1rem; }
"""


@dataclass(frozen=True)
class Format:
    key: str
    media_type: str
    render: Callable[[Report], str]


FILES: dict[str, Format] = {
    "report.html": Format("html", "text/html; charset=utf-8", html_report.render_html),
    "report.json": Format("json", "application/json", render_json),
    "report.md": Format("md", "text/markdown; charset=utf-8", markdown.render_markdown),
    "junit.xml": Format("junit", "application/xml; charset=utf-8", junit.render_junit),
}


class SchedulerView(Protocol):
    """What the app may ask of the scheduler: it only looks."""

    @property
    def alive(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    @property
    def next_at(self) -> float | None: ...

    @property
    def last_error(self) -> str | None: ...

    every: float
    audits_started: int


# -- caches -----------------------------------------------------------------
RunKey = tuple[int, str, str | None]  # id, status, finished_at: a run that changes gets a new key


def run_key(run: Run) -> RunKey | None:
    """The cache key of an ended run; None for a run still under way (never cached)."""
    if run.id is None or run.status is RunStatus.RUNNING:
        return None
    return (run.id, run.status.value, run.finished_at)


class ByteLRU:
    """Rendered bodies, least recently used dropped first, within a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[RunKey, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[RunKey, str]) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: tuple[RunKey, str], body: bytes) -> None:
        if len(body) > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self._size += len(body)
            while self._size > self.budget:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


class Reports:
    """Report models and rendered reports of runs, built from the store on request."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self.bodies = ByteLRU(budget)
        self._models: OrderedDict[RunKey, Report] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0  # for tests: how often a report was actually rendered

    def model(self, store: Store, run: Run) -> Report:
        key = run_key(run)
        if key is not None:
            with self._lock:
                cached = self._models.get(key)
                if cached is not None:
                    self._models.move_to_end(key)
                    return cached
        assert run.id is not None
        report = build_report(store, run.id)
        # Keyed by what was built: a run that ended meanwhile is stored under its new key.
        built = (report.run.id, report.run.status.value, report.run.finished_at)
        if report.run.status is not RunStatus.RUNNING:
            with self._lock:
                self._models[built] = report
                while len(self._models) > MODELS_CACHED:
                    self._models.popitem(last=False)
        return report

    def body(self, store: Store, run: Run, fmt: Format) -> bytes:
        key = run_key(run)
        if key is not None and (cached := self.bodies.get((key, fmt.key))) is not None:
            return cached
        report = self.model(store, run)
        body = fmt.render(report).encode("utf-8")
        self.renders += 1
        if report.run.status is not RunStatus.RUNNING:
            self.bodies.put(((report.run.id, report.run.status.value, report.run.finished_at), fmt.key), body)
        return body


# -- helpers -----------------------------------------------------------------
class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


def parse_run_id(text: str) -> int:
    if _RUN_ID.fullmatch(text) is None:
        raise BadRequest(f"not a run id: {text!r} (a run id is a positive whole number)")
    return int(text)


def report_csp(body: bytes) -> str:
    """The report's own policy, from its meta tag, with framing forbidden (only a header can say that)."""
    match = _META_CSP.search(body[:4096].decode("utf-8", "replace"))
    policy = html.unescape(match.group(1)) if match else "default-src 'none'"
    return f"{policy}; frame-ancestors 'none'"


def duration_s(run: Run) -> float | None:
    if not run.started_at or not run.finished_at:
        return None
    try:
        return round(
            (datetime.fromisoformat(run.finished_at) - datetime.fromisoformat(run.started_at)).total_seconds(), 3
        )
    except ValueError:
        return None


def age_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return round(time.time() - datetime.fromisoformat(value).timestamp(), 3)
    except ValueError:
        return None


def run_dict(run: Run, counts: Counter[Severity]) -> dict[str, Any]:
    return {
        "id": run.id,
        "mode": run.mode.value,
        "status": run.status.value,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_s": duration_s(run),
        "corpus": list(run.corpus),
        "documents": run.documents or 0,
        "references": run.references or 0,
        "urls": run.urls or 0,
        "errors": counts[Severity.ERROR],
        "warnings": counts[Severity.WARNING],
        "links": {
            "report": f"/runs/{run.id}",
            **{name: f"/runs/{run.id}/{name}" for name in FILES if name != "report.html"},
            "findings": f"/api/runs/{run.id}/findings",
        },
    }


def _choices(values: Sequence[str], kind: type[Code] | type[Severity], name: str) -> frozenset[Any]:
    chosen = set()
    for value in values:
        try:
            chosen.add(kind(value))
        except ValueError:
            known = ", ".join(member.value for member in kind)
            raise BadRequest(f"{name}: unknown value {value!r}; one of {known}") from None
    return frozenset(chosen)


@lru_cache(maxsize=1)
def _page_template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    source = resources.files("auditor.serve").joinpath("templates", "runs.html.j2").read_text(encoding="utf-8")
    return env.from_string(source)


def page(
    title: str, *, message: str | None = None, runs: list[dict[str, Any]] | None = None, status: int = 200
) -> Response:
    body = _page_template().render(title=title, message=message, runs=runs, css=Markup(PAGE_CSS))
    style = f"style-src '{html_report.csp_hash(PAGE_CSS)}'; img-src data:"  # data: for the empty favicon
    csp = DEFAULT_CSP.replace("default-src 'none'", f"default-src 'none'; {style}")
    return Response(
        body, status_code=status, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": csp}
    )


class SecurityHeaders:
    """Pure ASGI middleware: every response gets nosniff, no-referrer and a CSP unless it set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", DEFAULT_CSP.encode()),
                ):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- the app -----------------------------------------------------------------
def create_app(db: Path, scheduler: SchedulerView, *, reports: Reports | None = None) -> Starlette:
    """The read-only app over the database `db`, reporting on `scheduler`."""
    reports = reports if reports is not None else Reports()
    collector = StoreCollector(db, scheduler_alive=lambda: scheduler.alive, audit_running=lambda: scheduler.busy)
    registry = registry_for(collector)

    @contextmanager
    def reading() -> Iterator[Store | None]:
        """The store, read-only; None before the first audit has created it."""
        if not db.exists():
            yield None
            return
        try:
            store = Store.open_existing(db, read_only=True)
        except DatabaseError:
            yield None  # created but without its tables yet: the first audit is starting
            return
        try:
            yield store
        finally:
            store.close()

    def stored_run(store: Store | None, text: str) -> Run:
        run_id = parse_run_id(text)
        if store is None:
            raise NotFound(f"no run {run_id}")
        try:
            return store.run(run_id)
        except DatabaseError:
            raise NotFound(f"no run {run_id}") from None

    def report_response(store: Store, run: Run, name: str) -> Response:
        fmt = FILES[name]
        body = reports.body(store, run, fmt)
        headers = {"Cache-Control": "no-cache" if run_key(run) is None else "max-age=60"}
        if fmt.key == "html":
            headers["Content-Security-Policy"] = report_csp(body)
        return Response(body, media_type=fmt.media_type, headers=headers)

    # -- HTML and files -----------------------------------------------------------
    def latest(request: Request) -> Response:
        with reading() as store:
            ended = ended_runs(store.runs()) if store is not None else []
            if not ended or store is None:
                response = page(
                    "auditor: no report yet",
                    message="No audit has ended yet; the first one is under way. Its report shows here when it ends.",
                    status=503,
                )
                response.headers["Retry-After"] = "10"
                return response
            return report_response(store, ended[-1], "report.html")

    def runs_page(request: Request) -> Response:
        with reading() as store:
            listed = _run_dicts(store)
        return page("auditor: runs", runs=listed)

    def run_report(request: Request) -> Response:
        name = request.path_params.get("name", "report.html")
        if name not in FILES:
            raise NotFound(f"no such file: {name}; one of {', '.join(FILES)}")
        with reading() as store:
            run = stored_run(store, request.path_params["run_id"])
            assert store is not None
            return report_response(store, run, name)

    # -- JSON API -----------------------------------------------------------------
    def _run_dicts(store: Store | None) -> list[dict[str, Any]]:
        if store is None:
            return []
        counts = store.finding_counts()
        return [run_dict(run, counts.get(run.id or 0, Counter())) for run in reversed(store.runs())]

    def api_runs(request: Request) -> Response:
        with reading() as store:
            return JSONResponse({"runs": _run_dicts(store)})

    def api_run(request: Request) -> Response:
        with reading() as store:
            run = stored_run(store, request.path_params["run_id"])
            assert store is not None
            report = reports.model(store, run)
            counts = Counter({Severity.ERROR: report.summary.errors, Severity.WARNING: report.summary.warnings})
            return JSONResponse({"run": run_dict(run, counts), "summary": report.summary.as_dict()})

    def api_findings(request: Request) -> Response:
        codes = _choices(request.query_params.getlist("code"), Code, "code")
        severities = _choices(request.query_params.getlist("severity"), Severity, "severity")
        documents = frozenset(request.query_params.getlist("document"))
        with reading() as store:
            run = stored_run(store, request.path_params["run_id"])
            assert store is not None
            report = reports.model(store, run)
        findings = [
            f.as_dict()
            for f in report.findings
            if (not codes or f.code in codes)
            and (not severities or f.severity in severities)
            and (not documents or f.document in documents)
        ]
        return JSONResponse(
            {
                "run": run.id,
                "status": report.run.status.value,
                "filters": {
                    "code": sorted(c.value for c in codes),
                    "severity": sorted(s.value for s in severities),
                    "document": sorted(documents),
                },
                "count": len(findings),
                "findings": findings,
            }
        )

    # -- operations -------------------------------------------------------------
    def healthz(request: Request) -> Response:
        alive = scheduler.alive
        last: dict[str, Any] | None = None
        with reading() as store:
            ended = ended_runs(store.runs()) if store is not None else []
        if ended:
            run = ended[-1]
            last = {
                "id": run.id,
                "status": run.status.value,
                "finished_at": run.finished_at,
                "age_s": age_s(run.finished_at),
            }
        next_at = scheduler.next_at
        body = {
            "status": "ok" if alive else "scheduler-dead",
            "scheduler": {
                "alive": alive,
                "audit_running": scheduler.busy,
                "audits_started": scheduler.audits_started,
                "every_s": scheduler.every,
                "next_run_in_s": None if next_at is None else round(max(0.0, next_at - time.time()), 3),
                "last_error": scheduler.last_error,
            },
            "last_run": last,
        }
        return JSONResponse(body, status_code=200 if alive else 503, headers={"Cache-Control": "no-store"})

    def metrics(request: Request) -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    # -- errors -------------------------------------------------------------------
    def error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        # Plain text (nosniff): the message may quote the request, and text is never markup.
        return PlainTextResponse(f"{status}: {message}\n", status_code=status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(request, 404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return error(request, 400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = error(request, exc.status_code, exc.detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    routes = [
        Route("/", latest),
        Route("/runs", runs_page),
        Route("/runs/{run_id}", run_report),
        Route("/runs/{run_id}/{name}", run_report),
        Route("/api/runs", api_runs),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/findings", api_findings),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={NotFound: not_found, BadRequest: bad_request, HTTPException: http_error},
    )
    app.add_middleware(SecurityHeaders)
    app.state.reports = reports
    return app
