"""Conditional requests: a previous answer's validators sent again, a 304 read as that answer confirmed.

A check whose final answer was a 2xx keeps the `ETag` and `Last-Modified` that
answer carried (`Check.etag`, `Check.last_modified`). Given that check as
`previous`, the next check of the URL walks its redirect chain as usual and
sends them as `If-None-Match` / `If-Modified-Since` on exactly one request:
the one for the previous *final* URL.

- Not on every hop: a validator belongs to the resource the chain ended at,
  not to the URLs that redirected to it. Sent to a redirecting hop it could
  only earn a 304 that confirms something we never stored (a server that
  compares dates alone would give one).
- Not straight to the old final URL: the check is about the cited URL, so a
  chain that changed (a 404 now, or a redirect elsewhere) must be seen. A
  chain that now ends somewhere else never meets the validators and gets a
  fresh answer; a 304 at the end of the same chain confirms the same content
  behind it.

A 304 to that request is the previous check again, `revalidated`: its
status, page head, image size and content type, with this exchange's chain,
time, bytes and attempts (and any newer validator the 304 carried). A 304 to
a request that carried no validators is just a status, as before.

Images keep their `Range` when revalidating: a server evaluates
`If-None-Match` / `If-Modified-Since` before `Range` (RFC 9110 13.2.2), so an
unchanged image is a bodiless 304 and a changed one the usual 206 of its
first bytes, not a whole body read sequentially. HEAD kinds (AMP cache)
revalidate with HEAD, and a fallback GET carries the same validators.
"""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus

import httpx

from auditor.crawl.client import is_success
from auditor.model import Check, Kind


def with_validators(answer: Check, response: httpx.Response) -> Check:
    """`answer` with the validators `response` carried; only a 2xx's describe what was read."""
    if not is_success(response.status_code):
        return replace(answer, etag=None, last_modified=None)
    return replace(answer, etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"))


class Revalidation:
    """What one check of `url` may ask conditionally, given its previous check.

    The previous check counts only when it is an OK answer for the same URL,
    checked as the same kind (a page's head is no image's size), with at
    least one validator; otherwise nothing is conditional.
    """

    def __init__(self, url: str, kind: Kind, previous: Check | None) -> None:
        usable = (
            previous is not None
            and previous.ok
            and previous.url == url
            and previous.kind is kind
            and bool(previous.etag or previous.last_modified)
        )
        self.previous = previous if usable else None
        self.at = (previous.final_url or previous.url) if previous is not None and usable else None

    def headers_for(self, url: str) -> dict[str, str]:
        """The conditional headers of a request for `url`: the validators, on the previous final URL only."""
        if self.previous is None or url != self.at:
            return {}
        headers = {}
        # Both when both are known: a server that ignores If-None-Match may still honour the date
        # (one that understands both ignores the date, RFC 9110 13.1.3).
        if self.previous.etag:
            headers["If-None-Match"] = self.previous.etag
        if self.previous.last_modified:
            headers["If-Modified-Since"] = self.previous.last_modified
        return headers

    def confirmed(self, answer: Check, response: httpx.Response) -> Check | None:
        """The previous check confirmed, when `response` is a 304 to our conditional request; else None.

        `answer` is what was built from `response` (its chain and final URL are this exchange's).
        """
        previous = self.previous
        if previous is None or response.status_code != HTTPStatus.NOT_MODIFIED:
            return None
        sent = response.request.headers
        if "if-none-match" not in sent and "if-modified-since" not in sent:
            return None
        return replace(
            previous,
            final_url=answer.final_url,
            redirects=answer.redirects,
            # A 304 carries the ETag a 200 would have (RFC 9110 15.4.5); a newer one replaces ours.
            etag=response.headers.get("etag", previous.etag),
            last_modified=response.headers.get("last-modified", previous.last_modified),
            revalidated=True,
            bytes_read=0,
            retry_after=None,
        )
