from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic import ValidationError

from auditor import settings
from auditor.cli import audit, lint, option_key, serve
from auditor.config import DEFAULT_SEVERITIES, ArchiveConfig, Config, CrawlConfig, ParseLimits
from auditor.errors import ConfigError
from auditor.network import AcceptCodes, parse_header, parse_hosts, proxy_setting
from auditor.settings import Settings


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config file is found in the working directory: each test has its own."""
    monkeypatch.chdir(tmp_path)


def _resolve(
    text: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    given: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> settings.Resolved:
    if text is not None:
        Path("auditor.yaml").write_text(text, encoding="utf-8")
    # Each key's flag as the commands spell it (--header for headers), as cli._resolve passes them.
    flags = {
        option_key(param): max(param.opts, key=len)
        for command in (audit, serve)
        for param in command.params
        if isinstance(param, click.Option)
    }
    return settings.resolve(command_line=given or {}, flags=flags, environ=env or {}, config_file=config_file)


def _error(text: str | None = None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        _resolve(text, **kwargs)
    return str(caught.value)


# -- the file-only keys, as before the options joined them -----------------------------------------
def test_severity_overrides_and_off() -> None:
    config = _resolve("severity:\n  provider-domain-mismatch: error\n  title-mismatch: off\n").config()
    assert config.severity("provider-domain-mismatch") == "error"
    assert config.severity("title-mismatch") == "off"
    assert config.severity("dead-link") == DEFAULT_SEVERITIES["dead-link"]


def test_parse_limits_from_the_config_file() -> None:
    limits = _resolve("limits:\n  max_values: 5000\n  max_front_matter_bytes: 65536\n").config().limits
    assert (limits.max_values, limits.max_front_matter_bytes, limits.max_depth) == (5000, 65536, 32)


def test_required_fields_by_type() -> None:
    text = "required:\n  video: [title, originalUrl]\n  brief: [ 'webUrl | originalUrl' ]\n"
    schema = _resolve(text).config().schema
    assert schema.requirements("video") == (("title",), ("originalUrl",))
    assert schema.requirements("brief") == (("webUrl", "originalUrl"),)
    # Types not named keep the default: a title and at least one page URL.
    assert schema.requirements("article") == (("title",), ("webUrl", "originalUrl"))
    assert schema.requirements(None) == Config().schema.requirements("anything")


def test_limits_model_has_every_parse_limit() -> None:
    assert list(settings.Limits.model_fields) == [f.name for f in dataclasses.fields(ParseLimits)]
    assert settings.Limits().model_dump() == dataclasses.asdict(ParseLimits())


# -- errors: one line naming the file, the line and the key ----------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severty: {}\n", "auditor.yaml:1: unknown key 'severty' (did you mean 'severity'?)"),
        ("# tuning\nconcurency: 3\n", "auditor.yaml:2: unknown key 'concurency' (did you mean 'concurrency'?)"),
        ("per-host: 3\n", "auditor.yaml:1: unknown key 'per-host' (keys are written with underscores: 'per_host')"),
        ("severity:\n  dead-links: error\n",
         "auditor.yaml:2: unknown key 'severity.dead-links' (did you mean 'dead-link'?)"),
        ("severity:\n  dead-link: fatal\n",
         "auditor.yaml:2: severity.dead-link: must be one of 'error', 'warning' or 'off', not 'fatal'"),
        ("severity: [1]\n", "auditor.yaml:1: severity: must be a mapping"),
        ("- a\n", "auditor.yaml:1: expected a mapping of settings (key: value) at the top level"),
        ("db: x\nseverity: {a: [\n",
         "auditor.yaml:3: not valid YAML: expected the node content, but found '<stream end>'"),
        ("limits:\n  max_value: 5\n",
         "auditor.yaml:2: unknown key 'limits.max_value' (known: max_front_matter_bytes, max_values, max_built_chars, "
         "max_depth)"),
        ("limits:\n  max_values: -5\n", "auditor.yaml:2: limits.max_values: must be at least 1, not -5"),
        ("limits: 5\n", "auditor.yaml:1: limits: must be a mapping, not 5"),
        ("required: [title]\n", "auditor.yaml:1: required: must be a mapping"),
        ("required:\n  video: title\n", "auditor.yaml:2: required.video: must be a list, not 'title'"),
        ("required:\n  video:\n    - title\n    - web Url\n",
         "auditor.yaml:4: required.video[1]: must be a field name, or names joined by '|', not 'web Url'"),
        ("required:\n  video: [title, '|webUrl']\n",
         "auditor.yaml:2: required.video[1]: must be a field name, or names joined by '|', not '|webUrl'"),
        ("required:\n  video: [[title]]\n",
         "auditor.yaml:2: required.video[0]: must be a field name, or names joined by '|', not ['title']"),
        ("db: a.sqlite\nper_host: 100\n", "auditor.yaml:2: per_host: must be at most 64, not 100"),
        ("per_host: true\n", "auditor.yaml:1: per_host: must be a whole number, not true"),  # no bool-as-int
        ("per_host: '8'\n", "auditor.yaml:1: per_host: must be a whole number, not '8'"),
        ("timeout: fast\n", "auditor.yaml:1: timeout: must be a number, not 'fast'"),
        ("allow_private: 1\n", "auditor.yaml:1: allow_private: must be true or false, not 1"),
        ("format: json,pdf\n", "auditor.yaml:1: format: unknown format pdf; choose from json, md, html, junit"),
        ("format: [json, xml]\n", "auditor.yaml:1: format: unknown format xml; choose from json, md, html, junit"),
        ("max_age: soon\n", "auditor.yaml:1: max_age: 'soon' is not a duration like 30m, 6h or 2d"),
        ("every: 0m\n", "auditor.yaml:1: every: '0m' is no interval; it must be at least 1s"),
        ("db: 5\n", "auditor.yaml:1: db: must be a path, not 5"),
        ("out: ''\n", "auditor.yaml:1: out: must not be empty"),
        ("fail_on: x\n", "auditor.yaml:1: fail_on: must be one of 'error', 'warning' or 'never', not 'x'"),
        ("annotations: gitlab\n", "auditor.yaml:1: annotations: must be one of 'github' or 'none', not 'gitlab'"),
        ("per_host: 3\nrate: 1\nper_host: 4\n", "auditor.yaml:3: 'per_host' is given twice (first on line 1)"),
        ("per_host: x\nrate: y\n", "auditor.yaml:1: per_host: must be a whole number, not 'x' (and 1 more)"),
        # Network settings and host rules: network.py's own messages, at the entry's line.
        ("accept:\n  - 403\n  - '600'\n", "auditor.yaml:3: accept[1]: '600' is not a status code or range: write "
                                         "codes like 403 or ranges like 200-299, between 100 and 599"),
        ("headers:\n  X-Ok: 1\n  Host: b.example\n",
         "auditor.yaml:3: headers.Host: 'Host' is set by auditor itself and cannot be configured"),
        ("headers: ['X-Ok: 1', 'no colon']\n", "auditor.yaml:1: headers[1]: not a header: write 'Name: value'"),
        ("headers: 5\n", "auditor.yaml:1: headers: must be a mapping of header name to value, or a list of 'Name: "
                          "value'"),
        ("user_agent: \"two\\nlines\"\n", "auditor.yaml:1: user_agent: must be printable text on one line"),
        ("proxy: socks5://127.0.0.1:1080\n",
         "auditor.yaml:1: proxy: not a proxy URL: write http://host:port (schemes: http, https)"),
        ("ca_bundle: ''\n", "auditor.yaml:1: ca_bundle: must not be empty"),
        ("hosts:\n  a.example:\n    rate: 1\n    burst: 3\n",
         "auditor.yaml:4: hosts[a.example].burst: unknown setting (known: concurrency, rate, timeout, headers, "
         "accept)"),
        ("hosts:\n  '*.example.com':\n    concurrency: 0\n",
         "auditor.yaml:3: hosts[*.example.com].concurrency: must be a whole number from 1 to 64, not 0"),
        ("hosts:\n  a.example:\n    headers:\n      X-Key: '${not a name}'\n",
         "auditor.yaml:4: hosts[a.example].headers.X-Key: header 'X-Key': ${not a name} is not a variable name "
         "(letters, digits and _)"),
        ("hosts: [a.example]\n", "auditor.yaml:1: hosts: must be a mapping of host (or *.domain) to its settings"),
        # Filters: each entry checked where it is written.
        ("include:\n  - fine\n  - '(x'\n",
         "auditor.yaml:3: include[1]: '(x' is not a valid regular expression: missing ), unterminated subpattern at "
         "position 0"),
        ("remap: ['^https://a/']\n", "auditor.yaml:1: remap[0]: '^https://a/' must be a regular expression and a "
                                     "replacement separated by white space, e.g. '^https://www\\.example\\.com/ "
                                     "https://staging.example.com/'"),
        ("exclude_paths: ['[z-a]']\n", "auditor.yaml:1: exclude_paths[0]: '[z-a]' is not a valid glob: bad "
                                       "character range z-a"),
        ("exclude: [1]\n", "auditor.yaml:1: exclude[0]: must be text, not 1 (quote it)"),
        ("exclude: ['']\n", "auditor.yaml:1: exclude[0]: is empty: write the pattern, or remove the line"),
        # Archived copies.
        ("suggest: please\n", "auditor.yaml:1: suggest: must be true or false, not 'please'"),
        ("soft_404: 0\n", "auditor.yaml:1: soft_404: must be true or false, not 0"),
        ("archive: 5\n", "auditor.yaml:1: archive: must be a mapping, not 5"),
        ("archive:\n  rates: 1\n", "auditor.yaml:2: unknown key 'archive.rates' (did you mean 'rate'?)"),
        ("archive:\n  rate: fast\n", "auditor.yaml:2: archive.rate: must be a number, not 'fast'"),
        ("archive:\n  rate: 0\n", "auditor.yaml:2: archive.rate: must be more than 0, not 0"),
        ("archive:\n  concurrency: 1.5\n", "auditor.yaml:2: archive.concurrency: must be a whole number, not 1.5"),
        ("archive:\n  max_lookups: true\n", "auditor.yaml:2: archive.max_lookups: must be a whole number, not true"),
        ("archive:\n  ttl: soon\n", "auditor.yaml:2: archive.ttl: 'soon' is not a duration like 30m, 6h or 2d"),
        ("archive:\n  ttl: -1\n", "auditor.yaml:2: archive.ttl: must be at least 0, not -1"),
        ("archive:\n  api_url: ftp://archive.example/\n",
         "auditor.yaml:2: archive.api_url: must be an http(s) URL, not 'ftp://archive.example/'"),
    ],
)  # fmt: skip
def test_yaml_errors_name_the_file_the_line_and_the_key(text: str, message: str) -> None:
    assert _error(text) == message


PYPROJECT = """\
[project]
name = "corpus"
per_host = "not ours: only [tool.auditor] is read"

