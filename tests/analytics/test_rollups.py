"""Nightly rollups: observations aggregated into snapshots, one per account, metric and
day, the days being the workspace's (23 or 25 hours at a DST change); idempotent,
re-runnable for any range, redone for late observations, run by the workers after each
workspace's local midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crier.analytics import repository
from crier.analytics.rollups import AFTER_MIDNIGHT, Rollups, next_run, rebuild
from crier.kit.db import Database
from crier.models import AnalyticsRollup, AnalyticsSnapshot
from crier.scheduler.worker import Worker
from tests.analytics.test_endpoints import snap
from tests.conftest import FakeClock, MakeTenant, Tenant
from tests.post.conftest import sandbox_account
from tests.scheduler.test_metric_collection import published

NEW_YORK = ZoneInfo("America/New_York")


def dst_days(zone: ZoneInfo, after: datetime) -> tuple[date, date]:
    """The next day of `zone` with 23 hours and the next with 25, after `after` (whatever
    today is)."""
    short = long = None
    day = after.astimezone(zone).date() + timedelta(days=2)
    while short is None or long is None:
        starts = datetime.combine(day, time(), zone)
        ends = datetime.combine(day + timedelta(days=1), time(), zone)
        hours = (ends.astimezone(UTC) - starts.astimezone(UTC)) / timedelta(hours=1)
        if hours == 23 and short is None:
            short = day
        if hours == 25 and long is None:
            long = day
        day += timedelta(days=1)
    return short, long


def local(day: date, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, fold=fold), NEW_YORK)


async def observe(
    db: Database,
    tenant: Tenant,
    account: str,
    delivery: str | None,
    at: datetime,
    **figures: float,
) -> None:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await repository.observe(
            session,
            UUID(tenant.id),
            UUID(account),
            UUID(delivery) if delivery else None,
            figures,
            at.astimezone(UTC),
        )


async def snapshots(db: Database, tenant: Tenant) -> dict[tuple[str, date], float]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = await session.scalars(select(AnalyticsSnapshot))
        return {(r.metric, r.date): r.value for r in rows}


async def rows(db: Database, tenant: Tenant) -> list[tuple[Any, ...]]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        found = await session.scalars(select(AnalyticsSnapshot).order_by(AnalyticsSnapshot.id))
        return [(r.id, r.social_account_id, r.metric, r.date, r.value, r.updated_at) for r in found]


@pytest.fixture
async def new_york(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant(timezone="America/New_York")


async def test_days_are_the_workspaces_with_23_and_25_hours_at_its_dst_changes(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    tenant = new_york
    account = await sandbox_account(tenant)
    delivery = (await published(tenant, worker, clock, account))["id"]
    spring, autumn = dst_days(NEW_YORK, clock.now())
    eve = spring - timedelta(days=1)
    await observe(db, tenant, account, delivery, local(eve, 23, 30), likes=5)
    await observe(db, tenant, account, delivery, local(spring, 0, 30), likes=7)
    await observe(db, tenant, account, delivery, local(spring, 23, 30), likes=10)  # 03:30Z next
    await observe(db, tenant, account, delivery, local(spring + timedelta(days=1), 0, 10), likes=11)
    # 01:30 twice on the autumn day (EDT, then EST), and 23:30 (04:30Z the next day).
    await observe(db, tenant, account, delivery, local(autumn, 1, 30), likes=20)
    await observe(db, tenant, account, delivery, local(autumn, 1, 30, fold=1), likes=25)
    await observe(db, tenant, account, delivery, local(autumn, 23, 30), likes=26)
    await observe(db, tenant, account, None, local(autumn, 0, 5), followers=100)
    await observe(db, tenant, account, None, local(autumn, 23, 55), followers=104)
    await observe(db, tenant, account, None, local(autumn + timedelta(days=1), 0, 5), followers=90)

    done = await rebuild(db, UUID(tenant.id), eve, autumn + timedelta(days=1), clock.now())
    found = await snapshots(db, tenant)
    likes = {day: value for (metric, day), value in found.items() if metric == "likes"}
    assert likes == {
        eve: 5,
        spring: 5,  # 7 at 00:30, 10 at 23:30 of the same 23-hour day
        spring + timedelta(days=1): 1,
        autumn: 15,  # 25 hours: both 01:30s and 23:30
    }
    followers = {day: v for (metric, day), v in found.items() if metric == "followers"}
    assert followers == {autumn: 104, autumn + timedelta(days=1): 90}  # the day's last
    assert done.made == len(found)


async def test_posts_published_are_counted_on_their_local_day(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(new_york)
    first = await published(new_york, worker, clock, account)
    await published(new_york, worker, clock, account)
    day = datetime.fromisoformat(first["published_at"]).astimezone(NEW_YORK).date()
    await rebuild(
        db, UUID(new_york.id), day - timedelta(days=1), day + timedelta(days=1), clock.now()
    )
    found = await snapshots(db, new_york)
    assert sum(v for (m, _), v in found.items() if m == "posts_published") == 2


async def test_a_rebuild_is_idempotent_and_any_range_agrees_with_the_whole(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    tenant = new_york
    account = await sandbox_account(tenant)
    delivery = (await published(tenant, worker, clock, account))["id"]
    start = clock.now().astimezone(NEW_YORK).date() + timedelta(days=1)
    for n in range(10):
        await observe(
            db,
            tenant,
            account,
            delivery,
            local(start + timedelta(days=n), 12),
            likes=n * n,
            impressions=10 * n,
        )
    last = start + timedelta(days=9)
    await rebuild(db, UUID(tenant.id), start, last, clock.now())
    whole = await rows(db, tenant)
    assert {(r[2], r[3]): r[4] for r in whole}[("likes", start + timedelta(days=4))] == 16 - 9

    clock.advance(timedelta(hours=1))
    again = await rebuild(db, UUID(tenant.id), start, last, clock.now())
    assert (again.written, again.removed) == (0, 0)
    assert await rows(db, tenant) == whole  # the same rows: ids, values, times

    middle = await rebuild(
        db, UUID(tenant.id), start + timedelta(days=4), start + timedelta(days=6), clock.now()
    )
    assert (middle.made, middle.written) == (6, 0)  # the day before the range is the baseline
    assert await rows(db, tenant) == whole


async def test_snapshots_no_longer_made_are_removed_for_every_metric_and_only_in_the_range(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    tenant = new_york
    account = await sandbox_account(tenant)
    delivery = (await published(tenant, worker, clock, account))["id"]
    start = clock.now().astimezone(NEW_YORK).date() + timedelta(days=1)
    last = start + timedelta(days=2)
    await observe(db, tenant, account, delivery, local(start, 12), likes=3)
    # Left from a rebuild before, of figures since gone: metrics before and after the ones
    # still made, in the range and outside it.
    stale = {
        ("aardvarks", start): 1.0,
        ("clicks", start + timedelta(days=1)): 2.0,
        ("likes", last): 3.0,
        ("shares", start): 4.0,
        ("zebras", last): 5.0,
    }
    outside = {
        ("clicks", start - timedelta(days=1)): 6.0,
        ("zebras", last + timedelta(days=1)): 7.0,
    }
    for (metric, day), value in (stale | outside).items():
        await snap(db, tenant, account, metric, day, value)

    done = await rebuild(db, UUID(tenant.id), start, last, clock.now())
    assert done.removed == len(stale)
    assert await snapshots(db, tenant) == outside | {("likes", start): 3}


async def test_a_workspace_that_changes_its_timezone_is_rebuilt_in_its_new_days(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database, scheduler_db: Database
) -> None:
    tenant = new_york
    account = await sandbox_account(tenant)
    delivery = (await published(tenant, worker, clock, account))["id"]
    day = clock.now().astimezone(NEW_YORK).date() + timedelta(days=3)
    await observe(db, tenant, account, delivery, local(day, 8), likes=4)  # Tokyo: 21:00 or 22:00
    await observe(db, tenant, account, delivery, local(day, 22), likes=6)  # Tokyo: the next day
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await repository.open_rollup(session, clock.now())
    clock.set(datetime.combine(day + timedelta(days=2), time(12), NEW_YORK))
    rollups = Rollups(db, scheduler_db, clock, today_every=None)
    assert await rollups.run(UUID(tenant.id))  # the days so far, in New York's days
    assert {k: v for k, v in (await snapshots(db, tenant)).items() if k[0] == "likes"} == {
        ("likes", day): 6
    }

    changed = await tenant.patch("/v1/workspace", json={"timezone": "Asia/Tokyo"})
    assert changed.status_code == 200, changed.text
    assert await rollups.run(UUID(tenant.id))  # due at once, every day again in Tokyo's
    assert {k: v for k, v in (await snapshots(db, tenant)).items() if k[0] == "likes"} == {
        ("likes", day): 4,
        ("likes", day + timedelta(days=1)): 2,
    }
    await rebuild(  # and by hand, for any range, to the same rows
        db, UUID(tenant.id), day - timedelta(days=1), day + timedelta(days=2), clock.now()
    )
    assert {k: v for k, v in (await snapshots(db, tenant)).items() if k[0] == "likes"} == {
        ("likes", day): 4,
        ("likes", day + timedelta(days=1)): 2,
    }


async def test_workers_aggregate_yesterday_after_the_workspaces_midnight_and_late_days_again(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database, scheduler_db: Database
) -> None:
    tenant = new_york
    ws = UUID(tenant.id)
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    clock.set(datetime.fromisoformat(delivery["published_at"]) + timedelta(hours=1))
    assert await worker.metrics.fetch(ws, UUID(account), UUID(delivery["id"]))  # opens the rollup
    fetched_on = clock.now().astimezone(NEW_YORK).date()
    async with db.workspace_transaction(ws) as session:
        rollup = await session.scalar(select(AnalyticsRollup))
        assert rollup is not None
    assert rollup.next_run_at == clock.now()  # the workspace's first observation: due at once
    rollups = Rollups(db, scheduler_db, clock, today_every=None)
    assert await rollups.run(ws)
    assert await snapshots(db, tenant) == {}  # no complete day yet
    midnight = datetime.combine(fetched_on + timedelta(days=1), time(), NEW_YORK)
    async with db.workspace_transaction(ws) as session:
        rollup = await session.scalar(select(AnalyticsRollup))
        assert rollup is not None
    assert rollup.next_run_at == midnight + AFTER_MIDNIGHT
    assert rollup.next_run_at == next_run(clock.now(), "America/New_York")

    clock.set(midnight + AFTER_MIDNIGHT - timedelta(seconds=1))
    assert not await rollups.run(ws)
    assert await snapshots(db, tenant) == {}
    clock.set(midnight + AFTER_MIDNIGHT)
    assert ws in await repository.due_rollups(scheduler_db, clock.now(), 100_000)
    assert await rollups.run(ws)
    made = await snapshots(db, tenant)
    assert made[("likes", fetched_on)] > 0
    assert (
        made[
            (
                "posts_published",
                datetime.fromisoformat(delivery["published_at"]).astimezone(NEW_YORK).date(),
            )
        ]
        == 1
    )
    async with db.workspace_transaction(ws) as session:
        rollup = await session.scalar(select(AnalyticsRollup))
        assert rollup is not None
        assert rollup.rebuilt_through == fetched_on
        assert rollup.next_run_at == next_run(clock.now(), "America/New_York")

    # An observation for a day already aggregated arrives: that day is done again soon.
    late = local(fetched_on, 23, 59)
    async with db.workspace_transaction(ws) as session:
        await repository.observe(
            session, ws, UUID(account), UUID(delivery["id"]), {"likes": 10_000}, late
        )
        await repository.touch_day(session, late, clock.now(), clock.now() + timedelta(minutes=10))
    clock.advance(timedelta(minutes=10))
    assert await rollups.run(ws)
    assert (await snapshots(db, tenant))[("likes", fetched_on)] == 10_000
    async with db.workspace_transaction(ws) as session:
        rollup = await session.scalar(select(AnalyticsRollup))
        assert rollup is not None
        assert rollup.dirty_from is None


async def test_today_so_far_is_aggregated_every_so_often_and_yesterday_once_more_after_midnight(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database, scheduler_db: Database
) -> None:
    tenant = new_york
    ws = UUID(tenant.id)
    account = await sandbox_account(tenant)
    delivery = await published(tenant, worker, clock, account)
    day = clock.now().astimezone(NEW_YORK).date() + timedelta(days=2)
    clock.set(local(day, 22))
    await observe(db, tenant, account, delivery["id"], local(day, 21), likes=3)
    async with db.workspace_transaction(ws) as session:
        await repository.open_rollup(session, clock.now())
    rollups = Rollups(db, scheduler_db, clock, today_every=timedelta(hours=1))
    assert await rollups.run(ws)
    assert (await snapshots(db, tenant))[("likes", day)] == 3  # today so far
    async with db.workspace_transaction(ws) as session:
        rollup = await session.scalar(select(AnalyticsRollup))
        assert rollup is not None
        assert rollup.next_run_at == clock.now() + timedelta(hours=1)
        assert rollup.rebuilt_through == day - timedelta(days=1)  # today is not complete

    await observe(db, tenant, account, delivery["id"], local(day, 23, 30), likes=8)
    clock.set(local(day, 23))
    assert await rollups.run(ws)
    clock.set(local(day + timedelta(days=1), 0) + AFTER_MIDNIGHT)  # sooner than the hour
    assert await rollups.run(ws)
    assert (await snapshots(db, tenant))[("likes", day)] == 8  # complete, after midnight


async def test_an_observation_that_arrives_after_a_later_one_counts_in_its_own_day(
    new_york: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    tenant = new_york
    account = await sandbox_account(tenant)
    delivery = (await published(tenant, worker, clock, account))["id"]
    day = clock.now().astimezone(NEW_YORK).date() + timedelta(days=2)
    await observe(db, tenant, account, delivery, local(day + timedelta(days=1), 12), likes=10)
    await rebuild(db, UUID(tenant.id), day, day + timedelta(days=1), clock.now())
    assert {k: v for k, v in (await snapshots(db, tenant)).items() if k[0] == "likes"} == {
        ("likes", day + timedelta(days=1)): 10
    }
    await observe(db, tenant, account, delivery, local(day, 20), likes=4)  # late, and earlier
    await rebuild(db, UUID(tenant.id), day, day + timedelta(days=1), clock.now())
    assert {k: v for k, v in (await snapshots(db, tenant)).items() if k[0] == "likes"} == {
        ("likes", day): 4,
        ("likes", day + timedelta(days=1)): 6,
    }
