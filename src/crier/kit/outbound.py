"""Where calls to addresses users give (webhook endpoints, Mastodon instances) may go:
never to loopback, private, link-local (cloud metadata), shared or reserved addresses,
unless the server is configured to allow loopback.

Every address a host resolves to is checked, and the call connects to those very addresses
(`GuardedResolver` is the HTTP client's only resolver), so a name cannot resolve one way
for the check and another for the connection (DNS rebinding). Redirects are never followed,
so a receiver cannot bounce a call into the server's own network either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class DestinationRefused(OSError):
    """The URL leads somewhere Crier may not call. (An `OSError`, as resolution failures
    are, so that the HTTP client reports it as one.)"""


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

    async def vetted(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of `host`, if every one of them may be called."""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
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
        return addresses


class GuardedResolver(AbstractResolver):
    """A guarded client's resolver: names resolve only to addresses the guard allows."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in await self.guard.vetted(host, port)
        ]

    async def close(self) -> None:
        return None
