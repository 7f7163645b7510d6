"""The report model: one run read back from the store, as typed, frozen records.

    Report          a run's whole report: what report.json holds
    RunInfo         the run: mode, status, times, corpus, --fail-on, previous run
    Summary         the counts every renderer starts with
    Changes         findings new and fixed since the previous run over the same corpus
    ReportFinding   one finding as reported (its check's reason, status and redirects folded in,
                    and with --suggest the archived copy of a dead link)
    UrlResult       one checked URL
    Reference       one cited URL (a link reference)
    References      all of a run's references: read from the store each time they are needed

Every renderer (report.json, report.md, report.html, junit.xml, GitHub
annotations, the CLI's lines) reads these records; none reads a dict.
`as_dict` is the one path to report.json's shape and key order; enum members
are written as their strings, so report.json is what it always was.

`Report.from_store` and the `_*_from_store` functions below are the only
place that reads the store's records (Run, Finding, LinkRef, and the rows of
`Store.reported_checks`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import groupby
from json.encoder import encode_basestring
from operator import attrgetter
from typing import Any, NamedTuple, TextIO, TypeVar

from auditor.errors import DatabaseError
from auditor.model import (
    ArchivedCopy,
    ArchiveLookups,
    Code,
    Evidence,
    FailOn,
    Finding,
    Hop,
    Kind,
    LinkRef,
    Mode,
    PageHead,
    Reason,
    Run,
    RunStatus,
    Severity,
)
from auditor.store import CitedRow, ReferenceSource, ReportedCheck

# The report's order: errors first, then warnings, then anything else.
SEVERITY_ORDER: tuple[Severity, ...] = (Severity.ERROR, Severity.WARNING)
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}
# The reason the rules give a finding whose check answered (a redirect, an image that is not
# the declared size): the link is alive, so no failure reason is worth showing.
ALIVE = "ok"


class Verdict(StrEnum):
    """The run's one word for every renderer."""

    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    id: int
    mode: Mode
    status: RunStatus
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    corpus: tuple[str, ...]
    tool_version: str | None
    fail_on: FailOn
    previous_run: int | None

    @property
    def finished(self) -> bool:
        return self.status is RunStatus.FINISHED

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode.value,
            "status": self.status.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "corpus": list(self.corpus),
            "tool_version": self.tool_version,
            "fail_on": self.fail_on.value,
            "previous_run": self.previous_run,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFinding:
    code: Code
    severity: Severity
    document: str
    field: str
    line: int | None
    url: str | None
    message: str
    expected: str | None = None
    actual: str | None = None
    # From the check of the URL, for link findings: "http 404", "dns", ALIVE...
    reason: str | None = None
    status: int | None = None
    fetched_url: str | None = None  # what a --remap rule had fetched instead of `url`
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    first_seen: str | None = None  # when the run that first reported it (with no gap since) started
    failing_runs: int | None = None  # consecutive runs that reported it, this one included
    archived: ArchivedCopy | None = None  # --suggest: the Wayback Machine's answer for a dead link's URL

    @property
    def key(self) -> tuple[Code, str, str, str | None]:
        """What makes a finding 'the same' across runs: new and fixed are computed on it."""
        return (self.code, self.document, self.field, self.url)

    @property
    def where(self) -> str:
        """`document:line`, or the document alone when the line is not known."""
        return f"{self.document}:{self.line}" if self.line else self.document

    @property
    def failure_reason(self) -> str | None:
        """The check's reason when the link failed; None for a live link or a metadata finding."""
        return None if self.reason == ALIVE else self.reason

    @property
    def archived_copy(self) -> str | None:
        """The suggested archived copy in words, "URL (archived 2013-09-19)", when there is one."""
        archived = self.archived
        if archived is None or archived.snapshot_url is None:
            return None
        when = f" (archived {archived.archived_at[:10]})" if archived.archived_at else ""
        return f"{archived.snapshot_url}{when}"

    @property
    def sides(self) -> tuple[tuple[str, str], ...]:
        """("expected", …) and ("actual", …), each only when known: an unknown side is left out."""
        return tuple(
            (label, value)
            for label, value in (("expected", self.expected), ("actual", self.actual))
            if value is not None
        )

    def sort_key(self) -> tuple[int, str, str, int]:
        return (_SEVERITY_RANK.get(self.severity, 9), self.code.value, self.document, self.line or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "document": self.document,
            "field": self.field,
            "line": self.line,
            "url": self.url,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
            "reason": self.reason,
            "status": self.status,
            "fetched_url": self.fetched_url,
            "final_url": self.final_url,
            "redirects": [_hop_dict(hop) for hop in self.redirects],
            "first_seen": self.first_seen,
            "failing_runs": self.failing_runs,
            "archived_copy": None if self.archived is None else _archived_dict(self.archived),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlResult:
    url: str
    kind: Kind
    status: int | None
    ok: bool
    error: Reason | None
    message: str | None = None
    fetched_url: str | None = None  # what a --remap rule had fetched instead of `url`
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    bytes_read: int | None = None
    elapsed_ms: int | None = None
    attempts: int | None = None
    checked_at: str | None = None
    head: Mapping[str, Any] | None = None

    @property
    def excluded(self) -> bool:
        """Left out by --exclude/--include: listed so the report can say so, never fetched."""
        return self.error == Reason.EXCLUDED

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind.value,
            "status": self.status,
            "ok": self.ok,
            "error": None if self.error is None else self.error.value,
            "message": self.message,
            "fetched_url": self.fetched_url,
            "final_url": self.final_url,
            "redirects": [_hop_dict(hop) for hop in self.redirects],
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "image_format": self.image_format,
            "bytes_read": self.bytes_read,
            "elapsed_ms": self.elapsed_ms,
            "attempts": self.attempts,
            "checked_at": self.checked_at,
            "head": None if self.head is None else dict(self.head),
        }

    def json_item(self) -> str:
        """`as_dict` as report.json writes it in its URLs list (`json_text` at depth 2), made directly: a
        URL's result is 18 keys, and the generic walk over them was half the time of report.json."""
        text, number, i = _text_or_null, _number_or_null, _INDENT[3]
        redirects = "[]" if not self.redirects else json_text([_hop_dict(hop) for hop in self.redirects], 3)
        head = "null" if self.head is None else json_text(dict(self.head), 3)
        return (
            f'{{{i}"url": {text(self.url)},{i}"kind": {text(self.kind)},{i}"status": {number(self.status)},'
            f'{i}"ok": {"true" if self.ok else "false"},{i}"error": {text(self.error)},'
            f'{i}"message": {text(self.message)},{i}"fetched_url": {text(self.fetched_url)},'
            f'{i}"final_url": {text(self.final_url)},{i}"redirects": {redirects},'
            f'{i}"content_type": {text(self.content_type)},{i}"width": {number(self.width)},'
            f'{i}"height": {number(self.height)},{i}"image_format": {text(self.image_format)},'
            f'{i}"bytes_read": {number(self.bytes_read)},{i}"elapsed_ms": {number(self.elapsed_ms)},'
            f'{i}"attempts": {number(self.attempts)},{i}"checked_at": {text(self.checked_at)},{i}"head": {head}'
            f"{_INDENT[2]}}}"
        )


