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
    COMMUNITY_MANAGEMENT,
    SIGN_IN_AND_SHARE,
    Client,
    Faults,
    Network,
    Organization,
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
    """This server's app for members (Sign In with LinkedIn and Share on LinkedIn)."""
    pages_client: Client
    """Its app for company pages (the Community Management API alone)."""
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
    """A LinkedIn emulator with this server's two apps (enabled for refresh tokens), for
    members and for pages, whose redirect URI is `base_url`'s callback."""
    network = Network(clock)
    callback = [redirect_uri(base_url, "linkedin")]
    client = network.register_client(callback, scopes=SIGN_IN_AND_SHARE)
    pages = network.register_client(callback, scopes=COMMUNITY_MANAGEMENT)
    async with (
        serving(create_emulator_app(network)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=False) as browser,
    ):
        yield LinkedIn(url, network, client, pages, browser)


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


def new_page(linkedin: LinkedIn, admin: str, role: str = "ADMINISTRATOR") -> Organization:
    """A company page on which the member named `admin` holds `role`."""
    suffix = secrets.token_hex(3)
    member = linkedin.network.member_named(admin)
    return linkedin.network.add_organization(f"Acme {suffix}", f"acme-{suffix}", {member.id: role})


async def connect_linkedin_page(
    tenant: Tenant, linkedin: LinkedIn, page: Organization, admin: str, *, by: str | None = None
) -> dict[str, Any]:
    """Connect a company page to the tenant through the consent of `admin` (named by its
    vanity name unless `by` is given). The connected account."""
    from tests.mastodon import callback_path

    started = await tenant.post(
        "/v1/social-accounts/connect",
        json={"platform": "linkedin", "organization": by or page.vanity_name},
    )
    assert started.status_code == 200, started.text
    location = await linkedin.consent(started.json()["authorize_url"], member=admin)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    account = await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})
    [found] = [a for a in account.json()["data"] if a["external_id"] == page.urn]
    return dict(found)
