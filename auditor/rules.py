"""Stage 5: documents + checks -> findings. Rules never fetch.

Three families:
- offline rules (`document_findings`): what a document says about itself —
  schema, AMP-cache URL, provider domain. `auditor lint` runs only these.
- link rules (`link_findings`): one reference and the check of its URL —
  liveness, redirects, image size.
- page rules (`page_findings`): what the fetched page heads say about the
  document — AMP pairs, titles, dates, the og:image's declared size.
- soft 404s (`soft_404_findings`): a page that answered 200 for an article
  that is gone, judged against what the run knows of its host (auditor/soft404.py).

Convention for metadata findings: `expected` is what the metadata should say
(computed, or observed on the web); `actual` is what it says now.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from auditor import soft404
from auditor.amp import amp_cache_url
from auditor.config import Config, SchemaConfig, Soft404Config
from auditor.corpus import Document
from auditor.domains import domain_problem, is_public_suffix, registrable_domain
from auditor.links import (
    URL_FIELDS,
    InvalidURL,
    article_items,
    ascii_host,
    field_path,
    normalize_url,
    url_host,
)
from auditor.model import (
    Check,
    Code,
    DateSource,
    Evidence,
    Finding,
    Kind,
    LinkRef,
    PageHead,
    Reason,
    Stage,
    is_accepted,
)
from auditor.pubdate import PageDate, parse_page_date

BLOCKED_STATUSES = frozenset({401, 403, 429})
PERMANENT_REDIRECTS = frozenset({301, 308})
DATE_TOLERANCE_SECONDS = 24 * 3600
# A page date without a time or a zone is the publisher's calendar day: a day either way is the same news.
DATE_TOLERANCE_DAYS = 1
DEFAULT_FLAKY_WINDOW = Config().flaky_window
DEFAULT_SOFT_404 = Soft404Config()


# -- offline rules -----------------------------------------------------------
def document_findings(document: Document, schema: SchemaConfig) -> list[Finding]:
    if document.data is None:
        return list(document.problems)
    findings = list(schema_findings(document, schema))
    for item, fields in article_items(document.data):
        findings += amp_cache_findings(document, item, fields)
        findings += provider_findings(document, item, fields)
    return findings


def schema_findings(document: Document, schema: SchemaConfig) -> Iterable[Finding]:
    """Missing, empty and mistyped fields: one finding per problem.

    A field that is absent, not text or empty is reported here and only here;
    the link stage judges the text of URLs that are there.
    """
    data = document.data or {}

    def bad(path: str, message: str, value: Any = None, expected: str | None = None) -> Finding:
        return Finding(
            code=Code.INVALID_METADATA,
            document=document.path,
            field=path,
            line=document.line(path),
            message=message,
            expected=expected,
            actual=None if value is None else _short(value),
        )

    for item, fields in article_items(data):
        where = item or "the article"
        requirements = schema.requirements(fields.get("type"))
        for names in requirements:
            if not any(fields.get(name) is not None for name in names):
                yield bad(field_path(item, names[0]), f"{where} has no {_lacking(names)}: add {_one_of(names)}")
        required = {name for names in requirements for name in names}
        for name, value in fields.items():
            if isinstance(value, str) and not value.strip() and (name in URL_FIELDS or name in required):
                yield bad(field_path(item, name), _empty_message(item, name, fields, requirements))
        for name in ("title", "excerpt", "category", "type", *URL_FIELDS):
            value = fields.get(name)
            if value is not None and not isinstance(value, str):
                yield bad(field_path(item, name), f"must be text, not {_type(value)}", value)
        for name in ("quality", "heat"):
            value = fields.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                yield bad(field_path(item, name), f"must be a number, not {_type(value)}", value)
        value = fields.get("published")
        if value is not None and not isinstance(value, bool):
            yield bad(field_path(item, "published"), f"must be true or false, not {_type(value)}", value)
        for name in ("images", "related", "topics"):
            value = fields.get(name)
            if value is not None and not isinstance(value, list):
                yield bad(field_path(item, name), f"must be a list, not {_type(value)}", value)
        if "publishedDateTime" in fields and parse_timestamp(fields["publishedDateTime"]) is None:
            yield bad(
                field_path(item, "publishedDateTime"),
                "not an ISO 8601 date-time: write it like 2020-09-22T22:36:00Z",
                fields["publishedDateTime"],
            )
        provider = fields.get("provider")
        if provider is not None:
            if not isinstance(provider, dict):
                yield bad(field_path(item, "provider"), f"must be a mapping, not {_type(provider)}", provider)
            elif provider.get("domain") is not None and not isinstance(provider.get("domain"), str):
                yield bad(
                    field_path(item, "provider.domain"),
                    f"must be text, not {_type(provider['domain'])}",
                    provider["domain"],
                )
            elif isinstance(provider.get("domain"), str):
                problem = domain_problem(provider["domain"])
                if problem is not None:
                    expected = problem.suggestion or _page_domain(fields)
                    yield bad(
                        field_path(item, "provider.domain"), problem.message, provider["domain"] or None, expected
                    )
        images = fields.get("images")
        for index, image in enumerate(images if isinstance(images, list) else []):
            path = field_path(item, f"images[{index}]")
            if not isinstance(image, dict):
                yield bad(path, f"must be a mapping with url, width and height, not {_type(image)}", image)
                continue
            if image.get("url") is None:
                yield bad(f"{path}.url", "the image has no url: add it, or remove the image")
            elif not isinstance(image["url"], str):
                yield bad(f"{path}.url", f"must be text, not {_type(image['url'])}", image["url"])
            elif not image["url"].strip():
                yield bad(f"{path}.url", f"{_blank(image['url'])}: write the image's URL, or remove the image")
            for name in ("width", "height"):
                value = image.get(name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                    yield bad(
                        f"{path}.{name}", f"must be a positive whole number of pixels, not {_short(value)}", value
                    )
            if image.get("isCached") is not None and not isinstance(image["isCached"], bool):
                yield bad(f"{path}.isCached", "must be true or false", image["isCached"])
    related = data.get("related")
    for index, item in enumerate(related if isinstance(related, list) else []):
        if not isinstance(item, dict):
            yield bad(f"related[{index}]", f"must be a mapping of article fields, not {_type(item)}", item)


def _lacking(names: tuple[str, ...]) -> str:
    """What an item lacks when none of a requirement's fields is there: "title", "page URL"."""
    if len(names) > 1 and all(URL_FIELDS.get(name) is Kind.PAGE for name in names):
        return "page URL"
    return _one_of(names)


