"""GitHub Actions integration: workflow-command annotations and the step summary.

`::error file=…,line=…,title=…::message` lines put a finding on the line of
the file it is about, in the pull request's diff. Values are escaped by the
workflow-command rules (`%`, CR and LF everywhere; `:` and `,` too inside
properties) so no corpus text can end a command early or start another one.

GitHub shows at most 10 error and 10 warning annotations per step and 50 per
job, so only the first `MAX_ANNOTATIONS` findings (errors first, the report's
order) are annotated, followed by one notice saying how many more there are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.errors import ConfigError
from auditor.model import Severity
from auditor.report.markdown import render_markdown
from auditor.report.model import Report, ReportFinding

MODES = ("github", "none")
MAX_ANNOTATIONS = 50
_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def resolve_mode(option: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--annotations wins; without it, GitHub Actions (GITHUB_ACTIONS=true) means github."""
    if option is not None:
        if option not in MODES:
            raise ConfigError(f"--annotations: unknown value {option!r}; choose from {', '.join(MODES)}")
        return option
    return "github" if environ.get("GITHUB_ACTIONS") == "true" else "none"


def escape_data(value: Any) -> str:
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: Any) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: ReportFinding) -> str:
    command = _COMMANDS.get(finding.severity, "notice")
    properties = [f"file={escape_property(finding.document)}"]
    if finding.line:
        properties.append(f"line={int(finding.line)}")
    title = f"{finding.code}: {finding.field}"
    properties.append(f"title={escape_property(title)}")
    message = finding.message
    if finding.url and finding.url not in message:
        message = f"{message} ({finding.url})"
    for label, value in finding.sides:  # a side that is unknown is left out, never shown as "None"
        message = f"{message}\n{label}: {value}"
    if finding.archived_copy is not None:
        message = f"{message}\narchived copy: {finding.archived_copy}"
    return f"::{command} {','.join(properties)}::{escape_data(message)}"


def github_annotations(report: Report, limit: int = MAX_ANNOTATIONS) -> list[str]:
    findings = report.findings
    lines = [annotation(finding) for finding in findings[:limit]]
    if len(findings) > limit:
        lines.append(
            f"::notice title=auditor::{len(findings) - limit} more findings are not annotated; "
            "see the job summary or report.html"
        )
    return lines


def append_step_summary(report: Report, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append report.md to the file GitHub names in $GITHUB_STEP_SUMMARY, if it names one.

    An OSError propagates: the caller decides whether a summary it cannot
    write is worth more than the audit's own exit code (the CLI warns).
    """
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(render_markdown(report))
    return path
