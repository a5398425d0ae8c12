"""Metric collection against the sandbox: a delivery's receipt starts its history, its
figures are fetched on the decaying schedule and never before they are due, an account's
own figures daily; failures are retried, pauses honoured, and every observation kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select, update

from crier.analytics import repository
from crier.analytics.tasks import MAX_FAILURES
from crier.kit.db import Database
from crier.models import Delivery, MetricFetch, MetricObservation
from crier.runtime import Runtime
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.post.conftest import at, sandbox_account
from tests.scheduler.test_worker import deliveries, schedule

HOUR = timedelta(hours=1)


async def published(
    tenant: Tenant, worker: Worker, clock: FakeClock, account: str
) -> dict[str, Any]:
    """A post published to `account` now; its delivery."""
    post = await schedule(tenant, [account], at(clock, minutes=1))
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    return delivery


async def fetch_of(
    db: Database, tenant: Tenant, delivery_id: str | None, account: str
) -> MetricFetch:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        query = select(MetricFetch).where(MetricFetch.social_account_id == UUID(account))
        if delivery_id is None:
            query = query.where(MetricFetch.delivery_id.is_(None))
        else:
            query = query.where(MetricFetch.delivery_id == UUID(delivery_id))
        found = await session.scalar(query)
        assert found is not None
        return found


async def observed(
    db: Database, tenant: Tenant, delivery_id: str | None, account: str
) -> list[tuple[datetime, str, float]]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = await repository.observations(
            session,
            delivery_id=UUID(delivery_id) if delivery_id else None,
            account_id=None if delivery_id else UUID(account),
        )
        return [(r.observed_at, r.metric, r.value) for r in rows]


def collect(worker: Worker, tenant: Tenant, account: str, delivery: str | None) -> Any:
    return worker.metrics.fetch(
        UUID(tenant.id), UUID(account), UUID(delivery) if delivery else None
    )


async def test_a_receipt_starts_the_history_and_figures_come_on_the_decaying_schedule(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    at_publishing = datetime.fromisoformat(delivery["published_at"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert fetch.since == at_publishing
    assert fetch.next_fetch_at == at_publishing + HOUR
    assert fetch.stage == 0

    clock.advance(HOUR - timedelta(seconds=61))
    assert not await collect(worker, tenant, account, delivery["id"])  # not due yet
    assert await observed(db, tenant, delivery["id"], account) == []

    clock.set(at_publishing + HOUR)
    assert await collect(worker, tenant, account, delivery["id"])
    first = await observed(db, tenant, delivery["id"], account)
    names = {metric for _, metric, _ in first}
    assert names == {
        "impressions",
        "reach",
        "likes",
        "shares",
        "comments",
        "clicks",
        "engagements",
    }
    figures = {metric: value for _, metric, value in first}
    assert figures["engagements"] == sum(
        figures[n] for n in ("likes", "comments", "shares", "clicks")
    )
    assert {when for when, _, _ in first} == {clock.now()}
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.stage, fetch.next_fetch_at) == (1, at_publishing + 6 * HOUR)
    assert fetch.last_fetched_at == clock.now()
    assert not await collect(worker, tenant, account, delivery["id"])  # fetched: not due again

    # Six hours after publishing the sandbox's token has expired: refreshed, then fetched.
    clock.set(at_publishing + 6 * HOUR)
    assert await collect(worker, tenant, account, delivery["id"])
    later = {
        m: v
        for when, m, v in await observed(db, tenant, delivery["id"], account)
        if when == clock.now()
    }
    assert later["impressions"] > figures["impressions"]
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.stage, fetch.next_fetch_at) == (2, at_publishing + 24 * HOUR)


async def test_a_late_fetch_stands_for_the_steps_it_passed_and_the_schedule_ends(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    since = datetime.fromisoformat(delivery["published_at"])
    clock.set(since + timedelta(days=4))  # past 1 h, 6 h, 1 day and 3 days
    assert await collect(worker, tenant, account, delivery["id"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.stage, fetch.next_fetch_at) == (4, since + timedelta(days=7))
    assert len({when for when, _, _ in await observed(db, tenant, delivery["id"], account)}) == 1

    clock.set(since + timedelta(days=7))
    assert await collect(worker, tenant, account, delivery["id"])
    clock.set(since + timedelta(days=30))
    assert await collect(worker, tenant, account, delivery["id"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.stage, fetch.next_fetch_at) == (6, None)
    clock.advance(timedelta(days=365))
    assert not await collect(worker, tenant, account, delivery["id"])
    times = {when for when, _, _ in await observed(db, tenant, delivery["id"], account)}
    assert len(times) == 3


async def test_transient_failures_are_retried_with_growing_waits_then_the_step_is_given_up(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    since = datetime.fromisoformat(delivery["published_at"])
    clock.set(since + HOUR)
    await control.put("/control/faults", json={"fail_next": 1})
    assert not await collect(worker, tenant, account, delivery["id"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.failures, fetch.last_error) == (1, "platform_unavailable")
    assert fetch.next_fetch_at == clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    assert await collect(worker, tenant, account, delivery["id"])  # the retry
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.failures, fetch.last_error, fetch.stage) == (0, None, 1)

    clock.set(since + 6 * HOUR)
    waits = []
    for _ in range(MAX_FAILURES):
        await control.put("/control/faults", json={"fail_next": 1})
        assert not await collect(worker, tenant, account, delivery["id"])
        fetch = await fetch_of(db, tenant, delivery["id"], account)
        assert fetch.next_fetch_at is not None
        waits.append(fetch.next_fetch_at - clock.now())
        clock.set(fetch.next_fetch_at)
    assert waits[:-1] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    # Given up at the fifth: the next step (a day after publishing) is awaited.
    assert (fetch.stage, fetch.failures, fetch.last_error) == (2, 0, "platform_unavailable")
    assert fetch.next_fetch_at == since + 24 * HOUR
    assert len({when for when, _, _ in await observed(db, tenant, delivery["id"], account)}) == 1


async def test_a_pause_the_network_asks_for_holds_back_every_fetch_of_that_account(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    one = await published(tenant, worker, clock, account)
    two = await published(tenant, worker, clock, account)
    other_account = await sandbox_account(tenant)
    other = await published(tenant, worker, clock, other_account)
    clock.advance(2 * HOUR)
    await control.put("/control/faults", json={"rate_limit_next": 1, "retry_after_seconds": 900})
    assert not await collect(worker, tenant, account, one["id"])
    until = clock.now() + timedelta(minutes=15)
    assert (await fetch_of(db, tenant, one["id"], account)).next_fetch_at == until
    assert (await fetch_of(db, tenant, two["id"], account)).next_fetch_at == until
    assert not await collect(worker, tenant, account, two["id"])  # held back: not due
    untouched = (await fetch_of(db, tenant, other["id"], other_account)).next_fetch_at
    assert untouched is not None
    assert untouched < until
    assert await collect(worker, tenant, other_account, other["id"])  # another account's
    clock.set(until)
    assert await collect(worker, tenant, account, one["id"])
    assert await collect(worker, tenant, account, two["id"])


async def test_a_post_gone_from_the_network_is_not_asked_for_again(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == UUID(delivery["id"]))
            .values(external_id="sbx_post_deleted")
        )
    clock.advance(HOUR)
    assert not await collect(worker, tenant, account, delivery["id"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.next_fetch_at, fetch.last_error) == (None, "invalid_request")


async def test_an_accounts_own_figures_are_fetched_once_a_day(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, scheduler_db: Database
) -> None:
    account = await sandbox_account(tenant)
    due = await repository.due_fetches(scheduler_db, clock.now(), 100_000)
    assert repository.Due(UUID(tenant.id), UUID(account), None) in due  # never measured
    assert await collect(worker, tenant, account, None)
    [(when, _, first)] = [
        (w, m, v) for w, m, v in await observed(db, tenant, None, account) if m == "followers"
    ]
    assert when == clock.now()
    fetch = await fetch_of(db, tenant, None, account)
    assert fetch.next_fetch_at == clock.now() + timedelta(days=1)
    due = await repository.due_fetches(scheduler_db, clock.now(), 100_000)
    assert repository.Due(UUID(tenant.id), UUID(account), None) not in due
    clock.advance(timedelta(hours=23))
    assert not await collect(worker, tenant, account, None)
    clock.advance(HOUR)
    assert await collect(worker, tenant, account, None)
    followers = [v for _, m, v in await observed(db, tenant, None, account) if m == "followers"]
    assert len(followers) == 2
    assert followers[1] > first


async def test_a_disconnected_accounts_step_is_passed_and_noted(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    since = datetime.fromisoformat(delivery["published_at"])
    assert (await tenant.delete(f"/v1/social-accounts/{account}")).status_code == 204
    clock.set(since + HOUR)
    assert not await collect(worker, tenant, account, delivery["id"])
    fetch = await fetch_of(db, tenant, delivery["id"], account)
    assert (fetch.next_fetch_at, fetch.last_error) == (since + 6 * HOUR, "account_disconnected")
    assert await observed(db, tenant, delivery["id"], account) == []


async def test_a_fetch_one_worker_holds_is_not_taken_by_another(
    tenant: Tenant,
    worker: Worker,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    db: Database,
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    clock.advance(HOUR)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        taken = await repository.take_fetch(
            session, UUID(account), UUID(delivery["id"]), clock.now(), timedelta(minutes=2)
        )
        assert taken is not None
    other = runtime.worker(scheduler_db, worker_id="other")
    assert not await collect(other, tenant, account, delivery["id"])
    clock.advance(timedelta(minutes=2))  # that worker's lease ran out: another takes over
    assert await collect(other, tenant, account, delivery["id"])


async def test_the_workers_sweep_fetches_what_is_due(
    tenant: Tenant,
    worker: Worker,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    db: Database,
) -> None:
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    poll = timedelta(seconds=30)
    sweeping = runtime.worker(scheduler_db, worker_id="sweeper", metrics_poll=poll)
    clock.advance(HOUR)
    for _ in range(50):  # the sweep goes through every workspace's due fetches: bounded
        await sweeping.tick()
        if await observed(db, tenant, delivery["id"], account) and await observed(
            db, tenant, None, account
        ):
            break
        clock.advance(poll)
    assert await observed(db, tenant, delivery["id"], account)
    assert await observed(db, tenant, None, account)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        kept = await session.scalars(select(MetricObservation.metric).distinct())
        assert "followers" in set(kept)


async def collected_an_hour_on(
    tenant: Tenant, worker: Worker, clock: FakeClock, db: Database, delivery: dict[str, Any]
) -> tuple[dict[str, float], dict[str, float]]:
    """The delivery's figures fetched an hour after publishing, and its account's own:
    what each network's adapter reported, as stored."""
    account = delivery["social_account_id"]
    clock.set(datetime.fromisoformat(delivery["published_at"]) + HOUR)
    assert await collect(worker, tenant, account, delivery["id"])
    assert await collect(worker, tenant, account, None)
    post = {m: v for _, m, v in await observed(db, tenant, delivery["id"], account)}
    own = {m: v for _, m, v in await observed(db, tenant, None, account)}
    return post, own
