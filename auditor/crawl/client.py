"""The one shared httpx client, and how each request is built for its kind of URL.

The client takes proxies from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY (httpx's
`trust_env`) unless `proxy` is set, which then carries every request. Certificates are
checked against SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle (httpx's choice),
plus `ca_bundle` when given.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

import httpx

from auditor.config import CrawlConfig
from auditor.errors import ConfigError
from auditor.model import Kind

ByteRange = tuple[int, int]  # first and last byte, inclusive, as a Range header says them
ACCEPT = "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.8"
# Only encodings we can decode with a bound on the output size (see body.py).
ACCEPT_ENCODING = "gzip, deflate"
# Servers that mishandle HEAD answer these; only a GET gives a verdict.
HEAD_FALLBACK_STATUSES = frozenset(
    {
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.METHOD_NOT_ALLOWED,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.NOT_IMPLEMENTED,
    }
)

ResponseHook = Callable[[httpx.Response], Awaitable[None]]


def open_client(
    config: CrawlConfig, *, transport: httpx.AsyncBaseTransport | None, on_response: ResponseHook
) -> httpx.AsyncClient:
    """Redirects are not followed by httpx: every hop must pass the guard and its host's gate."""
    return httpx.AsyncClient(
        transport=transport,
        proxy=config.proxy.value if config.proxy is not None else None,
        verify=ssl_context(config),
        follow_redirects=False,
        event_hooks={"response": [on_response]},
        timeout=httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)),
        limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        headers={"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING, "Accept": ACCEPT},
    )


def ssl_context(config: CrawlConfig) -> ssl.SSLContext:
    """httpx's default context, trusting `ca_bundle` too; a ConfigError when that file is no PEM bundle."""
    context = httpx.create_ssl_context(trust_env=True)
    if config.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=config.ca_bundle)
        except ssl.SSLError:  # an OSError too, with the OpenSSL code as its text: say it in words
            raise ConfigError(f"--ca-bundle: cannot use {config.ca_bundle}: it holds no PEM certificate") from None
        except OSError as exc:
            raise ConfigError(f"--ca-bundle: cannot use {config.ca_bundle}: {exc.strerror or exc}") from None
    return context


def first_method(kind: Kind) -> str:
    """AMP cache URLs only need to exist, so HEAD; pages and images are read, so GET."""
    return "HEAD" if kind is Kind.AMP_CACHE else "GET"


def is_success(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kind: Kind,
    cookies: httpx.Cookies,
    *,
    byte_range: ByteRange | None = None,
    conditions: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    request_timeout: httpx.Timeout | None = None,
) -> httpx.Response:
    """Send one request and return as soon as the headers are in; the body is streamed by the caller.

    `conditions` are the conditional headers of a revalidation (conditional.py); an image's
    Range goes along with them, since a server weighs them first. `extra_headers` are the
    configured ones for this host (hosts.py); they cannot name what is set here (network.py
    refuses those names). `request_timeout` replaces the client's for a host with its own.
    """
    headers = {**(extra_headers or {}), **(conditions or {})}
    if kind is Kind.IMAGE:
        # Identity, so Range offsets are offsets into the image bytes.
        headers["Accept-Encoding"] = "identity"
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    request = client.build_request(
        method, url, headers=headers, cookies=cookies, timeout=request_timeout or httpx.USE_CLIENT_DEFAULT
    )
    return await client.send(request, stream=True)
