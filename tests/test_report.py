"""The report model: report.json stays byte-for-byte what it was, for new and old databases.

`build_golden_store` writes three runs through the Store API (every shape a
row can take: a redirect chain, an image check, a page head, a finding with
no details, unknown expected/actual sides, hostile and non-ASCII text, an
interrupted lint run over another corpus). The golden files under
tests/golden/ were rendered from such a store by the code before the report
model was typed (commit bc91d43), as were report.md, junit.xml and the GitHub
annotations; they must never be regenerated to make a test pass. (They were rendered once
more by that same old code when the typed store arrived, because the first
input held a page head no crawler writes: a partial mapping with a list for
og:image; a head is now a PageHead record, so only the full shape exists.)
tests/golden/old.sqlite is that store as the code then wrote it.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any, TextIO

import pytest
from conftest import make_url

import auditor.forked
import auditor.report
from auditor.corpus import Document
from auditor.errors import DatabaseError, ReportError
from auditor.model import (
    Check,
    Code,
    DateSource,
    Evidence,
    Finding,
    Hop,
    Kind,
    LinkRef,
    Mode,
    PageHead,
    Reason,
    RunStatus,
    Severity,
)
from auditor.report import Report, build_report, render_json, write_reports
from auditor.report.github import github_annotations
from auditor.report.junit import render_junit
from auditor.report.markdown import render_markdown
from auditor.report.model import References, StoredReferences, json_text
from auditor.store import CONTENTS, FINDINGS, LINKS, Store

GOLDEN = Path(__file__).resolve().parent / "golden"
RUN_TIMES = {
    1: ("2026-11-25T10:00:00.000+00:00", "2026-11-25T10:00:04.250+00:00"),
    2: ("2026-11-26T10:00:00.000+00:00", "2026-11-26T10:01:02.125+00:00"),
    3: ("2026-11-27T10:00:00.000+00:00", "2026-11-27T10:00:00.500+00:00"),
}
HOSTILE = '<script>alert("x")</script> & é 😀 \x1b[31m|`*'


def _links(document: str) -> list[dict[str, Any]]:
    return [
        {
            "document": document,
            "item": "",
            "field": "webUrl",
            "line": 3,
            "kind": "page",
            "url": "https://news.example/a",
            "normalized_url": "https://news.example/a",
        },
        {
            "document": document,
            "item": "",
            "field": "ampWebUrl",
            "line": 4,
            "kind": "amp",
            "url": "https://news.example/a?amp",
            "normalized_url": "https://news.example/a?amp",
        },
        {
            "document": document,
            "item": "",
            "field": "images[0].url",
            "line": 7,
            "kind": "image",
            "url": "https://img.example/A.png",
            "normalized_url": "https://img.example/A.png",
            "declared_width": 1200,
            "declared_height": 630,
        },
        {
            "document": document,
            "item": "related[0]",
            "field": "related[0].webUrl",
            "line": 12,
            "kind": "page",
            "url": "HTTPS://Gone.Example/x",
            "normalized_url": "https://gone.example/x",
        },
    ]


def _checks(run: int) -> list[dict[str, Any]]:
    return [
        {
            "url": "https://news.example/a",
            "kind": "page",
            "ok": 1,
            "status": 200,
            "reason": None,
            "message": None,
            "final_url": "https://news.example/final",
            "content_type": "text/html; charset=utf-8",
            "elapsed_ms": 120 + run,
            "checked_at": f"2026-11-2{4 + run}T10:00:01.000+00:00",
            "attempts": 1,
            "redirects": [{"status": 301, "url": "https://news.example/a"}],
            "bytes_read": 2048,
            "head": {
                "amphtml": "https://news.example/a?amp",
                "canonical": None,
                "title": f"Big News {HOSTILE}",
                "og_title": None,
                "og_image": None,
                "og_image_width": None,
                "og_image_height": None,
                "published_time": None,
            },
        },
        {
            "url": "https://news.example/a?amp",
            "kind": "amp",
            "ok": 1,
            "status": 200,
            "elapsed_ms": 80,
            "checked_at": f"2026-11-2{4 + run}T10:00:01.500+00:00",
            "attempts": 2,
            "redirects": [],
            "bytes_read": 512,
        },
        {
            "url": "https://img.example/A.png",
            "kind": "image",
            "ok": 1,
            "status": 206,
            "content_type": "image/png",
            "elapsed_ms": 30,
            "checked_at": f"2026-11-2{4 + run}T10:00:02.000+00:00",
            "attempts": 1,
            "redirects": [],
            "bytes_read": 33,
            "width": 120,
            "height": 50,
            "image_format": "png",
        },
        {
            "url": "https://gone.example/x",
            "kind": "page",
            "ok": 0,
            "status": None,
            "reason": "dns",
            "message": "[Errno -2] Name or service not known",
            "elapsed_ms": 5,
            "checked_at": f"2026-11-2{4 + run}T10:00:03.000+00:00",
            "attempts": 1,
            "redirects": [],
            "bytes_read": 0,
        },
    ]


def _findings(run: int, document: str, broken: str) -> list[dict[str, Any]]:
    live = {"reason": "ok", "status": 200, "final_url": "https://news.example/final"}
    findings = [
        {
            "code": "redirect",
            "severity": "warning",
            "document": document,
            "field": "webUrl",
            "line": 3,
            "url": "https://news.example/a",
            "message": "permanently redirected: update the metadata to https://news.example/final",
            "expected": "https://news.example/final",
            "actual": "https://news.example/a",
            "details": {**live, "redirects": [{"status": 301, "url": "https://news.example/a"}]},
        },
        {
            "code": "image-size-mismatch",
            "severity": "error",
            "document": document,
            "field": "images[0].url",
            "line": 7,
            "url": "https://img.example/A.png",
            "message": "declared 1200x630, the image is 120x50",
            "expected": "120x50",
            "actual": "1200x630",
            "details": {"reason": "ok", "status": 206, "final_url": None, "redirects": []},
        },
        {
            "code": "dead-link",
            "severity": "error",
            "document": document,
            "field": "related[0].webUrl",
            "line": 12,
            "url": "HTTPS://Gone.Example/x",
            "message": "dead link: dns",
            "details": {"reason": "dns", "status": None, "final_url": None, "redirects": []},
        },
        {
            "code": "invalid-metadata",
            "severity": "error",
            "document": broken,
            "field": "",
            "line": None,
            "url": None,
            "message": "front matter is not valid YAML",
        },
    ]
    if run == 1:
        findings.append(
            {
                "code": "flaky-link",
                "severity": "warning",
                "document": document,
                "field": "ampWebUrl",
                "line": 4,
                "url": "https://news.example/a?amp",
                "message": "flipped between ok and failing",
                "details": {"history": "✓✗✓"},
            }
        )
        # Fixed in run 2, and listed in the store's order, which is not the report's.
        findings.append(
            {
                "code": "not-an-image",
                "severity": "error",
                "document": document,
                "field": "images[1].url",
                "line": 9,
                "url": "https://img.example/B.svg",
                "message": "not an image (text/html): no size within 2048 bytes",
                "details": {"reason": "ok", "status": 200, "final_url": None, "redirects": []},
            }
        )
    else:
        findings.append(
            {
                "code": "title-mismatch",
                "severity": "warning",
                "document": document,
                "field": "title",
                "line": 2,
                "url": None,
                "message": f"the page's title is {HOSTILE}",
                "expected": f"Big News {HOSTILE}",
                "actual": "Small news",
                "details": {},
            }
        )
        # Same severity, code, document and line as the dead link: the store's order breaks the tie.
        findings.append(
            {
                "code": "dead-link",
                "severity": "error",
                "document": document,
                "field": "related[0].originalUrl",
                "line": 12,
                "url": "https://gone.example/x",
                "message": "dead link: dns",
                "details": {"reason": "dns", "status": None, "final_url": None, "redirects": []},
            }
        )
    return findings


def _link(row: dict[str, Any]) -> LinkRef:
    return LinkRef(**{**row, "kind": Kind(row["kind"])})


def _check(row: dict[str, Any]) -> Check:
    head = row.get("head")
    return Check(
        **{
            **row,
            "kind": Kind(row["kind"]),
            "ok": bool(row["ok"]),
            "reason": None if row.get("reason") is None else Reason(row["reason"]),
            "redirects": tuple(Hop(**hop) for hop in row["redirects"]),
            "head": None if head is None else PageHead(**head),
        }
    )


def _finding(row: dict[str, Any]) -> Finding:
    details = row.get("details") or None
    if details is not None:
        details = Evidence(**{**details, "redirects": tuple(Hop(**hop) for hop in details.get("redirects", ()))})
    return Finding(**{**row, "code": Code(row["code"]), "severity": Severity(row["severity"]), "details": details})


def build_golden_store(path: Path) -> None:
    """The golden runs, written through the Store API as records (the rows above are their fields)."""
    store = Store(path)
    try:
        for run in (1, 2):
            run_id = store.start_run(
                mode=Mode.AUDIT,
                corpus=["corpus"],
                tool_version="0.1.0",
                config={"fail_on": "warning", "formats": ["json"]},
            )
            document, broken = "corpus/a.md", "corpus/é broken.md"
            documents = store.documents_writer(run_id)
            links = [LINKS.encode(_link(link)) for link in _links(document)]
            documents.add(document, CONTENTS.encode(Document(document, {"title": "Small news"}, {"title": 2})), links)
            documents.add(broken, CONTENTS.encode(Document(broken, None, {})), [])
            checks, findings = store.checks_writer(run_id), store.writer(FINDINGS, run_id)
            for check in _checks(run):
                checks.add(_check(check))
            for finding in _findings(run, document, broken):
                findings.add(_finding(finding))
            for writer in (documents, checks, findings):
                writer.flush()
            store.finish_run(run_id, status=RunStatus.FINISHED, documents=2, references=4, urls=4)
        run_id = store.start_run(mode=Mode.LINT, corpus=["other", "more"], tool_version="0.1.0", config={})
        documents = store.documents_writer(run_id)
        links = [LINKS.encode(_link(link)) for link in _links("other/b.md")]
        documents.add("other/b.md", CONTENTS.encode(Document("other/b.md", {"title": "B"}, {"title": 2})), links)
        documents.flush()
        store.finish_run(run_id, status=RunStatus.INTERRUPTED, documents=1, references=4, urls=4)
    finally:
        store.close()
    with sqlite3.connect(path) as connection:
        for run, (started, finished) in RUN_TIMES.items():
            connection.execute("update runs set started_at = ?, finished_at = ? where id = ?", [started, finished, run])
    connection.close()


def report_of(path: Path, run_id: int) -> Report:
    """The run's report, its store closed: the references are read after the writer is gone, as the
    pipeline's reports read them."""
    store = Store.open_existing(path)
    try:
        return build_report(store, run_id)
    finally:
        store.close()


