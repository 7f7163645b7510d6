"""Stage 2: documents -> link references, one per URL field.

A reference keeps where the URL was cited (document, field path, line) and
what it should be (kind, declared image size); the normalised URL is the key
the crawler deduplicates on, so each URL is fetched once per run however many
documents cite it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna

from auditor.corpus import Document
from auditor.model import Code, Finding, Kind, LinkRef

URL_FIELDS: dict[str, Kind] = {
    "webUrl": Kind.PAGE,
    "originalUrl": Kind.PAGE,
    "ampWebUrl": Kind.AMP,
    "cdnAmpWebUrl": Kind.AMP_CACHE,
}
DEFAULT_PORTS = {"http": 80, "https": 443}
# C0 controls and DEL: no HTTP client sends them; white space is reported on its own.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidURL(ValueError):
    """Why a URL cannot be checked, said so a person knows what to change.

    `suggestion` is the corrected URL when the fix is mechanical (white space
    to strip or encode); rules report it as what the field should say.
    """

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


def normalize_url(url: str) -> str:
    """The canonical form two citations of one resource share.

    Scheme and host are lower-cased, IDN hosts become punycode, default ports
    and fragments go; path and query stay byte-for-byte (servers may treat
    them case-sensitively).
    """
    if not isinstance(url, str):
        raise InvalidURL(f"must be text (a URL), not {type(url).__name__}")
    return _normalize(url)


# Rules normalise the same few URLs of a document several times over, and related items cite
# documents near by. Small: every parsing worker keeps one (65,536 URLs held ~13 MB in each).
@functools.lru_cache(maxsize=8192)
def _normalize(url: str) -> str:
    if url != url.strip() or any(ch in url for ch in _INNER_WHITESPACE):
        raise _whitespace_problem(url)
    if control := _CONTROL.search(url):
        raise InvalidURL(
            f"contains a control character (U+{ord(control.group()):04X}) at character {control.start() + 1}: remove it"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme and url.startswith("//"):
        raise InvalidURL("not an absolute http(s) URL (it starts with //): add https: in front", "https:" + url)
    if not scheme:
        raise InvalidURL("not an absolute http(s) URL: write the full URL, starting with https://")
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported scheme '{scheme}' (only http and https are checked)")
    host = parts.hostname
    if not host:
        raise InvalidURL("URL has no host: write the full URL, starting with https:// and the site's name")
    host = ascii_host(host)
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        raise InvalidURL("URL carries credentials (user:password@): remove them")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


_INNER_WHITESPACE = " \t\r\n"
_WHITESPACE_NAMES = {" ": "space", "\t": "tab", "\n": "line break", "\r": "carriage return"}
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def _whitespace_problem(url: str) -> InvalidURL:
    """What white space a URL holds, where, and how to fix it: one message for all of it.

    Browsers strip white space at either end and tabs and line breaks
    anywhere, and send an inner space as %20; a space in the host name has no
    such fix. Positions count characters from 1, as an editor's columns do.
    """
    clauses: list[str] = []
    core = url.strip()
    lead, trail = url[: len(url) - len(url.lstrip())], url[len(url.rstrip()) :]
    if lead:
        clauses.append(f"starts with {_name_whitespace(lead)}: remove {'it' if len(lead) == 1 else 'them'}")
    if trail:
        clauses.append(f"ends with {_name_whitespace(trail)}: remove {'it' if len(trail) == 1 else 'them'}")
    authority = _AUTHORITY.match(core)
    host_end = len(lead) + (authority.end() if authority else 0)
    fixable = True
    for char, name in _WHITESPACE_NAMES.items():
        positions = [i for i in range(len(lead), len(url) - len(trail)) if url[i] == char]
        in_host = [i for i in positions if i < host_end]
        elsewhere = [i for i in positions if i >= host_end]
        if in_host:
            fixable = False
            clauses.append(f"contains {_count(name, in_host)} in the host name: remove {_it(in_host)}")
        if elsewhere and char == " ":
            clauses.append(f"contains {_count(name, elsewhere)}: encode {_it(elsewhere)} as %20")
        elif elsewhere:
            clauses.append(f"contains {_count(name, elsewhere)}: remove {_it(elsewhere)}")
    suggestion = None
    if fixable:
        repaired = core.replace("\t", "").replace("\r", "").replace("\n", "").replace(" ", "%20")
        try:
            _normalize(repaired)
            suggestion = repaired
        except InvalidURL:
            pass  # the rest of the URL is broken too: no one-step fix to offer
    return InvalidURL("; ".join(clauses), suggestion)


def _count(name: str, positions: list[int]) -> str:
    if len(positions) == 1:
        return f"a {name} at character {positions[0] + 1}"
    return f"{len(positions)} {name}s, the first at character {positions[0] + 1}"


def _it(positions: list[int]) -> str:
    return "it" if len(positions) == 1 else "them"


def _name_whitespace(chars: str) -> str:
    names = [
        _WHITESPACE_NAMES.get(ch) or f"U+{ord(ch):04X} ({unicodedata.name(ch, 'white space').lower()})" for ch in chars
    ]
    if len(names) == 1:
        return f"a {names[0]}" if chars in _WHITESPACE_NAMES else names[0]
    return f"{len(names)} white-space characters ({', '.join(names)})"


def url_host(url: str) -> str:
    """The normalised host of a URL; InvalidURL when it has none."""
    return urlsplit(normalize_url(url)).hostname or ""


def ascii_host(host: str) -> str:
    """The punycode form of a host, as browsers resolve it: UTS #46 first, IDNA 2003 as fallback."""
    host = host.rstrip(".").lower()
    if host.isascii():
        if "xn--" in host:
            _check_a_labels(host)
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        pass
    try:
        # IDNA 2003 is laxer (symbols, some scripts) and still accepted by some browsers.
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(f"host '{host}' is not a valid internationalised domain name") from exc


