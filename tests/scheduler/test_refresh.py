"""Token refreshes: a single-use refresh token is spent once, however many workers need it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.models import SocialAccount, WebhookEvent
from crier.runtime import Runtime
from crier.scheduler.service import Sender
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.post.conftest import at, sandbox_account
from tests.scheduler.test_worker import deliveries, received_for, schedule


async def test_two_workers_refreshing_one_account_spend_its_refresh_token_once(
    tenant: Tenant, runtime: Runtime, db: Database, vault: Vault, clock: FakeClock
) -> None:
    """The sandbox's refresh tokens are single-use, like X's and Bluesky's: had both workers
    sent the one they read, the second would be refused and the account wrongly expired."""
    account_id = UUID(await sandbox_account(tenant))
    workspace = UUID(tenant.id)
    clock.advance(timedelta(hours=1, minutes=55))  # the 2-hour token expires in 5 minutes
    senders = [Sender(db, runtime.platforms, vault, clock, f"worker-{n}") for n in range(4)]
    await asyncio.gather(*(s.refresh_account(workspace, account_id) for s in senders))

    account = (await tenant.get(f"/v1/social-accounts/{account_id}")).json()
    assert account["status"] == "active"
    assert account["token_expires_at"] > clock.now().isoformat()
    async with db.workspace_transaction(workspace) as session:
        row = await session.get(SocialAccount, (workspace, account_id))
        assert row is not None
        assert row.refresh_token is not None
        refresh_token = vault.open(row.refresh_token)
    # The stored refresh token is the live one (the sandbox refuses a spent one).
    tokens = await runtime.platforms.adapter("sandbox").refresh(refresh_token, None)
    assert tokens.access_token


async def test_a_refresh_no_longer_due_is_not_made(
    tenant: Tenant, runtime: Runtime, db: Database, vault: Vault, clock: FakeClock
) -> None:
    """A worker that comes to an account another has just refreshed leaves it alone."""
    account_id = UUID(await sandbox_account(tenant))
    workspace = UUID(tenant.id)
    clock.advance(timedelta(hours=1, minutes=55))
    sender = Sender(db, runtime.platforms, vault, clock, "worker")
    await sender.refresh_account(workspace, account_id)
    async with db.workspace_transaction(workspace) as session:
        row = await session.get(SocialAccount, (workspace, account_id))
        assert row is not None
        first = (row.access_token, row.token_expires_at, row.refreshing_until)
    await sender.refresh_account(workspace, account_id)  # the new token lasts 2 hours
    async with db.workspace_transaction(workspace) as session:
        row = await session.get(SocialAccount, (workspace, account_id))
        assert row is not None
        assert (row.access_token, row.token_expires_at, row.refreshing_until) == first
    assert first[2] is None  # the lease was given back


async def test_a_refresh_held_by_a_worker_that_died_passes_to_another_when_its_lease_lapses(
    tenant: Tenant, runtime: Runtime, db: Database, vault: Vault, clock: FakeClock
) -> None:
    account_id = UUID(await sandbox_account(tenant))
    workspace = UUID(tenant.id)
    clock.advance(timedelta(hours=1, minutes=55))
    async with db.workspace_transaction(workspace) as session:
        row = await session.get(SocialAccount, (workspace, account_id))
        assert row is not None
        row.refreshing_until = clock.now() + timedelta(seconds=30)  # taken, then the worker died
        stale_token = row.access_token
    sender = Sender(db, runtime.platforms, vault, clock, "worker")
    await sender.refresh_account(workspace, account_id)
    async with db.workspace_transaction(workspace) as session:
        row = await session.get(SocialAccount, (workspace, account_id))
        assert row is not None
        assert row.access_token == stale_token  # left alone while the lease holds
    clock.advance(timedelta(seconds=31))
    await sender.refresh_account(workspace, account_id)
    account = (await tenant.get(f"/v1/social-accounts/{account_id}")).json()
    assert account["status"] == "active"
    assert account["token_expires_at"] > (clock.now() + timedelta(hours=1)).isoformat()


async def believe_longer(db: Database, tenant: Tenant, account_id: str, until: datetime) -> None:
    """Make Crier believe the token lasts longer than the platform will honour it (a token
    the network ended early, or a clock that drifted)."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        row = await session.get(SocialAccount, (UUID(tenant.id), UUID(account_id)))
        assert row is not None
        row.token_expires_at = until