def _one_of(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _blank(value: str) -> str:
    return "is empty" if not value else "holds only white space"


def _empty_message(item: str, name: str, fields: Mapping[str, Any], requirements: Iterable[tuple[str, ...]]) -> str:
    """Say what the empty field costs: a requirement nothing else meets, or nothing but noise."""
    path = field_path(item, name)
    for names in requirements:
        if name in names and not any(_filled(fields.get(other)) for other in names):
            return (
                f"{path} {_blank(fields[name])}, so {item or 'the article'} has no {_lacking(names)}: "
                f"fill in {_one_of(names)}"
            )
    if name in URL_FIELDS:
        return f"{path} {_blank(fields[name])}: write the URL, or remove the field"
    return f"{path} {_blank(fields[name])}: fill it in"


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def amp_cache_findings(document: Document, item: str, fields: Mapping[str, Any]) -> Iterable[Finding]:
    amp, cdn = fields.get("ampWebUrl"), fields.get("cdnAmpWebUrl")
    if not (isinstance(amp, str) and isinstance(cdn, str)):
        return
    try:
        expected = amp_cache_url(normalize_url(amp))
        matches = normalize_url(cdn) == normalize_url(expected)
    except (InvalidURL, ValueError):
        return  # the link stage already reported the malformed URL
    if not matches:
        path = field_path(item, "cdnAmpWebUrl")
        yield Finding(
            code=Code.AMP_CACHE_MISMATCH,
            document=document.path,
            field=path,
            line=document.line(path),
            url=cdn,
            expected=expected,
            actual=cdn,
            message=f"{path} is not the AMP cache URL of {field_path(item, 'ampWebUrl')}: expected {expected}",
        )


def provider_findings(document: Document, item: str, fields: Mapping[str, Any]) -> Iterable[Finding]:
    """The page's host must be `provider.domain` or under it; `expected` is the host's registrable domain.

    The page is `webUrl`, or `originalUrl` when there is no webUrl (videos).
    A malformed domain or URL was reported by the schema or link stage: no
    verdict on top of it.
    """
    provider = fields.get("provider")
    page_field = _page_field(fields)
    if not (isinstance(provider, dict) and isinstance(provider.get("domain"), str) and page_field):
        return
    declared = provider["domain"]
    if domain_problem(declared) is not None:
        return
    try:
        host = url_host(fields[page_field])
        domain = ascii_host(declared)
    except InvalidURL:
        return
    suffix_only = is_public_suffix(domain)
    if not suffix_only and (host == domain or host.endswith("." + domain)):
        return
    expected = registrable_domain(host)
    path, page_path = field_path(item, "provider.domain"), field_path(item, page_field)
    why = (
        f"{declared} is a public suffix, not a publisher's domain"
        if suffix_only
        else f"{page_path} is on {host}, which is not {declared} or a subdomain of it"
    )
    yield Finding(
        code=Code.PROVIDER_DOMAIN_MISMATCH,
        document=document.path,
        field=path,
        line=document.line(path),
        url=fields[page_field],
        expected=expected,
        actual=declared,
        # The metadata cannot tell which side is wrong: real corpora attach another site's page as often.
        message=f"{why}: provider.domain should be {expected}, unless {page_path} is the wrong page",
    )


def _page_field(fields: Mapping[str, Any]) -> str | None:
    for name in ("webUrl", "originalUrl"):
        if _filled(fields.get(name)) and isinstance(fields[name], str):
            return name
    return None


def _page_domain(fields: Mapping[str, Any]) -> str | None:
    """The registrable domain of the item's page, when it has a usable one."""
    page_field = _page_field(fields)
    try:
        return registrable_domain(url_host(fields[page_field])) if page_field else None
    except InvalidURL:
        return None


# -- link rules --------------------------------------------------------------
_VERDICT_WORDS = {
    Code.DEAD_LINK: "dead link",
    Code.LINK_BLOCKED: "blocked (inconclusive)",
    Code.PRIVATE_ADDRESS: "not fetched",
}


def liveness(check: Check) -> tuple[Code | None, str]:
    """(finding code or None, reason) for one check: the closed set of outcomes."""
    return status_verdict(check.status, check.reason, ok=check.ok)


def status_verdict(status: int | None, reason: str | None, *, ok: bool = False) -> tuple[Code | None, str]:
    """(finding code or None, reason) for a check's status, failure reason and OK flag.

    The crawl decided whether a status is accepted (`--accept`, `hosts:`) and said so with
    `ok`; the verdict never needs the config, so a stored run is judged as it ran.
    """
    if reason == Reason.EXCLUDED:
        return None, reason  # never asked: no verdict (callers that count outcomes count these apart)
    if reason == Reason.PRIVATE_ADDRESS:
        return Code.PRIVATE_ADDRESS, reason
    if status is None:
        return Code.DEAD_LINK, reason or Reason.OTHER
    if is_accepted(ok, status):
        return None, f"http {status} (accepted)"
    if status in BLOCKED_STATUSES:
        return Code.LINK_BLOCKED, f"http {status}"
    if not 200 <= status < 300:
        return Code.DEAD_LINK, f"http {status}"
    return None, "ok"


def link_findings(link: LinkRef, check: Check | None) -> list[Finding]:
    if check is None or check.excluded:
        return []  # not checked (interrupted run) or left out by --exclude: no verdict either way
    code, reason = liveness(check)
    evidence = Evidence(
        reason=reason,
        status=check.status,
        fetched_url=check.fetched_url,
        final_url=check.final_url,
        redirects=check.redirects,
    )
    base: dict[str, Any] = {
        "document": link.document,
        "field": link.field,
        "line": link.line,
        "url": link.url,
        "details": evidence,
    }
    findings: list[Finding] = []
    if code is not None:
        message = f"{_VERDICT_WORDS[code]}: {reason}"
        if check.message:
            message += f" — {check.message}"
        findings.append(Finding(code=code, message=message, **base))
    else:
        if any(hop.status in PERMANENT_REDIRECTS for hop in check.redirects):
            chain = " → ".join(str(hop.status) for hop in check.redirects)
            findings.append(
                Finding(
                    code=Code.REDIRECT,
                    # A mirror's final URL is no address for the metadata: then only the chain is told.
                    expected=None if check.fetched_url else check.final_url,
                    actual=link.url,
                    message=f"permanently redirected ({chain}) to {check.final_url}",
                    **base,
                )
            )
        if link.kind == Kind.IMAGE and not check.accepted:  # an accepted 403 has no image to measure
            findings += _image_findings(link, check, base)
    if check.fetched_url:
        # Every report shows the message: each says the verdict is about the --remap address.
        findings = [replace(f, message=f"{f.message} (fetched as {check.fetched_url})") for f in findings]
    return findings


def _image_findings(link: LinkRef, check: Check, base: dict[str, Any]) -> list[Finding]:
    width, height = check.width, check.height
    if check.image_error or (width is None and height is None and check.image_format is None):
        why = check.image_error or "no image size could be read"
        ctype = check.content_type or "no content type"
        return [Finding(code=Code.NOT_AN_IMAGE, message=f"not an image ({ctype}): {why}", **base)]
    # A dimension the image leaves open (an SVG without intrinsic size) takes
    # the size the page gives it, so any declared value there is right.
    declared_w, declared_h = link.declared_width, link.declared_height
    wrong_width = declared_w is not None and width is not None and declared_w != width
    wrong_height = declared_h is not None and height is not None and declared_h != height
    if wrong_width or wrong_height:
        declared = f"{declared_w or '?'}x{declared_h or '?'}"
        real = f"{width or 'any'}x{height or 'any'}"
        return [
            Finding(
                code=Code.IMAGE_SIZE_MISMATCH,
                expected=real,
                actual=declared,
                message=f"declared {declared}, but the image is {real} ({check.image_format or 'image'})",
                **base,
            )
        ]
    return []


def flaky_findings(
    link: LinkRef, check: Check | None, history: list[bool], window: int = DEFAULT_FLAKY_WINDOW
) -> list[Finding]:
    """A URL whose verdict flipped twice or more within the last `window` runs, this one included.

    `history` holds whether each earlier run found it ok, newest first.
    """
    if check is None or check.excluded:
        return []
    states = [check.ok, *history[: window - 1]]
    flips = sum(1 for a, b in zip(states, states[1:], strict=False) if a != b)
    if flips < 2:
        return []
    pattern = "".join("✓" if ok else "✗" for ok in reversed(states))
    return [
        Finding(
            code=Code.FLAKY_LINK,
            document=link.document,
            field=link.field,
            line=link.line,
            url=link.url,
            message=f"flipped between ok and failing {flips} times in the last {len(states)} runs "
            f"({pattern}, oldest first)",
            details=Evidence(history=pattern),
        )
    ]


# -- soft 404s ---------------------------------------------------------------
def soft_404_findings(
    document: Document,
    links: Iterable[LinkRef],
    checks: Mapping[str, Check],
    hosts: soft404.HostEvidence,
    config: Soft404Config = DEFAULT_SOFT_404,
) -> list[Finding]:
    """A finding for each page reference whose page is a soft 404 (see auditor/soft404.py)."""
    items = dict(article_items(document.data)) if document.data is not None else {}
    findings = []
    for link in links:
        check = checks.get(link.normalized_url)
        if link.kind not in soft404.PAGE_KINDS or check is None or not check.ok:
            continue
        fields = items.get(link.item, {})
        verdict = soft404.judge(
            link.normalized_url,
            check,
            hosts,
            own_urls=_own_urls(fields),
            headline_kept=_headline_kept(fields.get("title"), check.head),
            max_text_distance=config.max_text_distance,
        )
        if verdict is None:
            continue
        also = [signal.label for signal in verdict.signals[1:]]
        message = f"soft 404: {verdict.signal.label}: {verdict.matched}"
        if also:
            message += f" (also: {'; '.join(also)})"
        findings.append(
            Finding(
                code=Code.SOFT_404,
                document=link.document,
                field=link.field,
                line=link.line,
                url=link.url,
                actual=verdict.matched,
                message=message,
                details=Evidence(
                    reason=verdict.signal.value,
                    status=check.status,
                    final_url=check.final_url,
                    redirects=check.redirects,
                ),
            )
        )
    return findings


def without_soft_404_pages(findings: list[Finding], soft_404s: list[Finding]) -> list[Finding]:
    """A soft 404's page is not the article: no `redirect` to adopt, no title or date to compare."""
    if not soft_404s:
        return findings
    gone_fields = {(f.document, f.field) for f in soft_404s}
    gone_urls = {(f.document, f.url) for f in soft_404s}
    return [
        f
        for f in findings
        if not (f.code is Code.REDIRECT and (f.document, f.field) in gone_fields)
        and not (f.code.stage is Stage.PAGE and (f.document, f.url) in gone_urls)
    ]


def _own_urls(fields: Mapping[str, Any]) -> frozenset[str]:
    """The item's page URLs, normalised: a redirect among them (an AMP page sent to its article) loses nothing."""
    urls = set()
    for name, kind in URL_FIELDS.items():
        value = fields.get(name)
        if kind in soft404.PAGE_KINDS and isinstance(value, str):
            try:
                urls.add(normalize_url(value))
            except InvalidURL:
                continue
    return frozenset(urls)


def _headline_kept(title: Any, head: PageHead | None) -> bool | None:
    """Whether the page still carries the document's headline; None when there is none to compare."""
    page_titles = [t for t in (head.og_title, head.title) if t] if head is not None else []
    if not isinstance(title, str) or not title.strip() or not page_titles:
        return None
    return any(titles_match(title, page_title) for page_title in page_titles)


# -- page rules --------------------------------------------------------------
def page_findings(document: Document, checks: Mapping[str, Check]) -> list[Finding]:
    """Compare each article's metadata with what its fetched pages say."""
    if document.data is None:
        return []
    findings: list[Finding] = []
    for item, fields in article_items(document.data):
        web_check = _check_for(fields.get("webUrl"), checks)
        amp_check = _check_for(fields.get("ampWebUrl"), checks)
        findings += _amp_pair(document, item, fields, web_check, amp_check)
        web_head = web_check.head if web_check and web_check.ok else None
        if web_head:
            findings += _title(document, item, fields, web_head)
            findings += _date(document, item, fields, web_head)
            findings += og_image_findings(document, item, fields, web_head, checks)
    return findings


def _check_for(url: Any, checks: Mapping[str, Check]) -> Check | None:
    if not isinstance(url, str):
        return None
    try:
        return checks.get(normalize_url(url))
    except InvalidURL:
        return None


def _same_page(claimed: str | None, declared: str, check: Check | None) -> bool:
    if not claimed:
        return False
    try:
        claimed_n = normalize_url(claimed)
    except InvalidURL:
        return False
    candidates = {normalize_url(declared)}
    if check and check.final_url:
        candidates.add(check.final_url)
    return claimed_n in candidates


def _amp_pair(
    document: Document, item: str, fields: Mapping[str, Any], web_check: Check | None, amp_check: Check | None
) -> list[Finding]:
    web, amp = fields.get("webUrl"), fields.get("ampWebUrl")
    if not (web_check and amp_check and web_check.ok and amp_check.ok):
        return []  # a dead side is reported as dead-link; no pair to judge
    if web_check.accepted or amp_check.accepted:
        return []  # an accepted 403 is alive, but its page was never read
    if not (isinstance(web, str) and isinstance(amp, str)):
        return []  # the schema rule reports a URL that is not text
    try:
        normalize_url(web), normalize_url(amp)
    except InvalidURL:
        return []
    amphtml = web_check.head.amphtml if web_check.head else None
    canonical = amp_check.head.canonical if amp_check.head else None
    web_claims = _same_page(amphtml, amp, amp_check)
    amp_claims = _same_page(canonical, web, web_check)
    findings = []

    def mismatch(path_name: str, message: str, expected: str, actual: str | None) -> None:
        path = field_path(item, path_name)
        findings.append(
            Finding(
                code=Code.AMP_PAIR_MISMATCH,
                document=document.path,
                field=path,
                line=document.line(path),
                url=fields.get(path_name),
                expected=expected,
                actual=actual or "(none)",
                message=message,
            )
        )

    if amphtml and not web_claims:
        mismatch("webUrl", f"the page's <link rel=amphtml> points to {amphtml}, not to ampWebUrl", amp, amphtml)
    elif not amphtml and amp_claims:
        mismatch("webUrl", "the page has no <link rel=amphtml>, but its AMP page names it as canonical", amp, None)
    if canonical and not amp_claims:
        mismatch(
            "ampWebUrl", f"the AMP page's <link rel=canonical> points to {canonical}, not to webUrl", web, canonical
        )
    elif not canonical and web_claims:
        mismatch(
            "ampWebUrl", "the AMP page has no <link rel=canonical>, but the page names it as its AMP version", web, None
        )
    return findings


_QUOTES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        "–": "-",
        "—": "-",
        "―": "-",
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "−": "-",
    }
)
_SITE_SUFFIX = re.compile(r"\s+[|\-–—:·•]\s+[^|\-–—:·•]{1,60}$")