def _check_a_labels(host: str) -> None:
    # HTTP clients decode punycode labels to show the host; one that does not decode is no host.
    try:
        idna.decode(host)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidURL(f"host '{host}' is not a valid internationalised domain name") from exc


def article_items(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The article itself and each related article: rules apply to all alike."""
    yield "", data
    related = data.get("related")
    if isinstance(related, list):
        for index, item in enumerate(related):
            if isinstance(item, dict):
                yield f"related[{index}]", item


def field_path(item: str, name: str) -> str:
    return f"{item}.{name}" if item else name


def extract_links(document: Document) -> tuple[list[LinkRef], list[Finding]]:
    """Every URL field as a reference, and a finding for each URL that cannot be checked.

    A value that is absent, not text or empty is the schema rule's to report
    (`rules.schema_findings`); this stage judges only the text of a URL, so
    one problem is never reported twice.
    """
    refs: list[LinkRef] = []
    problems: list[Finding] = []
    if document.data is None:
        return refs, problems

    def add(item: str, path: str, kind: Kind, value: Any, width: Any = None, height: Any = None) -> None:
        if not isinstance(value, str) or not value.strip():
            return
        line = document.line(path)
        try:
            normalized = normalize_url(value)
        except InvalidURL as exc:
            problems.append(
                Finding(
                    code=Code.INVALID_METADATA,
                    document=document.path,
                    field=path,
                    line=line,
                    message=str(exc),
                    url=value,
                    expected=exc.suggestion,
                    actual=value,
                )
            )
            return
        refs.append(
            LinkRef(
                document=document.path,
                item=item,
                field=path,
                line=line,
                kind=kind,
                url=value,
                normalized_url=normalized,
                declared_width=_size(width),
                declared_height=_size(height),
            )
        )

    for item, fields in article_items(document.data):
        for name, kind in URL_FIELDS.items():
            add(item, field_path(item, name), kind, fields.get(name))
        images = fields.get("images")
        if isinstance(images, list):
            for index, image in enumerate(images):
                if isinstance(image, dict):
                    path = field_path(item, f"images[{index}].url")
                    add(item, path, Kind.IMAGE, image.get("url"), image.get("width"), image.get("height"))
    return refs, problems


def _size(value: Any) -> int | None:
    # Only a real positive integer is a declaration; the schema rule reports the rest.
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
