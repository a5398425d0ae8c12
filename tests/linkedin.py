"""LinkedIn for tests (the project's emulator, on loopback, with an app registered for this
server's callback), and a browser's walk through its consent page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from crier.kit.time import Clock
from crier.platforms.linkedin.emulator import (
    Client,
    Faults,
    Network,
    StoredPost,
    create_emulator_app,
)
from crier.social_account.connections import redirect_uri
from tests.conftest import Tenant
from tests.servers import answer_consent, serving


@dataclass
class LinkedIn:
    url: str
    network: Network
    client: Client
    browser: httpx.AsyncClient

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/oauth/v2"

    async def consent(self, authorize_url: str, decision: str = "allow", **form: str) -> str:
        return await answer_consent(
            self.browser, authorize_url, "/oauth/v2/authorization", {**form, "decision": decision}
        )

    def posts_of(self, name: str) -> list[StoredPost]:
        return self.network.posts_of(self.network.member_named(name).id)

    def reset(self) -> None:
        self.network.faults = Faults()


@asynccontextmanager
async def linkedin_network(clock: Clock, base_url: str) -> AsyncIterator[LinkedIn]:
    """A LinkedIn emulator with an app (enabled for refresh tokens) whose redirect URI is
    `base_url`'s callback."""
    network = Network(clock)
    client = network.register_client([redirect_uri(base_url, "linkedin")])
    async with (
        serving(create_emulator_app(network)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=False) as browser,
    ):
        yield LinkedIn(url, network, client, browser)


def new_name() -> str:
    return f"Ada {secrets.token_hex(3)}"


async def connect_linkedin(
    tenant: Tenant, linkedin: LinkedIn, name: str | None = None
) -> dict[str, Any]:
    """Connect a LinkedIn member to the tenant, as a person would. The connected account."""
    from tests.mastodon import callback_path

    name = name or new_name()
    started = await tenant.post("/v1/social-accounts/connect", json={"platform": "linkedin"})
    assert started.status_code == 200, started.text
    location = await linkedin.consent(started.json()["authorize_url"], member=name)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    accounts = (await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})).json()
    [account] = [a for a in accounts["data"] if a["handle"] == name]
    return dict(account)
