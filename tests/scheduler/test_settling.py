"""Settling off the firing path: what is fired while a workspace's round is being settled
is settled together in the next round, and each firing learns its own posts' outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy.exc import DBAPIError

from crier.delivery.repository import Sent
from crier.kit.db import DatabaseUrls
from crier.scheduler.service import Fired, Held, Sender
from crier.scheduler.settling import SETTLE_BATCH, SETTLE_WINDOW, Settler, _batches
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant, connect_as
from tests.post.conftest import at, sandbox_account
from tests.scheduler.test_worker import deliveries, schedule


@dataclass(frozen=True)
class Counted(Sender):
    """A sender that notes the posts of each settling transaction it runs."""

    rounds: list[list[UUID]] = field(default_factory=list)

    async def settle(
        self, workspace_id: UUID, post_ids: Sequence[UUID], succeeded: Sequence[Sent] = ()
    ) -> dict[UUID, Held | None]:
        self.rounds.append(list(post_ids))
        return await super().settle(workspace_id, post_ids, succeeded)


async def fired_one_by_one(
    tenant: Tenant, worker: Worker, clock: FakeClock, count: int
) -> tuple[Counted, list[Fired]]:
    """`count` posts claimed and prepared by `worker`, then sent one firing each, not yet
    settled; and a sender acting as that worker."""
    account = await sandbox_account(tenant)
    for _ in range(count):
        await schedule(tenant, [account], at(clock, minutes=2))
    await worker.tick()  # claimed and held: due in two minutes
    held = sorted(worker.held.values(), key=lambda h: h.post_id)
    assert len(held) == count
    clock.advance(timedelta(minutes=2))
    sender = worker.sender
    counted = Counted(sender.db, sender.platforms, sender.vault, sender.clock, sender.worker)
    return counted, [await counted.fire(UUID(tenant.id), [h]) for h in held]


async def test_firings_waiting_on_a_round_are_settled_together_in_the_next(
    tenant: Tenant, worker: Worker, clock: FakeClock, db_urls: DatabaseUrls
) -> None:
    sender, fired = await fired_one_by_one(tenant, worker, clock, 3)
    first, second, third = (f.post_ids[0] for f in fired)
    settler = Settler(sender)
    with connect_as(db_urls) as blocker, connect_as(db_urls) as observer:
        # The first round waits on this lock on its post; the others are handed over meanwhile.
        lock_post(blocker, tenant, first)
        waiting = [asyncio.create_task(settler.settle(fired[0]))]
        await until_a_round_waits(observer)
        waiting += [asyncio.create_task(settler.settle(f)) for f in fired[1:]]
        await asyncio.sleep(0.05)
        assert sender.rounds == [[first]], "the later firings wait for the round under way"
        blocker.rollback()
        outcomes = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert sender.rounds == [[first], [second, third]]
    assert outcomes == [{first: None}, {second: None}, {third: None}], "each its own posts"
    for post_id in (first, second, third):
        post = (await tenant.get(f"/v1/posts/{post_id}")).json()
        assert post["status"] == "published"
        [delivery] = await deliveries(tenant, str(post_id))
        assert [a["outcome"] for a in delivery["attempts"]] == ["published"]


async def test_firings_handed_over_within_the_window_share_one_round(
    tenant: Tenant, worker: Worker, clock: FakeClock
) -> None:
    sender, fired = await fired_one_by_one(tenant, worker, clock, 3)
    settler = Settler(sender)
    first = asyncio.create_task(settler.settle(fired[0]))
    await asyncio.sleep(0.005)  # the first is handed over; the window (50 ms) runs on
    assert SETTLE_WINDOW >= 0.05
    later = [asyncio.create_task(settler.settle(f)) for f in fired[1:]]
    await asyncio.wait_for(asyncio.gather(first, *later), timeout=10)
    assert sender.rounds == [[f.post_ids[0] for f in fired]]


async def test_a_round_that_fails_fails_each_firing_in_it_and_settles_nothing(
    tenant: Tenant, worker: Worker, clock: FakeClock, db_urls: DatabaseUrls
) -> None:
    """The round's connection is lost while it waits on a lock: every firing in it learns
    the failure (the worker then fires their posts again), nothing of the round is kept,
    and settling the same firings again settles them once."""
    sender, fired = await fired_one_by_one(tenant, worker, clock, 3)
    settler = Settler(sender)
    with connect_as(db_urls) as blocker, connect_as(db_urls) as killer:
        for f in fired:
            lock_post(blocker, tenant, f.post_ids[0])
        waiting = [asyncio.create_task(settler.settle(fired[0]))]
        await until_a_round_waits(killer)
        waiting += [asyncio.create_task(settler.settle(f)) for f in fired[1:]]
        await asyncio.sleep(0.05)
        # The first round, alone; then the other two together, each waiting on its lock.
        assert terminate_the_waiting(killer) == 1
        await until_a_round_waits(killer)
        assert terminate_the_waiting(killer) == 1
        results = await asyncio.wait_for(
            asyncio.gather(*waiting, return_exceptions=True), timeout=10
        )
        blocker.rollback()
    assert all(isinstance(r, DBAPIError) for r in results), results
    assert len(results) == 3
    assert len(sender.rounds) == 2
    for f in fired:
        post = (await tenant.get(f"/v1/posts/{f.post_ids[0]}")).json()
        assert post["status"] == "publishing", "nothing of the failed rounds was kept"
    again = Settler(sender)
    outcomes = await asyncio.gather(*(again.settle(f) for f in fired))
    assert outcomes == [{f.post_ids[0]: None} for f in fired]
    for f in fired:
        assert (await tenant.get(f"/v1/posts/{f.post_ids[0]}")).json()["status"] == "published"
        [delivery] = await deliveries(tenant, str(f.post_ids[0]))
        assert [a["outcome"] for a in delivery["attempts"]] == ["published"]


def lock_post(connection: psycopg.Connection[Any], tenant: Tenant, post_id: UUID) -> None:
    """Lock the post until `connection`'s transaction ends."""
    connection.execute("SELECT crier_enter_workspace(%s)", [tenant.id])
    locked = connection.execute("SELECT id FROM posts WHERE id = %s FOR UPDATE", [post_id])
    assert locked.fetchall() == [(post_id,)]


