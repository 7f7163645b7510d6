"""Redirect chains: followed by us, hop by hop, with the cookies set along the way.

httpx does not follow them (see client.py), so every hop passes the address
guard and its host's gate, and the whole chain is kept for the report.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urljoin

import httpx

from auditor.crawl.errors import CrawlError, UnusableRedirect
from auditor.links import InvalidURL, normalize_url
from auditor.model import Hop, Reason

REDIRECT_STATUSES = frozenset(
    {
        HTTPStatus.MOVED_PERMANENTLY,
        HTTPStatus.FOUND,
        HTTPStatus.SEE_OTHER,
        HTTPStatus.TEMPORARY_REDIRECT,
        HTTPStatus.PERMANENT_REDIRECT,
    }
)


def redirect_target(current: str, location: str) -> str:
    """The normalised URL a Location header points to, resolved against the current URL; InvalidURL if none."""
    try:
        joined = urljoin(current, location)
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from exc
    return normalize_url(joined)


async def refuse_unusable_redirect(response: httpx.Response) -> None:
    """httpx's client (through a proxy) builds the next request of every redirect, even one it
    does not follow, and raises on a Location it cannot use, as `RedirectChain.follow` would;
    this response hook (client.py runs it for every response) judges the Location first by
    our own rule, so a bad one is one final outcome (not a protocol error or a crash)."""
    if response.status_code not in REDIRECT_STATUSES:
        return
    location = response.headers.get("location")
    if location:
        try:
            redirect_target(str(response.request.url), location)
        except InvalidURL as exc:
            raise UnusableRedirect(
                response.status_code, f"redirect to {location!r}, which is not a usable http(s) URL: {exc}"
            ) from None


class RedirectChain:
    """Where one attempt has been: the hops so far, the URL asked now, the cookies set."""

    def __init__(self, url: str, *, max_redirects: int) -> None:
        self.current = url
        self.hops: list[Hop] = []
        self.cookies = httpx.Cookies()
        self._seen = {url}
        self._max_redirects = max_redirects

    def follow(self, response: httpx.Response) -> bool:
        """Take the response's cookies; if it redirects, move on to its target and say so.

        A target already visited is a loop, a chain past `max_redirects` too long:
        both CrawlError, since asking again would only go round again.
        """
        if "set-cookie" in response.headers:  # most answers set none, and the jar's parse is not cheap
            self.cookies.extract_cookies(response)
        if response.status_code not in REDIRECT_STATUSES:
            return False
        location = response.headers.get("location")
        if not location:
            return False
        self.hops.append(Hop(response.status_code, self.current))
        target = redirect_target(self.current, location)
        if target in self._seen:
            raise CrawlError(Reason.REDIRECT_LOOP, f"redirect loop back to {target}")
        if len(self.hops) > self._max_redirects:
            raise CrawlError(Reason.TOO_MANY_REDIRECTS, f"more than {self._max_redirects} redirects")
        self._seen.add(target)
        self.current = target
        return True

    def refused(self, unusable: UnusableRedirect) -> None:
        """The hook refused this hop's Location: the hop is still part of the chain."""
        self.hops.append(Hop(unusable.status, self.current))
