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
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import statistics
from collections import Counter, defaultdict
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from auditor.links import InvalidURL, url_host
from auditor.report import finding_key, verdict
from auditor.rules import liveness

TEMPLATE = "report.html.j2"
# Changes lists are shown in full up to this many rows; report.json has them all.
CHANGES_SHOWN = 1000
# Only absolute http(s) URLs without white space or control characters become
# links; anything else (javascript:, data:, relative, mangled) stays text.
_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
# Inline JSON: these never occur outside strings, so escaping them keeps the
# JSON valid while `</script>` and `<!--` cannot appear in the element.
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def render_html(report: dict[str, Any]) -> str:
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
            data=Markup(script_json(view["data"])),
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


def status_text(finding: dict[str, Any]) -> str:
    """The HTTP status, plus the reason when it says more: '404', 'dns', '200'."""
    status, reason = finding.get("status"), finding.get("reason")
    parts = [str(status)] if status is not None else []
    if reason and reason != "ok" and reason != f"http {status}":
        parts.append(str(reason))
    return " ".join(parts)


def build_view(report: dict[str, Any]) -> dict[str, Any]:
    """Everything the template and the script need, computed once."""
    changes = report.get("changes")
    new_keys = {finding_key(f) for f in changes["new"]} if changes else set()
    hosts_by_url: dict[str, str] = {}
    findings = []
    for finding in report["findings"]:
        url = finding.get("url")
        if url not in hosts_by_url:
            hosts_by_url[url] = host_of(url)
        findings.append(
            {
                **finding,
                "host": hosts_by_url[url],
                "where": f"{finding['document']}:{finding['line']}" if finding.get("line") else finding["document"],
                "status_text": status_text(finding),
                "is_new": finding_key(finding) in new_keys,
            }
        )
    hosts = host_rows(report)
    documents = document_rows(report)
    by_code_severity = {f["code"]: f["severity"] for f in report["findings"]}
    new_by_code = Counter(f["code"] for f in changes["new"]) if changes else Counter()
    codes = [
        {"code": code, "severity": by_code_severity.get(code, ""), "count": count, "new": new_by_code.get(code, 0)}
        for code, count in report["summary"]["by_code"].items()
    ]
    return {
        "findings": findings,
        "hosts": hosts,
        "documents": documents,
        "codes": codes,
        "changes": _changes_view(changes),
        "verdict": _verdict(report),
        "data": _script_data(findings, hosts, documents, has_changes=changes is not None),
    }


def host_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per host: unique URLs cited, how their checks went, and median latency."""
    urls_by_host: dict[str, set[str]] = defaultdict(set)
    for ref in report.get("references") or []:
        urls_by_host[_normalized_host(ref["normalized_url"])].add(ref["normalized_url"])
    checks_by_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in report["urls"]:
        host = _normalized_host(check["url"])
        checks_by_host[host].append(check)
        urls_by_host[host].add(check["url"])
    rows = []
    for host, urls in urls_by_host.items():
        checks = checks_by_host.get(host, [])
        verdicts = Counter(liveness({"status": c["status"], "reason": c["error"]})[0] for c in checks)
        latencies = [c["elapsed_ms"] for c in checks if c.get("elapsed_ms") is not None]
        rows.append(
            {
                "host": host,
                "urls": len(urls),
                "checked": len(checks),
                "ok": verdicts.get(None, 0),
                "dead": verdicts.get("dead-link", 0),
                "blocked": verdicts.get("link-blocked", 0),
                "median_ms": round(statistics.median(latencies)) if latencies else None,
            }
        )
    rows.sort(key=lambda r: (-r["dead"], -r["blocked"], -r["urls"], r["host"]))
    return rows


def document_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per document: references cited and findings by severity and code."""
    references = Counter(ref["document"] for ref in report.get("references") or [])
    severities: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for finding in report["findings"]:
        severities[finding["document"]][finding["severity"]] += 1
        codes[finding["document"]][finding["code"]] += 1
    rows = [
        {
            "document": document,
            "references": references.get(document, 0),
            "errors": severities[document]["error"],
            "warnings": severities[document]["warning"],
            "codes": ", ".join(f"{code} ×{n}" if n > 1 else code for code, n in sorted(codes[document].items())),
        }
        for document in set(references) | set(codes)
    ]
    rows.sort(key=lambda r: (-r["errors"], -r["warnings"], r["document"]))
    return rows


def _script_data(
    findings: list[dict[str, Any]], hosts: list[dict[str, Any]], documents: list[dict[str, Any]], *, has_changes: bool
) -> dict[str, Any]:
    """Compact rows for the script: every string once, rows of indexes into it.

    At 50,000 findings the same documents, codes, hosts and URLs repeat
    thousands of times; interning keeps the page small and JSON.parse fast.
    """
    strings: list[str] = []
    index: dict[str, int] = {}

    def s(value: Any) -> int | None:
        if value is None or value == "":
            return None
        text = str(value)
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    rows = [
        [
            s(f["severity"]),
            s(f["code"]),
            s(f["document"]),
            f.get("line"),
            s(f["field"]),
            s(f.get("url")),
            s(f["host"]),
            s(f["status_text"]),
            s(f["message"]),
            s(f.get("expected")),
            s(f.get("actual")),
            s(f.get("final_url")),
            [[hop.get("status"), s(hop.get("url"))] for hop in f["redirects"]] if f.get("redirects") else None,
            1 if f["is_new"] else 0,
        ]
        for f in findings
    ]
    return {
        "strings": strings,
        "findings": rows,
        "hosts": [
            [h["host"], h["urls"], h["checked"], h["ok"], h["dead"], h["blocked"], h["median_ms"]] for h in hosts
        ],
        "documents": [[s(d["document"]), d["references"], d["errors"], d["warnings"], d["codes"]] for d in documents],
        "hasChanges": has_changes,
    }


def _changes_view(changes: dict[str, Any] | None) -> dict[str, Any] | None:
    if changes is None:
        return None
    return {
        "new": changes["new"][:CHANGES_SHOWN],
        "new_total": len(changes["new"]),
        "fixed": changes["fixed"][:CHANGES_SHOWN],
        "fixed_total": len(changes["fixed"]),
    }


_VERDICT_TEXT = {"error": "Failed", "warning": "Passed with warnings", "ok": "Passed"}


def _verdict(report: dict[str, Any]) -> dict[str, str]:
    level = verdict(report["summary"])
    return {"level": level, "text": _VERDICT_TEXT[level]}


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
