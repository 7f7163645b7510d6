"""Network settings: how their text is read (accepted statuses, headers, host rules, proxy URLs),
and what the proxy and CA-bundle settings do against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import config_from_file

from auditor.config import CrawlConfig
from auditor.crawl import Crawler, check_settings
from auditor.errors import ConfigError
from auditor.model import Check, Reason
from auditor.network import (
    AcceptCodes,
    HostRule,
    HostRules,
    Redacted,
    SettingError,
    host_pattern,
    make_header,
    parse_header,
    parse_hosts,
    proxy_setting,
)

try:
    from tests.loopback import LoopbackProxy, LoopbackServer
except ImportError:
    from loopback import LoopbackProxy, LoopbackServer  # type: ignore[no-redef]

FAST = CrawlConfig(timeout=2.0, connect_timeout=1.0, retries=0, rate=1000.0, per_host=8, allow_private=True)
PRETEND_PUBLIC = "93.184.216.34"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def site_tls() -> Iterator[LoopbackServer]:
    """HTTPS on 127.0.0.1 with its own CA, for site.example (reached through the proxy) and 127.0.0.1."""
    with LoopbackServer(tls=True, tls_hostnames=("site.example", "127.0.0.1")) as server:
        yield server


async def site_example_is_public(host: str, port: int) -> list[str]:
    """The guard's resolver: site.example is public, inside.example private; httpx never asks it."""
    return {"site.example": [PRETEND_PUBLIC], "inside.example": ["10.0.0.5"]}.get(host, ["127.0.0.1"])


def check(url: str, config: CrawlConfig = FAST, **crawler_args: Any) -> Check:
    async def run() -> Check:
        async with Crawler(config, **crawler_args) as crawler:
            return await crawler.check(url, "page")

    return asyncio.run(run())


# -- accepted statuses ----------------------------------------------------------------
def test_accept_codes_read_codes_ranges_and_lists() -> None:
    codes = AcceptCodes.parse("200-299, 403,500-503")
    assert codes == AcceptCodes.parse([403, "500-503", "200-299"])
    assert [s for s in (200, 204, 301, 403, 404, 500, 503, 504) if codes.accepts(s)] == [200, 204, 403, 500, 503]
    assert str(codes) == "200-299,403,500-503"
    assert AcceptCodes().accepts(299) and not AcceptCodes().accepts(403)  # 2xx always


@pytest.mark.parametrize("bad", ["99", "abc", "403x", "300-200", "200-600", True, 4.5, "", [None]])
def test_a_bad_accept_entry_is_named(bad: Any) -> None:
    with pytest.raises(SettingError, match="is not a status code or range") as raised:
        AcceptCodes.parse(bad, ("--accept",))
    assert str(raised.value).startswith("--accept")


# -- headers and secrets ----------------------------------------------------------------
def test_a_header_keeps_its_template_and_resolves_from_the_environment() -> None:
    header = parse_header("Authorization:  Bearer ${API_TOKEN} ")
    assert (header.name, header.variables) == ("Authorization", ("API_TOKEN",))
    assert header.resolve({"API_TOKEN": "t0k3n"}, "--header") == "Bearer t0k3n"
    with pytest.raises(ConfigError, match=r"hosts\[a.example\]: header 'Authorization' uses \$\{API_TOKEN\}, which"):
        header.resolve({}, "hosts[a.example]")


