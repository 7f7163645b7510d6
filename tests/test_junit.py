from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from conftest import make_finding, make_reference, make_report, make_url

from auditor import pipeline
from auditor.config import Config
from auditor.model import Mode
from auditor.report import junit
from auditor.report.junit import clean, document_rules, render_junit
from auditor.report.model import Reference, Report, ReportFinding

AUDIT_RULES = document_rules(Mode.AUDIT)
LINT_RULES = document_rules(Mode.LINT)


def _finding(**overrides: Any) -> ReportFinding:
    return make_finding(**{"document": "c/a.txt", **overrides})


def _ref(document: str, field: str, line: int, url: str) -> Reference:
    return make_reference(document, field, line, url)


def _report(
    findings: list[ReportFinding],
    references: list[Reference],
    *,
    mode: str = "audit",
    fail_on: str = "error",
    checked: list[str] | None = None,
) -> Report:
    urls = [
        make_url(url, elapsed_ms=250)
        for url in (checked if checked is not None else [r.normalized_url for r in references])
    ]
    return make_report(
        findings,
        urls=urls,
        references=references,
        run={"id": 1, "mode": mode, "duration_s": 2.5, "fail_on": fail_on},
    )


def _parse(report: Report) -> ET.Element:
    return ET.fromstring(render_junit(report).encode("utf-8"))


def test_a_suite_per_document_a_case_per_reference_and_rule() -> None:
    references = [
        _ref("c/a.txt", "webUrl", 7, "https://a.example/"),
        _ref("c/a.txt", "images[0].url", 12, "https://i.example/x.jpg"),
        _ref("c/b.txt", "webUrl", 3, "https://b.example/"),
    ]
    findings = [
        _finding(),
        _finding(
            code="provider-domain-mismatch",
            severity="warning",
            field="provider.domain",
            line=20,
            url=None,
            message="webUrl host a.example is not under provider.domain z.example",
        ),
        _finding(
            code="amp-cache-mismatch",
            document="c/b.txt",
            field="cdnAmpWebUrl",
            line=5,
            url="https://x/",
            message="cdnAmpWebUrl is not the AMP cache URL",
            expected="https://good/",
            actual="https://x/",
        ),
    ]
    root = _parse(_report(findings, references))
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == ["c/a.txt", "c/b.txt"]
    rules = len(AUDIT_RULES)
    a = suites["c/a.txt"]
    assert a.get("file") == "c/a.txt" and a.get("tests") == str(2 + rules) and a.get("failures") == "1"
    cases = {case.get("name"): case for case in a.iter("testcase")}
    dead = cases["webUrl https://a.example/"]
    assert (dead.get("file"), dead.get("line"), dead.get("classname"), dead.get("time")) == (
        "c/a.txt",
        "7",
        "c/a.txt",
        "0.250",
    )
    failure = dead.find("failure")
    assert failure is not None and failure.get("type") == "dead-link" and failure.get("message") == "dead link: dns"
    assert "c/a.txt:7" in (failure.text or "")
    assert cases["images[0].url https://i.example/x.jpg"].find("failure") is None
    provider = cases["metadata: provider-domain-mismatch"]
    assert provider.find("failure") is None  # a warning below --fail-on error
    assert "provider.domain z.example" in (provider.findtext("system-out") or "")
    assert provider.get("line") == "20"
    amp = {c.get("name"): c for c in suites["c/b.txt"].iter("testcase")}["metadata: amp-cache-mismatch"]
    assert amp.get("line") == "5" and "expected: https://good/" in (amp.findtext("failure") or "")
    assert root.get("tests") == str(3 + 2 * rules) and root.get("failures") == "2" and root.get("time") == "2.500"


def test_warnings_fail_with_fail_on_warning() -> None:
    findings = [
        _finding(
            code="redirect",
            severity="warning",
            message="permanently redirected",
            redirects=[(301, "https://a.example/")],
            final_url="https://b.example/",
        )
    ]
    root = _parse(_report(findings, [_ref("c/a.txt", "webUrl", 7, "https://a.example/")], fail_on="warning"))
    failure = next(root.iter("failure"))
    assert failure.get("type") == "redirect"
    assert "redirects: 301 https://a.example/ -> https://b.example/" in (failure.text or "")


def test_lint_runs_have_no_reference_testcases_and_judge_only_offline_rules() -> None:
    root = _parse(_report([], [_ref("c/a.txt", "webUrl", 7, "https://a.example/")], mode="lint", checked=[]))
    cases = list(root.iter("testcase"))
    assert [c.get("name") for c in cases] == [f"metadata: {rule}" for rule in LINT_RULES]
    assert root.get("tests") == str(len(LINT_RULES)) and root.get("skipped") == "0" and root.get("failures") == "0"


def test_a_lint_finding_about_a_url_field_fails_its_rule_at_its_line() -> None:
    malformed = _finding(
        code="invalid-metadata",
        field="related[0].webUrl",
        line=12,
        url="https:/x",
        message="malformed URL",
        reason=None,
    )
    refs = [_ref("c/a.txt", "webUrl", 7, "https://a.example/"), _ref("c/a.txt", "related[0].webUrl", 12, "https:/x")]
    root = _parse(_report([malformed], refs, mode="lint", checked=[]))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {f"metadata: {rule}" for rule in LINT_RULES}
    invalid = cases["metadata: invalid-metadata"]
    assert invalid.get("line") == "12" and "malformed URL" in (invalid.find("failure").get("message") or "")
    assert root.get("failures") == "1"


