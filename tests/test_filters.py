from __future__ import annotations

from pathlib import Path

import pytest
from conftest import config_from_file

from auditor.config import Config
from auditor.errors import ConfigError
from auditor.filters import PathFilter, RemapRule, UrlRules

PAGE = "https://news.example/world/a"
OTHER = "https://other.example/b"


def _rules(**settings: tuple[str, ...]) -> UrlRules:
    return UrlRules.of(Config(**settings))


@pytest.mark.parametrize(
    ("include", "exclude", "checked"),
    [
        ((), (), {PAGE, OTHER}),  # no rules: everything
        ((), (r"news\.example",), {OTHER}),
        ((r"/world/",), (r"news\.example",), {PAGE, OTHER}),  # an include match wins over any exclude
        ((r"/world/",), (), {PAGE}),  # includes alone: an allow-list
        ((r"/sport/",), (r"news\.example",), {OTHER}),  # with excludes, matching neither is checked (as lychee)
        ((), (r"^https://news\.example/world/a$",), {OTHER}),  # anchors match the URL whole
    ],
)
def test_include_and_exclude_precedence(include: tuple[str, ...], exclude: tuple[str, ...], checked: set[str]) -> None:
    rules = _rules(include=include, exclude=exclude)
    assert {url for url in (PAGE, OTHER) if rules.excluded_by(url) is None} == checked


def test_the_reason_names_the_rule() -> None:
    assert _rules(exclude=("nope", r"news\.")).excluded_by(PAGE) == r"matches exclude pattern 'news\.'"
    assert _rules(include=("nope",)).excluded_by(PAGE) == "matches no include pattern"


def test_patterns_see_the_normalised_url() -> None:
    # The cited https://NEWS.Example:443/world/a reaches the rules as PAGE: lower-case host, no default port.
    assert _rules(exclude=(r"^https://news\.example/",)).excluded_by(PAGE) is not None
    assert _rules(exclude=("NEWS",)).excluded_by(PAGE) is None
    assert _rules(exclude=("(?i)NEWS",)).excluded_by(PAGE) is not None


def test_remap_first_matching_rule_wins_with_groups() -> None:
    rules = _rules(
        remap=(
            r"^https://news\.example/(\w+)/ https://staging.example/\1-mirror/",
            r"^https://news\.example/ https://never.example/",
            r"^https://(?P<host>[a-z.]+)/ http://127.0.0.1:8080/\g<host>/",
        )
    )
    assert rules.fetch_url(PAGE) == "https://staging.example/world-mirror/a"
    assert rules.fetch_url(OTHER) == "http://127.0.0.1:8080/other.example/b"
    assert rules.fetch_url("http://plain.example:8080/x") is None  # no rule matches


def test_a_remapped_url_is_normalised_and_unchanged_ones_are_not_remapped() -> None:
    rules = _rules(remap=(r"^https://news\.example/ HTTPS://Staging.EXAMPLE:443/",))
    assert rules.fetch_url(PAGE) == "https://staging.example/world/a"
    assert _rules(remap=(r"news\.example news.example",)).fetch_url(PAGE) is None  # the same URL again