def test_a_variable_holding_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="line break") as raised:
        parse_header("X-Token: ${T}").resolve({"T": "abc\r\nInjected: 1"}, "--header")
    assert "abc" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no colon at all", "not a header: write 'Name: value'"),
        (": value", "not a header"),
        ("Bad Name: x", "is not a header name"),
        ("Host: evil.example", "is set by auditor itself"),
        ("accept-encoding: br", "is set by auditor itself"),
        ("X-A: ${not-a-name}", "is not a variable name"),
    ],
)
def test_a_bad_header_is_refused(text: str, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        parse_header(text, ("--header #1",))


def test_a_header_without_a_name_is_not_echoed_whole() -> None:
    with pytest.raises(SettingError) as raised:
        parse_header("ghp_abcdefghijklmnopqrstuvwxyz0123456789", ("--header #2",))
    assert str(raised.value) == "--header #2: not a header: write 'Name: value'"


def test_secrets_never_show_when_the_config_is_printed_or_stored() -> None:
    config = replace(
        FAST,
        headers=(parse_header("X-Api-Key: literal-secret-1"),),
        hosts=HostRules((HostRule(pattern="a.example", headers=(make_header("Cookie", "s=${SESSION}"),)),)),
        proxy=proxy_setting("http://user:proxy-pass-2@proxy.example:3128"),
    )
    stored = json.dumps(dataclasses.asdict(config), default=str)  # as the run's config is stored
    for text in (repr(config), str(config), stored):
        assert "literal-secret-1" not in text and "proxy-pass-2" not in text
        assert "<redacted>" in text
    assert "${SESSION}" in stored  # the variable's name is no secret, and says where the value comes from
    assert str(config.proxy) == "http://<redacted>@proxy.example:3128"
    assert Redacted("a") == Redacted("a") and hash(Redacted("a")) == hash(Redacted("a"))


# -- proxy URLs -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["ftp://proxy.example", "socks5://proxy.example:1080", "proxy.example:3128", "http://", "http://p:x/"]
)
def test_a_proxy_must_be_an_http_url(url: str) -> None:
    with pytest.raises(SettingError, match="proxy URL"):
        proxy_setting(url, ("--proxy",))


def test_a_proxy_without_credentials_shows_as_it_is() -> None:
    assert str(proxy_setting("https://proxy.example:3128")) == "https://proxy.example:3128"


# -- host rules -----------------------------------------------------------------------
def test_exact_beats_wildcard_and_the_longer_wildcard_wins() -> None:
    rules = parse_hosts(
        {"*.example.com": {"rate": 1}, "*.api.example.com": {"rate": 2}, "api.example.com": {"rate": 3}}
    )

    def rate(host: str) -> float | None:
        rule = rules.rule_for(host)
        return rule.rate if rule else None

    assert rate("API.Example.com") == 3
    assert rate("v2.api.example.com") == 2
    assert rate("deep.down.v2.api.example.com") == 2
    assert rate("www.example.com") == 1
    assert rate("example.com") is None  # *.example.com is the subdomains only
    assert rate("notexample.com") is None


def test_host_patterns_are_normalised_like_urls() -> None:
    assert host_pattern("Bücher.Example.") == "xn--bcher-kva.example"
    assert host_pattern("*.BÜCHER.example") == "*.xn--bcher-kva.example"
    assert host_pattern("[::1]") == "::1"
    assert parse_hosts({"bücher.example": {"rate": 1}}).rule_for("xn--bcher-kva.example") is not None


@pytest.mark.parametrize("pattern", ["*", "*.", "a.*.example", "example.com:8080", "http://example.com", "ex ample"])
def test_a_bad_host_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(SettingError, match="is not a host name"):
        host_pattern(pattern, ("hosts", pattern))


def test_a_host_rule_reads_every_setting() -> None:
    rule = parse_hosts(
        {
            "*.cdn.example": {
                "concurrency": 2,
                "rate": 0.5,
                "timeout": 30,
                "headers": {"Authorization": "Bearer ${CDN_TOKEN}"},
                "accept": [403, "500-503"],
            }
        }
    ).rules[0]
    assert (rule.pattern, rule.concurrency, rule.rate, rule.timeout) == ("*.cdn.example", 2, 0.5, 30.0)
    assert [h.name for h in rule.headers] == ["Authorization"] and rule.headers[0].variables == ("CDN_TOKEN",)
    assert str(rule.accept) == "403,500-503"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hosts:\n  a.example:\n    rate: 1\n    burst: 3\n", ":4: hosts[a.example].burst: unknown setting"),
        ("hosts:\n  a.example:\n    concurrency: 0\n", ":3: hosts[a.example].concurrency: must be a whole number"),
        ("hosts:\n  a.example:\n    timeout: soon\n", ":3: hosts[a.example].timeout: must be a number"),
        ("hosts:\n  a.example:\n    accept: [403, '600']\n", ":3: hosts[a.example].accept[1]: '600' is not a status"),
        (
            "hosts:\n  a.example:\n    headers:\n      Host: b.example\n",
            ":4: hosts[a.example].headers.Host: 'Host' is set by auditor itself",
        ),
        ("hosts:\n  ok.example: {}\n  a.*.example:\n    rate: 1\n", ":3: hosts[a.*.example]: 'a.*.example' is not"),
        ("hosts:\n  A.example: {}\n  a.example: {}\n", ":3: hosts[a.example]: names the same hosts as 'a.example'"),
        ("hosts: [a.example]\n", ":1: hosts: must be a mapping"),
    ],
)
def test_a_bad_host_rule_names_the_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        _from_file(path)
    assert str(raised.value).startswith(f"{path}{expected}"), str(raised.value)


