"""Domain names: what a `provider.domain` may hold, and the registrable domain of a host.

The registrable domain (eTLD+1: `cnn.com` for `www.cnn.com`, `bbc.co.uk` for
`news.bbc.co.uk`) comes from the Public Suffix List snapshot bundled with the
`publicsuffixlist` package: nothing is fetched at run time, and the list is as
new as the installed package.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from auditor.links import InvalidURL, ascii_host

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PORT = re.compile(r":\d*$")
# Letters, digits, hyphens; underscores too, which real DNS names do carry.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_SHOWN = 40  # characters of a stray path shown in a message


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # Parsing the bundled list takes ~40 ms: once per process, and only when a rule needs it.
    return PublicSuffixList()


# Every document asks these of its few publishers' hosts again: once per host and process is enough.
@functools.lru_cache(maxsize=16_384)
def registrable_domain(host: str) -> str:
    """The eTLD+1 of a normalised host; an IP address, or a name the list cannot split, as it is."""
    if _is_ip(host):
        return host
    return _public_suffixes().privatesuffix(host) or host


@functools.lru_cache(maxsize=16_384)
def is_public_suffix(domain: str) -> bool:
    """`com`, `co.uk`, `github.io`: names under which anyone can register, so no publisher's domain."""
    return not _is_ip(domain) and bool(_public_suffixes().is_public(domain))


@dataclass(frozen=True)
class DomainProblem:
    message: str
    # The value with what the message says removed, when that leaves a usable host name.
    suggestion: str | None


@functools.lru_cache(maxsize=16_384)
def domain_problem(value: str) -> DomainProblem | None:
    """What keeps a `provider.domain` value from being a bare host name, and the fix; None when it is one.

    A trailing dot and upper case are fine (DNS ignores both); a scheme, path,
    port, white space or a character no host name can hold is not.
    """
    if not value.strip():
        blank = "is empty" if not value else "holds only white space"
        return DomainProblem(f"{blank}: write the publisher's domain, e.g. example.com", None)
    found: list[str] = []
    rest = value
    if rest != rest.strip():
        found.append("white space at the start or end")
        rest = rest.strip()
    scheme = _SCHEME.match(rest)
    if scheme:
        found.append(f"a scheme ({scheme.group()})")
        rest = rest[scheme.end() :]
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    if rest[cut:].strip("/"):
        tail = rest[cut:]
        kind = {"?": "a query", "#": "a fragment"}.get(tail[0], "a path")
        found.append(f"{kind} ({tail if len(tail) <= _SHOWN else tail[: _SHOWN - 1] + '…'})")
    elif rest[cut:]:
        found.append(f"a trailing '{rest[cut:]}'")
    host = rest[:cut]
    port = _PORT.search(host)
    if port and not _is_ip(host):
        found.append(f"a port ({port.group()})")
        host = host[: port.start()]
    if " " in host or "\t" in host:
        spaces = [i for i, ch in enumerate(value) if ch in " \t"]
        found.append(
            f"a space at character {spaces[0] + 1}"
            if len(spaces) == 1
            else f"{len(spaces)} spaces, the first at character {spaces[0] + 1}"
        )
        host = "".join(host.split())
    suggestion = _valid_host(host)
    if found:
        fix = f"write {suggestion} alone" if suggestion else "write the host name alone, e.g. example.com"
        return DomainProblem(f"is not a bare domain name: it has {_and(found)}; {fix}", suggestion)
    if suggestion is None:
        return DomainProblem(
            f"is not a valid domain name ({_why_invalid(host)}): write the publisher's domain, e.g. example.com", None
        )
    return None


def _valid_host(host: str) -> str | None:
    """The host as written (less a trailing dot) when it is a valid DNS name or IP address."""
    host = host.rstrip(".")
    if not host:
        return None
    if _is_ip(host):
        return host
    try:
        labels = ascii_host(host).split(".")
    except InvalidURL:
        return None
    return host if all(_LABEL.fullmatch(label) and len(label) <= 63 for label in labels) else None


def _why_invalid(host: str) -> str:
    if ".." in host or host.startswith("."):
        return "it has an empty label"
    try:
        ascii_host(host)
    except InvalidURL:
        return "it is not a valid internationalised domain name"
    odd = sorted({ch for ch in host.lower().rstrip(".") if not (ch.isalnum() or ch in ".-_")})
    if odd:
        return "it holds " + ", ".join(repr(ch) for ch in odd)
    return "a label starts or ends with a hyphen, or is longer than 63 characters"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