def test_a_remap_to_something_unfetchable_names_the_rule_and_the_url() -> None:
    rules = _rules(remap=(r"^https: ftp:",))
    with pytest.raises(ConfigError) as raised:
        rules.fetch_url(PAGE)
    message = str(raised.value)
    assert message.startswith("--remap / remap: '^https: ftp:' turns https://news.example/world/a into 'ftp:")
    assert "unsupported scheme 'ftp'" in message


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ("^https://a.example/", "must be a regular expression and a replacement separated by white space"),
        ("a b c", "must be a regular expression and a replacement separated by white space"),
        ("(unclosed https://b.example/", "is not a valid regular expression: missing )"),
        ("^https://(a)/ https://$1/", r"groups are written \1 or \g<name> (Python's syntax), not $1"),
        ("^https://(a)/ https://${1}/", r"groups are written \1 or \g<name> (Python's syntax), not $1"),
        (r"^https://(a)/ https://\2/", "bad replacement: invalid group reference 2"),
        (r"^https://(a)/ https://\g<nope>/", "bad replacement: unknown group name 'nope'"),
    ],
)
def test_a_bad_remap_rule_is_a_config_error_naming_it(rule: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RemapRule.parse(rule)
    assert str(raised.value).startswith("--remap / remap: ")
    assert complaint in str(raised.value)


@pytest.mark.parametrize("setting", ["include", "exclude"])
def test_a_bad_pattern_names_the_option_and_the_key(setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _rules(**{setting: ("fine", "[unclosed")})
    assert str(raised.value) == (
        f"--{setting} / {setting}: '[unclosed' is not a valid regular expression: "
        "unterminated character set at position 0"
    )


def test_exclude_paths_follow_gitignore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # paths are matched as the reports show them: relative to here
    skipped = PathFilter(["drafts/", "*.old.md", "corpus/2019/**", "!corpus/2019/keep.md"])
    assert skipped.excludes(Path("corpus/drafts/a.md"))
    assert skipped.excludes(Path("corpus/x/drafts/b.md"))
    assert skipped.excludes(Path("corpus/news.old.md"))
    assert skipped.excludes(Path("corpus/2019/deep/c.md"))
    assert not skipped.excludes(Path("corpus/2019/keep.md"))
    assert not skipped.excludes(Path("corpus/news.md"))
    assert not skipped.excludes(Path("corpus/drafts.md"))  # drafts/ names a directory
    assert skipped.excludes(tmp_path / "corpus" / "drafts" / "a.md")  # an absolute path under here alike
    assert not PathFilter([]).excludes(Path("corpus/drafts/a.md"))


@pytest.mark.parametrize(("glob", "detail"), [("[z-a]", "bad character range z-a"), ("!", "Invalid git pattern")])
def test_a_bad_glob_names_the_option_and_the_glob(glob: str, detail: str) -> None:
    with pytest.raises(ConfigError) as raised:
        PathFilter(["fine/", glob])
    assert str(raised.value).startswith(f"--exclude-path / exclude_paths: '{glob}' is not a valid glob: ")
    assert detail in str(raised.value)
    assert "position" not in str(raised.value)  # positions in the regex it compiles to would mislead


def test_the_config_file_takes_the_lists(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text(
        "include: ['/world/']\nexclude:\n  - 'news\\.example'\nexclude_paths: [drafts/]\n"
        "remap:\n  - '^https://other\\.example/ https://mirror.example/'\n"
    )
    config = config_from_file(path)
    assert config.include == ("/world/",) and config.exclude == (r"news\.example",)
    assert config.exclude_paths == ("drafts/",)
    rules = UrlRules.of(config)
    assert rules.excluded_by(PAGE) is None and rules.fetch_url(OTHER) == "https://mirror.example/b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exclude: {news: 1}\n", "1: exclude: must be a list"),
        ("remap: [1]\n", "1: remap[0]: must be text, not 1 (quote it)"),
        ("exclude_paths:\n  - a/\n  - null\n", "3: exclude_paths[1]: must be text, not null (quote it)"),
        ("include: ['a', '']\n", "1: include[1]: is empty: write the pattern, or remove the line"),
        ("include: ['a', '(b']\n", "1: include[1]: '(b' is not a valid regular expression: missing ), "),
        ("remap:\n  - '^a b'\n  - '^(x) $1'\n", "3: remap[1]: '^(x) $1': groups are written \\1 or \\g<name>"),
    ],
)
def test_a_list_of_the_wrong_shape_names_the_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        config_from_file(path)
    assert str(raised.value).startswith(f"{path}:{message}"), str(raised.value)


def test_one_pattern_alone_is_a_list_of_one(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("exclude: 'news\\.example'\n")
    assert config_from_file(path).exclude == (r"news\.example",)
