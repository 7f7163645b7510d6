"""The private-address guard: a target is resolved, and refused if any of its
addresses is not public, before anything connects to it (every redirect hop too).

Each host is resolved once per crawl (the answers are kept for its length),
and connect.py connects to exactly the addresses the guard judged: a DNS
answer that changes between the check and the connection (DNS rebinding)
cannot send a request to a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol
from urllib.parse import urlsplit

from auditor.crawl.errors import CrawlError, unresolvable
from auditor.model import Reason

DEFAULT_PORTS = {"http": 80, "https": 443}


class Resolver(Protocol):
    """Host and port to the addresses a connection would try; raises OSError when there are none."""

    async def __call__(self, host: str, port: int) -> list[str]: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public_address(address: str) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    multicast, reserved or unspecified (an IPv4-mapped IPv6 address is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class AddressGuard:
    def __init__(self, *, allow_private: bool, resolver: Resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self._resolved: dict[tuple[str, int], list[str]] = {}
        # One lookup in flight per name, however many workers meet it at once.
        self._lookups: dict[tuple[str, int], asyncio.Future[list[str]]] = {}
        # A name's first non-public address (None: all public), judged once: it is asked on every request.
        self._blocked: dict[tuple[str, int], str | None] = {}

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, resolved once per crawl; OSError when there are none (not kept: asked again)."""
        key = (host.lower(), port)
        if key in self._resolved:
            return self._resolved[key]
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self.resolver(host, port))
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        addresses = await asyncio.shield(lookup)  # one worker's timeout must not cancel the others' lookup
        if not addresses:
            raise OSError(f"{host} has no address")
        self._resolved[key] = addresses
        return addresses

    async def connectable(self, host: str, port: int) -> list[str]:
        """The addresses a connection to `host` may use: the ones the guard resolved and judged.

        Asked by connect.py at connection time; a private one here (a name spelt otherwise than
        in the URL the guard checked) is refused as in `check`.
        """
        addresses = await self.addresses(host, port)
        blocked = self._first_blocked(host, port, addresses)
        if blocked is not None and not self.allow_private:
            raise CrawlError(Reason.PRIVATE_ADDRESS, f"{host} resolves to non-public address {blocked}; not connected")
        return addresses

    def _first_blocked(self, host: str, port: int, addresses: list[str]) -> str | None:
        """The first of `addresses` (the name's, as `addresses` keeps them) that is not public, if any."""
        key = (host.lower(), port)
        if key not in self._blocked:
            self._blocked[key] = next((address for address in addresses if not is_public_address(address)), None)
        return self._blocked[key]

    async def check(self, url: str) -> str:
        """The URL's host, once it is known to be public (or private targets are allowed).

        Resolving is also where a name that does not exist shows: CrawlError(dns).
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self.allow_private:
            return host
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, DEFAULT_PORTS["http"])
        try:
            addresses = await self.addresses(host, port)
        except OSError as exc:
            raise unresolvable(host, exc) from exc
        blocked = self._first_blocked(host, port, addresses)
        if blocked is not None:
            raise CrawlError(
                Reason.PRIVATE_ADDRESS,
                f"{host} resolves to non-public address {blocked}; not fetched (use --allow-private to allow)",
            )
        return host
