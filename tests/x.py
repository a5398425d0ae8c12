"""X for tests (the project's emulator, on loopback, with an app registered for this
server's callback), and a browser's walk through its consent page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from crier.kit.time import Clock
from crier.platforms.x.emulator import Client, Faults, Network, Tweet, create_emulator_app
from crier.social_account.connections import redirect_uri
from tests.conftest import Tenant
from tests.servers import answer_consent, serving


@dataclass
class X:
    url: str
    network: Network
    client: Client
    browser: httpx.AsyncClient

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/i/oauth2/authorize"

    async def consent(self, authorize_url: str, decision: str = "approve", **form: str) -> str:
        """Open the consent page as a browser would, answer it, and return where X sends
        the browser next (the callback, with its query)."""
        return await answer_consent(
            self.browser, authorize_url, "/i/oauth2/authorize", {**form, "decision": decision}
        )

    def tweets_of(self, username: str) -> list[Tweet]:
        return self.network.tweets_of(self.network.user_named(username).id)

    def reset(self) -> None:
        self.network.faults = Faults()


@asynccontextmanager
async def x_network(clock: Clock, base_url: str) -> AsyncIterator[X]:
    """An X emulator with a confidential app whose redirect URI is `base_url`'s callback."""
    network = Network(clock)
    client = network.register_client([redirect_uri(base_url, "x")])
    async with (
        serving(create_emulator_app(network)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=False) as browser,
    ):
        yield X(url, network, client, browser)


def new_username() -> str:
    return f"alice{secrets.token_hex(3)}"


async def connect_x(tenant: Tenant, x: X, username: str | None = None) -> dict[str, Any]:
    """Connect an X user to the tenant, as a person would: start, consent, come back. The
    connected account."""
    from tests.mastodon import callback_path

    username = username or new_username()
    started = await tenant.post("/v1/social-accounts/connect", json={"platform": "x"})
    assert started.status_code == 200, started.text
    location = await x.consent(started.json()["authorize_url"], username=username)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    accounts = (await tenant.get("/v1/social-accounts", params={"platform": "x"})).json()
    [account] = [a for a in accounts["data"] if a["handle"] == username]
    return dict(account)
