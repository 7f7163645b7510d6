"""The private-address guard: a target is resolved, and refused if any of its
addresses is not public, before anything connects to it (every redirect hop too).

The guard resolves the name, then httpx connects; a DNS answer that changes
between the two is not caught.
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
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise unresolvable(host, exc) from exc
        blocked = [address for address in addresses if not is_public_address(address)]
        if blocked:
            raise CrawlError(
                Reason.PRIVATE_ADDRESS,
                f"{host} resolves to non-public address {blocked[0]}; not fetched (use --allow-private to allow)",
            )
        return host
