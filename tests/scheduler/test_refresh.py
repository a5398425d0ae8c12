"""Token refreshes: a single-use refresh token is spent once, however many workers need it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.models import SocialAccount
from crier.runtime import Runtime
from crier.scheduler.service import Sender
from tests.conftest import FakeClock, Tenant
from tests.post.conftest import sandbox_account


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