[tool.auditor]
fail_on = "warning"
per_host = 8
format = ["json", "md"]

[tool.auditor.severity]
title-mismatch = "off"
"dead-link" = "warning"

[tool.other]
timeout = "not ours either"
"""


def test_pyproject_tool_auditor_table() -> None:
    Path("pyproject.toml").write_text(PYPROJECT)
    resolved = _resolve()
    assert resolved.file == Path("pyproject.toml")
    config = resolved.config()
    assert (config.fail_on, config.crawl.per_host, config.formats) == ("warning", 8, ("json", "md"))
    assert config.severity("title-mismatch") == "off" and config.severity("dead-link") == "warning"
    assert resolved.source("per_host").where == "pyproject.toml:7"
    assert resolved.source("severity", "dead-link").where == "pyproject.toml:12"
    assert resolved.source("timeout").where == "default"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("per_host = 8", "per_host = 80"), "pyproject.toml:7: per_host: must be at most 64, not 80"),
        (("per_host = 8", "per-host = 8"),
         "pyproject.toml:7: unknown key 'per-host' (keys are written with underscores: 'per_host')"),
        (('"dead-link" =', '"dead-links" ='), "pyproject.toml:12: unknown key 'severity.dead-links' (did you mean "
                                              "'dead-link'?)"),
        (('"json", "md"', '"json", "pdf"'), "pyproject.toml:8: format: unknown format pdf; choose from json, md, "
                                            "html, junit"),
        (('fail_on = "warning"', "limits = { max_depth = 0 }"),
         "pyproject.toml:6: limits.max_depth: must be at least 1, not 0"),
        (("[tool.auditor.severity]", "[tool.auditor.sevrity]"), "pyproject.toml:10: unknown key 'sevrity' (did you "
                                                                "mean 'severity'?)"),
        (("fail_on = ", "fail_on == "), "pyproject.toml:6: not valid TOML: Invalid value (at line 6, column 10)"),
    ],
)  # fmt: skip
def test_pyproject_errors_name_the_line(edit: tuple[str, str], message: str) -> None:
    Path("pyproject.toml").write_text(PYPROJECT.replace(*edit))
    assert _error() == message


def test_which_file_is_read() -> None:
    Path("pyproject.toml").write_text('[project]\nname = "corpus"\n')
    assert _resolve().file is None  # a pyproject.toml without [tool.auditor] is not auditor's
    Path("other.toml").write_text("[tool.other]\nx = 1\n")
    assert _error(config_file=Path("other.toml")) == "other.toml: no [tool.auditor] table"
    assert _error(config_file=Path("missing.yaml")) == "config file not found: missing.yaml"
    Path("tuned.yaml").write_text("per_host: 2\n")
    assert _resolve(env={"AUDITOR_CONFIG": "tuned.yaml"}).settings.per_host == 2
    Path("auditor.yaml").write_text("per_host: 3\n")
    assert _resolve().settings.per_host == 3
    assert _resolve(env={"AUDITOR_CONFIG": "tuned.yaml"}).settings.per_host == 2  # named beats found
    Path("pyproject.toml").write_text(PYPROJECT)
    assert _error() == (
        "both auditor.yaml and [tool.auditor] in pyproject.toml configure auditor; keep one, or choose with --config"
    )
    assert _resolve(config_file=Path("pyproject.toml")).settings.per_host == 8


# -- precedence: command line > AUDITOR_<OPTION> > file > default ------------------------------------------
def test_each_key_comes_from_the_strongest_layer_that_sets_it() -> None:
    text = "per_host: 2\nrate: 3\ntimeout: 4\nseverity:\n  redirect: off\n"
    env = {"AUDITOR_PER_HOST": "5", "AUDITOR_RATE": "6.5", "AUDITOR_FAIL_ON": "warning"}
    resolved = _resolve(text, env=env, given={"per_host": 7, "db": Path("cli.sqlite")})
    crawl = resolved.config().crawl
    assert (crawl.per_host, crawl.rate, crawl.timeout, crawl.retries) == (7, 6.5, 4.0, CrawlConfig().retries)
    assert resolved.config().fail_on == "warning" and resolved.config().db == Path("cli.sqlite")
    assert resolved.config().severity("redirect") == "off"
    sources = {key: resolved.source(key).where for key in ("per_host", "rate", "timeout", "retries", "fail_on", "db")}
    assert sources == {
        "per_host": "command line",
        "rate": "env AUDITOR_RATE",
        "timeout": "auditor.yaml:3",
        "retries": "default",
        "fail_on": "env AUDITOR_FAIL_ON",
        "db": "command line",
    }
    assert resolved.source("severity", "redirect").where == "auditor.yaml:5"
    assert resolved.source("severity", "dead-link").where == "default"


def test_every_option_from_the_file_reaches_the_config() -> None:
    text = """\