class Reference(NamedTuple):
    """A tuple, unlike the other records: a large run streams millions of them from the store's rows,
    and a row becomes one without a call per field (`Reference._make`)."""

    document: str
    field: str
    line: int | None
    kind: Kind
    url: str
    normalized_url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "field": self.field,
            "line": self.line,
            "kind": self.kind.value,
            "url": self.url,
            "normalized_url": self.normalized_url,
        }

    def json_item(self) -> str:
        """`as_dict` as report.json writes it in its references list (json.dumps, indent 2), made directly:
        two million of them through the generic encoder cost more than all else in the report."""
        quote = encode_basestring
        return _json_item(
            quote(self.document), quote(self.field), self.line, quote(self.kind), quote(self.url),
            quote(self.normalized_url),
        )  # fmt: skip


def _json_item(document: str, field: str, line: int | None, kind: str, url: str, normalized_url: str) -> str:
    """A reference in report.json's layout, from its texts already JSON-quoted."""
    return (
        f'    {{\n      "document": {document},\n      "field": {field},\n'
        f'      "line": {"null" if line is None else int(line)},\n      "kind": {kind},\n'
        f'      "url": {url},\n      "normalized_url": {normalized_url}\n    }}'
    )


class References:
    """All of a run's references, in citation order (documents as ingested) when iterated.

    A run of 100,000 documents cites two million URLs: the report holds none
    of them. Those of a stored run are read from the store each time they are
    iterated (`StoredReferences`); `References.of` holds a few in memory.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Reference]:
        raise NotImplementedError

    def by_path(self) -> Iterator[Reference]:
        """Ordered by document path; each document's references in citation order."""
        raise NotImplementedError

    def by_document(self) -> Iterator[tuple[str, list[Reference]]]:
        """(document, its references) for each document with references, by path."""
        for document, references in groupby(self.by_path(), key=attrgetter("document")):
            yield document, list(references)

    def counts(self) -> Iterator[tuple[str, int]]:
        """(document, how many references) for each document with references, by path."""
        for document, references in self.by_document():
            yield document, len(references)

    def cited_urls(self) -> Iterator[str]:
        """Each normalised URL cited, once, in sorted order."""
        raise NotImplementedError

    def json_items(self) -> Iterator[str]:
        """Each reference as report.json writes it in its list (`Reference.json_item`), in citation order."""
        return (reference.json_item() for reference in self)

    @classmethod
    def of(cls, references: Iterable[Reference]) -> References:
        return HeldReferences(tuple(references))


