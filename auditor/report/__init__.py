"""Stage 6: the store -> one report model -> many formats. Renderers never fetch.

    model       the typed report model (Report and its records); report.json is its `to_json`
    markdown    report.md: a CI job summary or PR comment
    html        report.html: one self-contained page (templates/)
    junit       junit.xml: a testsuite per document, a testcase per reference and rule
    github      GitHub Actions: workflow-command annotations and the step summary

`build_report` reads a run back from SQLite into a `Report` (its references
stay in the store, streamed to each format as it is written); every renderer
takes that model and writes text to a file (`write_*`) or returns it
(`render_*`), so `auditor report` can re-render any stored run offline.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from auditor.errors import ReportError
from auditor.report.model import Report
from auditor.store import Store

__all__ = ["FORMATS", "Report", "build_report", "render_json", "write_json", "write_reports"]

FORMATS = ("json", "md", "html", "junit")


def build_report(store: Store, run_id: int) -> Report:
    previous = store.previous_run_id(run_id)
    return Report.from_store(
        store.run(run_id),
        store.findings(run_id),
        store.checks(run_id).values(),
        store.reference_source(run_id),
        previous_run=previous,
        previous_findings=store.findings(previous) if previous else (),
    )


def write_json(report: Report, out: TextIO) -> None:
    report.write_json(out)


def render_json(report: Report) -> str:
    out = io.StringIO()
    write_json(report, out)
    return out.getvalue()


Writer = Callable[[Report, TextIO], None]


def _writers() -> dict[str, tuple[str, Writer]]:
    # Imported lazily: reading a report model should not load Jinja2 and the templates.
    from auditor.report import html, junit, markdown

    def write_markdown(report: Report, out: TextIO) -> None:
        out.write(markdown.render_markdown(report))  # bounded: at most MAX_BYTES

    return {
        "json": ("report.json", write_json),
        "md": ("report.md", write_markdown),
        "html": ("report.html", html.write_html),
        "junit": ("junit.xml", junit.write_junit),
    }


def write_reports(report: Report, out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """Render and write each format as it is made; an unwritable --out is the user's to fix (ReportError)."""
    written: dict[str, Path] = {}
    writers = _writers()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            filename, write = writers[fmt]
            path = out / filename
            tmp = path.with_suffix(path.suffix + ".tmp")
            with tmp.open("w", encoding="utf-8") as handle:
                write(report, handle)
            tmp.replace(path)  # a reader never sees half a report
            written[fmt] = path
    except OSError as exc:
        run_id = report.run.id
        raise ReportError(
            f"cannot write reports to {out}: {exc.strerror or exc} (run {run_id} is stored; "
            f"'auditor report --run {run_id}' renders it again)"
        ) from exc
    return written
