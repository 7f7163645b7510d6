"""report.html: one self-contained page people read, rendered from the report model.

- Self-contained: the CSS, the script and the data are inline; nothing is
  fetched, so the file opens from disk or any static host. A Content-Security-
  Policy meta tag admits exactly that one style block and that one script, by
  their SHA-256 hashes computed here, and nothing else.
- Safe: Jinja2 autoescapes every value that came from the corpus or the
  network; only http(s) URLs become links (`rel="noopener noreferrer"`); the
  embedded JSON has `<`, `>` and `&` escaped so it cannot close its element.
- Works without JavaScript: every table is rendered in full inside
  `<noscript>`. With JavaScript on, the browser keeps that markup as one inert
  text node (cheap to parse, never laid out) and the script builds paginated,
  filterable, sortable tables from the compact JSON instead, so the page holds
  one page of rows at a time whether there are 50 findings or 50,000.
- Named, not positional: each table the script reads is a header of column
  names (the fields of FindingRow, HostRow, DocumentRow) and rows of values in
  that order, every string interned once. The script looks its columns up by
  name in the header, so the two sides cannot drift apart unnoticed: a column
  the script needs and the header lacks stops it with an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from auditor.links import InvalidURL, url_host
from auditor.model import Code, Hop, Severity
from auditor.report.model import SEVERITY_ORDER, Changes, Report, ReportFinding, UrlResult, Verdict
from auditor.rules import status_verdict

TEMPLATE = "report.html.j2"
# Changes lists are shown in full up to this many rows; report.json has them all.
CHANGES_SHOWN = 1000
# Only absolute http(s) URLs without white space or control characters become
# links; anything else (javascript:, data:, relative, mangled) stays text.
_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
# Inline JSON: these never occur outside strings, so escaping them keeps the
# JSON valid while `</script>` and `<!--` cannot appear in the element.
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


# -- the rows of the three tables: the template's and the script's ----------
@dataclass(frozen=True, slots=True, kw_only=True)
class FindingRow:
    """A finding as the findings table shows it; the fields are the script's column names."""

    severity: Severity
    code: Code
    document: str
    line: int | None
    field: str
    url: str | None
    host: str
    status: str  # the HTTP status, plus the reason when it says more
    message: str
    expected: str | None
    actual: str | None
    final_url: str | None
    redirects: tuple[Hop, ...]
    new: bool
    failing_runs: int | None  # consecutive runs that reported it
    first_seen: str | None

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}" if self.line else self.document


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRow:
    """Per host: unique URLs cited, how their checks went, and median latency."""

    host: str
    urls: int
    checked: int
    ok: int
    dead: int
    blocked: int
    median_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRow:
    """Per document: references cited and findings by severity and code."""

    document: str
    references: int
    errors: int
    warnings: int
    codes: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRow:
    code: Code
    severity: Severity | None
    count: int
    new: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangesView:
    new: tuple[ReportFinding, ...]
    new_total: int
    fixed: tuple[ReportFinding, ...]
    fixed_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """Everything the template and the script need, computed once."""

    findings: list[FindingRow]
    hosts: list[HostRow]
    documents: list[DocumentRow]
    codes: list[CodeRow]
    changes: ChangesView | None
    verdict: Verdict
    verdict_text: str
    data: dict[str, Any]


def render_html(report: Report) -> str:
    css, script = _asset("report.css"), _asset("report.js")
    view = build_view(report)
    csp = (
        "default-src 'none'; "
        f"style-src '{csp_hash(css)}'; script-src '{csp_hash(script)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            report=report,
            view=view,
            csp=csp,
            css=Markup(css),
            script=Markup(script),
            data=Markup(script_json(view.data)),
        )
    )


def is_web_url(value: Any) -> bool:
    return isinstance(value, str) and _WEB_URL.fullmatch(value) is not None


def link(url: Any) -> Markup:
    """An escaped link for an http(s) URL; escaped plain text for anything else."""
    if url is None or url == "":
        return Markup("")
    text = escape(str(url))
    if is_web_url(url):
        # Concatenated rather than Markup.format: this runs once per finding row.
        return Markup(f'<a href="{text}" rel="noopener noreferrer" target="_blank">{text}</a>')
    return text


def csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def script_json(value: Any) -> str:
    """JSON that is safe inside `<script type="application/json">`."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).translate(_JSON_ESCAPES)


def host_of(url: Any) -> str:
    if not isinstance(url, str):
        return ""
    try:
        return url_host(url)
    except InvalidURL:
        try:
            return urlsplit(url).hostname or ""
        except ValueError:
            return ""


@lru_cache(maxsize=65536)
def _normalized_host(url: str) -> str:
    """The host of an already normalised URL (references and checks carry those)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def status_text(finding: ReportFinding) -> str:
    """The HTTP status, plus the reason when it says more: '404', 'dns', '200'."""
    status, reason = finding.status, finding.failure_reason
    parts = [str(status)] if status is not None else []
    if reason and reason != f"http {status}":
        parts.append(reason)
    return " ".join(parts)


