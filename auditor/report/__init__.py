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

import ctypes
import io
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

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
        children = [_ReportChild(report, out, fmt, writers[fmt]) for fmt in apart]
        try:
            for fmt in formats:
                if fmt not in apart:
                    _write_file(report, out, *writers[fmt])
        finally:
            failures = [child.wait() for child in children]
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
    with tmp.open("w", encoding="utf-8") as handle:
        write(report, handle)
    tmp.replace(path)  # a reader never sees half a report


# The formats that read every reference, and how many references make a process each worth it.
_STREAMING = ("json", "junit", "html")
SIDE_BY_SIDE_REFERENCES = 100_000


def _side_by_side(report: Report, formats: tuple[str, ...]) -> tuple[str, ...]:
    """The formats to write in child processes, at once: a large run on Linux with cores to spare.

    Each format reads the references from the store on its own, so they are independent; the
    children are forked from this process (they share its report model, nothing is sent) and
    die with it (a second Ctrl-C ends everything at once). Only from a process of one thread:
    forking one with others (auditor serve) could copy a lock another thread holds.
    """
    apart = tuple(fmt for fmt in formats if fmt in _STREAMING)
    if (
        len(apart) < 2
        or len(report.references) < SIDE_BY_SIDE_REFERENCES
        or (os.cpu_count() or 1) < 2
        or not _single_threaded()
        or not _can_die_with_parent()
    ):
        return ()
    return apart


class _ReportChild:
    """One format written by a forked child; `wait` returns what the child raised."""

    def __init__(self, report: Report, out: Path, fmt: str, writer: tuple[str, Writer]) -> None:
        self.fmt = fmt
        parent = os.getpid()
        self.result, sender = multiprocessing.get_context("fork").Pipe(duplex=False)

        def run() -> None:
            # The parent decides what a signal means (it rewrites the reports as interrupted); the
            # child ends when the parent does.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _die_with_parent()
            if os.getppid() != parent:
                return
            try:
                _write_file(report, out, *writer)
            except BaseException as exc:  # sent to the parent, which raises it
                sender.send(exc if isinstance(exc, OSError) else RuntimeError(f"{fmt}: {exc!r}"))
            else:
                sender.send(None)

        self.process = multiprocessing.get_context("fork").Process(target=run, name=f"auditor report {fmt}")
        self.process.start()
        sender.close()

    def wait(self) -> BaseException | None:
        try:
            failure: BaseException | None = self.result.recv()
        except EOFError:
            failure = RuntimeError(f"writing the {self.fmt} report: the process ended without a word")
        self.process.join()
        self.result.close()
        return failure


_PR_SET_PDEATHSIG = 1


def _single_threaded() -> bool:
    return threading.active_count() == 1


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _can_die_with_parent() -> bool:
    return sys.platform == "linux" and hasattr(_libc(), "prctl")


def _die_with_parent() -> None:
    """SIGKILL this process when its parent ends (Linux prctl PR_SET_PDEATHSIG)."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