def render(path: Path, run_id: int) -> str:
    return render_json(report_of(path, run_id))


@pytest.mark.parametrize("run_id", [1, 2, 3])
def test_report_json_is_byte_for_byte_the_golden_file(tmp_path: Path, run_id: int) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    expected = (GOLDEN / f"report-run{run_id}.json").read_text(encoding="utf-8")
    assert render(tmp_path / "golden.sqlite", run_id) == expected


@pytest.mark.parametrize("run_id", [1, 2, 3])
def test_a_database_written_by_the_old_code_still_renders(tmp_path: Path, run_id: int) -> None:
    old = tmp_path / "old.sqlite"
    old.write_bytes((GOLDEN / "old.sqlite").read_bytes())  # a copy: opening a store may migrate it
    expected = (GOLDEN / f"report-run{run_id}.json").read_text(encoding="utf-8")
    assert render(old, run_id) == expected


@pytest.mark.parametrize("run_id", [1, 2, 3])
def test_markdown_junit_and_annotations_are_byte_for_byte_the_golden_files(tmp_path: Path, run_id: int) -> None:
    old = tmp_path / "old.sqlite"
    old.write_bytes((GOLDEN / "old.sqlite").read_bytes())
    report = report_of(old, run_id)
    assert render_markdown(report) == (GOLDEN / f"report-run{run_id}.md").read_text(encoding="utf-8")
    assert render_junit(report) == (GOLDEN / f"junit-run{run_id}.xml").read_text(encoding="utf-8")
    annotations = "\n".join(github_annotations(report, limit=3)) + "\n"
    assert annotations == (GOLDEN / f"annotations-run{run_id}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("run_id", [1, 2, 3])
def test_stored_references_stream_as_the_same_records_held_in_memory_would(tmp_path: Path, run_id: int) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    report = report_of(tmp_path / "golden.sqlite", run_id)
    stored = report.references
    held = References.of(tuple(stored))
    assert len(stored) == len(held) == 4 and isinstance(stored, StoredReferences)
    assert list(stored.by_path()) == list(held.by_path())
    assert list(stored.by_document()) == list(held.by_document())
    assert list(stored.counts()) == list(held.counts())
    assert list(stored.cited_urls()) == list(held.cited_urls())
    # report.json written as it streams is what the whole model dumps
    assert render_json(report) == report.to_json()


@pytest.mark.parametrize(
    "value",
    [
        {"a": [], "b": {}, "c": [1, [2, []], {"d": None}], "e": (True, False), "f": HOSTILE + "\u2028\x00"},
        {3: "int key", 2.5: "float key", True: "bool key", None: "none key", "nan": math.nan},
        [math.inf, -math.inf, 0.1, -0.0, 10**30, Severity.ERROR, Kind.IMAGE],
        {"hop": Hop(status=301, url="https://x/"), "nested": [[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]},
        "plain",
        [],
    ],
)
@pytest.mark.parametrize("depth", [0, 2])
def test_json_text_is_what_json_dumps_writes_indented(value: Any, depth: int) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False, default=str).replace("\n", "\n" + "  " * depth)
    assert json_text(value, depth) == expected


def test_references_are_found_after_prune_moves_the_documents_they_share(tmp_path: Path) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    store = Store.open_existing(tmp_path / "golden.sqlite")
    try:
        assert store.run(2).documents_of == 1  # run 2 shares run 1's documents
        report = build_report(store, 2)
        before = tuple(report.references)
        store.prune([2, 3])  # run 2 takes the rows over
        assert store.run(2).documents_of is None
    finally:
        store.close()
    assert tuple(report.references) == before and len(before) == 4


def test_a_large_run_writes_its_formats_side_by_side_in_child_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    report = report_of(tmp_path / "golden.sqlite", 1)
    formats = ("json", "md", "html", "junit")
    write_reports(report, tmp_path / "one-by-one", formats)
    assert auditor.report._side_by_side(report, formats) == ()  # four references are no large run
    monkeypatch.setattr(auditor.report, "SIDE_BY_SIDE_REFERENCES", 1)
    monkeypatch.setattr(auditor.forked, "single_threaded", lambda: True)  # the test runner may have threads
    assert auditor.report._side_by_side(report, formats) == ("json", "html", "junit")
    real, writers = auditor.report.write_json, []

    def write_json(report: Report, out: TextIO) -> None:
        writers.append(os.getpid())  # in the child: the parent never sees it
        real(report, out)

    monkeypatch.setattr(auditor.report, "write_json", write_json)
    written = write_reports(report, tmp_path / "side-by-side", formats)
    assert writers == [] and set(written) == set(formats)
    for fmt, path in written.items():
        assert path.read_bytes() == (tmp_path / "one-by-one" / path.name).read_bytes(), fmt


def test_a_child_that_cannot_write_its_format_is_the_user_s_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    report = report_of(tmp_path / "golden.sqlite", 1)
    monkeypatch.setattr(auditor.report, "SIDE_BY_SIDE_REFERENCES", 1)
    monkeypatch.setattr(auditor.forked, "single_threaded", lambda: True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "junit.xml.tmp").mkdir()  # the child cannot open its file
    with pytest.raises(ReportError, match="cannot write reports to .*Is a directory"):
        write_reports(report, tmp_path / "out", ("json", "junit"))


def test_a_page_head_this_auditor_cannot_read_is_a_clear_error(tmp_path: Path) -> None:
    build_golden_store(tmp_path / "golden.sqlite")
    with sqlite3.connect(tmp_path / "golden.sqlite") as connection:
        changed = connection.execute(
            "update checks set head = json_set(head, '$.published_source', 'tea leaves') where head is not null"
        ).rowcount
    connection.close()
    assert changed
    store = Store.open_existing(tmp_path / "golden.sqlite")
    try:
        with pytest.raises(DatabaseError, match="page head's published_source this auditor does not know"):
            build_report(store, 1)
    finally:
        store.close()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"status": None, "ok": False, "error": "dns", "message": HOSTILE, "final_url": None, "elapsed_ms": None},
        {
            "redirects": [(301, "https://b.example/" + HOSTILE), (308, "https://c.example/")],
            "fetched_url": "https://m/",
        },
        {"head": {"title": HOSTILE, "og_image_width": 1200, "published_source": DateSource.JSON_LD}, "width": 3},
        {"error": "excluded", "attempts": 0, "bytes_read": None, "checked_at": None, "content_type": "text/html"},
    ],
)
def test_a_url_s_json_item_is_what_the_generic_dump_writes(fields: dict[str, Any]) -> None:
    url = make_url("https://a.example/é", **fields)
    assert url.json_item() == json_text(url.as_dict(), 2)
    assert json.loads(url.json_item()) == json.loads(json.dumps(url.as_dict(), default=str))
