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
import heapq
import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any, TextIO
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from auditor.links import InvalidURL, url_host
from auditor.model import Code, Hop, Severity
from auditor.report.model import (
    SEVERITY_ORDER,
    Changes,
    Report,
    ReportFinding,
    UrlResult,
    Verdict,
    describe_lookups,
)
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
    fetched_url: str | None  # where a --remap rule sent the request instead
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
    archived_url: str | None  # --suggest: the Wayback Machine's snapshot of the URL
    archived_at: str | None  # when it was taken, ISO 8601

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}" if self.line else self.document


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRow:
    """Per host: unique URLs cited, how their checks went, and median latency."""

    host: str
    urls: int
    checked: int
    excluded: int  # left out by --exclude/--include: neither checked nor failed
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


class DocumentRows:
    """The documents table, in its order (errors, then warnings, descending; then by path), made
    anew each time it is iterated: a run of 100,000 documents would hold them all twice (the
    script's data and the <noscript> table) otherwise.

    Documents with findings are few and in memory; the rest stream from the report's references,
    which come by path already.
    """

    def __init__(self, report: Report) -> None:
        self.references = report.references
        self.severities: dict[str, Counter[Severity]] = defaultdict(Counter)
        self.codes: dict[str, Counter[Code]] = defaultdict(Counter)
        for finding in report.findings:
            self.severities[finding.document][finding.severity] += 1
            self.codes[finding.document][finding.code] += 1
        self.flagged = {d for d, found in self.severities.items() if found[Severity.ERROR] or found[Severity.WARNING]}
        self.length: int | None = None
        self.flagged_rows: list[DocumentRow] | None = None

    def __len__(self) -> int:
        if self.length is None:
            self.length = sum(1 for _ in self)
        return self.length

    def __iter__(self) -> Iterator[DocumentRow]:
        flagged = self._flagged_rows()
        yield from flagged
        count = len(flagged)
        # The rest have no errors and no warnings: by path, references or findings (of other severities) or both.
        unflagged = sorted(d for d in self.codes if d not in self.flagged)
        cited = ((d, n) for d, n in self.references.counts() if d not in self.flagged)
        if not unflagged:  # the usual case: every document with findings has an error or a warning
            for document, references in cited:
                yield self._row(document, references)
                count += 1
        else:
            merged = heapq.merge(cited, ((d, 0) for d in unflagged), key=itemgetter(0))
            for document, group in groupby(merged, key=itemgetter(0)):
                yield self._row(document, sum(n for _, n in group))
                count += 1
        self.length = count

    def _flagged_rows(self) -> list[DocumentRow]:
        """The documents with errors or warnings, first: few, so made once (one pass over the counts)."""
        if self.flagged_rows is None:
            flagged: dict[str, int] = dict.fromkeys(self.flagged, 0)
            if flagged:
                for document, references in self.references.counts():
                    if document in flagged:
                        flagged[document] = references
            rows = (self._row(d, n) for d, n in flagged.items())
            self.flagged_rows = sorted(rows, key=lambda r: (-r.errors, -r.warnings, r.document))
        return self.flagged_rows

    def _row(self, document: str, references: int) -> DocumentRow:
        severities, codes = self.severities.get(document, Counter()), self.codes.get(document, Counter())
        return DocumentRow(
            document=document,
            references=references,
            errors=severities[Severity.ERROR],
            warnings=severities[Severity.WARNING],
            codes=", ".join(f"{code} ×{n}" if n > 1 else code for code, n in sorted(codes.items())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """Everything the template and the script need, computed once (the documents: as they are read)."""

    findings: list[FindingRow]
    hosts: list[HostRow]
    documents: DocumentRows
    codes: list[CodeRow]
    changes: ChangesView | None
    verdict: Verdict
    verdict_text: str
    archive_text: str | None  # --suggest only: how the archive lookups went

    def data(self) -> Iterator[str]:
        """The script's data as JSON text, safe inside its <script> element, in pieces as they are made."""
        return script_data(self.findings, self.hosts, self.documents, has_changes=self.changes is not None)


def render_html(report: Report) -> str:
    return "".join(_generate(report))


def write_html(report: Report, out: TextIO) -> None:
    """report.html, written as the template makes it."""
    pending: list[str] = []
    for piece in _generate(report):
        pending.append(piece)
        if len(pending) >= 4096:
            out.write("".join(pending))
            pending.clear()
    out.write("".join(pending))


def _generate(report: Report) -> Iterator[str]:
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
        .generate(
            report=report,
            view=view,
            csp=csp,
            css=Markup(css),
            script=Markup(script),
            data=(Markup(piece) for piece in view.data()),
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


def archived_link(url: str | None, archived_at: str | None) -> Markup:
    """ "archived copy (2013-09-19)" as an escaped link to the snapshot; escaped text if it is no http(s) URL."""
    if not url:
        return Markup("")
    label = "archived copy" + (f" ({archived_at[:10]})" if archived_at else "")
    if is_web_url(url):
        return Markup('<a class="archived" href="{}" rel="noopener noreferrer" target="_blank">{}</a>').format(
            url, label
        )
    return escape(f"{label}: {url}")


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


# A normalised URL's host, the way nearly all of them look (lower case, maybe a port): no urlsplit needed.
_PLAIN_HOST = re.compile(r"[a-z][a-z0-9+.-]*://([a-z0-9.-]+)(?::[0-9]+)?(?:[/?#]|$)")


def _normalized_host(url: str) -> str:
    """The host of an already normalised URL (references and checks carry those)."""
    plain = _PLAIN_HOST.match(url)
    if plain:
        return plain[1]
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
                fetched_url=finding.fetched_url,
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
                archived_url=finding.archived.snapshot_url if finding.archived else None,
                archived_at=finding.archived.archived_at if finding.archived else None,
            )
        )
    hosts = host_rows(report)
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
        documents=DocumentRows(report),
        codes=codes,
        changes=_changes_view(changes),
        verdict=verdict,
        verdict_text=_VERDICT_TEXT[verdict],
        archive_text=None if report.summary.archive is None else describe_lookups(report.summary.archive),
    )