# Judging compares one document's headline with several pages (and soft-404 rules ask again): pure, so cached.
@functools.lru_cache(maxsize=4096)
def normalize_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", html.unescape(title)).translate(_QUOTES)
    return " ".join(text.split()).casefold()


@functools.lru_cache(maxsize=4096)
def titles_match(document_title: str, page_title: str) -> bool:
    ours, theirs = normalize_title(document_title), normalize_title(page_title)
    if ours == theirs:
        return True
    # "Headline | Site" or "Headline - Site": drop one trailing site name from either side.
    return _SITE_SUFFIX.sub("", theirs) == ours or _SITE_SUFFIX.sub("", ours) == theirs


def _title(document: Document, item: str, fields: Mapping[str, Any], head: PageHead) -> list[Finding]:
    title = fields.get("title")
    page_title = head.og_title or head.title
    if not isinstance(title, str) or not page_title or titles_match(title, page_title):
        return []
    path = field_path(item, "title")
    source = "og:title" if head.og_title else "<title>"
    return [
        Finding(
            code=Code.TITLE_MISMATCH,
            document=document.path,
            field=path,
            line=document.line(path),
            url=fields.get("webUrl"),
            expected=page_title,
            actual=title,
            message=f"the page's {source} is {page_title!r}: the headline changed",
        )
    ]


