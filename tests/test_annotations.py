from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_finding, make_report

from auditor.errors import ConfigError
from auditor.report.github import (
    annotation,
    append_step_summary,
    escape_data,
    escape_property,
    github_annotations,
    resolve_mode,
)
from auditor.report.model import Report, ReportFinding


def _finding(**overrides: Any) -> ReportFinding:
    return make_finding(**overrides)


def _report(findings: list[ReportFinding]) -> Report:
    return make_report(findings, summary={"documents": 1, "references": 1, "urls": 1, "checked": 1})


def test_error_and_warning_lines() -> None:
    assert annotation(_finding()) == (
        "::error file=seeds/a.txt,line=7,title=dead-link%3A webUrl::dead link: dns (https://a.example/)"
    )
    warning = annotation(
        _finding(
            code="redirect",
            severity="warning",
            message="moved to https://b.example/",
            url="https://b.example/",
            line=None,
            expected="https://b.example/",
            actual="https://a.example/",
        )
    )
    assert warning.startswith("::warning file=seeds/a.txt,title=redirect%3A webUrl::moved to https://b.example/")
    assert "%0Aexpected: https://b.example/%0Aactual: https://a.example/" in warning


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    hostile = _finding(
        document="evil,file=x.txt:1",
        field="title\n::set-output name=x::y",
        message="line one\n::add-mask::secret\r\n%0A",
    )
    line = annotation(hostile)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("::error file=evil%2Cfile=x.txt%3A1,line=7,title=dead-link%3A title%0A%3A%3Aset-output")
    assert line.endswith("::line one%0A::add-mask::secret%0D%0A%250A (https://a.example/)")


def test_many_findings_are_capped_with_a_notice() -> None:
    lines = github_annotations(_report([_finding(line=i) for i in range(1, 61)]), limit=50)
    assert len(lines) == 51
    assert lines[-1] == "::notice title=auditor::10 more findings are not annotated; see the job summary or report.html"
    assert github_annotations(_report([])) == []


def test_mode_follows_github_actions_unless_told() -> None:
    assert resolve_mode(None, {"GITHUB_ACTIONS": "true"}) == "github"
    assert resolve_mode(None, {}) == "none"
    assert resolve_mode("none", {"GITHUB_ACTIONS": "true"}) == "none"
    assert resolve_mode("github", {}) == "github"
    with pytest.raises(ConfigError, match="gitlab"):
        resolve_mode("gitlab", {})


def test_step_summary_is_appended(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    written = append_step_summary(_report([_finding()]), {"GITHUB_STEP_SUMMARY": str(summary)})
    assert written == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n# Link and metadata audit")
    assert "❌ **auditor failed**" in text
    assert append_step_summary(_report([]), {}) is None


def test_a_side_that_is_unknown_is_left_out_not_shown_as_none() -> None:
    line = annotation(
        _finding(
            code="invalid-metadata",
            message="ends with a space: remove it",
            url="https://a.example/ ",
            actual="https://a.example/ ",
            expected=None,
        )
    )
    assert "None" not in line and "%0Aactual: https://a.example/ " in line and "expected" not in line
