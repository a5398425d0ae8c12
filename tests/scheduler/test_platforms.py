"""Deliveries reach each platform through the adapter registered for it: a second network,
added by registering its adapter, with nothing changed in the scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.models import PostTarget, SocialAccount
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.platforms.sandbox.adapter import SandboxAdapter
from crier.runtime import Runtime
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.platforms.relay import PLATFORM, Relay, RelayAdapter
from tests.post.conftest import at, sandbox_account
from tests.scheduler.test_worker import deliveries, received_for, schedule
from tests.servers import serving


@dataclass
class TwoPlatforms:
    worker: Worker
    relay: Relay
    sandbox: httpx.AsyncClient


@pytest.fixture
async def two_platforms(
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    sandbox_url: str,
    http: httpx.AsyncClient,
) -> AsyncIterator[TwoPlatforms]:
    """A worker whose runtime has Relay registered beside the sandbox, and an API that
    schedules for it."""
    relay = Relay(clock)
    api: Platforms = http._transport.app.state.platforms  # type: ignore[attr-defined]
    async with serving(relay.app()) as relay_url, httpx.AsyncClient(base_url=sandbox_url) as sb:
        runtime.platforms.register(RelayAdapter(runtime.platforms.http, relay_url, clock))
        api.register(RelayAdapter(api.http, relay_url, clock))
        try:
            yield TwoPlatforms(runtime.worker(scheduler_db, worker_id="two-platforms"), relay, sb)
        finally:
            api.unregister(PLATFORM)


async def account_on(
    platform: str,
    db: Database,
    vault: Vault,
    tenant: Tenant,
    access: str,
    refresh: str | None = None,
    expires_in: timedelta = timedelta(days=1),
    now: Any = None,
) -> str:
    """An active account on `platform` with these tokens (connected outside the API, as a
    network with a consent screen would be)."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        account = SocialAccount(
            workspace_id=UUID(tenant.id),
            platform=platform,
            external_id=f"{platform}-account",
            handle=platform,
            display_name=platform,
            status="active",
            access_token=vault.seal(access),
            refresh_token=vault.seal(refresh) if refresh else None,
            token_expires_at=now + expires_in,
        )
        session.add(account)
        await session.flush()
        return str(account.id)


async def test_a_post_targeting_two_platforms_publishes_once_to_each(
    tenant: Tenant, two_platforms: TwoPlatforms, db: Database, vault: Vault, clock: FakeClock
) -> None:
    relay = two_platforms.relay
    relay.tokens.add("first-token")
    relay.refresh_tokens.add("first-refresh")
    # The token expires minutes after the post's time: refreshed through Relay's adapter
    # when the post is prepared.
    relay_account = await account_on(
        PLATFORM,
        db,
        vault,
        tenant,
        "first-token",
        "first-refresh",
        timedelta(minutes=12),
        clock.now(),
    )
    post = await schedule(
        tenant, [await sandbox_account(tenant), relay_account], at(clock, minutes=10)
    )
    clock.advance(timedelta(minutes=10, seconds=1))
    await two_platforms.worker.tick()
    await two_platforms.worker.tick()  # nothing is sent twice

    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "published"
    by_platform = {d["platform"]: d for d in await deliveries(tenant, post["id"])}
    assert set(by_platform) == {"sandbox", PLATFORM}
    assert {d["status"] for d in by_platform.values()} == {"published"}

    [received] = relay.received
    assert received.key == by_platform[PLATFORM]["id"]
    assert received.text == "Hello"
    assert received.token.startswith("access-")  # the refreshed token, not the first one
    assert by_platform[PLATFORM]["platform_post_id"] == received.id
    assert by_platform[PLATFORM]["permalink"] == f"https://relay.test/p/{received.id}"

    sandbox_key = by_platform["sandbox"]["id"]
    [on_sandbox] = await received_for(two_platforms.sandbox, {sandbox_key})
    assert on_sandbox["text"] == "Hello"
    assert by_platform["sandbox"]["platform_post_id"] == on_sandbox["id"]