_WAITING_ON_A_LOCK = (
    "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


def terminate_the_waiting(killer: psycopg.Connection[Any]) -> int:
    """End the sessions waiting on a lock (a settling round's): how many were ended."""
    ended = killer.execute(f"SELECT pg_terminate_backend(pid) {_WAITING_ON_A_LOCK}").fetchall()
    assert all(ok for (ok,) in ended)
    return len(ended)


async def until_a_round_waits(observer: psycopg.Connection[Any]) -> None:
    """Until a session (a settling round) waits on a lock, 5 s at most. `observer` is put
    in autocommit: within a transaction, the statistics it reads would not change."""
    observer.autocommit = True
    for _ in range(500):
        waiting = observer.execute(f"SELECT count(*) {_WAITING_ON_A_LOCK}").fetchone()
        if waiting and waiting[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no round came to wait on the lock")


async def test_batches_never_split_a_firing_and_stay_within_the_limit() -> None:
    loop = asyncio.get_running_loop()

    def firing(size: int) -> tuple[Fired, asyncio.Future[dict[UUID, Held | None]]]:
        ids = [UUID(int=i) for i in range(size)]
        return Fired(UUID(int=0), ids, []), loop.create_future()

    sizes = [300, 150, 100, 250, SETTLE_BATCH + 10]
    batches = _batches([firing(n) for n in sizes])
    assert [[len(f.post_ids) for f, _ in b] for b in batches] == [
        [300, 150],
        [100, 250],
        [SETTLE_BATCH + 10],
    ]