def build_view(report: Report) -> View:
    changes = report.changes
    new_keys = changes.new_keys if changes else frozenset()
    hosts_by_url: dict[str | None, str] = {}
    findings = []
    for finding in report.findings:
        url = finding.url
        if url not in hosts_by_url:
            hosts_by_url[url] = host_of(url)
        findings.append(
            FindingRow(
                severity=finding.severity,
                code=finding.code,
                document=finding.document,
                line=finding.line,
                field=finding.field,
                url=url,
                host=hosts_by_url[url],
                status=status_text(finding),
                message=finding.message,
                expected=finding.expected,
                actual=finding.actual,
                final_url=finding.final_url,
                redirects=finding.redirects,
                new=finding.key in new_keys,
                failing_runs=finding.failing_runs,
                first_seen=finding.first_seen,
            )
        )
    hosts = host_rows(report)
    documents = document_rows(report)
    by_code_severity = {f.code: f.severity for f in report.findings}
    new_by_code = Counter(f.code for f in changes.new) if changes else Counter()
    codes = [
        CodeRow(code=code, severity=by_code_severity.get(code), count=count, new=new_by_code.get(code, 0))
        for code, count in report.summary.by_code.items()
    ]
    verdict = report.summary.verdict
    return View(
        findings=findings,
        hosts=hosts,
        documents=documents,
        codes=codes,
        changes=_changes_view(changes),
        verdict=verdict,
        verdict_text=_VERDICT_TEXT[verdict],
        data=_script_data(findings, hosts, documents, has_changes=changes is not None),
    )


def _liveness(url: UrlResult) -> Code | None:
    """The rules' verdict on a check (their one closed set of outcomes), or None when it is alive."""
    code, _reason = status_verdict(url.status, url.error, ok=url.ok)
    return None if code is None else Code(code)


def host_rows(report: Report) -> list[HostRow]:
    """Per host: unique URLs cited, how their checks went, and median latency."""
    urls_by_host: dict[str, set[str]] = defaultdict(set)
    for ref in report.references:
        urls_by_host[_normalized_host(ref.normalized_url)].add(ref.normalized_url)
    checks_by_host: dict[str, list[UrlResult]] = defaultdict(list)
    for check in report.urls:
        host = _normalized_host(check.url)
        checks_by_host[host].append(check)
        urls_by_host[host].add(check.url)
    rows = []
    for host, urls in urls_by_host.items():
        checks = checks_by_host.get(host, [])
        verdicts = Counter(_liveness(c) for c in checks)
        latencies = [c.elapsed_ms for c in checks if c.elapsed_ms is not None]
        rows.append(
            HostRow(
                host=host,
                urls=len(urls),
                checked=len(checks),
                ok=verdicts.get(None, 0),
                dead=verdicts.get(Code.DEAD_LINK, 0),
                blocked=verdicts.get(Code.LINK_BLOCKED, 0),
                median_ms=round(statistics.median(latencies)) if latencies else None,
            )
        )
    rows.sort(key=lambda r: (-r.dead, -r.blocked, -r.urls, r.host))
    return rows


def document_rows(report: Report) -> list[DocumentRow]:
    """Per document: references cited and findings by severity and code."""
    references = Counter(ref.document for ref in report.references)
    severities: dict[str, Counter[Severity]] = defaultdict(Counter)
    codes: dict[str, Counter[Code]] = defaultdict(Counter)
    for finding in report.findings:
        severities[finding.document][finding.severity] += 1
        codes[finding.document][finding.code] += 1
    rows = [
        DocumentRow(
            document=document,
            references=references.get(document, 0),
            errors=severities[document][Severity.ERROR],
            warnings=severities[document][Severity.WARNING],
            codes=", ".join(f"{code} ×{n}" if n > 1 else code for code, n in sorted(codes[document].items())),
        )
        for document in set(references) | set(codes)
    ]
    rows.sort(key=lambda r: (-r.errors, -r.warnings, r.document))
    return rows


def _script_data(
    findings: Sequence[FindingRow], hosts: Sequence[HostRow], documents: Sequence[DocumentRow], *, has_changes: bool
) -> dict[str, Any]:
    """Compact tables for the script: a header of column names, rows of values, every string once.

    At 50,000 findings the same documents, codes, hosts and URLs repeat
    thousands of times; interning keeps the page small and JSON.parse fast.
    A header row costs a few bytes per table where an object per row would
    repeat every name in every row (6.3 MB instead of 3.7 MB at 20,000 findings).
    """
    strings: list[str] = []
    index: dict[str, int] = {}

    def s(value: str | None) -> int | None:
        if value is None or value == "":
            return None
        if value not in index:
            index[value] = len(strings)
            strings.append(str(value))
        return index[value]

    def encode(value: Any) -> Any:
        if isinstance(value, str):  # enum members too: their strings
            return s(value)
        if isinstance(value, bool):
            return 1 if value else 0
        if isinstance(value, tuple):  # a redirect chain: [[status, url], ...], or nothing
            return [[hop.status, s(hop.url)] for hop in value] if value else None
        return value  # a number or None

    def table(rows: Sequence[Any], row_type: type) -> dict[str, Any]:
        columns = [f.name for f in fields(row_type)]
        values: Callable[[Any], tuple[Any, ...]] = attrgetter(*columns)
        return {"columns": columns, "rows": [[encode(value) for value in values(row)] for row in rows]}

    return {
        "findings": table(findings, FindingRow),
        "hosts": table(hosts, HostRow),
        "documents": table(documents, DocumentRow),
        # Set last: every table above has interned its strings.
        "strings": strings,
        "severities": [severity.value for severity in SEVERITY_ORDER],
        "hasChanges": has_changes,
    }


def _changes_view(changes: Changes | None) -> ChangesView | None:
    if changes is None:
        return None
    return ChangesView(
        new=changes.new[:CHANGES_SHOWN],
        new_total=len(changes.new),
        fixed=changes.fixed[:CHANGES_SHOWN],
        fixed_total=len(changes.fixed),
    )


_VERDICT_TEXT = {Verdict.ERROR: "Failed", Verdict.WARNING: "Passed with warnings", Verdict.OK: "Passed"}


def _asset(name: str) -> str:
    return resources.files("auditor.report").joinpath("templates", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor.report", "templates"),
        autoescape=True,  # every template here is HTML
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly, not as an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["link"] = link
    return environment