paths: [docs, more/]
db: state/audit.sqlite
out: site/reports
format: md,html
fail_on: never
concurrency: 8
per_host: 2
rate: 0.5
timeout: 5
retries: 0
max_retry_wait: 10
max_redirects: 3
allow_private: true
max_age: 1h30m
dead_after: 3
flaky_window: 7
accept: 200-299,403
headers:
  X-Token: "tok ${TOKEN}"
user_agent: corpus-bot/1.0
proxy: http://proxy.example:3128
ca_bundle: certs/internal.pem
include: '^https://www\\.example\\.com/'
exclude: ['twitter\\.com', 'cdn\\.']
exclude_paths: [drafts/]
remap: ['^https://www\\.example\\.com/ https://staging.example.com/']
suggest: true
soft_404: false
hosts:
  API.example.com:
    concurrency: 1
    accept: [401]
    headers:
      Authorization: "Bearer ${API_TOKEN}"
archive:
  ttl: 7d
  rate: 2
"""
    config = _resolve(text).config(resume=True)
    assert config.paths == (Path("docs"), Path("more"))
    assert (config.db, config.out, config.formats) == (Path("state/audit.sqlite"), Path("site/reports"), ("md", "html"))
    assert (config.fail_on, config.max_age, config.dead_after, config.flaky_window) == ("never", 5400.0, 3, 7)
    assert dataclasses.replace(config.crawl, user_agent="") == dataclasses.replace(
        CrawlConfig(concurrency=8, per_host=2, rate=0.5, timeout=5.0, retries=0, max_retry_wait=10.0,
                    max_redirects=3, allow_private=True, accept=AcceptCodes.parse("200-299,403"),
                    headers=(parse_header("X-Token: tok ${TOKEN}"),), proxy=proxy_setting("http://proxy.example:3128"),
                    ca_bundle=Path("certs/internal.pem"),
                    hosts=parse_hosts({"api.example.com": {"concurrency": 1, "accept": [401],
                                                           "headers": {"Authorization": "Bearer ${API_TOKEN}"}}})),
        user_agent="",
    )  # fmt: skip
    assert config.crawl.user_agent == "corpus-bot/1.0"
    assert config.crawl.accepts("api.example.com", 401) and not config.crawl.accepts("example.com", 401)
    assert (config.include, config.exclude) == ((r"^https://www\.example\.com/",), (r"twitter\.com", r"cdn\."))
    assert config.exclude_paths == ("drafts/",) and len(config.remap) == 1
    assert config.suggest and not config.soft_404.probe
    assert (config.archive.ttl, config.archive.rate, config.archive.max_lookups) == (7 * 86400.0, 2.0, 500)
    assert config.resume  # the command line's alone


def test_one_path_alone_and_paths_from_a_variable() -> None:
    assert _resolve("paths: docs\n").settings.paths == (Path("docs"),)
    assert _resolve(env={"AUDITOR_PATHS": "docs"}).settings.paths == (Path("docs"),)
    assert _resolve(env={"AUDITOR_PATHS": '["a b", "c"]'}).settings.paths == (Path("a b"), Path("c"))


def test_variables_are_typed_like_file_values_and_errors_name_them() -> None:
    env = {"AUDITOR_ALLOW_PRIVATE": "true", "AUDITOR_TIMEOUT": "2.5", "AUDITOR_FORMAT": "json,md", "AUDITOR_WAIT": "1"}
    s = _resolve(env=env).settings
    assert (s.allow_private, s.timeout, s.format, s.wait) == (True, 2.5, ("json", "md"), True)
    assert _error(env={"AUDITOR_PER_HOST": "eight"}) == "AUDITOR_PER_HOST: must be a whole number, not 'eight'"
    assert _error(env={"AUDITOR_PER_HOST": "65"}) == "AUDITOR_PER_HOST: must be at most 64, not '65'"
    assert _error(env={"AUDITOR_FAIL_ON": "warnings"}) == (
        "AUDITOR_FAIL_ON: must be one of 'error', 'warning' or 'never', not 'warnings'"
    )
    assert _error(env={"AUDITOR_PERHOST": "3"}) == "AUDITOR_PERHOST: no such setting (did you mean 'AUDITOR_PER_HOST'?)"
    assert _error(env={"AUDITOR_SEVERITY": "x"}) == "AUDITOR_SEVERITY: 'severity' is set in the config file only"
    assert _error(env={"AUDITOR_PATHS": '["a", '}) == (
        "AUDITOR_PATHS: not a JSON array: Expecting value (one value starting with '[' is written [\"...\"])"
    )
    assert _resolve(env={"AUDITOR_EXCLUDE": '["[a-z]x"]'}).settings.exclude == ("[a-z]x",)
    assert _resolve("exclude: '[a-z]x'\n").settings.exclude == ("[a-z]x",)  # in a file, text is text
    # Unset and empty are the same (compose files and CI templates leave variables empty).
    assert _resolve(env={"AUDITOR_MAX_AGE": "", "AUDITOR_CONFIG": ""}).source("max_age").where == "default"
    # A name far from every setting is someone else's (a token a header refers to): left alone, listed.
    resolved = _resolve(env={"AUDITOR_API_TOKEN": "s3cret", "AUDITOR_RATE": "2", "HOME_AUDITOR": "x"})
    assert resolved.ignored == ("AUDITOR_API_TOKEN",) and resolved.settings.rate == 2.0


def test_command_line_values_are_checked_by_the_same_model() -> None:
    assert _error(given={"format": "json,pdf"}) == "--format: unknown format pdf; choose from json, md, html, junit"
    assert _error(given={"max_age": "soon"}) == "--max-age: 'soon' is not a duration like 30m, 6h or 2d"
    # A repeated flag's message says which use; a header's text is never repeated (it may be a token).
    assert _error(given={"headers": ("X-Ok: 1", "ghp_s3cret")}) == "--header #2: not a header: write 'Name: value'"
    assert _error(given={"headers": ("Host: x",)}) == (
        "--header: 'Host' is set by auditor itself and cannot be configured"
    )
    assert _error(given={"exclude": ("a(",)}).startswith("--exclude: 'a(' is not a valid regular expression: ")
    assert _error(given={"exclude_paths": ("ok/", "[z-a]")}).startswith("--exclude-path #2: '[z-a]' is not a valid")
    assert _error(given={"accept": "403,abc"}).startswith("--accept: 'abc' is not a status code or range")
    assert _error(given={"proxy": "ftp://p"}).startswith("--proxy: not a proxy URL")
    assert _error(given={"user_agent": "two\nlines"}) == "--user-agent: must be printable text on one line"


def test_a_list_on_the_command_line_or_in_a_variable_replaces_the_files() -> None:
    text = "exclude: [a, b]\ninclude: [c]\nheaders: {X-A: '1'}\nsuggest: true\nsoft_404: false\n"
    assert _resolve(text).settings.exclude == ("a", "b")
    resolved = _resolve(
        text,
        env={"AUDITOR_INCLUDE": '["d", "e"]', "AUDITOR_SOFT_404": "true", "AUDITOR_HEADERS": "X-B: ${B}"},
        given={"exclude": ("z",), "suggest": False},
    )
    config = resolved.config()
    assert (config.exclude, config.include, config.suggest, config.soft_404.probe) == (("z",), ("d", "e"), False, True)
    assert [h.name for h in config.crawl.headers] == ["X-B"]  # the variable's headers, not the file's too
    sources = {key: resolved.source(key).where for key in ("exclude", "include", "headers", "suggest", "soft_404")}
    assert sources == {
        "exclude": "command line",
        "include": "env AUDITOR_INCLUDE",
        "headers": "env AUDITOR_HEADERS",
        "suggest": "command line",
        "soft_404": "env AUDITOR_SOFT_404",
    }


def test_network_variables_and_their_errors() -> None:
    env = {"AUDITOR_ACCEPT": "403,500-503", "AUDITOR_PROXY": "http://p.example:3128", "AUDITOR_CA_BUNDLE": "ca.pem"}
    crawl = _resolve(env=env).config().crawl
    assert (str(crawl.accept), str(crawl.proxy), crawl.ca_bundle) == ("403,500-503", "http://p.example:3128",
                                                                      Path("ca.pem"))  # fmt: skip
    assert _error(env={"AUDITOR_HEADERS": '["X: 1", "bad"]'}) == "AUDITOR_HEADERS #2: not a header: write 'Name: value'"
    assert _error(env={"AUDITOR_ACCEPT": "99"}).startswith("AUDITOR_ACCEPT: '99' is not a status code or range")
    assert _error(env={"AUDITOR_HOSTS": "x"}) == "AUDITOR_HOSTS: 'hosts' is set in the config file only"
    assert _error(env={"AUDITOR_ARCHIVE": "x"}) == "AUDITOR_ARCHIVE: 'archive' is set in the config file only"
    assert _error(env={"AUDITOR_HEADER": "X: 1"}) == "AUDITOR_HEADER: no such setting (did you mean 'AUDITOR_HEADERS'?)"


def test_hosts_in_a_pyproject_table_with_their_lines() -> None:
    Path("pyproject.toml").write_text(
        '[tool.auditor]\nper_host = 2\n\n[tool.auditor.hosts."*.example.com"]\naccept = [403]\n\n'
        '[tool.auditor.hosts."api.example.com".headers]\nAuthorization = "Bearer ${API_TOKEN}"\n'
        'Cookie = "session=abc123"\n'
    )
    resolved = _resolve()
    assert resolved.config().crawl.accepts("www.example.com", 403)
    assert resolved.source("hosts", "*.example.com").where == "pyproject.toml:4"
    text = resolved.describe()
    assert "Bearer ${API_TOKEN}" in text and "abc123" not in text
    Path("pyproject.toml").write_text('[tool.auditor.hosts."a.example"]\nrate = 1\nburst = 3\n')
    assert _error() == (
        "pyproject.toml:3: hosts[a.example].burst: unknown setting (known: concurrency, rate, timeout, headers, accept)"
    )


def test_archive_model_has_every_archive_setting() -> None:
    assert list(settings.Archive.model_fields) == [f.name for f in dataclasses.fields(ArchiveConfig)]
    assert settings.Archive().model_dump() == dataclasses.asdict(ArchiveConfig())
    assert _resolve("archive:\n  ttl: 3600\n").config().archive.ttl == 3600.0
    assert _resolve("archive:\n  ttl: 0s\n").config().archive.ttl == 0.0  # always ask


# -- auditor config's text ------------------------------------------------------------------------------
def test_describe_is_a_valid_config_file_with_every_value_and_its_source() -> None:
    resolved = _resolve(
        "max_age: 1d\nseverity:\n  redirect: off\nlimits:\n  max_depth: 8\n",
        env={"AUDITOR_RATE": "2"},
        given={"per_host": 1},
    )
    text = resolved.describe()
    assert yaml.safe_load(text) == {key: resolved.effective(key) for key in Settings.model_fields}
    assert settings.resolve(  # fed back, it means the same
        command_line={}, flags={}, environ={}, config_file=_write("again.yaml", text)
    ).settings == Settings.model_validate(yaml.safe_load(text))
    lines: dict[str, str] = {}
    for line in text.splitlines():  # the first of a name: a top-level key comes before archive.rate
        lines.setdefault(line.split(":")[0].strip(), line)
    assert lines["per_host"].endswith("# command line") and lines["rate"].endswith("# env AUDITOR_RATE")
    assert lines["max_age"].endswith("# auditor.yaml:1") and lines["timeout"].endswith("# default")
    assert lines["redirect"].endswith("# auditor.yaml:3") and lines["max_depth"].endswith("# auditor.yaml:5")
    assert lines["dead-link"].endswith("# default") and lines["max_values"].endswith("# default")


def _write(name: str, text: str) -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def test_describe_never_shows_a_secret_from_any_layer() -> None:
    literal, proxy_password = "literal-s3cret-1", "proxy-pass-2"
    resolved = _resolve(
        "headers:\n  X-Env: 'token ${FILE_TOKEN}'\n  X-Literal: " + literal + "\n"
        "hosts:\n  '*.Example.com':\n    headers:\n      Cookie: 'consent=" + literal + "'\n"
        "      Authorization: 'Bearer ${API_TOKEN}'\n",
        env={"API_TOKEN": "resolved-never", "AUDITOR_PROXY": f"http://user:{proxy_password}@proxy.example:3128"},
    )
    text = resolved.describe()
    assert literal not in text and proxy_password not in text and "resolved-never" not in text
    shown = yaml.safe_load(text)
    assert shown["headers"] == {"X-Env": "token ${FILE_TOKEN}", "X-Literal": "***"}
    assert shown["hosts"] == {"*.example.com": {"headers": {"Cookie": "***", "Authorization": "Bearer ${API_TOKEN}"}}}
    assert shown["proxy"] == "http://<redacted>@proxy.example:3128"
    assert resolved.source("hosts", "*.example.com").where == "auditor.yaml:5"  # found under its written name
    # From the command line too.
    given = _resolve(given={"headers": (f"X-Given: {literal}",)})
    assert literal not in given.describe() and "X-Given: '***'" in given.describe()


def test_host_rules_read_back_from_describe_mean_the_same() -> None:
    text = "hosts:\n  a.example:\n    rate: 0.5\n    accept: 403,500-503\n    headers: {X-A: '${A}'}\n"
    text += "  '*.b.example': {}\n"
    resolved = _resolve(text)
    again = settings.resolve(
        command_line={}, flags={}, environ={}, config_file=_write("again.yaml", resolved.describe())
    )
    assert again.settings.hosts == resolved.settings.hosts and again.settings.hosts.rules[1].pattern == "*.b.example"


def test_header_values_are_shown_only_as_variable_references() -> None:
    shown = settings.redacted(
        ("hosts",),
        {"api.example": {"headers": {"Authorization": "Bearer ${API_TOKEN}", "Cookie": "session=abc123"}}},
    )
    assert shown == {"api.example": {"headers": {"Authorization": "Bearer ${API_TOKEN}", "Cookie": "***"}}}
    assert settings.redacted(("headers",), {"X-Token": "s3cret", "X-Env": "${TOKEN}"}) == {
        "X-Token": "***",
        "X-Env": "${TOKEN}",
    }
    assert settings.redacted(("user_agent",), "bot/1.0") == "bot/1.0"


# -- every option of the commands has a key, with the same bounds, choices and default ----------------------
# Not settings: --config names the file itself (AUDITOR_CONFIG), --resume and --dump are one run's action.
NOT_SETTINGS = {"config_file", "resume", "dump"}


def _command_params() -> list[click.Parameter]:
    seen: dict[str, click.Parameter] = {}
    for command in (audit, lint, serve):
        for param in command.params:
            seen.setdefault(param.name or "", param)
    return list(seen.values())


def test_every_option_of_audit_lint_and_serve_is_a_setting() -> None:
    keys = {option_key(param) for param in _command_params() if param.name not in NOT_SETTINGS}
    missing = keys - set(settings.OPTION_KEYS)
    assert not missing, f"add these to auditor.settings.Settings: {sorted(missing)}"
    assert set(settings.OPTION_KEYS) == keys  # and no key without its option


def test_every_setting_lands_in_the_config_or_is_the_commands_own() -> None:
    homes = {f.name for f in dataclasses.fields(Config)} | {f.name for f in dataclasses.fields(CrawlConfig)}
    assert set(settings.CONVERTED.values()) <= homes
    for key in settings.OPTION_KEYS:
        plain = key in homes and key not in settings.CONVERTED
        assert plain + (key in settings.COMMAND_KEYS) + (key in settings.CONVERTED) == 1, key
        if plain:  # the same default in both places
            home = Config() if key in {f.name for f in dataclasses.fields(Config)} else CrawlConfig()
            assert getattr(Settings(), key) == getattr(home, key), key


def test_the_defaults_make_the_default_config() -> None:
    assert _resolve().config() == Config()


def _valid(key: str, value: object) -> bool:
    try:
        Settings.model_validate({key: value})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("param", _command_params(), ids=lambda p: p.name or "")
def test_settings_accept_what_the_option_accepts(param: click.Parameter) -> None:
    if param.name in NOT_SETTINGS:
        return
    key = option_key(param)
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        assert _valid(key, True) and _valid(key, False) and not _valid(key, "yes")
    if isinstance(kind, click.IntRange | click.FloatRange):
        step = 1 if isinstance(kind, click.IntRange) else 1e-6
        for bound, outside in ((kind.min, -step), (kind.max, step)):
            if bound is not None:
                assert _valid(key, bound) and not _valid(key, bound + outside), (key, bound)
    if isinstance(kind, click.Choice):
        assert all(_valid(key, choice) for choice in kind.choices)
        assert not _valid(key, "no-such-choice")
    # What the command gets when the option is not given is the setting's default (paths: none means seeds/).
    command = serve if param in serve.params else audit  # --shard is audit's alone
    ctx = command.make_context(command.name or "", [])
    value = ctx.params[param.name or ""]
    default = getattr(Settings(), key)
    if value is None:  # none, or empty as a file writes it (accept: [])
        written = settings.defaults()[key]
        assert written in (None, [], {}), f"--{key}: the option's default is none, the setting's {default!r}"
    elif key != "paths":
        from_click = getattr(settings.command_line_layer({key: value}, {}).settings, key)
        assert from_click == default, f"--{key}: the option's default is {value!r}, the setting's {default!r}"


def test_float_bounds_are_not_rounded() -> None:
    assert not _valid("rate", 0.0) and _valid("rate", 0.01) and not _valid("timeout", math.inf)