async def test_a_token_the_platform_calls_expired_is_refreshed_and_the_post_sent_once(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    await believe_longer(db, tenant, account, clock.now() + timedelta(days=30))
    post = await schedule(tenant, [account], at(clock, hours=3))
    clock.advance(timedelta(hours=3, seconds=1))  # the sandbox's 2-hour token has expired
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["next_attempt_at"] == delivery["attempts"][0]["finished_at"]  # at once
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert [a["error_code"] for a in delivery["attempts"]] == ["auth_expired", None]
    assert delivery["status"] == "published"
    assert len(await received_for(control, {delivery["id"]})) == 1
    refreshed = (await tenant.get(f"/v1/social-accounts/{account}")).json()
    assert refreshed["status"] == "active"
    assert datetime.fromisoformat(refreshed["last_refreshed_at"]) == clock.now()
    assert datetime.fromisoformat(refreshed["token_expires_at"]) > clock.now()


async def test_a_refused_token_that_cannot_be_refreshed_fails_at_once_with_auth_expired(
    tenant: Tenant,
    worker: Worker,
    runtime: Runtime,
    clock: FakeClock,
    db: Database,
    vault: Vault,
    control: httpx.AsyncClient,
) -> None:
    account = await sandbox_account(tenant)
    await believe_longer(db, tenant, account, clock.now() + timedelta(days=30))
    await spend_refresh_token(db, vault, runtime, tenant, account)
    first = await schedule(tenant, [account], at(clock, hours=3))
    later = await schedule(tenant, [account], at(clock, days=2))
    clock.advance(timedelta(hours=3, seconds=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, first["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_expired")
    assert len(delivery["attempts"]) == 1, "refreshed once, not retried"
    assert (await tenant.get(f"/v1/social-accounts/{account}")).json()["status"] == "expired"
    expired = await events_of(db, tenant, "social_account.expired")
    assert [e["scheduled_posts"] for e in expired] == [[first["id"], later["id"]]]


async def test_a_token_the_platform_calls_revoked_makes_the_account_revoked_once(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    external = (await tenant.get(f"/v1/social-accounts/{account}")).json()["external_id"]
    one = await schedule(tenant, [account], at(clock, minutes=1))
    two = await schedule(tenant, [account], at(clock, minutes=1))
    await control.post(f"/control/accounts/{external}/revoke")
    clock.advance(timedelta(minutes=1, seconds=1))
    await worker.tick()
    outcomes = [(await deliveries(tenant, p["id"]))[0] for p in (one, two)]
    assert {(d["status"], d["error_code"]) for d in outcomes} == {("failed", "auth_revoked")}
    assert (await tenant.get(f"/v1/social-accounts/{account}")).json()["status"] == "revoked"
    expired = await events_of(db, tenant, "social_account.expired")
    assert [e["status"] for e in expired] == ["revoked"]
    refused = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "again"},
            "targets": [{"social_account_id": account}],
            "status": "scheduled",
            "publish_at": at(clock, hours=1),
        },
    )
    assert refused.status_code == 422


async def events_of(db: Database, tenant: Tenant, type_: str) -> list[dict[str, Any]]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        found = await session.execute(
            select(WebhookEvent).where(WebhookEvent.type == type_).order_by(WebhookEvent.id)
        )
        return [e.payload["data"] for e in found.scalars()]


async def test_a_token_that_ran_out_with_no_refresh_token_expires_the_account_once(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    """A network that gives no refresh token (LinkedIn, to most apps): once the token has
    run out, its posts fail `auth_expired` unsent, and the account becomes expired,
    announced once with the posts still scheduled for it."""
    account = await sandbox_account(tenant)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        row = await session.get(SocialAccount, (UUID(tenant.id), UUID(account)))
        assert row is not None
        row.refresh_token = None
    first = await schedule(tenant, [account], at(clock, hours=3))  # after the 2-hour token
    later = await schedule(tenant, [account], at(clock, days=2))
    clock.advance(timedelta(hours=3, seconds=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, first["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_expired")
    assert delivery["attempts"] == []
    assert (await tenant.get(f"/v1/social-accounts/{account}")).json()["status"] == "expired"
    [expired] = await events_of(db, tenant, "social_account.expired")
    assert later["id"] in expired["scheduled_posts"]
    clock.advance(timedelta(days=2))
    await worker.tick()
    [delivery] = await deliveries(tenant, later["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_expired")
    assert len(await events_of(db, tenant, "social_account.expired")) == 1


async def test_an_idle_accounts_token_is_refreshed_ahead_of_expiry(
    tenant: Tenant, runtime: Runtime, scheduler_db: Database, clock: FakeClock
) -> None:
    """No post is due for the account, yet its token is refreshed before it expires, so its
    refresh token stays alive."""
    account = await sandbox_account(tenant)
    before = (await tenant.get(f"/v1/social-accounts/{account}")).json()
    worker = runtime.worker(scheduler_db, worker_id="sweeper", refresh_every=SWEEP_EVERY)
    await worker.tick()  # an hour and more to go: left alone
    assert (await tenant.get(f"/v1/social-accounts/{account}")).json() == before
    clock.advance(timedelta(hours=1, minutes=55))  # the 2-hour token expires in 5 minutes

    async def refreshed() -> bool:
        shown = (await tenant.get(f"/v1/social-accounts/{account}")).json()
        return bool(shown["last_refreshed_at"] != before["last_refreshed_at"])

    await sweep_until(worker, clock, refreshed)
    after = (await tenant.get(f"/v1/social-accounts/{account}")).json()
    assert after["status"] == "active"
    assert after["last_refreshed_at"] > before["last_refreshed_at"]
    assert after["token_expires_at"] > clock.now().isoformat()


async def test_an_idle_account_whose_refresh_is_refused_is_announced_before_its_posts_are_due(
    tenant: Tenant,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    db: Database,
    vault: Vault,
) -> None:
    account = await sandbox_account(tenant)
    await spend_refresh_token(db, vault, runtime, tenant, account)
    soon = await schedule(tenant, [account], at(clock, days=3))
    worker = runtime.worker(scheduler_db, worker_id="sweeper", refresh_every=SWEEP_EVERY)
    clock.advance(timedelta(hours=1, minutes=55))

    async def announced_expired() -> bool:
        shown = (await tenant.get(f"/v1/social-accounts/{account}")).json()
        return bool(shown["status"] == "expired")

    await sweep_until(worker, clock, announced_expired)
    [expired] = await events_of(db, tenant, "social_account.expired")
    assert expired["scheduled_posts"] == [soon["id"]]  # days before it is due
    assert (await tenant.get(f"/v1/posts/{soon['id']}")).json()["status"] == "scheduled"


SWEEP_EVERY = timedelta(seconds=1)


async def sweep_until(
    worker: Worker, clock: FakeClock, done: Callable[[], Awaitable[bool]]
) -> None:
    """Tick the worker, a second apart, until `done`. Each sweep refreshes the batch of
    accounts that expire soonest in the whole database, and other tests' accounts expire
    at the same time as this test's: the sweeps work through them, as they would through a
    busy installation's, within a few ticks (and far less than the 5 minutes left)."""
    for _ in range(120):
        await worker.tick()
        if await done():
            return
        clock.advance(SWEEP_EVERY)
    raise AssertionError("two minutes of sweeps did not get to the account")


async def spend_refresh_token(
    db: Database, vault: Vault, runtime: Runtime, tenant: Tenant, account: str
) -> None:
    """Spend the account's single-use refresh token elsewhere (as another app of the
    user's would): the one Crier holds is then refused."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        row = await session.get(SocialAccount, (UUID(tenant.id), UUID(account)))
        assert row is not None
        assert row.refresh_token is not None
        stored = vault.open(row.refresh_token)
    await runtime.platforms.adapter("sandbox").refresh(stored, None)
