"""junit.xml: what CI systems (GitLab, Jenkins, GitHub test reporters) show as tests.

One `<testsuite>` per document. Inside it, one `<testcase>` per link
reference (`classname` the document, `name` the field and URL) and one per
document-level metadata rule (`name` "metadata: <code>"), each with `file` and
`line` so a CI system can point at the source. A finding at the failing
severity (`FailOn.fails`, the rule of the exit code too: none under `--fail-on
never`) is a `<failure>`; one below it is written to `<system-out>`, so it is
visible without failing the build.

A `lint` run fetches nothing, so its references are no tests: its suites hold
the rules alone, and a finding about a URL field goes under its rule. (A
testcase skipped for each reference made the junit.xml of 100,000 documents
650 MB with 2.3 million testcases, beyond what CI systems read: GitLab takes
30 MB and 500,000 testcases a file.)

Any text is made valid XML 1.0 first: characters XML cannot carry (control
characters, lone surrogates, U+FFFE/U+FFFF) are dropped, and ElementTree
escapes the rest.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TextIO

from auditor.model import Code, FailOn, Mode, Stage
from auditor.report.model import Reference, Report, ReportFinding, RunInfo, UrlResult

_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The rule families judged once per document (or per related article), not per reference;
# `lint` runs only the offline ones.
_DOCUMENT_STAGES = {Mode.LINT: (Stage.OFFLINE,), Mode.AUDIT: (Stage.OFFLINE, Stage.PAGE)}


def document_rules(mode: Mode) -> tuple[Code, ...]:
    """The codes that get a "metadata: <code>" testcase in every suite, by stage; a broken document first."""
    stages = _DOCUMENT_STAGES[mode]
    codes = [code for code in Code if code.stage in stages]
    return tuple(sorted(codes, key=lambda code: (stages.index(code.stage), code is not Code.INVALID_METADATA)))


def clean(value: Any) -> str:
    """Text XML 1.0 can hold: anything else is dropped, not escaped (it has no escape)."""
    if value is None:
        return ""
    text = str(value)
    if text.isascii() and text.isprintable():  # nearly all of it, and nothing to drop
        return text
    return _ILLEGAL_XML.sub("", text)


def render_junit(report: Report) -> str:
    out = io.StringIO()
    write_junit(report, out)
    return out.getvalue()


def write_junit(report: Report, out: TextIO) -> None:
    """junit.xml, suite by suite as the references stream from the store, byte for byte what
    ElementTree wrote of the whole tree indented (`ET.indent`): a run of 100,000 documents has two
    million testcases, which as one tree took gigabytes. The totals go on the root element, first:
    the suites wait in a temporary file until they are counted."""
    run = report.run
    checked = {u.url: u for u in report.urls}
    cases = _PlainCases(report)
    rules = document_rules(run.mode)
    findings: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in report.findings:
        findings[finding.document].append(finding)
    totals = {"suites": 0, "tests": 0, "failures": 0, "skipped": 0}
    with tempfile.TemporaryFile(buffering=_COPY_CHUNK) as suites:
        # A lint run's references are no testcases: the documents alone, without reading two million rows.
        referenced = (
            ((document, []) for document, _ in report.references.counts())
            if run.mode is Mode.LINT
            else report.references.by_document()
        )
        for document, refs in _documents(referenced, findings):
            text, counts = _suite(document, refs, findings.get(document, []), rules, checked, cases, run)
            suites.write((_INDENT[1] + text).encode("utf-8"))
            for key, count in counts.items():
                totals[key] += count
        root = (
            f'<testsuites name="auditor" tests="{totals["tests"]}" failures="{totals["failures"]}" errors="0" '
            f'skipped="{totals["skipped"]}"'
        )
        if run.duration_s is not None:
            root += f' time="{run.duration_s:.3f}"'
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + root)
        if not totals["suites"]:
            out.write(" />\n")
            return
        out.write(">")
        suites.seek(0)
        binary = getattr(out, "buffer", None)
        if binary is not None:  # a file: its bytes as they are, not decoded and encoded again
            out.flush()
            shutil.copyfileobj(suites, binary, _COPY_CHUNK)
        else:
            shutil.copyfileobj(io.TextIOWrapper(suites, encoding="utf-8"), out, _COPY_CHUNK)
        out.write("\n</testsuites>\n")


def _documents(
    referenced: Iterator[tuple[str, list[Reference]]], findings: dict[str, list[ReportFinding]]
) -> Iterator[tuple[str, list[Reference]]]:
    """Every document with references or findings, in order: the stored ones come by path already."""
    with_findings = iter(sorted(findings))
    pending = next(with_findings, None)
    for document, refs in referenced:
        while pending is not None and pending < document:
            yield pending, []
            pending = next(with_findings, None)
        if pending == document:
            pending = next(with_findings, None)
        yield document, refs
    while pending is not None:
        yield pending, []
        pending = next(with_findings, None)


class _PlainCases:
    """The end of each testcase without findings, made once per URL or rule rather than once per reference
    (a URL is cited five times on average, a rule has a testcase in every suite): what `_case` writes."""

    def __init__(self, report: Report) -> None:
        self.not_fetched = self._skipped("not checked (run interrupted)"), True
        self.by_url = {url.url: self._check(url) for url in report.urls}
        self.rule_names = {code: _attribute(clean(f"metadata: {code}")) for code in Code}

    def reference(self, url: str) -> tuple[str, bool]:
        """After `line="…"`: the time, and whether it is skipped (an excluded URL, one not checked)."""
        return self.by_url.get(url, self.not_fetched)

    @classmethod
    def _check(cls, url: UrlResult) -> tuple[str, bool]:
        time = "" if url.elapsed_ms is None else f' time="{url.elapsed_ms / 1000:.3f}"'
        if url.excluded:
            return time + cls._skipped(clean(f"excluded, not fetched: {url.message or 'by --exclude'}")), True
        return time + " />", False

    @staticmethod
    def _skipped(message: str) -> str:
        return f'>{_INDENT[3]}<skipped message="{_attribute(message)}" />{_INDENT[2]}</testcase>'


def _suite(
    document: str,
    refs: list[Reference],
    findings: list[ReportFinding],
    rules: tuple[Code, ...],
    checked: dict[str, UrlResult],
    plain: _PlainCases,
    run: RunInfo,
) -> tuple[str, dict[str, int]]:
    """One testsuite as text (at depth 1 of the root) and its counts."""
    by_field: dict[str, list[ReportFinding]] = defaultdict(list)
    by_rule: dict[Code, list[ReportFinding]] = defaultdict(list)
    ref_fields = {ref.field for ref in refs} if findings else set()
    for finding in findings:
        if finding.code not in rules and finding.field in ref_fields:
            by_field[finding.field].append(finding)
        else:
            by_rule[finding.code].append(finding)

    name = _attribute(clean(document))
    cases: list[str] = []
    failures = skipped = 0
    for ref in refs:
        case_findings = by_field.pop(ref.field, None) if by_field else None
        if not case_findings:  # nearly every reference: its testcase made here, at the least cost
            tail, skip = plain.reference(ref.normalized_url)
            cases.append(
                f'<testcase classname="{name}" name="{_attribute(clean(f"{ref.field} {ref.url}"))}" file="{name}" '
                f'line="{ref.line or 1}"{tail}'
            )
            skipped += skip
            continue
        check = checked.get(ref.normalized_url)
        time = f"{check.elapsed_ms / 1000:.3f}" if check is not None and check.elapsed_ms is not None else None
        text, failed = _case(name, f"{ref.field} {ref.url}", ref.line, case_findings, run.fail_on, time, None)
        cases.append(text)
        failures += failed
    # A finding about a field no reference covers still gets a testcase, under its rule.
    for leftovers in by_field.values():
        for finding in leftovers:
            by_rule[finding.code].append(finding)
    for rule in (*rules, *sorted(set(by_rule) - set(rules))):
        found = by_rule.get(rule)
        if not found:
            cases.append(f'<testcase classname="{name}" name="{plain.rule_names[rule]}" file="{name}" line="1" />')
            continue
        line = next((f.line for f in found if f.line), 1)
        text, failed = _case(name, f"metadata: {rule}", line, found, run.fail_on, None, None)
        cases.append(text)
        failures += failed

    counts = {"suites": 1, "tests": len(cases), "failures": failures, "skipped": skipped}
    head = (
        f'<testsuite name="{name}" file="{name}" tests="{len(cases)}" failures="{failures}" errors="0" '
        f'skipped="{skipped}"'
    )
    if not cases:
        return head + " />", counts
    return head + ">" + _INDENT[2] + _INDENT[2].join(cases) + _INDENT[1] + "</testsuite>", counts


def _case(
    document: str,
    name: str,
    line: int | None,
    findings: list[ReportFinding],
    fail_on: FailOn,
    time: str | None,
    skipped: str | None,
) -> tuple[str, bool]:
    """One testcase as text (at depth 2), and whether it failed. `document` is escaped already."""
    head = f'<testcase classname="{document}" name="{_attribute(clean(name))}" file="{document}" line="{line or 1}"'
    if time is not None:
        head += f' time="{time}"'
    failing = [f for f in findings if fail_on.fails(f.severity)]
    passing = [f for f in findings if not fail_on.fails(f.severity)]
    children: list[str] = []
    if failing:
        first = failing[0]
        message = first.message if len(failing) == 1 else f"{len(failing)} findings; first: {first.message}"
        if len(failing) == 1 and first.archived_copy is not None:
            message += f" — archived copy: {first.archived_copy}"
        children.append(
            _element(
                "failure",
                f'message="{_attribute(clean(message))}" type="{_attribute(clean(first.code))}"',
                clean("\n".join(_describe(f) for f in failing)),
            )
        )
    if passing:
        children.append(_element("system-out", "", clean("\n".join(_describe(f) for f in passing))))
    if skipped is not None:
        children.append(f'<skipped message="{_attribute(skipped)}" />')
    if not children:
        return head + " />", False
    return head + ">" + _INDENT[3] + _INDENT[3].join(children) + _INDENT[2] + "</testcase>", bool(failing)


def _element(tag: str, attributes: str, text: str) -> str:
    opening = f"<{tag} {attributes}" if attributes else f"<{tag}"
    return f"{opening}>{_text(text)}</{tag}>" if text else f"{opening} />"


# ElementTree's escaping (xml.etree.ElementTree._escape_attrib and _escape_cdata), so the file is what it wrote.
def _attribute(value: str) -> str:
    value = _text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    if "\n" in value:
        value = value.replace("\n", "&#10;")
    if "\t" in value:
        value = value.replace("\t", "&#09;")
    return value


def _text(value: str) -> str:
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


# What ET.indent puts before an element at each depth.
_INDENT = ["\n" + "  " * depth for depth in range(4)]
_COPY_CHUNK = 1 << 20


def _describe(finding: ReportFinding) -> str:
    lines = [f"{finding.severity} {finding.code} at {finding.where} ({finding.field}): {finding.message}"]
    if finding.url:
        lines.append(f"  url: {finding.url}")
    if finding.fetched_url:
        lines.append(f"  fetched as: {finding.fetched_url}")
    for label, value in finding.sides:  # a side that is unknown is left out, never shown as "None"
        lines.append(f"  {label}: {value}")
    if finding.redirects:
        chain = " -> ".join(f"{hop.status} {hop.url}" for hop in finding.redirects)
        lines.append(f"  redirects: {chain} -> {finding.final_url}")
    if finding.archived_copy is not None:
        lines.append(f"  archived copy: {finding.archived_copy}")
    return "\n".join(lines)