class HeldReferences(References):
    def __init__(self, references: tuple[Reference, ...]) -> None:
        self.references = references

    def __len__(self) -> int:
        return len(self.references)

    def __iter__(self) -> Iterator[Reference]:
        return iter(self.references)

    def __repr__(self) -> str:
        return f"References.of({self.references!r})"

    def by_path(self) -> Iterator[Reference]:
        return iter(sorted(self.references, key=attrgetter("document")))  # stable: citation order kept

    def cited_urls(self) -> Iterator[str]:
        return iter(sorted({reference.normalized_url for reference in self.references}))


class StoredReferences(References):
    def __init__(self, count: int, source: ReferenceSource) -> None:
        self.count, self.source = count, source

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Reference]:
        return _references_from_rows(self.source.rows())

    def __repr__(self) -> str:
        return f"<{self.count} references of run {self.source.run_id} in {self.source.path}>"

    def by_path(self) -> Iterator[Reference]:
        return _references_from_rows(self.source.rows(by_path=True))

    def counts(self) -> Iterator[tuple[str, int]]:
        return self.source.counts()

    def cited_urls(self) -> Iterator[str]:
        return self.source.cited_urls()

    def json_items(self) -> Iterator[str]:
        quoted = self.source.quoted_rows()  # quoted by SQLite: the slowest part of the file, in C
        if quoted is None:
            return super().json_items()
        return (_json_item(*row) for row in quoted)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    documents: int
    references: int
    urls: int
    checked: int  # URLs with a result: fetched, revalidated or reused (the excluded are not)
    findings: int
    errors: int
    warnings: int
    by_code: Mapping[Code, int]
    by_reason: Mapping[Reason, int]
    # How the run got its URLs' results: fetched anew, confirmed by a 304, or reused within --max-age.
    fetched: int = 0
    revalidated: int = 0
    reused: int = 0
    excluded: int = 0  # URLs --exclude/--include left out: never fetched
    remapped: int = 0  # URLs fetched at the address a --remap rule gave
    archive: ArchiveLookups | None = None  # --suggest only: how the archive lookups went

    @classmethod
    def of(
        cls,
        findings: Sequence[ReportFinding],
        urls: Sequence[UrlResult],
        *,
        documents: int,
        references: int,
        unique_urls: int,
        fetched: int = 0,
        revalidated: int = 0,
        reused: int = 0,
        archive: ArchiveLookups | None = None,
    ) -> Summary:
        by_severity = Counter(f.severity for f in findings)
        excluded = sum(1 for u in urls if u.excluded)
        return cls(
            documents=documents,
            references=references,
            urls=unique_urls,
            checked=len(urls) - excluded,
            findings=len(findings),
            errors=by_severity.get(Severity.ERROR, 0),
            warnings=by_severity.get(Severity.WARNING, 0),
            by_code=dict(sorted(Counter(f.code for f in findings).items())),
            # Failed checks by reason: an excluded URL was not checked, so it did not fail.
            by_reason=dict(sorted(Counter(u.error for u in urls if u.error is not None and not u.excluded).items())),
            fetched=fetched,
            revalidated=revalidated,
            reused=reused,
            excluded=excluded,
            remapped=sum(1 for u in urls if u.fetched_url),
            archive=archive,
        )

    @property
    def verdict(self) -> Verdict:
        if self.errors:
            return Verdict.ERROR
        return Verdict.WARNING if self.warnings else Verdict.OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "references": self.references,
            "urls": self.urls,
            "checked": self.checked,
            "fetched": self.fetched,
            "revalidated": self.revalidated,
            "reused": self.reused,
            "excluded": self.excluded,
            "remapped": self.remapped,
            "findings": self.findings,
            "errors": self.errors,
            "warnings": self.warnings,
            "by_code": {code.value: n for code, n in self.by_code.items()},
            "by_reason": {reason.value: n for reason, n in self.by_reason.items()},
            "archive": None if self.archive is None else dataclasses.asdict(self.archive),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    new: tuple[ReportFinding, ...]
    fixed: tuple[ReportFinding, ...]

    @classmethod
    def between(cls, current: Sequence[ReportFinding], previous: Sequence[ReportFinding]) -> Changes:
        """New: in the current order; fixed: in the previous run's (the store's) order."""
        before = {f.key for f in previous}
        now = {f.key for f in current}
        return cls(
            new=tuple(f for f in current if f.key not in before),
            fixed=tuple(f for f in previous if f.key not in now),
        )

    @property
    def new_keys(self) -> frozenset[tuple[Code, str, str, str | None]]:
        return frozenset(f.key for f in self.new)

    def as_dict(self) -> dict[str, Any]:
        return {"new": [f.as_dict() for f in self.new], "fixed": [f.as_dict() for f in self.fixed]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    run: RunInfo
    summary: Summary
    changes: Changes | None
    findings: tuple[ReportFinding, ...]
    urls: tuple[UrlResult, ...]
    # Every link reference, so renderers can show each document and each
    # citation (JUnit's testcases, the HTML per-document view): streamed, never all in memory.
    references: References

    @classmethod
    def assemble(
        cls,
        run: RunInfo,
        findings: Iterable[ReportFinding],
        urls: Iterable[UrlResult],
        references: Iterable[Reference] | References,
        *,
        documents: int,
        references_count: int,
        unique_urls: int,
        fetched: int = 0,
        revalidated: int = 0,
        reused: int = 0,
        archive: ArchiveLookups | None = None,
        previous_findings: Sequence[ReportFinding] | None = None,
    ) -> Report:
        """A report from records: findings in the report's order, URLs by URL, counts and changes computed."""
        ordered = tuple(sorted(findings, key=ReportFinding.sort_key))
        checked = tuple(sorted(urls, key=lambda u: u.url))
        return cls(
            run=run,
            summary=Summary.of(
                ordered,
                checked,
                documents=documents,
                references=references_count,
                unique_urls=unique_urls,
                fetched=fetched,
                revalidated=revalidated,
                reused=reused,
                archive=archive,
            ),
            changes=None if previous_findings is None else Changes.between(ordered, previous_findings),
            findings=ordered,
            urls=checked,
            references=references if isinstance(references, References) else References.of(references),
        )

    @classmethod
    def from_store(
        cls,
        run: Run,
        findings: Iterable[Finding],
        checks: Iterable[ReportedCheck],
        links: Iterable[LinkRef] | ReferenceSource,
        *,
        previous_run: int | None,
        previous_findings: Iterable[Finding] = (),
    ) -> Report:
        """The report of a run from the store's records."""
        return cls.assemble(
            _run_from_store(run, previous_run),
            (_finding_from_store(finding) for finding in findings),
            (_url_from_store(check) for check in checks),
            StoredReferences(run.references or 0, links)
            if isinstance(links, ReferenceSource)
            else (_reference_from_store(link) for link in links),
            documents=run.documents or 0,
            references_count=run.references or 0,
            unique_urls=run.urls or 0,
            fetched=run.fetched or 0,
            revalidated=run.revalidated or 0,
            reused=run.reused or 0,
            archive=run.archive,
            previous_findings=None if previous_run is None else [_finding_from_store(f) for f in previous_findings],
        )

    def as_dict(self, *, references: bool = True) -> dict[str, Any]:
        record = {
            "run": self.run.as_dict(),
            "summary": self.summary.as_dict(),
            "changes": None if self.changes is None else self.changes.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
            "urls": [u.as_dict() for u in self.urls],
        }
        if references:
            record["references"] = [r.as_dict() for r in self.references]
        return record

    def to_json(self) -> str:
        """report.json."""
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"

    def write_json(self, out: TextIO) -> None:
        """report.json (what `to_json` returns, byte for byte), written as it is made: each finding, URL
        and reference is made into text on its own and written in batches, never the whole file at once
        (json.dumps with an indent has no C encoder: as one call, its pieces took more memory than all else)."""
        head = {"run": self.run.as_dict(), "summary": self.summary.as_dict(),
                "changes": None if self.changes is None else self.changes.as_dict()}  # fmt: skip
        out.write(
            "{" + "".join(f"{_INDENT[1]}{json_text(key, 0)}: {json_text(value, 1)}," for key, value in head.items())
        )
        lists: tuple[tuple[str, Iterator[str]], ...] = (
            ("findings", ("    " + json_text(f.as_dict(), 2) for f in self.findings)),
            ("urls", ("    " + u.json_item() for u in self.urls)),
            ("references", self.references.json_items()),
        )
        for index, (key, items) in enumerate(lists):
            out.write(f'{_INDENT[1]}"{key}": ')
            _write_items(out, items)
            out.write("," if index < len(lists) - 1 else "\n}\n")


def _write_items(out: TextIO, items: Iterator[str]) -> None:
    """A list of report.json's top level from its items (each made at depth 2, with its indent), in batches."""
    first = next(items, None)
    if first is None:
        out.write("[]")
        return
    out.write("[\n" + first)
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= 1000:
            out.write(",\n" + ",\n".join(batch))
            batch.clear()
    if batch:
        out.write(",\n" + ",\n".join(batch))
    out.write(_INDENT[1] + "]")


# What json.dumps(indent=2) puts before a value at each depth.
_INDENT = tuple("\n" + "  " * depth for depth in range(16))


def json_text(value: Any, depth: int) -> str:
    """`value` as json.dumps(value, indent=2, ensure_ascii=False, default=str) writes it `depth` levels deep.

    Python's json has no C encoder for an indented dump: its pure-Python one makes a generator per
    container and a piece per token. This makes each value's text at once, with the same rules: only
    `dict`s are objects, lists and tuples arrays, anything else not JSON its `str`.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = _indent(depth + 1)
        return (
            "{" + inner
            + ("," + inner).join(f"{_key_text(key)}: {json_text(item, depth + 1)}" for key, item in value.items())
            + _indent(depth) + "}"
        )  # fmt: skip
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = _indent(depth + 1)
        return "[" + inner + ("," + inner).join(json_text(item, depth + 1) for item in value) + _indent(depth) + "]"
    return encode_basestring(str(value))


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _number_or_null(value: int | None) -> str:
    return "null" if value is None else int.__repr__(value)


def _indent(depth: int) -> str:
    return _INDENT[depth] if depth < len(_INDENT) else "\n" + "  " * depth


def _key_text(key: Any) -> str:
    """An object's key as json.dumps writes it: a string, or a number or constant made one."""
    if isinstance(key, str):
        return encode_basestring(key)
    if isinstance(key, float):
        return encode_basestring(_float_text(key))
    if key is True or key is False or key is None or isinstance(key, int):
        return encode_basestring(json_text(key, 0))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _hop_dict(hop: Hop) -> dict[str, Any]:
    return {"status": hop.status, "url": hop.url}


def describe_lookups(lookups: ArchiveLookups) -> str:
    """How --suggest went, in one sentence: every renderer says it the same way."""
    line = (
        f"Archived copies (Wayback Machine): {lookups.found} of {lookups.wanted} dead-link URLs have one "
        f"({lookups.cached + lookups.asked} answered, {lookups.cached} of them from the cache)"
    )
    if lookups.failed:
        line += f"; {lookups.failed} lookups failed (last: {lookups.last_error})"
    if lookups.skipped:
        line += f"; {lookups.skipped} not asked this run"
    return line + "."


def _archived_dict(archived: ArchivedCopy) -> dict[str, Any]:
    return {
        "available": archived.available,
        "url": archived.snapshot_url,
        "archived_at": archived.archived_at,
        "asked_at": archived.asked_at,
    }


# -- store records -> report records: the only code that reads the store's records --------
def _run_from_store(run: Run, previous_run: int | None) -> RunInfo:
    return RunInfo(
        id=run.id or 0,
        mode=run.mode,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=_duration(run.started_at, run.finished_at),
        corpus=run.corpus,
        tool_version=run.tool_version,
        fail_on=_member(FailOn, run.config.get("fail_on", FailOn.ERROR), "fail_on"),
        previous_run=previous_run,
    )


def _finding_from_store(finding: Finding) -> ReportFinding:
    evidence = finding.details or Evidence()
    return ReportFinding(
        code=finding.code,
        severity=finding.severity or finding.code.default_severity,
        document=finding.document,
        field=finding.field,
        line=finding.line,
        url=finding.url,
        message=finding.message,
        expected=finding.expected,
        actual=finding.actual,
        reason=evidence.reason,
        status=evidence.status,
        fetched_url=evidence.fetched_url,
        final_url=evidence.final_url,
        redirects=evidence.redirects,
        first_seen=finding.first_seen,
        failing_runs=finding.failing_runs,
        archived=finding.archived,
    )


def _url_from_store(row: ReportedCheck) -> UrlResult:
    (url, kind, status, ok, reason, message, fetched_url, final_url, redirects, content_type, width, height,
     image_format, bytes_read, elapsed_ms, attempts, checked_at, head) = row  # fmt: skip
    return UrlResult(
        url=url,
        kind=kind,
        status=status,
        ok=ok,
        error=reason,
        message=message,
        fetched_url=fetched_url,
        final_url=final_url,
        redirects=redirects,
        content_type=content_type,
        width=width,
        height=height,
        image_format=image_format,
        bytes_read=bytes_read,
        elapsed_ms=elapsed_ms,
        attempts=attempts,
        checked_at=checked_at,
        head=None if head is None else _reported(head),
    )


def _head_enums() -> dict[str, type[StrEnum]]:
    hints = typing.get_type_hints(PageHead)
    return {
        name: enum
        for name in hints
        for enum in typing.get_args(hints[name])
        if isinstance(enum, type) and issubclass(enum, StrEnum)
    }


# A page head's fields report.json shows (those meant for the rules only are left out), in the record's
# order, with their defaults (a head stored before a field existed lacks it); and those that are enums.
_HEAD_REPORTED = tuple((f.name, f.default) for f in dataclasses.fields(PageHead) if f.metadata.get("reported", True))
_HEAD_ENUMS = _head_enums()


def _reported(stored: str) -> dict[str, Any]:
    """A page head as report.json shows it, from its stored JSON: what reading it as a PageHead and
    keeping the reported fields gave, without making the record."""
    head = json.loads(stored)
    reported = {name: head.get(name, default) for name, default in _HEAD_REPORTED}
    for name, enum in _HEAD_ENUMS.items():
        if reported.get(name) is not None:
            reported[name] = _member(enum, reported[name], f"page head's {name}")
    return reported


def _references_from_rows(rows: Iterable[CitedRow]) -> Iterator[Reference]:
    return map(Reference._make, rows)  # a row's columns are a reference's fields, in order


def _reference_from_store(link: LinkRef) -> Reference:
    return Reference(
        document=link.document,
        field=link.field,
        line=link.line,
        kind=link.kind,
        url=link.url,
        normalized_url=link.normalized_url,
    )


_E = TypeVar("_E", bound=StrEnum)


def _member(enum: type[_E], value: Any, what: str) -> _E:
    """A stored string as its enum member; a value this version does not know is a clear error."""
    try:
        return enum(value)
    except ValueError:
        raise DatabaseError(f"the database holds a {what} this auditor does not know: {value!r}") from None


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
