"""The monthly limit on scheduled posts, counted in the workspace's own calendar."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, text, update

from crier.kit.db import Database
from crier.kit.errors import PlanLimitExceeded
from crier.models import Post, ScheduledPostMonth, Workspace
from crier.workspace.plans import month_of
from crier.workspace.service import hold_to_scheduled_posts_limit
from tests.conftest import FakeClock, MakeTenant

MARCH_LOCAL_LAST_MINUTE = datetime.fromisoformat("2026-03-31T23:30:00-04:00")
APRIL_LOCAL_FIRST_HOUR = datetime.fromisoformat("2026-04-01T00:30:00-04:00")


def test_a_month_is_the_workspaces_calendar_month() -> None:
    start, end = month_of(MARCH_LOCAL_LAST_MINUTE, "America/New_York")
    assert start.isoformat() == "2026-03-01T00:00:00-05:00"  # before the DST change
    assert end.isoformat() == "2026-04-01T00:00:00-04:00"  # after it
    start, end = month_of(datetime.fromisoformat("2026-12-15T12:00:00+00:00"), "Asia/Tokyo")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+09:00",
        "2027-01-01T00:00:00+09:00",
    )


async def add_scheduled(
    db: Database, tenant_id: str, owner_id: str, at: datetime, n: int, status: str = "scheduled"
) -> list[UUID]:
    async with db.workspace_transaction(UUID(tenant_id)) as session:
        posts = [
            Post(
                workspace_id=UUID(tenant_id),
                author_id=UUID(owner_id),
                status=status,
                publish_at=at,
                payload={"text": "hello"},
            )
            for _ in range(n)
        ]
        session.add_all(posts)
        await session.flush()
        return [p.id for p in posts]


async def schedule_held_to_the_limit(
    db: Database, tenant_id: str, owner_id: str, at: datetime, move: UUID | None = None
) -> None:
    """Schedule one post at `at` (or move `move` there) in a transaction held to the free
    plan's limit (100 a month)."""
    async with db.workspace_transaction(UUID(tenant_id)) as session:
        await hold_to_scheduled_posts_limit(session, "free")
        if move is None:
            session.add(
                Post(
                    workspace_id=UUID(tenant_id),
                    author_id=UUID(owner_id),
                    status="scheduled",
                    publish_at=at,
                    payload={"text": "hello"},
                )
            )
        else:
            await session.execute(update(Post).where(Post.id == move).values(publish_at=at))


async def months(db: Database, tenant_id: str) -> dict[str, int]:
    """The workspace's counted months, by first day (local date), leaving out empty ones."""
    async with db.workspace_transaction(UUID(tenant_id)) as session:
        rows = await session.execute(
            select(ScheduledPostMonth.month_start, ScheduledPostMonth.scheduled).where(
                ScheduledPostMonth.scheduled > 0
            )
        )
        timezone = (await session.execute(select(Workspace.timezone))).scalar_one()
        return {
            start.astimezone(ZoneInfo(timezone)).date().isoformat(): n for start, n in rows.all()
        }


async def recounted(db: Database, tenant_id: str) -> dict[str, int]:
    """What counting every post afresh gives: the counts must always equal it."""
    async with db.workspace_transaction(UUID(tenant_id)) as session:
        await session.execute(text("SELECT crier_recount_scheduled()"))
    return await months(db, tenant_id)


async def test_the_limit_counts_posts_in_the_local_month(
    db: Database, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant(plan="free", timezone="America/New_York")  # 100 a month
    mid_march = datetime.fromisoformat("2026-03-15T12:00:00-04:00")
    ids = await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 99)
    await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 5, status="draft")
    await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 5, status="cancelled")
    # The 100th fits: its local time is still March, though it is April in UTC.
    await schedule_held_to_the_limit(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE)
    assert await months(db, tenant.id) == {"2026-03-01": 100}

    with pytest.raises(PlanLimitExceeded) as refused:
        await schedule_held_to_the_limit(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE)
    assert refused.value.extensions == {
        "plan": "free",
        "limit": "scheduled_posts_per_month",
        "limit_value": 100,
    }
    assert await months(db, tenant.id) == {"2026-03-01": 100}  # the refused one left nothing

    await schedule_held_to_the_limit(db, tenant.id, tenant.owner_id, APRIL_LOCAL_FIRST_HOUR)
    # Moving a post within its month takes no new slot; moving one out frees one.
    await schedule_held_to_the_limit(
        db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE, move=ids[0]
    )
    await schedule_held_to_the_limit(
        db, tenant.id, tenant.owner_id, APRIL_LOCAL_FIRST_HOUR, move=ids[1]
    )
    await schedule_held_to_the_limit(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE)
    assert await months(db, tenant.id) == {"2026-03-01": 100, "2026-04-01": 2}
    assert await recounted(db, tenant.id) == {"2026-03-01": 100, "2026-04-01": 2}


async def test_the_counts_follow_every_change_of_a_post(
    db: Database, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant(timezone="Europe/London")
    march = datetime.fromisoformat("2026-03-10T09:00:00+00:00")
    may = datetime.fromisoformat("2026-05-10T09:00:00+01:00")
    scheduled = await add_scheduled(db, tenant.id, tenant.owner_id, march, 3)
    drafts = await add_scheduled(db, tenant.id, tenant.owner_id, march, 2, status="draft")
    assert await months(db, tenant.id) == {"2026-03-01": 3}

    async def change(post: UUID, **values: object) -> None:
        async with db.workspace_transaction(UUID(tenant.id)) as session:
            await session.execute(update(Post).where(Post.id == post).values(**values))

    await change(scheduled[0], status="cancelled")
    await change(scheduled[1], status="queued")  # the scheduler's steps keep the slot
    await change(scheduled[1], status="published")
    await change(drafts[0], status="scheduled")
    await change(scheduled[2], publish_at=may)
    await change(drafts[1], publish_at=may)  # a draft takes no slot wherever it is
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(delete(Post).where(Post.id == drafts[1]))
    assert await months(db, tenant.id) == {"2026-03-01": 2, "2026-05-01": 1}

    async def change_then_fail() -> None:
        async with db.workspace_transaction(UUID(tenant.id)) as session:
            await session.execute(
                update(Post).where(Post.id == scheduled[0]).values(status="scheduled")
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):  # a rolled-back change counts nothing
        await change_then_fail()
    assert await months(db, tenant.id) == {"2026-03-01": 2, "2026-05-01": 1}
    assert await recounted(db, tenant.id) == {"2026-03-01": 2, "2026-05-01": 1}


async def test_a_new_timezone_moves_posts_between_months(
    db: Database, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    await add_scheduled(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE, 2)
    assert await months(db, tenant.id) == {"2026-03-01": 2}
    response = await tenant.patch("/v1/workspace", json={"timezone": "Europe/Paris"})
    assert response.status_code == 200, response.text
    assert await months(db, tenant.id) == {"2026-04-01": 2}  # 05:30 on 1 April in Paris


async def test_the_workspace_shows_this_months_scheduled_posts(
    db: Database, make_tenant: MakeTenant, clock: FakeClock
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    clock.set(datetime.fromisoformat("2026-03-20T12:00:00-04:00"))
    await add_scheduled(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE, 3)
    await add_scheduled(db, tenant.id, tenant.owner_id, APRIL_LOCAL_FIRST_HOUR, 2)
    usage = (await tenant.get("/v1/workspace")).json()["usage"]
    assert usage["scheduled_posts_this_month"] == 3
