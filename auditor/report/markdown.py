"""report.md: fits a CI job summary or a PR comment.

Corpus and network text is escaped with HTML entities, so no title or URL can
break a table, open a code span or inject a link or tag.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from auditor.model import Code
from auditor.report.model import Report, ReportFinding, Verdict, describe_lookups

# GitHub's step summary takes at most 1 MiB; stay well under it.
MAX_BYTES = 900 * 1024
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "`": "&#96;",
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "_": "&#95;",
    "~": "&#126;",
    "\\": "&#92;",
    "#": "&#35;",
    "!": "&#33;",
}


def escape(value: Any) -> str:
    """Make any text inert inside a Markdown table cell."""
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


_VERDICT = {
    Verdict.ERROR: ("❌", "failed"),
    Verdict.WARNING: ("⚠️", "passed with warnings"),
    Verdict.OK: ("✅", "passed"),
}


def verdict_line(report: Report) -> str:
    summary, run = report.summary, report.run
    status = "" if run.finished else f" (run {run.status}: partial results)"
    icon, word = _VERDICT[summary.verdict]
    return (
        f"{icon} **auditor {word}**{status}: {summary.errors} errors, {summary.warnings} warnings "
        f"in {summary.documents} documents, {summary.urls} unique URLs."
    )


def render_markdown(report: Report, max_bytes: int = MAX_BYTES) -> str:
    summary, run = report.summary, report.run
    head = [
        "# Link and metadata audit",
        "",
        verdict_line(report),
        "",
        f"Run {run.id} ({escape(run.mode)}), started {escape(run.started_at)}"
        + (f", {run.duration_s:.1f}s" if run.duration_s is not None else "")
        + f"; corpus: {escape(', '.join(run.corpus))}.",
        "",
        "| documents | references | unique URLs | checked | errors | warnings |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary.documents} | {summary.references} | {summary.urls} | {summary.checked} "
        f"| {summary.errors} | {summary.warnings} |",
        "",
    ]
    if summary.reused or summary.revalidated:
        head += [
            f"URLs fetched: {summary.fetched}, revalidated (304): {summary.revalidated}, "
            f"reused from earlier runs: {summary.reused}.",
            "",
        ]
    if summary.excluded or summary.remapped:
        head += [
            f"URLs excluded by --exclude/--include (not fetched): {summary.excluded}; "
            f"fetched at the address a --remap rule gave: {summary.remapped}.",
            "",
        ]
    if summary.archive is not None:
        head += [escape(describe_lookups(summary.archive)), ""]
    if summary.by_code:
        head += ["| finding | count |", "|---|---:|"]
        head += [f"| `{code}` | {count} |" for code, count in summary.by_code.items()]
        head.append("")
    changes = report.changes
    if changes is not None:
        head.append(f"Since run {run.previous_run}: {len(changes.new)} new findings, {len(changes.fixed)} fixed.")
        head.append("")

    by_code: dict[Code, list[ReportFinding]] = defaultdict(list)
    for finding in report.findings:
        by_code[finding.code].append(finding)

    lines = list(head)
    size = sum(len(line.encode()) + 1 for line in lines)
    shown = 0
    truncated = False
    for code, findings in by_code.items():
        block = [
            "<details>",
            f"<summary><code>{code}</code> ({findings[0].severity}): {len(findings)}</summary>",
            "",
            "| where | field | URL | reason / detail |",
            "|---|---|---|---|",
        ]
        block_size = sum(len(line.encode()) + 1 for line in block) + 20
        if size + block_size > max_bytes:
            truncated = True
            break
        lines += block
        size += block_size
        for finding in findings:
            row = _row(finding)
            if size + len(row.encode()) + 1 > max_bytes - 200:
                truncated = True
                break
            lines.append(row)
            size += len(row.encode()) + 1
            shown += 1
        lines += ["", "</details>", ""]
        if truncated:
            break
    if truncated:
        lines.append(
            f"**Truncated:** showing {shown} of {summary.findings} findings to stay within "
            f"{max_bytes // 1024} KiB; `report.json` and `report.html` have all of them."
        )
    elif not report.findings:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"


_SIDE_WORDS = {"expected": "expected", "actual": "found"}


def _row(finding: ReportFinding) -> str:
    # A link finding is summed up by its reason; a metadata finding (no reason) by its message,
    # which says what is wrong and how to fix it.
    if finding.reason is None:
        parts = [finding.message]
    else:
        parts = [finding.reason] if finding.failure_reason is not None else []
    # A side that is unknown is left out, never shown as "None".
    sides = [f"{_SIDE_WORDS[label]} {value}" for label, value in finding.sides]
    if sides:
        parts.append(", ".join(sides))
    if finding.redirects:
        chain = " → ".join(f"{hop.status} {hop.url}" for hop in finding.redirects)
        parts.append(f"{chain} → {finding.final_url}")
    if finding.failing_runs and finding.failing_runs > 1:
        parts.append(f"for {finding.failing_runs} runs, since {finding.first_seen}")
    if finding.archived_copy is not None:
        parts.append(f"archived copy: {finding.archived_copy}")
    if not parts:
        parts.append(finding.message)
    url = escape(finding.url)
    if finding.fetched_url:
        url += f" (fetched as {escape(finding.fetched_url)})"
    return f"| {escape(finding.where)} | {escape(finding.field)} | {url} | {escape('; '.join(parts))} |"
