from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import respx
import yaml
from click.testing import CliRunner, Result
from PIL import Image

from auditor.cli import cli, options_reference
from auditor.config import Config
from auditor.settings import Settings

GOOD = """---
title: "Big News"
webUrl: https://news.example/a
provider:
  domain: news.example
images:
  - url: https://img.example/a.png
    width: 120
    height: 50
---
"""
# cdnAmpWebUrl is not the AMP cache URL of ampWebUrl: an error `lint` finds offline.
BAD_AMP = GOOD.replace(
    "provider:", "ampWebUrl: https://news.example/a?amp\ncdnAmpWebUrl: https://wrong.cdn.ampproject.org/x\nprovider:"
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in its own directory (no stray auditor.yaml, reports/ or audit.sqlite) and outside CI."""
    monkeypatch.chdir(tmp_path)
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def _corpus(tmp_path: Path, **files: str) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    return buffer.getvalue()


# -- exit codes ---------------------------------------------------------------
def test_lint_clean_corpus_exits_0_and_writes_all_four_reports(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    result = _run("lint", str(corpus))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("auditor: run 1: 1 documents, 2 URLs, 0 errors, 0 warnings; reports in reports/")
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "junit.xml",
        "report.html",
        "report.json",
        "report.md",
    ]


def test_lint_with_an_error_exits_1(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    result = _run("lint", str(corpus), "--format", "json")
    assert result.exit_code == 1
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert [f["code"] for f in report["findings"]] == ["amp-cache-mismatch"]
    assert "1 errors" in result.stderr


def test_fail_on_never_exits_0_even_with_errors(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    assert _run("lint", str(corpus), "--fail-on", "never").exit_code == 0


def test_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    line = _one_error_line(_run("lint", str(tmp_path / "nowhere")))
    assert line == f"Error: no such file or directory: {tmp_path / 'nowhere'}"


def test_garbage_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    (tmp_path / "junk.sqlite").write_bytes(b"definitely not sqlite " * 100)
    line = _one_error_line(_run("lint", str(corpus), "--db", "junk.sqlite"))
    assert line.startswith("Error: cannot use database junk.sqlite")


def test_bad_config_key_is_named_with_its_line_and_exit_2(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    (tmp_path / "auditor.yaml").write_text("severity:\n  dead-link: warning\nconcurency: 3\n")
    line = _one_error_line(_run("lint", str(corpus)))  # found in the working directory without --config
    assert line == "Error: auditor.yaml:3: unknown key 'concurency' (did you mean 'concurrency'?)"
    (tmp_path / "other.yaml").write_text("severity:\n  dead-links: off\n")
    line = _one_error_line(_run("lint", str(corpus), "--config", "other.yaml"))
    assert line == "Error: other.yaml:2: unknown key 'severity.dead-links' (did you mean 'dead-link'?)"
    assert "config file not found" in _one_error_line(_run("lint", str(corpus), "--config", "missing.yaml"))
    line = _one_error_line(_run("runs", "--config", "other.yaml"))  # every command reads it
    assert line.startswith("Error: other.yaml:2: ")
    (tmp_path / "auditor.yaml").unlink()
    env = {"AUDITOR_TIMEOUT": "soon"}
    assert _one_error_line(_run("config", env=env)) == "Error: AUDITOR_TIMEOUT: must be a number, not 'soon'"
    assert not (tmp_path / "audit.sqlite").exists()


# -- configuration: command line > AUDITOR_<OPTION> > config file > default ----------------------------
def test_fail_on_from_each_layer(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    (tmp_path / "auditor.yaml").write_text("fail_on: never\nformat: json\n")
    assert _run("lint", str(corpus)).exit_code == 0  # the file's never
    assert _run("lint", str(corpus), env={"AUDITOR_FAIL_ON": "error"}).exit_code == 1  # the variable beats it
    cli = _run("lint", str(corpus), "--fail-on", "never", env={"AUDITOR_FAIL_ON": "error"})
    assert cli.exit_code == 0  # the command line beats both
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["report.json"]  # format: json


def test_pyproject_tool_auditor_configures_every_command(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "corpus"\n\n[tool.auditor]\npaths = ["corpus"]\ndb = "state.sqlite"\nout = "site"\n'
        'format = "md"\n\n[tool.auditor.severity]\namp-cache-mismatch = "warning"\n'
    )
    result = _run("lint")  # paths from the table too
    assert result.exit_code == 0, result.output
    assert "0 errors, 1 warnings; reports in site/" in result.stderr
    assert [p.name for p in (tmp_path / "site").iterdir()] == ["report.md"]
    assert (tmp_path / "state.sqlite").exists() and not (tmp_path / "audit.sqlite").exists()
    assert _run("runs").stdout.splitlines()[1].split()[:3] == ["1", "lint", "finished"]  # the same database
    assert _run("report", "--out", "again").exit_code == 0 and (tmp_path / "again" / "report.md").exists()
    assert _run("history", "https://news.example/a").exit_code == 0
    assert corpus.exists()


def test_quiet_from_a_file_gives_way_to_verbose_on_the_command_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    (tmp_path / "auditor.yaml").write_text("quiet: true\n")
    assert _run("lint", str(corpus)).output == ""
    loud = _run("lint", str(corpus), "-v")
    assert "amp-cache-mismatch" in loud.stdout and "auditor: run 2" in loud.stderr
    both = _one_error_line(_run("lint", str(corpus), env={"AUDITOR_QUIET": "1", "AUDITOR_VERBOSE": "1"}))
    assert both == "Error: --quiet and --verbose contradict each other (env AUDITOR_QUIET); pick one"


def test_config_prints_each_value_and_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(
        "# tuned for a slow CDN\ntimeout: 60\nper_host: 2\nseverity:\n  redirect: off\n"
    )
    result = _run("config", "--per-host", "3", env={"AUDITOR_MAX_AGE": "1d", "AUDITOR_TOKEN": "s3cret"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["# Config file: auditor.yaml", "# Ignored, naming no setting: AUDITOR_TOKEN"]
    assert lines[3].split() == ["paths:", "[seeds]", "#", "default"]
    assert "s3cret" not in result.output
    rows: dict[str, str] = {}
    for line in lines:  # the first of a name: a top-level key comes before archive.timeout
        rows.setdefault(line.split(":")[0].strip(), " ".join(line.split()))
    assert rows["timeout"] == "timeout: 60.0 # auditor.yaml:2"
    assert rows["per_host"] == "per_host: 3 # command line"
    assert rows["max_age"] == "max_age: 1d # env AUDITOR_MAX_AGE"
    assert rows["redirect"] == "redirect: 'off' # auditor.yaml:5"
    assert rows["every"] == "every: 6h # default"
    assert yaml.safe_load(result.stdout)["severity"]["redirect"] == "off"  # itself a config file


def test_serve_takes_every_host_and_port_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor.serve import service

    seen: dict[str, Any] = {}

    def fake_serve(config: Config, **kwargs: Any) -> int:
        seen.update(config=config, **kwargs)
        return 0

    monkeypatch.setattr(service, "serve", fake_serve)
    (tmp_path / "auditor.yaml").write_text("every: 30m\nhost: '::1'\nport: 9\nconcurrency: 3\n")
    result = _run("serve", env={"AUDITOR_PORT": "10"})
    assert result.exit_code == 0, result.output
    assert (seen["every"], seen["host"], seen["port"], seen["config"].crawl.concurrency) == (1800, "::1", 10, 3)
    (tmp_path / "auditor.yaml").write_text("every: 1.5h\n")
    assert _one_error_line(_run("serve")) == "Error: auditor.yaml:1: every: '1.5h' is not a duration like 30m, 6h or 2d"


README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- options: begin -->", "<!-- options: end -->"


def test_readme_options_table_is_the_clis_own() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    table = text.split(BEGIN)[1].split(END)[0].strip()
    assert table == options_reference(), "README's options table is stale: paste `auditor config --reference` into it"
    assert _run("config", "--reference").stdout.strip() == table
    # Each option once, every option of every command, every setting.
    rows = [line.removeprefix("| ").split(" | ") for line in table.splitlines()[2:]]
    options = [flag.strip("`") for row in rows for flag in row[0].split(", ") if row[0] != "—"]
    assert len(options) == len(set(options))
    every_option = {
        opt
        for command in cli.commands.values()
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    }
    assert set(options) - {"PATHS ..."} == every_option
    keys = [row[1].strip("`") for row in rows if row[1] != "—"]
    assert sorted(keys) == sorted(Settings.model_fields)


def test_unknown_format_is_exit_2(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    line = _one_error_line(_run("lint", str(corpus), "--format", "json,pdf"))
    assert line == "Error: --format: unknown format pdf; choose from json, md, html, junit"
    assert not (tmp_path / "audit.sqlite").exists()  # refused before any run was started


def test_quiet_and_verbose_together_is_exit_2(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    assert "contradict" in _one_error_line(_run("lint", str(corpus), "--quiet", "--verbose"))


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    result = _run("lint", str(corpus), "-q")
    assert result.exit_code == 0 and result.output == ""


def test_one_broken_file_next_to_good_ones(tmp_path: Path) -> None:
    corpus = _corpus(
        tmp_path,
        **{"a.md": GOOD, "b.md": "---\ntitle: [unclosed\n---\n", "c.md": GOOD.replace("Big News", "Other News")},
    )
    result = _run("lint", str(corpus))
    assert result.exit_code == 1
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["summary"]["documents"] == 3
    assert [(Path(f["document"]).name, f["code"]) for f in report["findings"]] == [("b.md", "invalid-metadata")]
    assert {Path(r["document"]).name for r in report["references"]} == {"a.md", "c.md"}  # still read
    suites = {Path(s.get("name") or "").name for s in ET.parse(tmp_path / "reports" / "junit.xml").iter("testsuite")}
    assert suites == {"a.md", "b.md", "c.md"}


# -- audit with the network mocked ---------------------------------------------
def _mock_news(router: respx.MockRouter, image: httpx.Response) -> None:
    router.get("https://news.example/a").mock(
        return_value=httpx.Response(200, html="<head><title>Big News</title></head>")
    )
    router.get("https://img.example/a.png").mock(return_value=image)


def test_audit_exit_codes_with_mocked_network(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    with respx.mock(assert_all_called=False) as router:
        _mock_news(router, httpx.Response(200, content=_png((120, 50)), headers={"Content-Type": "image/png"}))
        clean = _run("audit", str(corpus), "--allow-private", "--retries", "0")
    assert clean.exit_code == 0, clean.output
    with respx.mock(assert_all_called=False) as router:
        _mock_news(router, httpx.Response(404))
        dead = _run("audit", str(corpus), "--allow-private", "--retries", "0", "--verbose")
    assert dead.exit_code == 1
    assert (
        "auditor: [1/2] 200 page https://news.example/a" in dead.stderr
        or "auditor: [2/2] 200 page https://news.example/a" in dead.stderr
    )
    assert "404 image https://img.example/a.png" in dead.stderr
    assert "\r" not in dead.stderr  # not a terminal: no progress line


def test_suggest_from_the_flag_or_the_config_file_and_no_suggest_wins(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    snapshot = "https://web.archive.org/web/20200101000000/https://img.example/a.png"
    closest = {"available": True, "url": snapshot, "timestamp": "20200101000000", "status": "200"}
    with respx.mock(assert_all_called=False) as router:
        _mock_news(router, httpx.Response(404))
        api = router.get("https://archive.org/wayback/available").mock(
            return_value=httpx.Response(200, json={"archived_snapshots": {"closest": closest}})
        )
        result = _run("audit", str(corpus), "--allow-private", "--retries", "0", "--suggest")
        assert result.exit_code == 1 and api.call_count == 1
        assert f"images[0].url: dead link: http 404 (https://img.example/a.png); archived copy: {snapshot} " in (
            result.stdout
        )
        assert "auditor: Archived copies (Wayback Machine): 1 of 1 dead-link URLs have one" in result.stderr
        (tmp_path / "auditor.yaml").write_text("suggest: true\narchive:\n  ttl: 0s\n")
        assert _run("audit", str(corpus), "--allow-private", "--retries", "0").exit_code == 1
        assert api.call_count == 2  # from the file, and the cache is never fresh with a TTL of 0
        assert _run("audit", str(corpus), "--allow-private", "--retries", "0", "--no-suggest").exit_code == 1
        assert api.call_count == 2
        assert "--suggest / --no-suggest" in _run("serve", "--help").output


def test_github_annotations_and_step_summary(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    with respx.mock(assert_all_called=False) as router:
        _mock_news(router, httpx.Response(404))
        result = _run("audit", str(corpus), "--allow-private", "--retries", "0", env=env)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [  # the path as the corpus was named: relative to the checkout
        "::error file=corpus/a.md,line=7,title=dead-link%3A images[0].url::dead link: http 404 (https://img.example/a.png)"
    ]
    assert "❌ **auditor failed**" in summary.read_text(encoding="utf-8")
    # Told otherwise, it stays quiet even on GitHub.
    assert _run("lint", str(corpus), "--annotations", "none", env=env).stdout == ""


def test_annotations_on_request_outside_github(tmp_path: Path) -> None:
    _corpus(tmp_path, **{"a.md": BAD_AMP})
    result = _run("lint", "corpus", "--annotations", "github")
    assert result.stdout.startswith("::error file=corpus/a.md,line=5,title=amp-cache-mismatch%3A cdnAmpWebUrl::")


# -- report and runs -------------------------------------------------------------
def test_report_re_renders_a_stored_run(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    _run("lint", str(corpus), "--format", "json")
    (corpus / "a.md").write_text(GOOD)
    _run("lint", str(corpus), "--format", "json")
    result = _run("report", "--run", "1", "--out", "again", "--format", "html,junit,md")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["junit.xml", "report.html", "report.md"]
    assert "amp-cache-mismatch" in (tmp_path / "again" / "report.md").read_text()
    latest = _run("report", "--out", "latest", "--format", "json")
    assert latest.exit_code == 0
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert report["run"]["id"] == 2 and report["findings"] == []
    assert [f["code"] for f in report["changes"]["fixed"]] == ["amp-cache-mismatch"]


def test_report_refuses_missing_database_and_run(tmp_path: Path) -> None:
    assert _one_error_line(_run("report", "--db", "nope.sqlite")) == "Error: database not found: nope.sqlite"
    assert not (tmp_path / "nope.sqlite").exists()  # not created by asking
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    _run("lint", str(corpus))
    assert _one_error_line(_run("report", "--run", "42")) == "Error: audit.sqlite has no run 42"
    assert "unknown format" in _one_error_line(_run("report", "--format", "xml"))
    (tmp_path / "junk.sqlite").write_bytes(b"garbage " * 200)
    assert "cannot use database junk.sqlite" in _one_error_line(_run("report", "--db", "junk.sqlite"))


def test_report_refuses_a_database_that_is_not_auditors(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "other.sqlite") as connection:
        connection.execute("create table things (x)")
    line = _one_error_line(_run("runs", "--db", "other.sqlite"))
    assert line == "Error: other.sqlite is not an auditor database (it has no runs table)"


def test_runs_lists_every_run_with_counts(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP})
    _run("lint", str(corpus), "--format", "json")
    (corpus / "b.md").write_text(GOOD.replace("domain: news.example", "domain: elsewhere.example"))
    _run("lint", str(corpus), "--format", "json")
    result = _run("runs")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "run",
        "mode",
        "status",
        "started",
        "took",
        "documents",
        "references",
        "URLs",
        "errors",
        "warnings",
    ]
    first, second = (line.split() for line in lines[1:])
    assert (first[0], first[1], first[2], first[5:]) == ("1", "lint", "finished", ["1", "4", "4", "1", "0"])
    assert (second[0], second[5:]) == ("2", ["2", "6", "4", "1", "1"])
    assert _one_error_line(_run("runs", "--db", "missing.sqlite")) == "Error: database not found: missing.sqlite"


def test_findings_are_printed_compiler_style_and_terminal_safe(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": BAD_AMP.replace("title:", "excerpt: 5\ntitle:", 1)})
    (corpus / "b.md").write_text('---\ntitle: "\\e[31mred\\e[0m"\nwebUrl: ftp://x.example/\n---\n')
    result = _run("lint", "corpus")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("corpus/a.md:6: error [amp-cache-mismatch] cdnAmpWebUrl: ") for line in lines), lines
    assert any(line.startswith("corpus/b.md:3: error [invalid-metadata] webUrl: ") for line in lines), lines
    assert "\x1b" not in result.stdout


def test_unwritable_out_is_exit_2_and_the_run_is_kept(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    (tmp_path / "taken").write_text("a file, not a directory")
    line = _one_error_line(_run("lint", str(corpus), "--out", "taken"))
    assert line.startswith("Error: cannot write reports to taken:") and "auditor report --run 1" in line
    assert _run("report", "--run", "1", "--out", "fresh").exit_code == 0


def test_history_prints_a_urls_verdict_per_run_and_prune_keeps_the_latest(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/ok/cli-history")
    corpus = _corpus(tmp_path, **{"a.md": f"---\ntitle: OK\nwebUrl: {url}\n---\n"})
    for extra in ([], ["--max-age", "1d"]):
        assert _run("audit", str(corpus), "--allow-private", "--format", "json", *extra).exit_code == 0
    result = _run("history", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["run", "started", "verdict", "checked", "at", "how"]
    assert "reused from run 1" in lines[1] and lines[2].split()[0] == "1" and "fetched" in lines[2]
    assert _run("history", "not a url").exit_code == 2
    recent = _run("prune", "--older-than", "1d")  # both runs are younger: nothing dropped
    assert recent.exit_code == 0 and "dropped 0 run(s), kept 2" in recent.stderr
    pruned = _run("prune", "--keep", "1")
    assert pruned.exit_code == 0 and "dropped 1 run(s), kept 1" in pruned.stderr
    (kept,) = _run("history", url).stdout.strip().splitlines()[1:]
    assert kept.split()[0] == "2" and kept.endswith("reused from run 1 (pruned)")
    assert _run("prune").exit_code == 2  # one of --keep or --older-than


def test_max_age_must_be_a_duration(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    assert "--max-age: 'soon' is not a duration" in _one_error_line(_run("audit", str(corpus), "--max-age", "soon"))


# -- --dump, --include/--exclude, --remap ----------------------------------------
DUMP_A = """---
title: A
webUrl: https://NEWS.example:443/a
images:
  - url: https://img.example/x.png
    width: 1
    height: 1
related:
  - title: B
    webUrl: https://cdn.example/y
---
"""
DUMP_B = "---\ntitle: B\noriginalUrl: https://news.example/a\n---\n"


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way out fails loudly: DNS, a socket connect, a crawler."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr("socket.getaddrinfo", refuse)
    monkeypatch.setattr("socket.socket.connect", refuse)
    monkeypatch.setattr("auditor.pipeline.Crawler", refuse)


def test_dump_prints_each_url_with_its_references_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path, **{"a.md": DUMP_A, "b.md": DUMP_B})
    _no_network(monkeypatch)
    with respx.mock(assert_all_called=False) as mock:  # no routes: any HTTP request would fail
        result = _run(
            "audit",
            str(corpus),
            "--dump",
            "--exclude",
            r"cdn\.example",
            "--remap",
            r"^https://news\.example/ https://staging.example/",
        )
        assert not mock.calls
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        '{"url": "https://cdn.example/y", "excluded": true, '
        '"excluded_by": "matches exclude pattern \'cdn\\\\.example\'", '
        '"fetch_url": null, "references": [{"document": "corpus/a.md", "line": 10, "field": "related[0].webUrl"}]}',
        '{"url": "https://img.example/x.png", "excluded": false, "excluded_by": null, '
        '"fetch_url": "https://img.example/x.png", "references": [{"document": "corpus/a.md", "line": 5, '
        '"field": "images[0].url"}]}',
        '{"url": "https://news.example/a", "excluded": false, "excluded_by": null, '
        '"fetch_url": "https://staging.example/a", "references": [{"document": "corpus/a.md", "line": 3, '
        '"field": "webUrl"}, {"document": "corpus/b.md", "line": 3, "field": "originalUrl"}]}',
    ]
    assert result.stderr == ""
    assert not (tmp_path / "audit.sqlite").exists() and not (tmp_path / "reports").exists()


def test_dump_escapes_what_a_terminal_would_obey(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"\u202eevil.md": "---\ntitle: T\nwebUrl: https://news.example/\u00e9t\u00e9\n---\n"})
    result = _run("audit", str(corpus), "--dump")
    assert result.exit_code == 0 and result.stdout.isascii()
    assert json.loads(result.stdout)["url"] == "https://news.example/\u00e9t\u00e9"


def test_filters_come_from_the_config_file_and_the_command_line_replaces_them(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": DUMP_A})
    (tmp_path / "auditor.yaml").write_text("exclude:\n  - 'img\\.example'\nexclude_paths: [nothing/]\n")

    def excluded(*args: str) -> list[str]:
        result = _run("audit", str(corpus), "--dump", *args)
        assert result.exit_code == 0, result.output
        return [line["url"] for line in map(json.loads, result.stdout.splitlines()) if line["excluded"]]

    assert excluded() == ["https://img.example/x.png"]
    assert excluded("--exclude", r"cdn\.") == ["https://cdn.example/y"]
    assert excluded("--include", "x.png") == []  # the file's exclude, and an include that wins over it
    assert _run("audit", str(corpus), "--dump", "--exclude-path", "a.md").stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exclude", "a("], "Error: --exclude: 'a(' is not a valid regular expression: "),
        (["--include", "*x"], "Error: --include: '*x' is not a valid regular expression: "),
        (["--remap", "^https://a/"], "Error: --remap: '^https://a/' must be a regular expression and"),
        (["--exclude-path", "[z-a]"], "Error: --exclude-path: '[z-a]' is not a valid glob: "),
        (["--exclude", "fine", "--exclude", "a("], "Error: --exclude #2: 'a(' is not a valid regular expression: "),
    ],
)
def test_a_bad_filter_is_one_line_and_exit_2_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    for extra in ([], ["--dump"]):
        assert _one_error_line(_run("audit", str(corpus), *args, *extra)).startswith(message)
    assert not (tmp_path / "audit.sqlite").exists()


def test_a_bad_pattern_in_the_config_file_names_the_key(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    (tmp_path / "auditor.yaml").write_text("# not checked\nexclude:\n  - fine\n  - '('\n")
    line = _one_error_line(_run("audit", str(corpus)))
    assert line.startswith("Error: auditor.yaml:4: exclude[1]: '(' is not a valid regular expression: ")
    assert _one_error_line(_run("lint", str(corpus))) == line  # lint reads the same file


def test_a_remap_that_makes_no_url_is_exit_2(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    line = _one_error_line(_run("audit", str(corpus), "--dump", "--remap", r"^https://news\.example/ ftp://mirror/"))
    assert line.startswith(
        r"Error: --remap / remap: '^https://news\.example/ ftp://mirror/' turns https://news.example/a"
    )


def test_dump_and_resume_or_serve_contradict(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, **{"a.md": GOOD})
    assert "cannot --resume" in _one_error_line(_run("audit", str(corpus), "--dump", "--resume"))
    served = _run("serve", str(corpus), "--dump")  # audit's own, as --resume is
    assert served.exit_code == 2 and "Error: No such option '--dump'" in served.stderr


def test_history_says_when_a_run_excluded_the_url(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/ok/cli-history-excluded")
    corpus = _corpus(tmp_path, **{"a.md": f"---\ntitle: OK\nwebUrl: {url}\n---\n"})
    assert _run("audit", str(corpus), "--allow-private", "--format", "json").exit_code == 0
    excluded = _run("audit", str(corpus), "--allow-private", "--format", "json", "--exclude", "history-excluded")
    assert excluded.exit_code == 0 and "(1 excluded)" in excluded.stderr
    lines = _run("history", url).stdout.strip().splitlines()
    assert "excluded: matches exclude pattern 'history-excluded'" in lines[1] and lines[1].endswith("not fetched")
    assert lines[2].split()[0] == "1" and " ok " in lines[2]
    assert loopback.hits("/ok/cli-history-excluded") == 1


def test_no_soft_404_asks_no_host_probe(tmp_path: Path, loopback: Any) -> None:
    url = loopback.url_for("/ok/cli-soft-404")
    corpus = _corpus(tmp_path, **{"a.md": f"---\ntitle: OK\nwebUrl: {url}\n---\n"})

    def probes() -> int:
        return sum(1 for request in loopback.requests if request.path_only.endswith("-auditor-probe"))

    before = probes()
    assert _run("audit", str(corpus), "--allow-private", "--format", "json", "--no-soft-404").exit_code == 0
    assert probes() == before
    assert _run("audit", str(corpus), "--allow-private", "--format", "json").exit_code == 0
    assert probes() == before + 1
    (tmp_path / "auditor.yaml").write_text("soft_404: false\n")  # the file's, and the flag that undoes it
    assert _run("audit", str(corpus), "--allow-private", "--format", "json").exit_code == 0
    assert probes() == before + 1
    assert _run("audit", str(corpus), "--allow-private", "--format", "json", "--soft-404").exit_code == 0
    assert probes() == before + 2
    assert "--no-soft-404" in _run("serve", "--help").output  # serve takes every audit option


def test_config_never_prints_a_header_or_proxy_secret(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(
        "hosts:\n  api.example:\n    headers:\n      Authorization: 'Bearer ${API_TOKEN}'\n"
        "      Cookie: session=abc123\n"
    )
    result = _run(
        "config",
        "--header",
        "X-Key: literal-42",
        "--proxy",
        "http://user:pw-99@proxy.example:8080",
        env={"API_TOKEN": "tok-77", "AUDITOR_HEADERS": "X-Env: env-55"},
    )
    assert result.exit_code == 0, result.output
    for secret in ("abc123", "literal-42", "pw-99", "tok-77", "env-55"):
        assert secret not in result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["headers"] == {"X-Key": "***"}  # the command line's, over the variable's
    assert shown["hosts"]["api.example"]["headers"] == {"Authorization": "Bearer ${API_TOKEN}", "Cookie": "***"}
    assert shown["proxy"] == "http://<redacted>@proxy.example:8080"