def test_a_broken_document_without_references_still_has_its_suite() -> None:
    root = _parse(
        _report(
            [
                _finding(
                    document="c/broken.txt",
                    field="",
                    line=None,
                    url=None,
                    code="invalid-metadata",
                    message="front matter is not valid YAML",
                )
            ],
            [],
        )
    )
    suite = next(root.iter("testsuite"))
    assert suite.get("name") == "c/broken.txt" and suite.get("failures") == "1"
    case = next(c for c in suite.iter("testcase") if c.find("failure") is not None)
    assert case.get("name") == "metadata: invalid-metadata" and case.get("line") == "1"


def test_any_input_gives_valid_xml() -> None:
    hostile = 'bad \x00\x01\x08\x0b\x1b[31m\ufffe\uffff\ud800 <tag> & "quotes" ]]> end'
    findings = [
        _finding(
            document=f"c/{hostile}.txt",
            message=hostile,
            url=f"https://a.example/{hostile}",
            expected=hostile,
            actual=hostile,
        )
    ]
    references = [_ref(f"c/{hostile}.txt", "webUrl", 7, f"https://a.example/{hostile}")]
    text = render_junit(_report(findings, references))
    root = ET.fromstring(text.encode("utf-8"))  # raises if not well-formed
    failure = next(root.iter("failure"))
    assert failure.get("message") == 'bad [31m <tag> & "quotes" ]]> end'
    assert next(root.iter("testsuite")).get("name") == 'c/bad [31m <tag> & "quotes" ]]> end.txt'


def test_clean_keeps_what_xml_allows() -> None:
    assert clean("tab\tnl\ncr\r é 😀 \U0010ffff") == "tab\tnl\ncr\r é 😀 \U0010ffff"
    assert clean("\x00\x1f\x7f") == "\x7f"  # DEL is legal XML 1.0
    assert clean(None) == ""


def test_written_by_a_real_lint_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(
        "---\ntitle: Fine\nwebUrl: https://news.example/a\nprovider:\n  domain: news.example\n---\n", encoding="utf-8"
    )
    (corpus / "broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    config = Config(paths=(corpus,), db=tmp_path / "a.sqlite", out=tmp_path / "out", formats=("junit",))
    outcome = pipeline.lint(config)
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    suites = {Path(s.get("name") or "").name: s for s in root.iter("testsuite")}
    assert set(suites) == {"good.txt", "broken.txt"}
    assert suites["good.txt"].get("failures") == "0"
    assert suites["broken.txt"].get("failures") == "1"
    assert outcome.exit_code == 1


def test_a_side_that_is_unknown_is_left_out_not_shown_as_none() -> None:
    finding = _finding(
        code="invalid-metadata",
        field="related[0].webUrl",
        reason=None,
        message="related[0].webUrl is empty",
        expected="cnn.com",
        actual=None,
    )
    text = render_junit(_report([finding], [_ref("c/a.txt", "webUrl", 7, "https://a.example/")]))
    assert "None" not in text and "expected: cnn.com" in text and "actual:" not in text


def test_document_rules_come_from_the_codes_stages_a_broken_document_first() -> None:
    assert [str(code) for code in LINT_RULES] == ["invalid-metadata", "amp-cache-mismatch", "provider-domain-mismatch"]
    assert [str(code) for code in AUDIT_RULES] == [
        *map(str, LINT_RULES),
        "amp-pair-mismatch",
        "title-mismatch",
        "date-mismatch",
        "og-image-size-mismatch",
    ]


def test_fail_on_never_makes_no_failure_as_it_makes_exit_code_0(tmp_path: Path) -> None:
    findings = [_finding(), _finding(code="redirect", severity="warning", field="ampWebUrl", message="moved")]
    references = [_ref("c/a.txt", "webUrl", 7, "https://a.example/"), _ref("c/a.txt", "ampWebUrl", 8, "https://b/")]
    root = _parse(_report(findings, references, fail_on="never"))
    assert root.get("failures") == "0" and next(root.iter("failure"), None) is None
    outs = [case.findtext("system-out") or "" for case in root.iter("testcase")]
    assert any("error dead-link at c/a.txt:7" in out for out in outs)
    assert any("warning redirect at c/a.txt:7" in out for out in outs)

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    config = Config(paths=(corpus,), db=tmp_path / "a.sqlite", out=tmp_path / "out", formats=("junit",))
    assert pipeline.lint(config).exit_code == 1
    assert ET.parse(tmp_path / "out" / "junit.xml").getroot().get("failures") == "1"
    assert pipeline.lint(config.replace(fail_on="never")).exit_code == 0
    assert ET.parse(tmp_path / "out" / "junit.xml").getroot().get("failures") == "0"


def test_the_suites_are_copied_whole_to_a_file_and_to_text(tmp_path: Path, monkeypatch: Any) -> None:
    references = [_ref(f"c/é{index}😀.txt", "webUrl", 1, f"https://a.example/é{index}") for index in range(300)]
    report = _report([], references, mode="lint")
    monkeypatch.setattr(junit, "_COPY_CHUNK", 1000)  # copied in pieces that cut characters in two
    text = render_junit(report)
    with (tmp_path / "junit.xml").open("w", encoding="utf-8") as out:
        junit.write_junit(report, out)
    assert (tmp_path / "junit.xml").read_text(encoding="utf-8") == text
    assert len(ET.fromstring(text.encode("utf-8")).findall("testsuite")) == 300
