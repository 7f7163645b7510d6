"""Stage 2: documents -> link references, one per URL field.

A reference keeps where the URL was cited (document, field path, line) and
what it should be (kind, declared image size); the normalised URL is the key
the crawler deduplicates on, so each URL is fetched once per run however many
documents cite it.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import idna

from auditor.corpus import Document
from auditor.model import Finding, LinkRef

PAGE, AMP, AMP_CACHE, IMAGE = "page", "amp", "amp-cache", "image"
URL_FIELDS: dict[str, str] = {
    "webUrl": PAGE,
    "originalUrl": PAGE,
    "ampWebUrl": AMP,
    "cdnAmpWebUrl": AMP_CACHE,
}
DEFAULT_PORTS = {"http": 80, "https": 443}
# C0 controls and DEL: no HTTP client sends them; white space is reported on its own.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidURL(ValueError):
    pass


def normalize_url(url: str) -> str:
    """The canonical form two citations of one resource share.

    Scheme and host are lower-cased, IDN hosts become punycode, default ports
    and fragments go; path and query stay byte-for-byte (servers may treat
    them case-sensitively).
    """
    if not isinstance(url, str):
        raise InvalidURL(f"expected a URL string, got {type(url).__name__}")
    return _normalize(url)


# Rules normalise the same few URLs of a document several times over.
@functools.lru_cache(maxsize=65_536)
def _normalize(url: str) -> str:
    if url != url.strip() or any(ch in url for ch in " \t\r\n"):
        raise InvalidURL("URL contains white space")
    if _CONTROL.search(url):
        raise InvalidURL("URL contains a control character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(
            "not an absolute http(s) URL" if not scheme else f"unsupported scheme '{scheme}' (only http and https are checked)"
        )
    host = parts.hostname
    if not host:
        raise InvalidURL("URL has no host")
    host = ascii_host(host)
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        raise InvalidURL("URL carries credentials")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


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
    refs: list[LinkRef] = []
    problems: list[Finding] = []
    if document.data is None:
        return refs, problems

    def add(item: str, path: str, kind: str, value: Any, width: Any = None, height: Any = None) -> None:
        if value is None:
            return
        line = document.line(path)
        try:
            normalized = normalize_url(value)
        except InvalidURL as exc:
            problems.append(
                Finding(
                    code="invalid-metadata",
                    document=document.path,
                    field=path,
                    line=line,
                    message=str(exc),
                    url=value if isinstance(value, str) else None,
                    actual=str(value),
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
                normalized=normalized,
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
                    add(item, path, IMAGE, image.get("url"), image.get("width"), image.get("height"))
    return refs, problems


def _size(value: Any) -> int | None:
    # Only a real positive integer is a declaration; the schema rule reports the rest.
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
