"""Google Business Profile for tests (the project's emulator, on loopback, with an app
registered for this server's callback), a browser's walk through its consent page, and
a user's business locations."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from crier.kit.time import Clock
from crier.platforms.google_business.emulator import (
    Client,
    Faults,
    Location,
    Network,
    create_emulator_app,
)
from crier.social_account.connections import redirect_uri
from tests.conftest import Tenant
from tests.servers import answer_consent, serving


@dataclass
class Google:
    url: str
    network: Network
    client: Client
    """This server's OAuth client."""
    browser: httpx.AsyncClient

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/o/oauth2/v2/auth"

    async def consent(self, authorize_url: str, decision: str = "allow", **form: str) -> str:
        return await answer_consent(
            self.browser, authorize_url, "/o/oauth2/v2/auth", {**form, "decision": decision}
        )

    def reset(self) -> None:
        self.network.faults = Faults()
        self.client.testing = False


@asynccontextmanager
async def google_network(clock: Clock, base_url: str) -> AsyncIterator[Google]:
    """A Google emulator with this server's OAuth client, whose redirect URI is
    `base_url`'s callback."""
    network = Network(clock)
    client = network.register_client([redirect_uri(base_url, "google_business")])
    async with (
        serving(create_emulator_app(network)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=False) as browser,
    ):
        yield Google(url, network, client, browser)


@dataclass
class Business:
    """A Google user and the locations they manage."""

    email: str
    locations: list[Location] = field(default_factory=list)


def new_business(google: Google, *titles: str, accounts: int = 1) -> Business:
    """A user managing `accounts` business accounts, the locations titled `titles` spread
    over them in turn."""
    email = f"owner-{secrets.token_hex(4)}@example.com"
    made = [google.network.add_account(email, f"Group {n} of {email}") for n in range(accounts)]
    business = Business(email)
    for i, title in enumerate(titles or ("Corner Cafe",)):
        business.locations.append(google.network.add_location(made[i % accounts], title))
    return business


async def consent_google(
    tenant: Tenant, google: Google, business: Business, **start: Any
) -> httpx.Response:
    """Start a Google connection as the tenant, consent as the business's user: Crier's
    answer to the callback."""
    from tests.mastodon import callback_path

    started = await tenant.post(
        "/v1/social-accounts/connect", json={"platform": "google_business", **start}
    )
    assert started.status_code == 200, started.text
    location = await google.consent(started.json()["authorize_url"], email=business.email)
    return await tenant.http.get(callback_path(location))


async def connect_google(
    tenant: Tenant, google: Google, business: Business, *locations: Location
) -> list[dict[str, Any]]:
    """Connect these locations of the business (all of them by default) as a person
    would: consent, then choose them. The accounts connected."""
    done = await consent_google(
        tenant, google, business, redirect_to="http://127.0.0.1:8000/connected"
    )
    assert done.status_code == 303, done.text
    grant_id = httpx.URL(done.headers["location"]).params["grant_id"]
    chosen = [loc.name for loc in (locations or business.locations)]
    connected = await tenant.post(
        f"/v1/social-accounts/grants/{grant_id}/connect", json={"external_ids": chosen}
    )
    assert connected.status_code == 200, connected.text
    accounts: list[dict[str, Any]] = connected.json()["data"]
    return accounts
