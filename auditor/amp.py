"""Google AMP cache URLs, computed offline.

`cdnAmpWebUrl` in the corpus should be exactly what the Google AMP cache
serves for `ampWebUrl`; this module derives it the way the cache does (the
algorithm of amp-toolbox-cache-url and the amp.dev "AMP Cache URL format" page):

1. Decode the host from punycode to Unicode.
2. Replace every "-" with "--", then every "." with "-".
3. If that puts "--" at positions 3–4, wrap it as "0-…-0" (such labels are
   reserved for IDNA prefixes like "xn--").
4. Encode back to punycode.

A host that cannot become one readable DNS label — longer than 63 characters,
without a dot, mixing left-to-right and right-to-left scripts, or rejected by
IDNA — gets the base32 SHA-256 of its punycode form instead.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from urllib.parse import urlsplit

import idna

from auditor.links import InvalidURL, ascii_host

AMP_CACHE_DOMAIN = "cdn.ampproject.org"
CONTENT_TYPES = ("c", "i", "r")  # documents, images, fonts and other resources
MAX_LABEL_LENGTH = 63

# The bidi character classes of amp-toolbox-cache-url, so mixed-direction hosts
# fall back exactly where the cache does.
_LTR_CHARS = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02b8\u0300-\u0590\u0800-\u1fff"
    "\u200e\u2c00-\ufb1c\ufe00-\ufe6f\ufefd-\uffff"
)
_RTL_CHARS = "\u0591-\u06ef\u06fa-\u07ff\u200f\ufb1d-\ufdff\ufe70-\ufefc"
_HAS_LTR = re.compile(f"[{_LTR_CHARS}]")
_HAS_RTL = re.compile(f"[{_RTL_CHARS}]")


@functools.lru_cache(maxsize=16_384)  # a corpus cites few hosts, each in many documents
def amp_cache_subdomain(host: str) -> str:
    """The AMP cache subdomain for `host` (Unicode or punycode, no port)."""
    ascii_host = _to_ascii(host.strip().rstrip(".").lower())
    unicode_host = _to_unicode(ascii_host)
    if (
        len(ascii_host) > MAX_LABEL_LENGTH
        or "." not in ascii_host
        or (_HAS_LTR.search(unicode_host) and _HAS_RTL.search(unicode_host))
    ):
        return _hashed_subdomain(ascii_host)
    readable = unicode_host.replace("-", "--").replace(".", "-")
    if readable[2:4] == "--":
        readable = f"0-{readable}-0"
    label = _label_to_ascii(readable)
    if label is None or len(label) > MAX_LABEL_LENGTH:
        return _hashed_subdomain(ascii_host)
    return label


def amp_cache_url(url: str, content: str = "c") -> str:
    """The Google AMP cache URL serving `url`: content "c" documents, "i" images, "r" fonts.

    Raises ValueError for a URL that is not absolute http(s) or has a bad port.
    """
    if content not in CONTENT_TYPES:
        raise ValueError(f"content must be one of {', '.join(CONTENT_TYPES)}, not {content!r}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port  # raises ValueError for a malformed port
    origin = f"[{host}]" if ":" in host else host
    if port is not None:
        origin += f":{port}"
    secure = "s/" if scheme == "https" else ""
    query = f"?{parts.query}" if parts.query else ""
    subdomain = amp_cache_subdomain(host)
    return f"https://{subdomain}.{AMP_CACHE_DOMAIN}/{content}/{secure}{origin}{parts.path}{query}"


def _hashed_subdomain(ascii_host: str) -> str:
    digest = hashlib.sha256(ascii_host.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _to_ascii(host: str) -> str:
    """Punycode form of a host; the host unchanged when neither IDNA flavour accepts it."""
    try:
        return ascii_host(host)
    except InvalidURL:
        return host


def _to_unicode(ascii_host: str) -> str:
    return ".".join(_label_to_unicode(label) for label in ascii_host.split("."))


def _label_to_unicode(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return idna.decode(label)
    except idna.IDNAError:
        pass
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label


def _label_to_ascii(label: str) -> str | None:
    """Punycode form of one label, or None when it is not a valid IDNA label."""
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label).decode("ascii")
    except idna.IDNAError:
        pass
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return None
