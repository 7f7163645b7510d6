from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import DEFAULT_SEVERITIES, Config, load_config_file
from auditor.errors import ConfigError


def test_fail_on_levels() -> None:
    assert Config().fails("error") and not Config().fails("warning")
    assert Config(fail_on="warning").fails("warning")
    assert not Config(fail_on="never").fails("error")
    assert not Config(fail_on="warning").fails("off")


def test_severity_overrides_and_off(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("severity:\n  provider-domain-mismatch: error\n  title-mismatch: off\n")
    config = Config(**load_config_file(path))
    assert config.severity("provider-domain-mismatch") == "error"
    assert config.severity("title-mismatch") == "off"
    assert config.severity("dead-link") == DEFAULT_SEVERITIES["dead-link"]


def test_parse_limits_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("limits:\n  max_values: 5000\n  max_front_matter_bytes: 65536\n")
    limits = Config(**load_config_file(path)).limits
    assert (limits.max_values, limits.max_front_matter_bytes, limits.max_depth) == (5000, 65536, 32)


def test_required_fields_by_type(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("required:\n  video: [title, originalUrl]\n  brief: [ 'webUrl | originalUrl' ]\n")
    schema = Config(**load_config_file(path)).schema
    assert schema.requirements("video") == (("title",), ("originalUrl",))
    assert schema.requirements("brief") == (("webUrl", "originalUrl"),)
    # Types not named keep the default: a title and at least one page URL.
    assert schema.requirements("article") == (("title",), ("webUrl", "originalUrl"))
    assert schema.requirements(None) == Config().schema.requirements("anything")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("severty: {}\n", "'severty'"),
        ("severity:\n  dead-links: error\n", "severity.dead-links"),
        ("severity:\n  dead-link: fatal\n", "severity.dead-link"),
        ("severity: [1]\n", "'severity'"),
        ("- a\n", "mapping"),
        ("severity: {a: [\n", "not valid YAML"),
        ("limits:\n  max_value: 5\n", "limits.max_value"),
        ("limits:\n  max_values: -5\n", "limits.max_values"),
        ("limits: 5\n", "'limits'"),
        ("required: [title]\n", "'required' must be a mapping"),
        ("required:\n  video: title\n", "'required.video' must be a list"),
        ("required:\n  video: [title, 'web Url']\n", "required.video.1."),
        ("required:\n  video: [title, '|webUrl']\n", "required.video.1."),
        ("required:\n  video: [[title]]\n", "required.video.0."),
        ("suggest: please\n", "'suggest' must be true or false"),
        ("archive: 5\n", "'archive' must be a mapping"),
        ("archive:\n  rates: 1\n", "unknown key 'archive.rates'"),
        ("archive:\n  rate: fast\n", "'archive.rate' must be a positive number"),
        ("archive:\n  rate: 0\n", "'archive.rate' must be a positive number"),
        ("archive:\n  concurrency: 1.5\n", "'archive.concurrency' must be a positive whole number"),
        ("archive:\n  max_lookups: true\n", "'archive.max_lookups' must be a positive whole number"),
        ("archive:\n  ttl: soon\n", "'archive.ttl': 'soon' is not a duration"),
        ("archive:\n  api_url: ftp://archive.example/\n", "'archive.api_url' must be an http"),
        ("archive:\n  ttl: -1\n", "'archive.ttl' must be a duration"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=names.replace("[", r"\[")):
        load_config_file(path)


def test_suggest_and_the_archive_settings(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("suggest: true\narchive:\n  ttl: 7d\n  rate: 2\n  max_lookups: 100\n")
    config = Config(**load_config_file(path))
    assert config.suggest and not Config().suggest
    assert (config.archive.ttl, config.archive.rate, config.archive.max_lookups) == (7 * 86400.0, 2.0, 100)
    assert config.archive.api_url == Config().archive.api_url == "https://archive.org/wayback/available"
    path.write_text("archive:\n  ttl: 3600\n")
    assert Config(**load_config_file(path)).archive.ttl == 3600.0
