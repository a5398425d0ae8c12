"""Where webhooks may be sent: never to loopback, private, link-local (cloud metadata),
shared or reserved addresses, unless the server is configured to allow loopback.

Every address a host resolves to is checked before the call, and redirects are never
followed, so a receiver cannot bounce a call into the server's own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class DestinationRefused(Exception):
    """The URL leads somewhere webhooks may not go."""


def _kind(address: IPAddress) -> str | None:
    """Why `address` is not a public destination, or None if it is one."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives here)"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved or shared"
    return None


@dataclass(frozen=True)
class Guard:
    resolver: Resolver = system_resolver
    allow_loopback: bool = False

    def refusal(self, address: IPAddress) -> str | None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        kind = _kind(address)
        if kind == "loopback" and self.allow_loopback:
            return None
        return kind

    def check_literal(self, url: str) -> None:
        """Refuse a URL whose host is an IP address that may not be called (no lookup)."""
        host = httpx.URL(url).host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        kind = self.refusal(address)
        if kind is not None:
            raise DestinationRefused(f"{host} is a {kind} address")

    async def check(self, url: str) -> None:
        """Refuse `url` if its host is, or resolves to, an address that may not be called."""
        parsed = httpx.URL(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                found = await self.resolver(host, port)
            except OSError as error:
                raise DestinationRefused(f"{host} could not be resolved: {error}") from None
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        if not addresses:
            raise DestinationRefused(f"{host} resolves to no address")
        for address in addresses:
            kind = self.refusal(address)
            if kind is not None:
                raise DestinationRefused(f"{host} resolves to {address}, a {kind} address")