def _date(document: Document, item: str, fields: Mapping[str, Any], head: PageHead) -> list[Finding]:
    ours = parse_timestamp(fields.get("publishedDateTime"))
    theirs = parse_page_date(head.published_time)
    if ours is None or theirs is None or not dates_disagree(ours, theirs):
        return []
    # A head stored before sources were recorded read article:published_time and nothing else.
    source = head.published_source or DateSource.ARTICLE_PUBLISHED_TIME
    written = head.published_time or ""
    # A value written otherwise than ISO 8601 is shown as written too, so the reading can be checked.
    said = theirs.isoformat() if written[:10] == theirs.isoformat()[:10] else f"{written!r} ({theirs.isoformat()})"
    if theirs.has_time and theirs.has_zone:
        how_far = f"more than a day from {ours.isoformat()}"
    else:
        missing = "no time zone" if theirs.has_time else "no time"
        days = abs((ours.date() - theirs.moment.date()).days)
        how_far = f"{days} days from {ours.date().isoformat()} (the page gives {missing}: compared by calendar day)"
    path = field_path(item, "publishedDateTime")
    return [
        Finding(
            code=Code.DATE_MISMATCH,
            document=document.path,
            field=path,
            line=document.line(path),
            url=fields.get("webUrl"),
            expected=theirs.isoformat(),
            actual=ours.isoformat(),
            message=f"the page's {source.label} is {said}, {how_far}",
        )
    ]


