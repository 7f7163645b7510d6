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
from auditor.config import DEFAULT_SEVERITIES, Config, CrawlConfig, ParseLimits
from auditor.errors import ConfigError
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
    flags = {key: "--" + key.replace("_", "-") for key in settings.OPTION_KEYS}
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
"""
    config = _resolve(text).config(resume=True)
    assert config.paths == (Path("docs"), Path("more"))
    assert (config.db, config.out, config.formats) == (Path("state/audit.sqlite"), Path("site/reports"), ("md", "html"))
    assert (config.fail_on, config.max_age, config.dead_after, config.flaky_window) == ("never", 5400.0, 3, 7)
    assert dataclasses.replace(config.crawl, user_agent="") == dataclasses.replace(
        CrawlConfig(concurrency=8, per_host=2, rate=0.5, timeout=5.0, retries=0, max_retry_wait=10.0,
                    max_redirects=3, allow_private=True),
        user_agent="",
    )  # fmt: skip
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
    assert _error(env={"AUDITOR_PATHS": '["a", '}) == "AUDITOR_PATHS: not a JSON array: Expecting value"
    # Unset and empty are the same (compose files and CI templates leave variables empty).
    assert _resolve(env={"AUDITOR_MAX_AGE": "", "AUDITOR_CONFIG": ""}).source("max_age").where == "default"
    # A name far from every setting is someone else's (a token a header refers to): left alone, listed.
    resolved = _resolve(env={"AUDITOR_API_TOKEN": "s3cret", "AUDITOR_RATE": "2", "HOME_AUDITOR": "x"})
    assert resolved.ignored == ("AUDITOR_API_TOKEN",) and resolved.settings.rate == 2.0


def test_command_line_values_are_checked_by_the_same_model() -> None:
    assert _error(given={"format": "json,pdf"}) == "--format: unknown format pdf; choose from json, md, html, junit"
    assert _error(given={"max_age": "soon"}) == "--max-age: 'soon' is not a duration like 30m, 6h or 2d"


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
    ctx = serve.make_context("serve", [])
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