async def test_a_send_that_may_have_reached_its_platform_is_looked_up_there_first(
    tenant: Tenant, two_platforms: TwoPlatforms, db: Database, vault: Vault, clock: FakeClock
) -> None:
    """Relay keeps the post but answers 503: the retry finds it on Relay by its key and
    sends nothing again."""
    relay = two_platforms.relay
    relay.tokens.add("token")
    relay.store_then_fail = 1
    account = await account_on(PLATFORM, db, vault, tenant, "token", now=clock.now())
    post = await schedule(tenant, [account], at(clock, minutes=10))
    clock.advance(timedelta(minutes=10, seconds=1))
    await two_platforms.worker.tick()
    [first] = await deliveries(tenant, post["id"])
    assert (first["status"], first["error_code"]) == ("pending", "platform_unavailable")

    clock.advance(timedelta(seconds=10))  # past the backoff
    await two_platforms.worker.tick()
    [settled] = await deliveries(tenant, post["id"])
    assert settled["status"] == "published"
    assert relay.lookups == 1
    [received] = relay.received
    assert settled["platform_post_id"] == received.id
    assert [a["outcome"] for a in settled["attempts"]] == ["published"]


async def test_a_send_refused_before_it_was_taken_is_sent_again_without_a_look_up(
    tenant: Tenant, two_platforms: TwoPlatforms, db: Database, vault: Vault, clock: FakeClock
) -> None:
    """A 429 says the post was not taken: the retry sends it again at once, honouring
    Retry-After, with no look-up."""
    relay = two_platforms.relay
    relay.tokens.add("token")
    relay.throttle = 1
    account = await account_on(PLATFORM, db, vault, tenant, "token", now=clock.now())
    post = await schedule(tenant, [account], at(clock, minutes=10))
    clock.advance(timedelta(minutes=10, seconds=1))
    await two_platforms.worker.tick()
    clock.advance(timedelta(seconds=10))
    await two_platforms.worker.tick()

    [settled] = await deliveries(tenant, post["id"])
    assert settled["status"] == "published"
    assert relay.lookups == 0
    assert len(relay.received) == 1
    assert [(a["outcome"], a["error_code"]) for a in settled["attempts"]] == [
        ("retrying", "rate_limited"),
        ("published", None),
    ]


async def test_a_platform_without_an_adapter_fails_its_delivery_and_sends_nothing(
    tenant: Tenant, worker: Worker, db: Database, vault: Vault, clock: FakeClock, sandbox_url: str
) -> None:
    """The default runtime has no adapter for `facebook`: scheduling for it is refused, and a
    target scheduled while the server had one (its configuration changed since) fails at
    once, never retried and never sent anywhere, while the post's sandbox target publishes."""
    facebook_account = await account_on("facebook", db, vault, tenant, "fb-token", now=clock.now())
    sandbox_id = await sandbox_account(tenant)
    refused = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "Hello"},
            "targets": [{"social_account_id": sandbox_id}, {"social_account_id": facebook_account}],
            "status": "scheduled",
            "publish_at": at(clock, minutes=10),
        },
    )
    body = assert_problem(refused, 422, "target-validation-failed")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert [e["type"] for e in errors] == ["platform_not_configured"]
    post = await schedule(tenant, [sandbox_id], at(clock, minutes=10))
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        session.add(
            PostTarget(
                workspace_id=UUID(tenant.id),
                post_id=UUID(post["id"]),
                social_account_id=UUID(facebook_account),
            )
        )
    clock.advance(timedelta(minutes=10, seconds=1))
    await worker.tick()

    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "failed"
    by_platform = {d["platform"]: d for d in await deliveries(tenant, post["id"])}
    assert by_platform["facebook"]["status"] == "failed"
    assert by_platform["facebook"]["error_code"] == ErrorCode.PLATFORM_NOT_CONFIGURED
    assert by_platform["facebook"]["attempts"] == []
    assert by_platform["sandbox"]["status"] == "published"
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        keys = {by_platform["facebook"]["id"], by_platform["sandbox"]["id"]}
        assert [p["idempotency_key"] for p in await received_for(sandbox, keys)] == [
            by_platform["sandbox"]["id"]
        ]


async def test_the_registry_holds_one_adapter_per_platform(clock: FakeClock) -> None:
    platforms = Platforms()
    sandbox = SandboxAdapter(platforms.http, "http://127.0.0.1:9", clock)
    platforms.register(sandbox)
    assert platforms.adapter("sandbox") is sandbox
    assert "sandbox" in platforms
    assert "x" not in platforms
    assert platforms.names == ["sandbox"]
    with pytest.raises(ValueError, match="already registered"):
        platforms.register(SandboxAdapter(platforms.http, "http://127.0.0.1:9", clock))
    with pytest.raises(PlatformError) as refused:
        platforms.adapter("x")
    assert refused.value.code == ErrorCode.PLATFORM_NOT_CONFIGURED
    assert not refused.value.retryable
    platforms.unregister("sandbox")
    assert "sandbox" not in platforms
    assert platforms.names == []
    await platforms.close()
