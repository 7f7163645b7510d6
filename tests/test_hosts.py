"""Per-host rules in the crawl (auditor/crawl/hosts.py): headers only to their hosts, accepted
statuses, per-host concurrency, rate and timeout, on a real server on 127.0.0.1.

The one server answers as two hosts, `localhost` and `127.0.0.1`: rules name one of them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.config import CrawlConfig
from auditor.corpus import Document
from auditor.crawl import Crawler, HostPolicy
from auditor.errors import ConfigError
from auditor.model import Check, Code, Kind, Reason
from auditor.network import AcceptCodes, HostRule, HostRules, parse_header, parse_hosts
from auditor.rules import link_findings, page_findings, status_verdict

try:
    from tests.conftest import make_check, make_link
    from tests.loopback import LoopbackServer, Request
except ImportError:
    from conftest import make_check, make_link  # type: ignore[no-redef]
    from loopback import LoopbackServer, Request  # type: ignore[no-redef]

FAST = CrawlConfig(timeout=2.0, connect_timeout=1.0, retries=0, rate=1000.0, per_host=8, allow_private=True)
SECRET = "s3cr3t-from-the-environment"


def crawl(targets: list[tuple[str, str]], config: CrawlConfig = FAST) -> list[Check]:
    """The checks in the order of `targets` (the crawl yields them as they complete)."""

    async def run() -> list[Check]:
        async with Crawler(config) as crawler:
            return [c async for c in crawler.crawl(targets)]

    by_url = {c.url: c for c in asyncio.run(run())}
    return [by_url[url] for url, _ in targets]


def check(url: str, config: CrawlConfig = FAST, kind: str = "page") -> Check:
    return crawl([(url, kind)], config)[0]


def on_localhost(server: LoopbackServer, path: str) -> str:
    return server.url_for(path).replace("127.0.0.1", "localhost")


def redirect_to(server: LoopbackServer, target: str, *, via_localhost: bool = False) -> str:
    url = server.url_for("/redirect-to?url=" + urllib.parse.quote(target, safe=""))
    return url.replace("127.0.0.1", "localhost", 1) if via_localhost else url


def with_rules(config: CrawlConfig = FAST, **rules: dict[str, Any]) -> CrawlConfig:
    return replace(config, hosts=parse_hosts(rules))


# -- headers ---------------------------------------------------------------------------
def test_a_hosts_headers_reach_only_that_host_even_across_redirects(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITOR_TEST_TOKEN", SECRET)
    config = replace(
        with_rules(localhost={"headers": {"Authorization": "Bearer ${AUDITOR_TEST_TOKEN}", "X-Who": "host"}}),
        headers=(parse_header("X-Who: everyone"), parse_header("X-Everyone: 1")),
    )
    crawl(
        [
            (on_localhost(loopback, "/ok/hdr-local"), "page"),
            (loopback.url_for("/ok/hdr-ip"), "page"),
            # localhost -> 127.0.0.1: the second hop leaves the host and its headers behind
            (redirect_to(loopback, loopback.url_for("/ok/hdr-left"), via_localhost=True), "page"),
            # 127.0.0.1 -> localhost: the hop to the host gets them
            (redirect_to(loopback, on_localhost(loopback, "/ok/hdr-entered")), "page"),
        ],
        config,
    )

    def headers(path: str) -> dict[str, str]:
        [request] = loopback.requests.for_path(path)
        return request.headers

    for path in ("/ok/hdr-local", "/ok/hdr-entered"):
        assert headers(path)["authorization"] == f"Bearer {SECRET}"
        assert (headers(path)["x-who"], headers(path)["x-everyone"]) == ("host", "1")  # the host's wins by name
    for path in ("/ok/hdr-ip", "/ok/hdr-left"):
        assert "authorization" not in headers(path)
        assert (headers(path)["x-who"], headers(path)["x-everyone"]) == ("everyone", "1")
    redirecting = [r for r in loopback.requests.for_path("/redirect-to") if "hdr-left" in r.path]
    assert redirecting[0].headers["authorization"] == f"Bearer {SECRET}"  # the first hop was on localhost


def test_a_wildcard_rule_covers_subdomains_not_the_domain(loopback: LoopbackServer) -> None:
    # No real subdomains on loopback: the policy is asked directly, as the fetcher asks it.
    policy = HostPolicy(with_rules(**{"*.example.com": {"headers": {"X-Sub": "1"}, "concurrency": 2}}))
    assert policy("a.b.example.com").headers == {"X-Sub": "1"}
    assert policy("a.b.example.com").per_host == 2
    assert policy("example.com").headers == {} and policy("example.com").per_host == FAST.per_host


def test_a_user_agent_and_global_header_reach_every_host(loopback: LoopbackServer) -> None:
    config = replace(FAST, user_agent="corp-auditor/2 (ops@corp.example)", headers=(parse_header("X-Team: links"),))
    crawl([(loopback.url_for("/ok/ua-ip"), "page"), (on_localhost(loopback, "/ok/ua-local"), "page")], config)
    for path in ("/ok/ua-ip", "/ok/ua-local"):
        [request] = loopback.requests.for_path(path)
        assert (request.headers["user-agent"], request.headers["x-team"]) == (
            "corp-auditor/2 (ops@corp.example)",
            "links",
        )


def test_an_unset_variable_stops_the_crawler_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITOR_TEST_MISSING", raising=False)
    config = with_rules(**{"api.example": {"headers": {"X-Key": "${AUDITOR_TEST_MISSING}"}}})
    with pytest.raises(
        ConfigError, match=r"hosts\[api.example\]: header 'X-Key' uses \$\{AUDITOR_TEST_MISSING\}, which is not set"
    ):
        Crawler(config)


# -- accepted statuses ----------------------------------------------------------------------
def test_an_accepted_status_is_ok_and_keeps_the_real_status(loopback: LoopbackServer) -> None:
    config = replace(FAST, accept=AcceptCodes.parse("403,410"))
    forbidden, gone, missing = crawl(
        [
            (loopback.url_for("/status/403/acc"), "page"),
            (loopback.url_for("/status/410/acc"), "image"),
            (loopback.url_for("/status/404/acc"), "page"),
        ],
        config,
    )
    assert (forbidden.ok, forbidden.status, forbidden.accepted, forbidden.head) == (True, 403, True, None)
    assert (gone.ok, gone.status, gone.width, gone.image_error) == (True, 410, None, None)
    assert (missing.ok, missing.status) == (False, 404)


def test_a_hosts_accepted_statuses_hold_for_that_host_only(loopback: LoopbackServer) -> None:
    config = with_rules(localhost={"accept": ["403"]})
    on_host, elsewhere = crawl(
        [(on_localhost(loopback, "/status/403/host-acc"), "page"), (loopback.url_for("/status/403/ip-acc"), "page")],
        config,
    )
    assert (on_host.ok, on_host.status) == (True, 403)
    assert (elsewhere.ok, elsewhere.status) == (False, 403)


def test_the_host_that_gave_the_final_answer_decides(loopback: LoopbackServer) -> None:
    config = with_rules(localhost={"accept": [403]})
    via_ip = check(redirect_to(loopback, on_localhost(loopback, "/status/403/final-local")), config)
    via_local = check(redirect_to(loopback, loopback.url_for("/status/403/final-ip"), via_localhost=True), config)
    assert (via_ip.ok, via_ip.status, [h.status for h in via_ip.redirects]) == (True, 403, [302])
    assert (via_local.ok, via_local.status) == (False, 403)


def test_an_accepted_retryable_status_is_not_asked_again(loopback: LoopbackServer) -> None:
    config = replace(FAST, retries=2, accept=AcceptCodes.parse("503"))
    result = check(loopback.url_for("/status/503/accepted-once"), config)
    assert (result.ok, result.status, result.attempts) == (True, 503, 1)
    assert loopback.hits("/status/503/accepted-once") == 1


def test_rules_take_an_accepted_check_as_alive_and_read_nothing_from_it() -> None:
    accepted = make_check(status=403, ok=True)
    assert status_verdict(403, None, ok=True) == (None, "http 403 (accepted)")
    assert status_verdict(403, None, ok=False) == (Code.LINK_BLOCKED, "http 403")
    assert link_findings(make_link(), accepted) == []
    image = make_link(kind=Kind.IMAGE, field="images[0].url", declared_width=10, declared_height=10)
    assert link_findings(image, make_check(status=403, ok=True, kind=Kind.IMAGE)) == []  # no not-an-image
    redirected = make_check(status=403, ok=True, redirects=[{"status": 301, "url": "https://a.example/"}])
    assert [f.code for f in link_findings(make_link(), redirected)] == [Code.REDIRECT]


def test_no_amp_pair_is_judged_against_an_accepted_page() -> None:
    data = {"title": "T", "webUrl": "https://a.example/", "ampWebUrl": "https://a.example/amp"}
    document = Document(path="doc.md", data=data, lines={})
    checks = {
        "https://a.example/": make_check(status=403, ok=True),
        "https://a.example/amp": make_check(
            url="https://a.example/amp", head={"canonical": "https://a.example/"}, final_url="https://a.example/amp"
        ),
    }
    assert page_findings(document, checks) == []


# -- per-host concurrency, rate and timeout -----------------------------------------------------
def test_a_hosts_concurrency_limits_only_that_host(loopback: LoopbackServer) -> None:
    lock = threading.Lock()
    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}

    async def counted(request: Request) -> tuple[int, dict[str, str], str]:
        host = request.headers["host"].split(":")[0]
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            most[host] = max(most.get(host, 0), in_flight[host])
        await asyncio.sleep(0.15)
        with lock:
            in_flight[host] -= 1
        return 200, {}, "<title>counted</title>"

    loopback.add_route("/counted-concurrency", counted)
    urls = [loopback.url_for(f"/counted-concurrency?n={n}") for n in range(4)]
    crawl(
        [(url, "page") for url in urls] + [(url.replace("127.0.0.1", "localhost"), "page") for url in urls],
        with_rules(localhost={"concurrency": 1}),
    )
    assert most["localhost"] == 1
    assert most["127.0.0.1"] >= 3  # the global per-host limit (8) lets all four in at once


def test_a_hosts_rate_spaces_only_that_hosts_requests(loopback: LoopbackServer) -> None:
    paths = [f"/ok/rate-local-{n}" for n in range(4)] + [f"/ok/rate-ip-{n}" for n in range(4)]
    crawl(
        [(on_localhost(loopback, p), "page") for p in paths[:4]] + [(loopback.url_for(p), "page") for p in paths[4:]],
        with_rules(localhost={"rate": 5}),
    )

    def times(prefix: str) -> list[float]:
        return sorted(r.received_at for r in loopback.requests.for_prefix(prefix))

    local, ip = times("/ok/rate-local-"), times("/ok/rate-ip-")
    assert min(b - a for a, b in zip(local, local[1:], strict=False)) >= 0.15  # 5/s: 0.2 s apart
    assert ip[-1] - ip[0] < 0.3  # 1000/s: all at once, where 5/s would take 0.6 s


def test_a_hosts_timeout_can_be_shorter_or_longer_than_the_global_one(loopback: LoopbackServer) -> None:
    shorter = with_rules(localhost={"timeout": 0.3})
    local, ip = crawl(
        [
            (on_localhost(loopback, "/slow-headers/0.8/t-short"), "page"),
            (loopback.url_for("/slow-headers/0.8/t-ip"), "page"),
        ],
        shorter,
    )
    assert (local.ok, local.reason, local.message) == (False, Reason.TIMEOUT, "no complete answer within 0.3s")
    assert ip.ok
    # Longer than the global one: the host's requests get it from httpx too, not only the budget.
    longer = with_rules(replace(FAST, timeout=0.3), localhost={"timeout": 2})
    local, ip = crawl(
        [
            (on_localhost(loopback, "/slow-headers/0.6/t-long"), "page"),
            (loopback.url_for("/slow-headers/0.6/t-ip2"), "page"),
        ],
        longer,
    )
    assert local.ok
    assert (ip.ok, ip.reason) == (False, Reason.TIMEOUT)


def test_the_amp_cache_bucket_takes_its_hosts_rule() -> None:
    policy = HostPolicy(replace(FAST, hosts=HostRules((HostRule(pattern="*.cdn.ampproject.org", concurrency=1),))))
    assert policy("www-a-com.cdn.ampproject.org").per_host == 1


# -- secrets never leave memory: the whole CLI, then every file it wrote is searched -------------------
ARTICLE = """---
title: "Secret News"
webUrl: {web}
originalUrl: {other}
provider:
  domain: localhost
