"""A Bluesky server for tests (the project's emulator, on loopback), and connecting an
account of it through Crier's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from crier.kit.time import Clock
from crier.platforms.bluesky.emulator import Server, create_emulator_app
from tests.conftest import Tenant
from tests.servers import serving


@dataclass
class Bluesky:
    url: str
    server: Server

    def account(self, handle: str = "alice.test") -> tuple[str, str]:
        """A new account with `handle`: its DID and an app password."""
        made = self.server.create_account(handle)
        return made.did, self.server.app_password(handle)


@asynccontextmanager
async def bluesky_server(clock: Clock) -> AsyncIterator[Bluesky]:
    server = Server(clock)
    async with serving(create_emulator_app(server)) as url:
        yield Bluesky(url, server)


async def sign_in(tenant: Tenant, url: str, handle: str, password: str) -> httpx.Response:
    return await tenant.post(
        "/v1/social-accounts",
        json={
            "platform": "bluesky",
            "handle": handle,
            "app_password": password,
            "service_url": url,
        },
    )


async def connect_bluesky(
    tenant: Tenant, bluesky: Bluesky, handle: str = "alice.test"
) -> dict[str, Any]:
    """Connect a new account of the server to the tenant with an app password."""
    _, password = bluesky.account(handle)
    connected = await sign_in(tenant, bluesky.url, handle, password)
    assert connected.status_code == 201, connected.text
    account: dict[str, Any] = connected.json()
    return account
