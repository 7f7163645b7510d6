from __future__ import annotations

from typing import Any

from conftest import make_finding, make_report

from auditor.report.markdown import escape, render_markdown
from auditor.report.model import Changes, Report, ReportFinding


def _report(findings: list[ReportFinding]) -> Report:
    return make_report(
        findings,
        run={"id": 3, "duration_s": 1.5, "previous_run": 2},
        summary={"documents": 1, "references": 17, "urls": 15, "checked": 15},
        changes=Changes(new=tuple(findings[:1]), fixed=()),
    )


def _finding(**overrides: Any) -> ReportFinding:
    return make_finding(**overrides)


def test_escape_neutralises_markdown_and_html() -> None:
    hostile = "a|b `code` [x](javascript:alert(1)) <script>alert(1)</script> **bold**\nnext"
    escaped = escape(hostile)
    for raw in ("|", "`", "[", "]", "<", ">", "*", "\n"):
        assert raw not in escaped
    assert "&lt;script&gt;" in escaped


def test_report_has_verdict_counts_and_grouped_findings() -> None:
    text = render_markdown(
        _report(
            [
                _finding(),
                _finding(
                    code="redirect",
                    severity="warning",
                    reason="ok",
                    final_url="https://b.example/",
                    redirects=[(301, "https://a.example/")],
                ),
            ]
        )
    )
    lines = text.splitlines()
    assert lines[2].startswith("❌ **auditor failed**: 1 errors, 1 warnings")
    assert "| 1 | 17 | 15 | 15 | 1 | 1 |" in text
    assert "<summary><code>dead-link</code> (error): 1</summary>" in text
    assert "| seeds/a.txt:7 | webUrl | https://a.example/ | dns |" in text
    assert "301 https://a.example/ → https://b.example/" in text
    assert "Since run 2: 1 new findings, 0 fixed." in text


def test_hostile_values_cannot_break_the_table() -> None:
    text = render_markdown(
        _report(
            [
                _finding(
                    url="javascript:alert(1)|x",
                    document="a|b.md",
                    field="title`",
                    reason="<img src=x onerror=alert(1)>",
                )
            ]
        )
    )
    row = next(line for line in text.splitlines() if "a&#124;b.md" in line)
    assert row.count("|") == 5  # exactly the four cells' borders
    assert "<img" not in text


def test_truncates_politely_with_the_full_count() -> None:
    findings = [_finding(document=f"doc{i}.md") for i in range(2000)]
    text = render_markdown(_report(findings), max_bytes=20_000)
    assert len(text.encode()) <= 20_000
    assert "of 2000 findings" in text
    assert text.count("</details>") == 1


def test_clean_run_says_so() -> None:
    text = render_markdown(_report([]))
    assert "✅ **auditor passed**" in text and "No findings." in text


def test_metadata_rows_say_what_is_wrong_and_never_none() -> None:
    text = render_markdown(
        _report(
            [
                _finding(
                    code="invalid-metadata",
                    reason=None,
                    message="contains a space at character 28: encode it as %20",
                    url="https://apnews.com/Business Wire/1",
                    expected="https://apnews.com/Business%20Wire/1",
                    actual="https://apnews.com/Business Wire/1",
                ),
                _finding(code="invalid-metadata", reason=None, message="related[0].webUrl is empty", url=None),
            ]
        )
    )
    assert "None" not in text
    assert (
        "| contains a space at character 28: encode it as %20; expected https://apnews.com/Business%20Wire/1, "
        "found https://apnews.com/Business Wire/1 |"
    ) in text
    assert "| related&#91;0&#93;.webUrl is empty |" in text