def _from_file(path: Path) -> CrawlConfig:
    return config_from_file(path).crawl


def test_hosts_in_the_config_file_reach_the_crawl_config(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("hosts:\n  '*.example.com':\n    accept: 403\n")
    hosts = _from_file(path).hosts
    config = replace(FAST, hosts=hosts)
    assert config.accepts("www.example.com", 403) and not config.accepts("example.org", 403)


# -- proxies, against a loopback proxy ---------------------------------------------------------
def test_http_proxy_from_the_environment_carries_the_request(
    loopback: Any, loopback_proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """site.example is reachable only through the proxy (it maps every name to 127.0.0.1); the
    guard still vets the target by name, here as a public address."""
    monkeypatch.setenv("HTTP_PROXY", loopback_proxy.url)
    url = f"http://site.example:{loopback.port}/ok/via-env-proxy"
    result = check(url, replace(FAST, allow_private=False), resolver=site_example_is_public)
    assert (result.ok, result.status) == (True, 200)
    assert [(r.method, r.target) for r in loopback_proxy.seen()] == [("GET", url)]
    assert loopback.hits("/ok/via-env-proxy") == 1


def test_the_guard_still_refuses_a_private_target_behind_a_proxy(
    loopback: Any, loopback_proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", loopback_proxy.url)
    result = check(
        f"http://inside.example:{loopback.port}/ok/behind-proxy",
        replace(FAST, allow_private=False),
        resolver=site_example_is_public,
    )
    assert (result.ok, result.reason) == (False, Reason.PRIVATE_ADDRESS)
    assert loopback_proxy.seen() == []


def test_the_proxy_option_wins_over_the_environment(
    loopback: Any, loopback_proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    config = replace(FAST, proxy=proxy_setting(loopback_proxy.url))
    assert check(loopback.url_for("/ok/via-option"), config).ok
    assert [r.target for r in loopback_proxy.seen()] == [loopback.url_for("/ok/via-option")]


def test_no_proxy_sends_a_host_direct(
    loopback: Any, loopback_proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", loopback_proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert check(loopback.url_for("/ok/no-proxy")).ok
    assert loopback_proxy.seen() == []


def test_https_through_a_connect_tunnel_with_a_ca_bundle(
    site_tls: LoopbackServer, loopback_proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", loopback_proxy.url)
    url = f"https://site.example:{site_tls.port}/ok/tunnel"
    untrusted = check(url, replace(FAST, allow_private=False), resolver=site_example_is_public)
    assert (untrusted.ok, untrusted.reason) == (False, Reason.TLS)
    config = replace(FAST, allow_private=False, ca_bundle=site_tls.ca_pem_path)
    trusted = check(url, config, resolver=site_example_is_public)
    assert (trusted.ok, trusted.status) == (True, 200)
    assert [(r.method, r.target) for r in loopback_proxy.seen()] == [("CONNECT", f"site.example:{site_tls.port}")] * 2


# -- CA bundles -------------------------------------------------------------------------
def test_a_ca_bundle_is_trusted_besides_ssl_cert_file(
    loopback_tls: LoopbackServer, site_tls: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers, two private CAs: SSL_CERT_FILE names one, --ca-bundle the other; both are trusted."""
    monkeypatch.setenv("SSL_CERT_FILE", str(loopback_tls.ca_pem_path))
    assert check(site_tls.url_for("/ok/other-ca")).reason == Reason.TLS
    config = replace(FAST, ca_bundle=site_tls.ca_pem_path)

    async def both() -> list[Check]:
        async with Crawler(config) as crawler:
            return [
                c
                async for c in crawler.crawl(
                    [(loopback_tls.url_for("/ok/env-ca"), "page"), (site_tls.url_for("/ok/bundle-ca"), "page")]
                )
            ]

    assert [c.ok for c in asyncio.run(both())] == [True, True]


def test_an_unusable_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=r"--ca-bundle: cannot use .*missing.pem: No such file"):
        check_settings(replace(FAST, ca_bundle=missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        check_settings(replace(FAST, ca_bundle=garbage))
