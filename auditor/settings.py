"""Where every option's value comes from, validated one way whatever the source.

    command line  >  AUDITOR_<OPTION> variables  >  config file  >  default (auditor/config.py)

The config file is `--config FILE` (or AUDITOR_CONFIG), else `./auditor.yaml`,
else the `[tool.auditor]` table of `./pyproject.toml`. Its keys are the options'
parameter names, which are the long option names with underscores (`per_host`
for `--per-host`) unless the option says otherwise (`headers` for `--header`,
`exclude_paths` for `--exclude-path`), plus the keys that only a file can hold
(`severity`, `limits`, `required`, `hosts`, `archive`). Each layer is validated
by the same pydantic model, `Settings`, so a value means the same wherever it
was written; a problem is one ConfigError naming the file and line, the
variable, or the flag. Structured values with parsers of their own (host rules,
accepted statuses, headers, proxy URLs in auditor/network.py; patterns in
auditor/filters.py) are read by those parsers inside the model's validators,
and their errors say where below the key they are, so the line is exact there
too. `Resolved.config()` turns the winning values into the frozen `Config` the
pipeline sees, and `Resolved.describe()` prints them with where each came from
(`auditor config`), header values and proxy credentials masked.

Adding an option: its click option in cli.py, its field in `Settings` (named
as the option's parameter, same bounds, default from config.py), and, if the
pipeline needs it, the field of the same name in `Config` or `CrawlConfig`
(or a conversion in `Resolved.config`); tests/test_settings.py fails until all
of them agree.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    PlainSerializer,
    Strict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails

from auditor import filters, shards
from auditor.config import (
    DEFAULT_REQUIRED,
    DEFAULT_SEVERITIES,
    MAX_SHARDS,
    SERVE_EVERY,
    SERVE_HOST,
    SERVE_PORT,
    ArchiveConfig,
    Config,
    CrawlConfig,
    ParseLimits,
    SchemaConfig,
    Soft404Config,
    parse_duration,
)
from auditor.errors import ConfigError
from auditor.model import Code, FailOn, Severity
from auditor.network import (
    AcceptCodes,
    Header,
    HostRules,
    Redacted,
    SettingError,
    host_pattern,
    make_header,
    parse_header,
    parse_hosts,
    proxy_setting,
)
from auditor.report import FORMATS

DEFAULT_FILE = Path("auditor.yaml")
PYPROJECT = Path("pyproject.toml")
ENV_PREFIX = "AUDITOR_"
CONFIG_ENV = "AUDITOR_CONFIG"  # the config file itself, like --config

_DEFAULTS = Config()
_CRAWL = CrawlConfig()
_LIMITS = ParseLimits()
_ARCHIVE = ArchiveConfig()


@dataclass(frozen=True)
class Source:
    """Where a value came from, and how strong that is: 0 default, 1 config file, 2 variable, 3 command line."""

    where: str
    rank: int


DEFAULT = Source("default", 0)
COMMAND_LINE = Source("command line", 3)

Loc = tuple[str | int, ...]


# -- value types: strict (a YAML `true` is no number), except where text is the natural spelling -------------
# Passed to pydantic when AUDITOR_* variables are validated: only there is a list written as JSON.
VARIABLES = {"variables": True}


def _items(value: object, info: ValidationInfo) -> object:
    """A list, or one item alone (`paths: seeds/`); in a variable a JSON array (`["a", "b"]`)."""
    if isinstance(value, str) and value.lstrip().startswith("[") and info.context == VARIABLES:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            # A pattern like [a-z]x is one entry too, written as an array of one: ["[a-z]x"].
            raise ValueError(
                f"not a JSON array: {exc.msg} (one value starting with '[' is written [\"...\"])"
            ) from None
    if isinstance(value, str | os.PathLike):
        return (value,)
    return tuple(value) if isinstance(value, list | tuple) else value


def _listed(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _format_items(value: object, info: ValidationInfo) -> object:
    """`json,md` as on the command line, or a list."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    return _items(value, info)