---
"""


def test_header_values_never_reach_the_database_reports_or_output(
    loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITOR_TEST_TOKEN", SECRET)
    literal = "literal-global-secret-42"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    web = on_localhost(loopback, "/status/403/secret-web")
    other = loopback.url_for("/status/404/secret-other")
    (corpus / "a.md").write_text(ARTICLE.format(web=web, other=other))
    (tmp_path / "auditor.yaml").write_text(
        "hosts:\n  localhost:\n    accept: [403]\n    headers:\n      X-Token: 'tok ${AUDITOR_TEST_TOKEN}'\n"
    )
    result = CliRunner().invoke(
        cli,
        ["audit", str(corpus), "--allow-private", "--retries", "0", "--verbose", "--header", f"X-Global: {literal}"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # the 404 on 127.0.0.1 is dead; the 403 on localhost accepted
    [sent] = loopback.requests.for_path("/status/403/secret-web")
    assert (sent.headers["x-token"], sent.headers["x-global"]) == (f"tok {SECRET}", literal)
    assert "x-token" not in loopback.requests.for_path("/status/404/secret-other")[0].headers

    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.parent != corpus]
    assert {p.name for p in written} >= {"audit.sqlite", "report.json", "report.md", "report.html", "junit.xml"}
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data and literal.encode() not in data, path
    assert SECRET not in result.output + result.stderr and literal not in result.output + result.stderr

    report = (tmp_path / "reports" / "report.json").read_text()
    assert '"status": 403' in report
    codes = {finding["code"] for finding in json.loads(report)["findings"]}
    assert Code.LINK_BLOCKED not in codes and Code.DEAD_LINK in codes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header", "X-Ok: 1", "--header", "no colon here"], "--header #2: "),
        (["--header", "Content-Length: 5"], "'Content-Length' is set by auditor itself"),
        (["--accept", "403,abc"], "--accept: 'abc' is not a status code or range"),
        (["--proxy", "socks5://127.0.0.1:1080"], "--proxy: not a proxy URL"),
        (["--user-agent", "two\nlines"], "--user-agent: must be printable text on one line"),
        (["--ca-bundle", "missing.pem"], "--ca-bundle: cannot use missing.pem: No such file or directory"),
        (["--header", "X-Key: ${AUDITOR_TEST_NOT_SET}"], "--header: header 'X-Key' uses ${AUDITOR_TEST_NOT_SET}"),
    ],
)
def test_bad_network_flags_exit_2_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDITOR_TEST_NOT_SET", raising=False)
    (tmp_path / "corpus").mkdir()
    result = CliRunner().invoke(cli, ["audit", "corpus", *args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "audit.sqlite").exists()  # refused before a run began