def dates_disagree(ours: datetime, theirs: PageDate) -> bool:
    """More than a day apart: to the second when the page gave a time and a zone, else by calendar day.

    A date without a zone is the publisher's local time, somewhere between UTC-12 and UTC+14, so
    its instant is unknown by up to a day; its calendar day is what the page means. `ours` keeps
    the offset it was written with, so its day is the one its author meant too.
    """
    if theirs.has_time and theirs.has_zone:
        return abs((ours - theirs.moment).total_seconds()) > DATE_TOLERANCE_SECONDS
    return abs((ours.date() - theirs.moment.date()).days) > DATE_TOLERANCE_DAYS


def og_image_findings(
    document: Document, item: str, fields: Mapping[str, Any], head: PageHead, checks: Mapping[str, Check]
) -> list[Finding]:
    """The page's og:image:width/height, when its og:image is one of the item's images, against that image.

    Said only when the declared size is neither the image's real size nor the
    size the document gives it: where the page agrees with the document,
    `image-size-mismatch` already says both are wrong. Dimensions left out on
    either side (og:image:width alone, an SVG without a height) are not compared.
    """
    og_size = (head.og_image_width, head.og_image_height)
    if head.og_image is None or og_size == (None, None):
        return []
    try:
        og_image = normalize_url(head.og_image)
    except InvalidURL:
        return []
    images = fields.get("images")
    for index, image in enumerate(images if isinstance(images, list) else []):
        check = _check_for(image.get("url"), checks) if isinstance(image, dict) else None
        if check is None or not check.ok or og_image not in {check.url, check.final_url}:
            continue
        real = (check.width, check.height)
        declared = (_pixels(image.get("width")), _pixels(image.get("height")))
        if real == (None, None) or _sizes_agree(og_size, real):
            return []  # an image of unknown size is not-an-image's to report
        if declared != (None, None) and _sizes_agree(og_size, declared):
            return []
        path = field_path(item, f"images[{index}].url")
        said, real_text = _size_text(og_size), _size_text(real, unknown="any")
        ours = (
            f" (and {field_path(item, f'images[{index}]')} says {_size_text(declared)})"
            if declared != (None, None)
            else ""
        )
        return [
            Finding(
                code=Code.OG_IMAGE_SIZE_MISMATCH,
                document=document.path,
                field=path,
                line=document.line(path),
                url=image["url"],
                expected=real_text,
                actual=said,
                message=f"the page's og:image:width/height declare this image {said}, but it is {real_text}{ours}",
            )
        ]
    return []


def _sizes_agree(one: tuple[int | None, int | None], other: tuple[int | None, int | None]) -> bool:
    return all(a is None or b is None or a == b for a, b in zip(one, other, strict=True))


def _pixels(value: Any) -> int | None:
    """A declared dimension the schema accepts; anything else is invalid-metadata's and compares as unknown."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _size_text(size: tuple[int | None, int | None], unknown: str = "?") -> str:
    return f"{size[0] or unknown}x{size[1] or unknown}"


def parse_timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _type(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
        datetime: "a date-time",
        date: "a date",
    }.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 120) -> str:
    # Values read from YAML are shown as YAML would write them (null, true, [a, b]), never as Python's None.
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
