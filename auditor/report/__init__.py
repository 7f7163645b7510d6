"""Stage 6: the store -> one report model -> many formats. Renderers never fetch.

    model       the typed report model (Report and its records); report.json is its `to_json`
    markdown    report.md: a CI job summary or PR comment
    html        report.html: one self-contained page (templates/)
    junit       junit.xml: a testsuite per document, a testcase per reference and rule
    github      GitHub Actions: workflow-command annotations and the step summary

`build_report` reads a run back from SQLite into a `Report`; every renderer
takes that model and returns text, so `auditor report` can re-render any
stored run offline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auditor.errors import ReportError
from auditor.report.model import Report
from auditor.store import Store

__all__ = ["FORMATS", "Report", "build_report", "render_json", "write_reports"]

FORMATS = ("json", "md", "html", "junit")


def build_report(store: Store, run_id: int) -> Report:
    previous = store.previous_run_id(run_id)
    return Report.from_store(
        store.run(run_id),
        store.findings(run_id),
        store.checks(run_id).values(),
        store.links(run_id),
        previous_run=previous,
        previous_findings=store.findings(previous) if previous else (),
    )


def render_json(report: Report) -> str:
    return report.to_json()


def _renderers() -> dict[str, tuple[str, Callable[[Report], str]]]:
    # Imported lazily: reading a report model should not load Jinja2 and the templates.
    from auditor.report import html, junit, markdown

    return {
        "json": ("report.json", render_json),
        "md": ("report.md", markdown.render_markdown),
        "html": ("report.html", html.render_html),
        "junit": ("junit.xml", junit.render_junit),
    }


def write_reports(report: Report, out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
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
        run_id = report.run.id
        raise ReportError(
            f"cannot write reports to {out}: {exc.strerror or exc} (run {run_id} is stored; "
            f"'auditor report --run {run_id}' renders it again)"
        ) from exc
    return written