def _known_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def _kept_as_written(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A validator that checks text with `parse` and keeps it as written (what `auditor config` shows);
    the value is computed where it is used."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return text.strip()

    return check


def _parse_every(text: str) -> object:
    from auditor.serve.schedule import parse_every  # the scheduler owns its bounds

    return parse_every(text, what="")


# `auto` shards are resolved from the environment in Resolved.config.
_duration = _kept_as_written(lambda text: parse_duration(text, what=""))
_shard = _kept_as_written(lambda text: shards.parse_spec(text, what=""))
_every = _kept_as_written(_parse_every)


def _processes(value: object) -> object:
    """`auto`, or a count of processes: one message for both forms, not one per branch of the union."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64):
        return value
    if isinstance(value, str) and value.strip().isdigit() and 1 <= int(value) <= 64:
        return int(value)
    raise ValueError(f"must be auto or a whole number from 1 to 64, not {value!r}")


def _off(value: object) -> object:
    return Severity.OFF.value if value is False else value  # YAML 1.1 reads a bare `off` as false


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _requirement(value: object) -> object:
    """`webUrl|originalUrl`: any one of these fields will do."""
    names = tuple(name.strip() for name in value.split("|")) if isinstance(value, str) else ()
    if not names or not all(_FIELD_NAME.fullmatch(name) for name in names):
        raise ValueError(f"must be a field name, or names joined by '|', not {value!r}")
    return names


def _path(value: object) -> object:
    if value == "":
        raise ValueError("must not be empty")
    return value


class Nested(ValueError):
    """A structured value's own parser found a problem at `keys` below the setting (a host, a list entry).

    pydantic's error location stops at the setting; the layers add `keys` to it, so a file's
    message points at the entry's line and a flag's at its n-th use.
    """

    def __init__(self, keys: Loc, detail: str) -> None:
        super().__init__(detail)
        self.keys = keys
        self.detail = detail


T = TypeVar("T")


def _parsed(parse: Callable[[], T]) -> T:
    """The parser's value; its SettingError, located below the setting, as a Nested error for pydantic."""
    try:
        return parse()
    except SettingError as exc:
        raise Nested(exc.keys, exc.detail) from None


def _accept(value: object) -> object:
    """`403`, `200-299,403` or a list of those; empty: none besides 2xx."""
    if isinstance(value, AcceptCodes):
        return value
    if value in ("", [], ()):
        return AcceptCodes()
    return _parsed(lambda: AcceptCodes.parse(list(value) if isinstance(value, tuple) else value))


def _accept_written(codes: AcceptCodes) -> list[int | str]:
    return [first if first == last else f"{first}-{last}" for first, last in codes.ranges]


def _headers(value: object, info: ValidationInfo) -> object:
    """A mapping of name to value (as under `hosts:`), or `Name: value` lines (as `--header` takes them)."""
    if isinstance(value, dict):
        return tuple(_parsed(partial(make_header, name, text, (str(name),))) for name, text in value.items())
    items = _items(value, info)
    if not isinstance(items, tuple):
        raise ValueError("must be a mapping of header name to value, or a list of 'Name: value'")
    headers = []
    for index, text in enumerate(items):
        if isinstance(text, Header):
            headers.append(text)
        elif isinstance(text, str):
            headers.append(_parsed(partial(parse_header, text, (index,))))
        else:
            raise Nested((index,), "must be text: 'Name: value'")
    return tuple(headers)


def _headers_written(headers: tuple[Header, ...]) -> dict[str, str]:
    """As written, `${NAME}` references and all: `redacted` masks what is not a reference."""
    return {header.name: header.value.value for header in headers}


def _hosts(value: object) -> object:
    return value if isinstance(value, HostRules) else _parsed(partial(parse_hosts, value, ()))


def _hosts_written(rules: HostRules) -> dict[str, dict[str, Any]]:
    written: dict[str, dict[str, Any]] = {}
    for rule in rules.rules:
        entry: dict[str, Any] = {
            name: getattr(rule, name) for name in ("concurrency", "rate", "timeout") if getattr(rule, name) is not None
        }
        if rule.headers:
            entry["headers"] = _headers_written(rule.headers)
        if rule.accept.ranges:
            entry["accept"] = _accept_written(rule.accept)
        written[rule.pattern] = entry
    return written


def _proxy(value: object) -> object:
    if value is None or value == "" or isinstance(value, Redacted):
        return None if value == "" else value
    if not isinstance(value, str):
        raise ValueError("must be a URL like http://host:port")
    return _parsed(partial(proxy_setting, value, ()))


def _proxy_shown(proxy: Redacted | None) -> str | None:
    return None if proxy is None else proxy.shown  # a user name and password masked


def _user_agent(value: str) -> str:
    if not value.strip() or any(not ch.isprintable() for ch in value):
        raise ValueError("must be printable text on one line")
    return value.strip()


def _filter_entry(check: Callable[[str], object], value: str) -> str:
    """An include/exclude regex, a remap rule or a glob, checked by auditor/filters.py, which applies it."""
    if not value.strip():
        raise ValueError("is empty: write the pattern, or remove the line")
    try:
        check(value)
    except filters.FilterError as exc:
        raise ValueError(exc.detail) from None
    return value


# The setting compile_pattern is told only names it in a message of its own, which _filter_entry drops.
_pattern = partial(_filter_entry, partial(filters.compile_pattern, "include"))
_remap_rule = partial(_filter_entry, filters.RemapRule.parse)
_glob = partial(_filter_entry, filters.check_glob)


def _seconds(value: object) -> object:
    """A duration (`30d`) or a number of seconds."""
    if isinstance(value, str):
        try:
            return parse_duration(value, what="")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://\S+", value):
        raise ValueError(f"must be an http(s) URL, not {value!r}")
    return value


PathValue = Annotated[Path, Strict(False), BeforeValidator(_path)]  # text in a file, a Path from click
Paths = Annotated[tuple[PathValue, ...], BeforeValidator(_items)]
Formats = Annotated[tuple[str, ...], BeforeValidator(_format_items), AfterValidator(_known_formats)]
Duration = Annotated[str, AfterValidator(_duration)]
ShardSpec = Annotated[str, AfterValidator(_shard)]
Every = Annotated[str, AfterValidator(_every)]
Requirement = Annotated[tuple[str, ...], BeforeValidator(_requirement)]
Requirements = Annotated[tuple[Requirement, ...], BeforeValidator(_listed)]
SeverityValue = Annotated[Severity, Strict(False), BeforeValidator(_off)]
Accept = Annotated[
    InstanceOf[AcceptCodes], BeforeValidator(_accept), PlainSerializer(_accept_written, when_used="json")
]
Headers = Annotated[
    tuple[InstanceOf[Header], ...], BeforeValidator(_headers), PlainSerializer(_headers_written, when_used="json")
]
Hosts = Annotated[InstanceOf[HostRules], BeforeValidator(_hosts), PlainSerializer(_hosts_written, when_used="json")]
Proxy = Annotated[InstanceOf[Redacted] | None, BeforeValidator(_proxy), PlainSerializer(_proxy_shown, when_used="json")]
UserAgent = Annotated[str, AfterValidator(_user_agent)]
Patterns = Annotated[tuple[Annotated[str, AfterValidator(_pattern)], ...], BeforeValidator(_items)]
RemapRules = Annotated[tuple[Annotated[str, AfterValidator(_remap_rule)], ...], BeforeValidator(_items)]
Globs = Annotated[tuple[Annotated[str, AfterValidator(_glob)], ...], BeforeValidator(_items)]
Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class Limits(BaseModel):
    """`limits:`, the fields of config.ParseLimits (bounds on reading one document)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_front_matter_bytes: Annotated[int, Field(ge=1)] = _LIMITS.max_front_matter_bytes
    max_values: Annotated[int, Field(ge=1)] = _LIMITS.max_values
    max_built_chars: Annotated[int, Field(ge=1)] = _LIMITS.max_built_chars
    max_depth: Annotated[int, Field(ge=1)] = _LIMITS.max_depth


class Archive(BaseModel):
    """`archive:`, the fields of config.ArchiveConfig (how the Wayback Machine is asked, for --suggest)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    api_url: Annotated[str, AfterValidator(_http_url)] = _ARCHIVE.api_url
    rate: Annotated[float, Field(gt=0)] = _ARCHIVE.rate
    concurrency: Annotated[int, Field(ge=1)] = _ARCHIVE.concurrency
    timeout: Annotated[float, Field(gt=0)] = _ARCHIVE.timeout
    max_response_bytes: Annotated[int, Field(ge=1)] = _ARCHIVE.max_response_bytes
    ttl: Seconds = _ARCHIVE.ttl  # 0: always ask again
    max_lookups: Annotated[int, Field(ge=1)] = _ARCHIVE.max_lookups
    give_up_after: Annotated[int, Field(ge=1)] = _ARCHIVE.give_up_after


class Settings(BaseModel):
    """Every key a config file, an AUDITOR_* variable or the command line may set.

    Bounds and choices are the click options' own (a test holds them equal);
    defaults come from auditor/config.py.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Options of the commands (audit, lint, serve; report, runs, history and prune share db, out, format).
    paths: Paths = _DEFAULTS.paths
    db: PathValue = _DEFAULTS.db
    out: PathValue = _DEFAULTS.out
    format: Formats = _DEFAULTS.formats
    fail_on: Annotated[FailOn, Strict(False)] = _DEFAULTS.fail_on
    annotations: Literal["github", "none"] | None = None
    wait: bool = False
    quiet: bool = False
    verbose: bool = False
    concurrency: Annotated[int, Field(ge=1, le=1024)] = _CRAWL.concurrency
    processes: Annotated[int | Literal["auto"], BeforeValidator(_processes)] = "auto"
    per_host: Annotated[int, Field(ge=1, le=64)] = _CRAWL.per_host
    rate: Annotated[float, Field(ge=0.01, le=1000)] = _CRAWL.rate
    timeout: Annotated[float, Field(ge=0.1, le=600)] = _CRAWL.timeout
    retries: Annotated[int, Field(ge=0, le=10)] = _CRAWL.retries
    max_retry_wait: Annotated[float, Field(ge=0, le=3600)] = _CRAWL.max_retry_wait
    max_redirects: Annotated[int, Field(ge=0, le=50)] = _CRAWL.max_redirects
    allow_private: bool = _CRAWL.allow_private
    accept: Accept = _CRAWL.accept
    headers: Headers = _CRAWL.headers
    user_agent: UserAgent = _CRAWL.user_agent
    proxy: Proxy = _CRAWL.proxy
    ca_bundle: PathValue | None = _CRAWL.ca_bundle
    max_age: Duration | None = None
    dead_after: Annotated[int, Field(ge=1, le=1000)] = _DEFAULTS.dead_after
    flaky_window: Annotated[int, Field(ge=2, le=100)] = _DEFAULTS.flaky_window
    include: Patterns = _DEFAULTS.include
    exclude: Patterns = _DEFAULTS.exclude
    exclude_paths: Globs = _DEFAULTS.exclude_paths
    remap: RemapRules = _DEFAULTS.remap
    suggest: bool = _DEFAULTS.suggest
    soft_404: bool = _DEFAULTS.soft_404.probe
    shard: ShardSpec | None = None
    shard_count: Annotated[int, Field(ge=1, le=MAX_SHARDS)] | None = None
    every: Every = SERVE_EVERY
    host: str = SERVE_HOST
    port: Annotated[int, Field(ge=0, le=65535)] = SERVE_PORT

    # Only a config file holds these: mappings whose entries each override one default (severity, limits,
    # required, archive) or add one rule (hosts).
    severity: dict[Annotated[Code, Strict(False)], SeverityValue] = Field(
        default_factory=dict, description="finding code -> error, warning or off"
    )
    limits: Limits = Field(default_factory=lambda: Limits(), description="bounds on reading one document")
    required: dict[str, Requirements] = Field(
        default_factory=dict, description="item type -> the fields it must have (a|b: either)"
    )
    hosts: Hosts = Field(
        default_factory=HostRules,
        description="host or *.domain -> its concurrency, rate, timeout, headers and accept",
    )
    archive: Archive = Field(
        default_factory=lambda: Archive(), description="how the Wayback Machine is asked (--suggest)"
    )


FILE_ONLY = ("severity", "limits", "required", "hosts", "archive")
OPTION_KEYS = tuple(key for key in Settings.model_fields if key not in FILE_ONLY)

# Keys the commands consume themselves; every other key is a field of Config or CrawlConfig, of the
# same name unless converted by Resolved.config.
COMMAND_KEYS = frozenset({"annotations", "wait", "quiet", "verbose", "every", "host", "port"})
CONVERTED = {
    "paths": "paths",
    "format": "formats",
    "max_age": "max_age",
    "soft_404": "soft_404",
    "shard": "shard",
    "shard_count": "shard",
    "processes": "processes",
}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


# -- one layer: what one source set, and where ------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    settings: Settings
    sources: Mapping[Loc, Source]  # every key (and file-only entry) this layer set -> where
    ignored: tuple[str, ...] = ()  # AUDITOR_* variables that name no setting


def _settings(data: Mapping[str, Any], *, strings: bool, where: Callable[[ErrorDetails], str]) -> Settings:
    try:
        if strings:  # variables: text read as a YAML file's value would be typed (8, true, 0.5)
            return Settings.model_validate_strings(data, context=VARIABLES)
        return Settings.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(where(errors[0]) + more) from None


def _located(error: ErrorDetails) -> tuple[Loc, str]:
    """Where below the top an error is, a Nested one's own keys included, and what is wrong there."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Nested):
        return (*error["loc"], *cause.keys), cause.detail
    return tuple(error["loc"]), _explain(error)


def _named(name: str, below: Loc) -> str:
    """A flag or variable and, for a repeated one, which use: `--header #2` (a header may be a secret, unshown)."""
    index = next((part for part in below if isinstance(part, int)), None)
    return name if index is None else f"{name} #{index + 1}"


def command_line_layer(values: Mapping[str, Any], flags: Mapping[str, str]) -> Layer:
    """What was given on the command line (click has checked types and ranges; the rest is checked here)."""

    def where(error: ErrorDetails) -> str:
        loc, detail = _located(error)
        key = str(loc[0])
        given = values.get(key)
        repeated = isinstance(given, tuple | list) and len(given) > 1
        return f"{_named(flags.get(key, key), loc[1:] if repeated else ())}: {detail}"

    return Layer(_settings(values, strings=False, where=where), {(key,): COMMAND_LINE for key in values})


def env_layer(environ: Mapping[str, str]) -> Layer:
    """AUDITOR_<OPTION> variables.

    One that is nearly a setting's name is a typo, and an error; any other AUDITOR_* name is left
    alone (a token a header refers to, say) and only listed by `auditor config`.
    """
    values: dict[str, str] = {}
    ignored: list[str] = []
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV or not text:
            continue  # an empty variable is an unset one (as compose files and CI templates leave them)
        key = name[len(ENV_PREFIX) :].lower()
        if key in FILE_ONLY:
            raise ConfigError(f"{name}: '{key}' is set in the config file only")
        if key not in OPTION_KEYS:
            # 0.8: a typo (PERHOST, TIMOUT, PATH) is this close; names of tokens and the like are not.
            if hint := _did_you_mean(key, OPTION_KEYS, env_name, cutoff=0.8):
                raise ConfigError(f"{name}: no such setting{hint}")
            ignored.append(name)
            continue
        values[key] = text

    def where(error: ErrorDetails) -> str:
        loc, detail = _located(error)
        return f"{_named(env_name(str(loc[0])), loc[1:])}: {detail}"

    settings = _settings(values, strings=True, where=where)
    return Layer(settings, {(key,): Source(f"env {env_name(key)}", 2) for key in values}, tuple(ignored))


def file_layer(path: Path, *, explicit: bool = True) -> Layer | None:
    """A YAML file, or a TOML file's [tool.auditor] table; None for a pyproject.toml without one (not explicit)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if path.suffix == ".toml":
        found = _toml(path, text, explicit=explicit)
        if found is None:
            return None
        data, lines, top = found
    else:
        data, lines = _yaml(path, text)
        top = 1

    def line(loc: Loc) -> int:
        keys = tuple(part for part in loc if part != "[key]")
        while keys:
            # A mapping key written as a number (`1: x`) is text in the line map, a number in pydantic's loc.
            for candidate in (keys, tuple(str(part) for part in keys)):
                if candidate in lines:
                    return lines[candidate]
            keys = keys[:-1]
        return top

    def where(error: ErrorDetails) -> str:
        loc, kind = tuple(error["loc"]), error["type"]
        if kind == "extra_forbidden" or (loc[-1:] == ("[key]",) and kind in ("enum", "literal_error")):
            return f"{path}:{line(loc)}: unknown key '{_dotted(loc)}'{_unknown_hint(error)}"
        what = "the key " if loc[-1:] == ("[key]",) else ""
        loc, detail = _located(error)
        return f"{path}:{line(loc)}: {_dotted(loc)}: {what}{detail}"

    settings = _settings(data, strings=False, where=where)
    sources: dict[Loc, Source] = {}
    for key, value in data.items():
        sources[(key,)] = Source(f"{path}:{line((key,))}", 1)
        if key in FILE_ONLY and isinstance(value, dict):
            for entry in value:
                sources[(key, _entry_name(key, entry))] = Source(f"{path}:{line((key, str(entry)))}", 1)
    return Layer(settings, sources)


def _entry_name(key: str, entry: object) -> str:
    """An entry of a file-only mapping as `auditor config` shows it: a host pattern as URLs are normalised."""
    if key == "hosts":
        try:
            return host_pattern(entry)
        except SettingError:
            pass
    return str(entry)


def _yaml(path: Path, text: str) -> tuple[dict[str, Any], dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}:1: expected a mapping of settings (key: value) at the top level")
    lines: dict[Loc, int] = {}
    _yaml_lines(path, node, (), lines)
    return data, lines


def _yaml_lines(path: Path, node: yaml.Node, at: Loc, lines: dict[Loc, int]) -> None:
    """The line of every key and list item, for errors; a key given twice is an error (YAML keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: Loc = (*at, str(key_node.value))
            if key in lines:
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: '{_dotted(key)}' is given twice "
                    f"(first on line {lines[key]})"
                )
            lines[key] = key_node.start_mark.line + 1
            _yaml_lines(path, value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            _yaml_lines(path, item, (*at, index), lines)


_TOML_TABLE = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_TOML_KEY = re.compile(
    r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _toml(path: Path, text: str, *, explicit: bool) -> tuple[dict[str, Any], dict[Loc, int], int] | None:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise ConfigError(f"{path}{':' + at.group(1) if at else ''}: not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("auditor") if isinstance(document.get("tool"), dict) else None
    if table is None:
        if explicit:
            raise ConfigError(f"{path}: no [tool.auditor] table")
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.auditor must be a table")
    lines, top = _toml_lines(text)
    return table, lines, top


def _toml_keys(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.split(r"\s*\.\s*(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", text))


def _toml_lines(text: str) -> tuple[dict[Loc, int], int]:
    """The line of each key under [tool.auditor], found by scanning: tomllib keeps no positions.

    Exact for keys written one per line (`per_host = 8`, `[tool.auditor.severity]` tables); an
    entry inside an inline table or array gets its key's line.
    """
    lines: dict[Loc, int] = {}
    top = 1
    table: Loc | None = None  # the current table's keys below tool.auditor; None: another table
    for number, raw in enumerate(text.splitlines(), start=1):
        if header := _TOML_TABLE.match(raw):
            keys = _toml_keys(header.group(1))
            if keys[:2] == ("tool", "auditor"):
                table = keys[2:]
                if table:
                    lines.setdefault(table, number)
                else:
                    top = number
            else:
                table = None
        elif table is not None and (key := _TOML_KEY.match(raw)):
            lines.setdefault((*table, *_toml_keys(key.group(1))), number)
    return lines, top


# -- error messages ------------------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _dotted(loc: Loc) -> str:
    """`required.video[1]`, `severity.dead-link`; a key with dots or the like in brackets: `hosts[*.example.com]`."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int) or (text and not _PLAIN_KEY.fullmatch(part)):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_EXPLAINED = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "invalid_key": "keys must be text",
    "path_type": "must be a path",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _explain(error: ErrorDetails) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("enum", "literal_error"):
        text = f"must be one of {ctx['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(ctx.values()))
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        words = {"greater_than_equal": "at least", "less_than_equal": "at most", "greater_than": "more than"}
        text = f"must be {words.get(kind, 'less than')} {bound}"
    else:
        text = _EXPLAINED.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    if isinstance(value, bool) or value is None:
        text += f", not {json.dumps(value)}"  # as YAML spells them: true, null
    elif isinstance(value, str | int | float):
        text += f", not {value!r}"
    if kind == "string_type" and (isinstance(value, int | float) or value is None):
        text += " (quote it)"
    return text


def _known(loc: Loc) -> tuple[str, ...]:
    """The keys allowed where an unknown one was found."""
    if len(loc) == 1:
        return tuple(Settings.model_fields)
    if loc[0] == "limits" and len(loc) == 2:
        return tuple(Limits.model_fields)
    if loc[0] == "archive" and len(loc) == 2:
        return tuple(Archive.model_fields)
    if loc[0] == "severity" and len(loc) == 2:
        return tuple(code.value for code in Code)
    return ()


def _unknown_hint(error: ErrorDetails) -> str:
    loc = tuple(part for part in error["loc"] if part != "[key]")
    known = _known(loc)
    key = str(loc[-1])
    if key.replace("-", "_") in known and "-" in key:
        return f" (keys are written with underscores: '{key.replace('-', '_')}')"
    if 0 < len(known) <= 6:
        return f" (known: {', '.join(known)})"
    return _did_you_mean(key, known, str)


def _did_you_mean(key: str, known: tuple[str, ...], spell: Callable[[str], str], *, cutoff: float = 0.6) -> str:
    """The nearest known name, compared without `_` and `-` (perhost is per_host)."""
    squeezed = {name.replace("-", "").replace("_", ""): name for name in known}
    close = difflib.get_close_matches(key.replace("-", "").replace("_", ""), squeezed, n=1, cutoff=cutoff)
    return f" (did you mean '{spell(squeezed[close[0]])}'?)" if close else ""


# -- all layers together --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """The effective settings and, for every key and file-only entry set anywhere, where it came from."""

    settings: Settings
    sources: Mapping[Loc, Source]
    file: Path | None  # the config file read, if any
    ignored: tuple[str, ...] = ()  # AUDITOR_* variables that name no setting

    def source(self, *loc: str) -> Source:
        return self.sources.get(tuple(loc), DEFAULT)

    def config(self, *, resume: bool = False, environ: Mapping[str, str] | None = None) -> Config:
        """The run-time model: every key that is not the commands' own lands in Config or CrawlConfig.

        `environ` (default: the process's) is where `--shard auto` finds its scheduler's index.
        """
        s = self.settings
        crawl_fields = {f.name for f in dataclasses.fields(CrawlConfig)}
        config_fields = {f.name for f in dataclasses.fields(Config)}
        crawl: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        for key in OPTION_KEYS:
            if key in COMMAND_KEYS or key in CONVERTED:
                continue
            if key in crawl_fields:
                crawl[key] = getattr(s, key)
            elif key in config_fields:
                plain[key] = getattr(s, key)
            else:  # pragma: no cover - tests/test_settings.py holds every key to a home
                raise AssertionError(f"setting {key!r} has no field in Config or CrawlConfig")
        return Config(
            paths=s.paths,
            formats=s.format,
            max_age=None if s.max_age is None else parse_duration(s.max_age),
            crawl=CrawlConfig(**crawl, hosts=s.hosts, processes=None if s.processes == "auto" else s.processes),
            severities={**DEFAULT_SEVERITIES, **s.severity},
            limits=ParseLimits(**s.limits.model_dump()),
            schema=SchemaConfig(required={**DEFAULT_REQUIRED, **s.required}),
            soft_404=Soft404Config(probe=s.soft_404),
            archive=ArchiveConfig(**s.archive.model_dump()),
            shard=shards.resolve(s.shard, s.shard_count, os.environ if environ is None else environ),
            resume=resume,
            **plain,
        )

    def effective(self, key: str) -> Any:
        """A key's value as a config file would spell it (JSON types), defaults of file-only entries included."""
        if key == "severity":
            return {code.value: self.settings.severity.get(code, DEFAULT_SEVERITIES[code]).value for code in Code}
        if key == "required":
            merged = {**DEFAULT_REQUIRED, **self.settings.required}
            return {kind: ["|".join(names) for names in fields] for kind, fields in merged.items()}
        return self.settings.model_dump(mode="json", include={key})[key]

    def describe(self, keys: tuple[str, ...] | None = None) -> str:
        """The effective configuration as YAML (a valid auditor.yaml), each value's source in a comment."""
        rows: list[tuple[str, str]] = []
        for key in keys or tuple(Settings.model_fields):
            value = redacted((key,), self.effective(key))
            if key in FILE_ONLY and isinstance(value, dict) and value:
                rows.append((f"{key}:", ""))
                for entry, item in value.items():
                    rows.append((f"  {_yaml_flow(entry)}: {_yaml_flow(item)}", self.source(key, str(entry)).where))
            else:
                rows.append((f"{key}: {_yaml_flow(value)}", self.source(key).where))
        width = max(len(text) for text, source in rows if source)
        return "\n".join(f"{text.ljust(width)}  # {source}" if source else text for text, source in rows)


def _yaml_flow(value: object) -> str:
    return (
        str(yaml.safe_dump(value, default_flow_style=True, width=1 << 16, allow_unicode=True, sort_keys=False))
        .strip()
        .removesuffix("\n...")
        .removesuffix("...")
        .strip()
    )


_SECRET_KEYS = frozenset({"headers"})
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def redacted(loc: Loc, value: Any) -> Any:
    """Header values (`headers`, `hosts.*.headers`) are shown as written only when they take their text
    from a variable (`Bearer ${TOKEN}`, never resolved here): a literal one may be a secret, and is masked.
    A proxy's credentials are masked before this (`Redacted.shown`)."""
    if isinstance(value, dict):
        return {k: redacted((*loc, str(k)), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(loc, v) for v in value]
    if isinstance(value, str) and _SECRET_KEYS & {str(part) for part in loc} and not _REFERENCE.search(value):
        return "***"
    return value


def find_file(given: Path | None, environ: Mapping[str, str]) -> tuple[Path, bool] | None:
    """The config file to read and whether it was named; None when there is none."""
    if given is None and environ.get(CONFIG_ENV):  # empty: unset
        given = Path(environ[CONFIG_ENV])
    if given is not None:
        if not given.exists():
            raise ConfigError(f"config file not found: {given}")
        return given, True
    if DEFAULT_FILE.exists():
        if PYPROJECT.exists() and file_layer(PYPROJECT, explicit=False) is not None:
            raise ConfigError(
                f"both {DEFAULT_FILE} and [tool.auditor] in {PYPROJECT} configure auditor; keep one, "
                "or choose with --config"
            )
        return DEFAULT_FILE, True
    if PYPROJECT.exists():
        return PYPROJECT, False
    return None


def resolve(
    *,
    command_line: Mapping[str, Any],
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    config_file: Path | None = None,
) -> Resolved:
    """Every layer read and validated, then each key from the first that sets it."""
    layers: list[Layer] = []
    found = find_file(config_file, environ)
    used: Path | None = None
    if found is not None:
        layer = file_layer(found[0], explicit=found[1])
        if layer is not None:
            layers.append(layer)
            used = found[0]
    env = env_layer(environ)
    layers.append(env)
    layers.append(command_line_layer(command_line, flags))
    values: dict[str, Any] = {}
    sources: dict[Loc, Source] = {}
    for layer in layers:  # lowest first: a later layer replaces a key of an earlier one
        for key in layer.settings.model_fields_set:
            values[key] = getattr(layer.settings, key)
            for loc in [loc for loc in sources if loc[0] == key]:
                del sources[loc]
        sources.update(layer.sources)
    settings = Settings.model_construct(_fields_set=set(values), **values)
    return Resolved(settings, sources, used, env.ignored)


def defaults() -> dict[str, Any]:
    """Each key's default as a config file spells it (JSON types), for the reference table."""
    return Settings().model_dump(mode="json")