def _liveness(url: UrlResult) -> Code | None:
    """The rules' verdict on a check (their one closed set of outcomes), or None when it is alive."""
    code, _reason = status_verdict(url.status, url.error, ok=url.ok)
    return None if code is None else Code(code)


def host_rows(report: Report) -> list[HostRow]:
    """Per host: unique URLs cited, how their checks went, and median latency.

    Each checked URL counts once, and so does each cited URL without a result (an interrupted run):
    of the cited URLs, streamed, only a count per host is kept.
    """
    checks_by_host: dict[str, list[UrlResult]] = defaultdict(list)
    urls_by_host: Counter[str] = Counter()
    checked: set[str] = set()
    for check in report.urls:
        host = _normalized_host(check.url)
        checks_by_host[host].append(check)
        if check.url not in checked:
            checked.add(check.url)
            urls_by_host[host] += 1
    for url in report.references.cited_urls():
        if url not in checked:
            urls_by_host[_normalized_host(url)] += 1
    rows = []
    for host, urls in urls_by_host.items():
        results = checks_by_host.get(host, [])
        checks = [c for c in results if not c.excluded]
        verdicts = Counter(_liveness(c) for c in checks)
        latencies = [c.elapsed_ms for c in checks if c.elapsed_ms is not None]
        rows.append(
            HostRow(
                host=host,
                urls=urls,
                checked=len(checks),
                excluded=len(results) - len(checks),
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
    return list(DocumentRows(report))


def script_data(
    findings: Sequence[FindingRow], hosts: Sequence[HostRow], documents: Iterable[DocumentRow], *, has_changes: bool
) -> Iterator[str]:
    """Compact tables for the script: a header of column names, rows of values, every string once;
    as JSON text (`script_json`), in pieces: the documents table streams.

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

    def encoded(rows: Iterable[Any], row_type: type) -> Iterator[list[Any]]:
        values: Callable[[Any], tuple[Any, ...]] = attrgetter(*[f.name for f in fields(row_type)])
        for row in rows:
            yield [encode(value) for value in values(row)]

    def table(rows: Sequence[Any], row_type: type) -> dict[str, Any]:
        return {"columns": [f.name for f in fields(row_type)], "rows": list(encoded(rows, row_type))}

    yield '{"findings":' + script_json(table(findings, FindingRow))
    yield ',"hosts":' + script_json(table(hosts, HostRow))
    yield ',"documents":{"columns":' + script_json([f.name for f in fields(DocumentRow)]) + ',"rows":['
    batch: list[str] = []
    separator = ""
    for row in encoded(documents, DocumentRow):
        batch.append(script_json(row))
        if len(batch) >= 1000:
            yield separator + ",".join(batch)
            batch.clear()
            separator = ","
    if batch:
        yield separator + ",".join(batch)
    # Last: every table above has interned its strings.
    severities = [severity.value for severity in SEVERITY_ORDER]
    yield "]}" + f',"strings":{script_json(strings)},"severities":{script_json(severities)},"hasChanges":'
    yield script_json(has_changes) + "}"


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
    environment.globals["archived_link"] = archived_link
    return environment
