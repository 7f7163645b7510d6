"""Per-host rules and network settings: the typed values the config holds, and how their text is read.

    AcceptCodes   statuses that count as OK besides 2xx ("403", "200-299,403")
    Redacted      a setting that may hold a credential: str(), repr() and JSON show only a mask
    Header        one extra request header; `${NAME}` in its value is read from the environment
    HostRule      what one host (or every subdomain of one, `*.example.com`) gets
    HostRules     the rules, and the one a host gets: exact beats wildcard, longer wildcard beats shorter

Secrets: a header's value is kept as written (`Bearer ${TOKEN}`) inside a `Redacted`, so printing
the config or storing it with the run (`runs.config`) shows a mask. The environment is read only
when the crawl builds its requests (`Header.resolve`); the resolved text lives in the crawler's
memory and goes out on the requests to the header's hosts, nowhere else.

Every parser raises `SettingError` for a bad value, naming where it is (`keys`, the path into the
config file), so the loader can point at the file's line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import idna

from auditor.errors import ConfigError

Keys = tuple[str | int, ...]

LOWEST_STATUS, HIGHEST_STATUS = 100, 599
# Per-host bounds, the same as the global options'.
CONCURRENCY_RANGE = (1, 64)
RATE_RANGE = (0.01, 1000.0)
TIMEOUT_RANGE = (0.1, 600.0)
# Headers the crawler sets itself (framing, connection, ranges, revalidation, decodable encodings):
# a configured value would break what it reads, so they are refused by name.
MANAGED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "range",
        "if-none-match",
        "if-modified-since",
        "accept-encoding",
    }
)
PROXY_SCHEMES = ("http", "https")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 5.6.2)
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")


class SettingError(ConfigError):
    """A bad setting; `keys` is where it sits in the config file (empty for a command-line flag)."""

    def __init__(self, keys: Keys, message: str) -> None:
        self.keys = keys
        self.detail = message  # without the keys: the settings layer names the file, line or flag itself
        super().__init__(f"{setting_name(keys)}: {message}" if keys else message)


def setting_name(keys: Keys) -> str:
    """`hosts[*.example.com].headers[Authorization]`: host names and header names have dots and dashes."""
    text = str(keys[0]) if keys else ""
    for key in keys[1:]:
        text += f"[{key}]" if isinstance(key, int) or not _VARIABLE.fullmatch(key) else f".{key}"
    return text


# -- accepted statuses ---------------------------------------------------------------------
@dataclass(frozen=True)
class AcceptCodes:
    """Statuses that count as OK besides every 2xx (which always does), as inclusive ranges."""

    ranges: tuple[tuple[int, int], ...] = ()

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 or any(first <= status <= last for first, last in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)

    @classmethod
    def parse(cls, value: Any, keys: Keys = ()) -> AcceptCodes:
        """From `403`, `"200-299,403"` or a list of those; a SettingError names a bad entry."""
        entries: list[tuple[Any, Keys]]
        if isinstance(value, list):
            entries = [(entry, (*keys, index)) for index, entry in enumerate(value)]
        else:
            entries = [(value, keys)]
        ranges: list[tuple[int, int]] = []
        for entry, where in entries:
            parts = entry.split(",") if isinstance(entry, str) else [entry]
            ranges += [_status_range(part, where) for part in parts]
        return cls(tuple(sorted(set(ranges))))


def _status_range(part: Any, keys: Keys) -> tuple[int, int]:
    bad = SettingError(
        keys,
        f"{part!r} is not a status code or range: write codes like 403 or ranges like 200-299, "
        f"between {LOWEST_STATUS} and {HIGHEST_STATUS}",
    )
    if isinstance(part, bool):
        raise bad
    if isinstance(part, int):
        first = last = part
    elif isinstance(part, str) and re.fullmatch(r"\s*\d{3}\s*(-\s*\d{3}\s*)?", part):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
    else:
        raise bad
    if not LOWEST_STATUS <= first <= last <= HIGHEST_STATUS:
        raise bad
    return first, last


# -- secrets and headers ---------------------------------------------------------------------
class Redacted:
    """A setting that may hold a credential. `.value` is its text; anything that prints or
    stores the config (str, repr, the run's JSON, `copy.deepcopy` in `dataclasses.asdict`)
    gets `shown` instead."""

    __slots__ = ("shown", "value")

    def __init__(self, value: str, shown: str = "<redacted>") -> None:
        self.value = value
        self.shown = shown

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"Redacted({self.shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Redacted) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Redacted:
        return self  # immutable; and a copy must stay masked


@dataclass(frozen=True)
class Header:
    """An extra request header. `value` is the text as written, `${NAME}` references and all."""

    name: str
    value: Redacted

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(match.group(1) for match in _REFERENCE.finditer(self.value.value))

    def resolve(self, environ: Mapping[str, str], where: str) -> str:
        """The value to send, with every `${NAME}` replaced from `environ`.

        A ConfigError names `where` the header was set, the header and the variable, never a value.
        """

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(
                    f"{where}: header {self.name!r} uses ${{{name}}}, which is not set in the environment"
                )
            return environ[name]

        text = _REFERENCE.sub(substitute, self.value.value)
        if any(ch in text for ch in "\r\n\0"):
            raise ConfigError(f"{where}: header {self.name!r} would hold a line break or NUL from its variables")
        return text.strip()


def make_header(name: Any, value: Any, keys: Keys = ()) -> Header:
    """A header from its name and value, both checked; a SettingError names a bad one (never shows the value)."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise SettingError(keys, f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
    if name.lower() in MANAGED_HEADERS:
        raise SettingError(keys, f"{name!r} is set by auditor itself and cannot be configured")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SettingError(keys, f"the value of header {name!r} must be text")
    text = str(value).strip()
    if any(ch in text for ch in "\r\n\0"):
        raise SettingError(keys, f"the value of header {name!r} contains a line break or NUL")
    for reference in _REFERENCE.findall(text):
        if not _VARIABLE.fullmatch(reference):
            raise SettingError(
                keys, f"header {name!r}: ${{{reference}}} is not a variable name (letters, digits and _)"
            )
    references = _REFERENCE.findall(text)
    shown = "<redacted>" if not references else "<redacted; from " + ", ".join(f"${{{n}}}" for n in references) + ">"
    return Header(name, Redacted(text, shown))


def parse_header(text: str, keys: Keys = ()) -> Header:
    """`Name: value`, as curl writes it (`--header`)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        # Not echoed: a header without its name may be nothing but a pasted token. `keys` says which flag.
        raise SettingError(keys, "not a header: write 'Name: value'")
    return make_header(name.strip(), value, keys)


def merge_headers(*layers: Iterable[Header]) -> tuple[Header, ...]:
    """Later layers win by name, case-insensitively: a host's Authorization replaces the global one."""
    merged: dict[str, Header] = {}
    for layer in layers:
        for header in layer:
            merged[header.name.lower()] = header
    return tuple(merged.values())


# -- per-host rules ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class HostRule:
    """What requests to the hosts `pattern` matches get; None (or empty) keeps the global setting.

    `pattern` is an exact host (`example.com`) or `*.example.com`: every subdomain, at any depth,
    not example.com itself. Limits hold per host: `*.example.com` with concurrency 2 lets each
    subdomain have 2 requests in flight.
    """

    pattern: str
    concurrency: int | None = None  # requests in flight at once to the host
    rate: float | None = None  # requests per second to the host
    timeout: float | None = None  # seconds per URL attempt starting on the host, and per request to it
    headers: tuple[Header, ...] = ()  # sent to the host only, over the global ones
    accept: AcceptCodes = field(default_factory=AcceptCodes)  # besides the global ones

    @property
    def wildcard(self) -> bool:
        return self.pattern.startswith("*.")


@dataclass(frozen=True)
class HostRules:
    rules: tuple[HostRule, ...] = ()

    def rule_for(self, host: str) -> HostRule | None:
        """The host's own rule, else the longest `*.domain` above it, else None."""
        host = host.rstrip(".").lower()
        if host in self._exact:
            return self._exact[host]
        labels = host.split(".")
        for start in range(1, len(labels)):
            rule = self._wildcards.get(".".join(labels[start:]))
            if rule is not None:
                return rule
        return None

    @cached_property
    def _exact(self) -> dict[str, HostRule]:
        return {rule.pattern: rule for rule in self.rules if not rule.wildcard}

    @cached_property
    def _wildcards(self) -> dict[str, HostRule]:
        return {rule.pattern[2:]: rule for rule in self.rules if rule.wildcard}

    def __bool__(self) -> bool:
        return bool(self.rules)


_RULE_KEYS = ("concurrency", "rate", "timeout", "headers", "accept")


def parse_hosts(value: Any, keys: Keys = ("hosts",)) -> HostRules:
    """The `hosts:` map of the config file: host pattern -> {concurrency, rate, timeout, headers, accept}."""
    if not isinstance(value, dict):
        raise SettingError(keys, "must be a mapping of host (or *.domain) to its settings")
    rules: dict[str, HostRule] = {}
    for pattern, settings in value.items():
        where = (*keys, str(pattern))
        canonical = host_pattern(pattern, where)
        if canonical in rules:
            raise SettingError(where, f"names the same hosts as {rules[canonical].pattern!r}")
        rules[canonical] = _host_rule(canonical, settings, where)
    return HostRules(tuple(rules.values()))


def _host_rule(pattern: str, settings: Any, keys: Keys) -> HostRule:
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise SettingError(keys, f"must be a mapping of {', '.join(_RULE_KEYS)}")
    for key in settings:
        if key not in _RULE_KEYS:
            raise SettingError((*keys, str(key)), f"unknown setting (known: {', '.join(_RULE_KEYS)})")
    headers = settings.get("headers") or {}
    if not isinstance(headers, dict):
        raise SettingError((*keys, "headers"), "must be a mapping of header name to value")
    return HostRule(
        pattern=pattern,
        concurrency=_number(settings, "concurrency", keys, CONCURRENCY_RANGE, whole=True),
        rate=_number(settings, "rate", keys, RATE_RANGE),
        timeout=_number(settings, "timeout", keys, TIMEOUT_RANGE),
        headers=tuple(make_header(name, text, (*keys, "headers", str(name))) for name, text in headers.items()),
        accept=AcceptCodes.parse(settings["accept"], (*keys, "accept")) if "accept" in settings else AcceptCodes(),
    )


def _number(
    settings: Mapping[str, Any], key: str, keys: Keys, bounds: tuple[float, float], *, whole: bool = False
) -> Any:
    """The setting as an int (`whole`) or a float within `bounds`, or None when it is not given."""
    value = settings.get(key)
    if value is None:
        return None
    low, high = bounds
    number = not isinstance(value, bool) and (isinstance(value, int) or (not whole and isinstance(value, float)))
    if not number or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise SettingError((*keys, key), f"must be {kind} from {low:g} to {high:g}, not {value!r}")
    return int(value) if whole else float(value)


def host_pattern(pattern: Any, keys: Keys = ()) -> str:
    """An exact host or `*.domain`, lower-cased and in punycode, as URLs are normalised."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise SettingError(keys, f"{pattern!r} is not a host name or *.domain")
    text = pattern.strip().rstrip(".").lower()
    wildcard = text.startswith("*.")
    host = text[2:] if wildcard else text
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        if wildcard:
            raise SettingError(keys, "an address has no subdomains: write it without '*.'")
        return host.strip("[]")
    try:
        ascii_name = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        ascii_name = ""
    if not ascii_name or not all(_LABEL.fullmatch(label) for label in ascii_name.split(".")):
        raise SettingError(keys, f"{pattern!r} is not a host name or *.domain (no ports, paths or other wildcards)")
    return f"*.{ascii_name}" if wildcard else ascii_name


# -- proxy ------------------------------------------------------------------------------
def proxy_setting(url: str, keys: Keys = ()) -> Redacted:
    """A proxy URL (http:// or https://), masked where it carries a user name or password."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise SettingError(keys, "not a proxy URL: write http://host:port") from None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise SettingError(keys, f"not a proxy URL: write http://host:port (schemes: {', '.join(PROXY_SCHEMES)})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingError(keys, "a proxy URL is scheme, host and port only: write http://host:port")
    shown = url.strip()
    if "@" in parts.netloc:
        shown = parts._replace(netloc="<redacted>@" + parts.netloc.rpartition("@")[2]).geturl()
    return Redacted(url.strip(), shown)
