from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auditor.model import Check, Hop, Kind, LinkRef, PageHead

try:
    from tests.loopback import LoopbackServer, refused_port
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from loopback import LoopbackServer, refused_port  # type: ignore[no-redef]


@pytest.fixture(scope="session")
def loopback() -> Iterator[LoopbackServer]:
    """Plain HTTP server on 127.0.0.1, shared by the session: use unique paths."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture(scope="session")
def loopback_tls() -> Iterator[LoopbackServer]:
    """HTTPS server on 127.0.0.1; trust ``loopback_tls.ca_pem_path`` or ``.client_ssl_context()``."""
    with LoopbackServer(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def loopback_tls_wrong_name(loopback_tls: LoopbackServer) -> Iterator[LoopbackServer]:
    """HTTPS server whose cert (same CA as ``loopback_tls``) names only wrong.example."""
    with loopback_tls.wrong_name_server("wrong.example") as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens, so connecting is refused."""
    return f"http://127.0.0.1:{refused_port()}/"


@pytest.fixture
def billion_laughs() -> str:
    """A front matter of nine levels of nine aliases: 370 bytes that stand for 387 million strings.

    Fields a..e build 9 + 81 + ... + 59,049 values; `f` (line 8) crosses the default 100,000.
    """
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=False):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "---\ntitle: laughs\n" + "\n".join(levels) + "\ntopics: *i\n---\n"


# -- records for tests: one factory per record, defaults a plain good page ------------
def make_link(**overrides: Any) -> LinkRef:
    """A reference to https://a.example/ from doc.md's webUrl, line 3, unless told otherwise."""
    url = overrides.pop("url", "https://a.example/")
    fields: dict[str, Any] = {
        "document": "doc.md",
        "item": "",
        "field": "webUrl",
        "line": 3,
        "kind": Kind.PAGE,
        "url": url,
        "normalized_url": url,
    }
    return LinkRef(**{**fields, **overrides})


def make_check(**overrides: Any) -> Check:
    """A 200 for https://a.example/ unless told otherwise; a `head` mapping becomes a PageHead."""
    head = overrides.pop("head", None)
    redirects = overrides.pop("redirects", ())
    fields: dict[str, Any] = {
        "url": "https://a.example/",
        "kind": Kind.PAGE,
        "ok": True,
        "status": 200,
        "final_url": overrides.get("url", "https://a.example/"),
        "head": PageHead(**head) if isinstance(head, dict) else head,
        "redirects": tuple(Hop(**hop) if isinstance(hop, dict) else hop for hop in redirects),
    }
    return Check(**{**fields, **overrides})
