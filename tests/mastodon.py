"""A Mastodon instance for tests (the project's emulator, on loopback), and a browser's
walk through its consent screen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from crier.kit.time import Clock
from crier.platforms.mastodon.emulator import Instance, create_emulator_app
from tests.conftest import Tenant
from tests.servers import answer_consent, serving


@dataclass
class Mastodon:
    url: str
    instance: Instance
    browser: httpx.AsyncClient

    async def consent(self, authorize_url: str, decision: str = "approve", **form: str) -> str:
        """Open the consent screen as a browser would, answer it, and return where the
        instance sends the browser next (the callback, with its query)."""
        return await answer_consent(
            self.browser,
            authorize_url,
            "/oauth/authorize",
            {"username": "alice", **form, "decision": decision},
        )


@asynccontextmanager
async def mastodon_instance(clock: Clock) -> AsyncIterator[Mastodon]:
    instance = Instance(clock)
    async with (
        serving(create_emulator_app(instance)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=False) as browser,
    ):
        yield Mastodon(url, instance, browser)


def callback_path(location: str) -> str:
    """The path and query of a callback URL, to call Crier's API with."""
    parts = urlsplit(location)
    assert parts.path.startswith("/v1/oauth/callback/"), location
    return f"{parts.path}?{parts.query}"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def start_connect(tenant: Tenant, mastodon: Mastodon, **extra: Any) -> httpx.Response:
    return await tenant.post(
        "/v1/social-accounts/connect",
        json={"platform": "mastodon", "instance_url": mastodon.url, **extra},
    )


async def connect_mastodon(
    tenant: Tenant, mastodon: Mastodon, username: str = "alice"
) -> dict[str, Any]:
    """Connect the instance's `username` to the tenant, as a person would: start, consent,
    come back. The connected account."""
    started = await start_connect(tenant, mastodon)
    assert started.status_code == 200, started.text
    location = await mastodon.consent(started.json()["authorize_url"], username=username)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    accounts = (await tenant.get("/v1/social-accounts", params={"platform": "mastodon"})).json()
    [account] = [a for a in accounts["data"] if a["handle"].startswith(f"{username}@")]
    return dict(account)
