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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from auditor.errors import ReportError
from auditor.forked import ForkedChild, can_fork
from auditor.report.model import Report
from auditor.store import Store

__all__ = ["FORMATS", "Report", "build_report", "render_json", "write_json", "write_reports"]

FORMATS = ("json", "md", "html", "junit")


def build_report(store: Store, run_id: int) -> Report:
    previous = store.previous_run_id(run_id)
    return Report.from_store(
        store.run(run_id),
        store.findings(run_id),
        store.reported_checks(run_id),
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
    """Render and write each format as it is made; an unwritable --out is the user's to fix (ReportError).

    On a large run the formats that read every reference are written side by side, each in a
    process of its own (see `_side_by_side`).
    """
    writers = _writers()
    try:
        out.mkdir(parents=True, exist_ok=True)
        apart = _side_by_side(report, formats)
        children = [_writing_child(report, out, fmt, writers[fmt]) for fmt in apart]
        try:
            for fmt in formats:
                if fmt not in apart:
                    _write_file(report, out, *writers[fmt])
        finally:
            failures = [_failure_of(child) for child in children]
        for failure in failures:
            if failure is not None:
                raise failure
    except OSError as exc:
        run_id = report.run.id
        raise ReportError(
            f"cannot write reports to {out}: {exc.strerror or exc} (run {run_id} is stored; "
            f"'auditor report --run {run_id}' renders it again)"
        ) from exc
    return {fmt: out / writers[fmt][0] for fmt in formats}


def _write_file(report: Report, out: Path, filename: str, write: Writer) -> None:
    path = out / filename
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", buffering=_WRITE_BUFFER) as handle:
        write(report, handle)
    tmp.replace(path)  # a reader never sees half a report


# Reports of large runs are hundreds of megabytes: written 8 KiB at a time, the system calls alone cost
# a second and more of CPU per file.
_WRITE_BUFFER = 1 << 20
# The formats that read every reference, and how many references make a process each worth it.
_STREAMING = ("json", "junit", "html")
SIDE_BY_SIDE_REFERENCES = 20_000


def _side_by_side(report: Report, formats: tuple[str, ...]) -> tuple[str, ...]:
    """The formats to write in child processes, at once: a large run, where forking may (forked.py).

    Each format reads the references from the store on its own, so they are independent; the
    children share the parent's report model.
    """
    apart = tuple(fmt for fmt in formats if fmt in _STREAMING)
    if len(apart) < 2 or len(report.references) < SIDE_BY_SIDE_REFERENCES or not can_fork():
        return ()
    return apart


def _writing_child(report: Report, out: Path, fmt: str, writer: tuple[str, Writer]) -> ForkedChild[None]:
    def write() -> Iterator[None]:
        _write_file(report, out, *writer)
        return iter(())

    return ForkedChild(f"writing the {fmt} report", write)


def _failure_of(child: ForkedChild[None]) -> BaseException | None:
    try:
        for _ in child.results():
            pass
    except (OSError, RuntimeError) as failure:
        return failure
    return None
