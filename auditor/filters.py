"""What an audit takes from the corpus and where it asks: --include/--exclude, --exclude-path, --remap.

    UrlRules     the include/exclude patterns and remap rules, compiled once: what becomes of one URL
    RemapRule    one 'REGEX REPLACEMENT' rule
    PathFilter   the exclude_paths globs (.gitignore syntax) over corpus files

A URL's fate, decided on its normalised form (what `auditor audit --dump` prints as "url"):

1. Include and exclude, as lychee has them. A URL that matches an include pattern is checked,
   whatever the excludes say. Otherwise one that matches an exclude pattern is excluded; and
   when there are includes but no excludes, the includes are an allow-list: a URL that matches
   none of them is excluded. Patterns are Python regular expressions, searched anywhere in the
   URL (anchor them with ^ and $ to match it whole).
2. Remap, for the URLs still in: the first rule whose regex matches rewrites the URL (every
   match of that regex, as re.sub does), with Python's replacement syntax (\\1, \\g<name>).
   The result is normalised and must be an http(s) URL; it meets the private-address guard like
   any other. The filters see the URL as cited, never the remapped one: what is excluded is
   what the documents say.

An excluded URL is never fetched; the run records it as excluded (Reason.EXCLUDED).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from auditor.config import Config
from auditor.corpus import display_path
from auditor.errors import ConfigError
from auditor.links import InvalidURL, normalize_url

# How each setting is named on the command line and in the config file, for messages that must
# make sense whichever of the two the value came from (auditor/settings.py, which knows, names the
# file and line, the variable or the flag instead).
OPTION_NAMES = {
    "include": "--include / include",
    "exclude": "--exclude / exclude",
    "exclude_paths": "--exclude-path / exclude_paths",
    "remap": "--remap / remap",
}
# lychee's replacement syntax: a rule copied from its config would otherwise put "$1" in the URL.
_DOLLAR_GROUP = re.compile(r"\$(\d|\{)")


class FilterError(ConfigError):
    """A bad pattern, rule or glob; `detail` says what, without naming the setting."""

    def __init__(self, setting: str, detail: str) -> None:
        self.setting = setting
        self.detail = detail
        super().__init__(f"{OPTION_NAMES[setting]}: {detail}")


def compile_pattern(setting: str, text: str) -> re.Pattern[str]:
    """An include or exclude regex (`setting` names which, for the message)."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise FilterError(setting, f"'{text}' is not a valid regular expression: {exc}") from None


@dataclass(frozen=True)
class RemapRule:
    pattern: re.Pattern[str]
    replacement: str
    text: str  # the rule as configured, for messages

    @classmethod
    def parse(cls, text: str) -> RemapRule:
        """'REGEX REPLACEMENT': two words separated by white space (a URL has none)."""
        parts = text.split()
        if len(parts) != 2:
            raise FilterError(
                "remap",
                f"'{text}' must be a regular expression and a replacement separated by white space, "
                "e.g. '^https://www\\.example\\.com/ https://staging.example.com/'",
            )
        pattern = compile_pattern("remap", parts[0])
        replacement = parts[1]
        if _DOLLAR_GROUP.search(replacement):
            raise FilterError("remap", f"'{text}': groups are written \\1 or \\g<name> (Python's syntax), not $1")
        try:
            pattern.sub(replacement, "")  # parses the template: a bad group reference fails now, not mid-run
        except (re.error, IndexError) as exc:
            raise FilterError("remap", f"'{text}': bad replacement: {exc}") from None
        return cls(pattern, replacement, text)


@dataclass(frozen=True)
class UrlRules:
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    remap: tuple[RemapRule, ...] = ()

    @classmethod
    def of(cls, config: Config) -> UrlRules:
        """The config's rules compiled; a bad one is a ConfigError naming the setting and the pattern."""
        return cls(
            include=tuple(compile_pattern("include", text) for text in config.include),
            exclude=tuple(compile_pattern("exclude", text) for text in config.exclude),
            remap=tuple(RemapRule.parse(text) for text in config.remap),
        )

    def excluded_by(self, url: str) -> str | None:
        """Why `url` is left out, or None when it is checked."""
        if any(pattern.search(url) for pattern in self.include):
            return None
        for pattern in self.exclude:
            if pattern.search(url):
                return f"matches exclude pattern '{pattern.pattern}'"
        if self.include and not self.exclude:
            return "matches no include pattern"
        return None

    def fetch_url(self, url: str) -> str | None:
        """What to request instead of `url` when a remap rule rewrites it; None when none does.

        A result that is no usable http(s) URL is the rule's fault, not the document's: a ConfigError.
        """
        for rule in self.remap:
            if rule.pattern.search(url) is None:
                continue
            rewritten = rule.pattern.sub(rule.replacement, url)
            try:
                fetched = normalize_url(rewritten)
            except InvalidURL as exc:
                raise ConfigError(
                    f"{OPTION_NAMES['remap']}: '{rule.text}' turns {url} into '{rewritten}', which cannot be "
                    f"fetched: {exc}"
                ) from None
            return None if fetched == url else fetched
        return None


class PathFilter:
    """Corpus files left out by `exclude_paths`: .gitignore patterns matched against the path reports show.

    `drafts/` leaves out every file under any directory named drafts, `*.old.md` such files
    anywhere, `seeds/2019/**` everything under that directory, `!keep.md` takes one back.
    """

    def __init__(self, globs: Sequence[str]) -> None:
        for glob in globs:  # one at a time, so the message names the bad one
            check_glob(glob)
        self.spec = pathspec.GitIgnoreSpec.from_lines(globs) if globs else None

    def excludes(self, path: Path) -> bool:
        return self.spec is not None and self.spec.match_file(display_path(path))


def check_glob(glob: str) -> None:
    """A FilterError for an `exclude_paths` glob that .gitignore syntax cannot read."""
    try:
        pathspec.GitIgnoreSpec.from_lines([glob])
    except (ValueError, re.error) as exc:
        # The regex it compiles to is not the user's: its positions would mislead.
        detail = exc.msg if isinstance(exc, re.error) else str(exc)
        raise FilterError("exclude_paths", f"'{glob}' is not a valid glob: {detail}") from None
