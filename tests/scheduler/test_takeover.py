"""Workers' heartbeats: the posts a silent worker held pass to another within seconds,
long before their leases end; a post being sent keeps its lease; a worker that beats keeps
its posts; a worker that stops hands its posts over at once."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from crier.config import Settings
from crier.kit.db import Database
from crier.models import Post, SchedulerWorker
from crier.runtime import Runtime
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.post.conftest import at, sandbox_account
from tests.scheduler.test_worker import deliveries, received_for, schedule

LEASE = timedelta(minutes=10)
"""Far longer than the test runs: a post that changes hands did so by the heartbeats."""


@pytest.fixture
def pair(runtime: Runtime, scheduler_db: Database) -> tuple[Worker, Worker]:
    tag = secrets.token_hex(3)
    return (
        runtime.worker(scheduler_db, worker_id=f"first-{tag}", lease=LEASE),
        runtime.worker(scheduler_db, worker_id=f"second-{tag}", lease=LEASE),
    )


async def holder(db: Database, tenant: Tenant, post_id: str) -> tuple[str, str | None]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        post = await session.get(Post, (UUID(tenant.id), UUID(post_id)))
        assert post is not None
        return post.status, post.lease_owner


async def heartbeats(scheduler_db: Database, *workers: Worker) -> set[str]:
    async with scheduler_db.transaction() as session:
        rows = await session.scalars(
            select(SchedulerWorker.id).where(SchedulerWorker.id.in_([w.id for w in workers]))
        )
        return set(rows)


async def test_a_silent_workers_posts_pass_to_another_long_before_their_leases_end(
    tenant: Tenant,
    pair: tuple[Worker, Worker],
    clock: FakeClock,
    db: Database,
    scheduler_db: Database,
    control: httpx.AsyncClient,
) -> None:
    first, second = pair
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=2))
    await first.tick()
    assert await holder(db, tenant, post["id"]) == ("queued", first.id)

    clock.advance(timedelta(seconds=2))  # silent, but not for long enough
    await second.tick()
    assert await holder(db, tenant, post["id"]) == ("queued", first.id)
    clock.advance(timedelta(seconds=1))
    await second.tick()
    assert await holder(db, tenant, post["id"]) == ("queued", second.id)
    assert await heartbeats(scheduler_db, first, second) == {second.id}

    clock.advance(timedelta(minutes=2))
    await second.tick()
    await first.tick()  # back from its silence: the post is no longer its own
    assert (await holder(db, tenant, post["id"]))[0] == "published"
    [delivery] = await deliveries(tenant, post["id"])
    assert len(delivery["attempts"]) == 1
    assert len(await received_for(control, {delivery["id"]})) == 1
    assert await heartbeats(scheduler_db, first, second) == {first.id, second.id}


async def test_a_worker_that_beats_keeps_its_posts(
    tenant: Tenant, pair: tuple[Worker, Worker], clock: FakeClock, db: Database
) -> None:
    first, second = pair
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=2))
    for _ in range(5):
        await first.tick()
        clock.advance(timedelta(seconds=2))
        await second.tick()
    assert await holder(db, tenant, post["id"]) == ("queued", first.id)


async def test_a_post_being_sent_by_a_silent_worker_keeps_its_lease(
    tenant: Tenant, pair: tuple[Worker, Worker], clock: FakeClock, db: Database
) -> None:
    """Its call may still reach the network: only the lease's end hands it over."""
    first, second = pair
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=2))
    await first.tick()
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(
            update(Post).where(Post.id == UUID(post["id"])).values(status="publishing")
        )
    clock.advance(timedelta(seconds=30))
    await second.tick()
    assert await holder(db, tenant, post["id"]) == ("publishing", first.id)


async def test_a_worker_that_stops_hands_its_posts_over_at_once(
    tenant: Tenant,
    pair: tuple[Worker, Worker],
    clock: FakeClock,
    db: Database,
    scheduler_db: Database,
) -> None:
    first, second = pair
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=2))
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    for _ in range(100):  # bounded: 10 s at most
        if await holder(db, tenant, post["id"]) == ("queued", first.id):
            break
        await asyncio.sleep(0.1)
    assert await holder(db, tenant, post["id"]) == ("queued", first.id)
    assert await heartbeats(scheduler_db, first) == {first.id}
    stop.set()
    await asyncio.wait_for(running, 30)
    assert await heartbeats(scheduler_db, first) == set()

    await second.tick()  # no time has passed
    assert await holder(db, tenant, post["id"]) == ("queued", second.id)


def test_a_silence_no_longer_than_a_heartbeat_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_heartbeat_seconds"):
        Settings(worker_heartbeat_seconds=2, worker_silence_seconds=2)
    assert Settings(worker_heartbeat_seconds=2, worker_silence_seconds=5).worker_silence_seconds
