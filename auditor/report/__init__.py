"""Stage 6: the store -> one report model -> many formats. Renderers never fetch.

`build_report` reads a run back from SQLite into the JSON-shaped model of the
design brief; every renderer takes that model and returns text, so
`auditor report` can re-render any stored run offline.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.errors import ReportError
from auditor.store import Store

FINDING_KEY = ("code", "document", "field", "url")
SEVERITY_ORDER = {"error": 0, "warning": 1}


def build_report(store: Store, run_id: int) -> dict[str, Any]:
    run = store.run(run_id)
    findings = [_finding(row) for row in store.findings(run_id)]
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["code"], f["document"], f["line"] or 0))
    urls = [_url(row) for row in sorted(store.checks(run_id).values(), key=lambda r: r["url"])]
    previous = store.previous_run_id(run_id)
    changes = _changes(findings, [_finding(r) for r in store.findings(previous)]) if previous else None
    by_severity = Counter(f["severity"] for f in findings)
    summary = {
        "documents": run.get("documents") or 0,
        "references": run.get("references") or 0,
        "urls": run.get("urls") or 0,
        "checked": len(urls),
        "findings": len(findings),
        "errors": by_severity.get("error", 0),
        "warnings": by_severity.get("warning", 0),
        "by_code": dict(sorted(Counter(f["code"] for f in findings).items())),
        "by_reason": dict(sorted(Counter(u["error"] for u in urls if u["error"]).items())),
    }
    return {
        "run": {
            "id": run["id"],
            "mode": run.get("mode"),
            "status": run.get("status"),
            "started_at": run.get("started_at"),
            "finished_at": run.get("finished_at"),
            "duration_s": _duration(run.get("started_at"), run.get("finished_at")),
            "corpus": run.get("corpus") or [],
            "tool_version": run.get("tool_version"),
            "fail_on": (run.get("config") or {}).get("fail_on", "error"),
            "previous_run": previous,
        },
        "summary": summary,
        "changes": changes,
        "findings": findings,
        "urls": urls,
        # Every link reference, so renderers can show each document and each
        # citation (JUnit's testcases, the HTML per-document view).
        "references": [_reference(row) for row in store.links(run_id)],
    }


def _finding(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details") or {}
    return {
        "code": row["code"],
        "severity": row["severity"],
        "document": row["document"],
        "field": row["field"],
        "line": row["line"],
        "url": row["url"],
        "message": row["message"],
        "expected": row.get("expected"),
        "actual": row.get("actual"),
        "reason": details.get("reason"),
        "status": details.get("status"),
        "final_url": details.get("final_url"),
        "redirects": details.get("redirects") or [],
    }


def _reference(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "document": row["document"],
        "field": row["field"],
        "line": row["line"],
        "kind": row["kind"],
        "url": row["url"],
        "normalized_url": row["normalized_url"],
    }


def _url(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": row["url"],
        "kind": row["kind"],
        "status": row["status"],
        "ok": bool(row["ok"]),
        "error": row["reason"],
        "message": row["message"],
        "final_url": row["final_url"],
        "redirects": row.get("redirects") or [],
        "content_type": row["content_type"],
        "width": row["width"],
        "height": row["height"],
        "image_format": row["image_format"],
        "bytes_read": row["bytes_read"],
        "elapsed_ms": row["elapsed_ms"],
        "attempts": row["attempts"],
        "checked_at": row["checked_at"],
        "head": row.get("head"),
    }


def finding_key(finding: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a finding 'the same' across runs: new and fixed are computed on it."""
    return tuple(finding[k] for k in FINDING_KEY)


def verdict(summary: dict[str, Any]) -> str:
    """The run's one-word verdict for every renderer: 'error', 'warning' or 'ok'."""
    if summary["errors"]:
        return "error"
    return "warning" if summary["warnings"] else "ok"


def _changes(current: list[dict[str, Any]], previous: list[dict[str, Any]]) -> dict[str, Any]:
    before = {finding_key(f) for f in previous}
    now = {finding_key(f) for f in current}
    return {
        "new": [f for f in current if finding_key(f) not in before],
        "fixed": [f for f in previous if finding_key(f) not in now],
    }


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


def _renderers() -> dict[str, tuple[str, Callable[[dict[str, Any]], str]]]:
    # Imported lazily: reading a report model should not load Jinja2 and the templates.
    from auditor.report import html, junit, markdown

    return {
        "json": ("report.json", render_json),
        "md": ("report.md", markdown.render_markdown),
        "html": ("report.html", html.render_html),
        "junit": ("junit.xml", junit.render_junit),
    }


FORMATS = ("json", "md", "html", "junit")


def write_reports(report: dict[str, Any], out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """Render and write each format; an unwritable --out is the user's to fix (ReportError)."""
    written: dict[str, Path] = {}
    renderers = _renderers()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            filename, render = renderers[fmt]
            path = out / filename
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(render(report), encoding="utf-8")
            tmp.replace(path)  # a reader never sees half a report
            written[fmt] = path
    except OSError as exc:
        raise ReportError(
            f"cannot write reports to {out}: {exc.strerror or exc} (run {report['run']['id']} is stored; "
            f"'auditor report --run {report['run']['id']}' renders it again)"
        ) from exc
    return written
