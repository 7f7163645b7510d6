"""junit.xml: what CI systems (GitLab, Jenkins, GitHub test reporters) show as tests.

One `<testsuite>` per document. Inside it, one `<testcase>` per link
reference (`classname` the document, `name` the field and URL) and one per
document-level metadata rule (`name` "metadata: <code>"), each with `file` and
`line` so a CI system can point at the source. A finding at the failing
severity (`FailOn.fails`, the rule of the exit code too: none under `--fail-on
never`) is a `<failure>`; one below it is written to `<system-out>`, so it is
visible without failing the build.

Any text is made valid XML 1.0 first: characters XML cannot carry (control
characters, lone surrogates, U+FFFE/U+FFFF) are dropped, and ElementTree
escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

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
    return "" if value is None else _ILLEGAL_XML.sub("", str(value))


def render_junit(report: Report) -> str:
    run = report.run
    checked = {u.url: u for u in report.urls}
    rules = document_rules(run.mode)
    references: dict[str, list[Reference]] = defaultdict(list)
    for ref in report.references:
        references[ref.document].append(ref)
    findings: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in report.findings:
        findings[finding.document].append(finding)

    root = ET.Element("testsuites", name="auditor")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for document in sorted(set(references) | set(findings)):
        suite = _suite(document, references[document], findings[document], rules, checked, run)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    if run.duration_s is not None:
        root.set("time", f"{run.duration_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(
    document: str,
    refs: list[Reference],
    findings: list[ReportFinding],
    rules: tuple[Code, ...],
    checked: dict[str, UrlResult],
    run: RunInfo,
) -> ET.Element:
    suite = ET.Element("testsuite", name=clean(document), file=clean(document))
    by_field: dict[str, list[ReportFinding]] = defaultdict(list)
    by_rule: dict[Code, list[ReportFinding]] = defaultdict(list)
    ref_fields = {ref.field for ref in refs}
    for finding in findings:
        if finding.code not in rules and finding.field in ref_fields:
            by_field[finding.field].append(finding)
        else:
            by_rule[finding.code].append(finding)

    cases: list[ET.Element] = []
    for ref in refs:
        check = checked.get(ref.normalized_url)
        case = _case(document, f"{ref.field} {ref.url}", ref.line, by_field.pop(ref.field, []), run.fail_on)
        if check is not None and check.elapsed_ms is not None:
            case.set("time", f"{check.elapsed_ms / 1000:.3f}")
        if check is None and not len(case):
            why = "links are not fetched by auditor lint" if run.mode is Mode.LINT else "not checked (run interrupted)"
            ET.SubElement(case, "skipped", message=why)
        elif check is not None and check.excluded and not len(case):
            ET.SubElement(case, "skipped", message=clean(f"excluded, not fetched: {check.message or 'by --exclude'}"))
        cases.append(case)
    # A finding about a field no reference covers still gets a testcase, under its rule.
    for leftovers in by_field.values():
        for finding in leftovers:
            by_rule[finding.code].append(finding)
    for rule in (*rules, *sorted(set(by_rule) - set(rules))):
        found = by_rule.get(rule, [])
        line = next((f.line for f in found if f.line), 1)
        cases.append(_case(document, f"metadata: {rule}", line, found, run.fail_on))

    for case in cases:
        suite.append(case)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    return suite


def _case(document: str, name: str, line: int | None, findings: list[ReportFinding], fail_on: FailOn) -> ET.Element:
    case = ET.Element(
        "testcase", classname=clean(document), name=clean(name), file=clean(document), line=str(line or 1)
    )
    failing = [f for f in findings if fail_on.fails(f.severity)]
    passing = [f for f in findings if not fail_on.fails(f.severity)]
    if failing:
        first = failing[0]
        message = first.message if len(failing) == 1 else f"{len(failing)} findings; first: {first.message}"
        if len(failing) == 1 and first.archived_copy is not None:
            message += f" — archived copy: {first.archived_copy}"
        failure = ET.SubElement(case, "failure", message=clean(message), type=clean(first.code))
        failure.text = clean("\n".join(_describe(f) for f in failing))
    if passing:
        ET.SubElement(case, "system-out").text = clean("\n".join(_describe(f) for f in passing))
    return case


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
