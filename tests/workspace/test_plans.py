"""The monthly limit on scheduled posts, counted in the workspace's own calendar."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import pytest

from crier.kit.db import Database
from crier.kit.errors import PlanLimitExceeded
from crier.models import Post
from crier.workspace.plans import month_of
from crier.workspace.service import enforce_scheduled_posts_limit
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


async def enforce(db: Database, tenant_id: str, at: datetime, post: UUID | None = None) -> None:
    async with db.workspace_transaction(UUID(tenant_id)) as session:
        await enforce_scheduled_posts_limit(session, "free", "America/New_York", at, post)


async def test_the_limit_counts_posts_in_the_local_month(
    db: Database, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant(plan="free", timezone="America/New_York")  # 100 a month
    mid_march = datetime.fromisoformat("2026-03-15T12:00:00-04:00")
    ids = await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 99)
    await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 5, status="draft")
    await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 5, status="cancelled")
    await enforce(db, tenant.id, MARCH_LOCAL_LAST_MINUTE)  # the 100th fits

    await add_scheduled(db, tenant.id, tenant.owner_id, mid_march, 1, status="published")
    with pytest.raises(PlanLimitExceeded) as refused:
        await enforce(db, tenant.id, MARCH_LOCAL_LAST_MINUTE)
    assert refused.value.extensions == {
        "plan": "free",
        "limit": "scheduled_posts_per_month",
        "limit_value": 100,
    }

    await enforce(db, tenant.id, APRIL_LOCAL_FIRST_HOUR)  # April is empty
    await enforce(db, tenant.id, MARCH_LOCAL_LAST_MINUTE, post=ids[0])  # moving one of them


async def test_the_workspace_shows_this_months_scheduled_posts(
    db: Database, make_tenant: MakeTenant, clock: FakeClock
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    clock.set(datetime.fromisoformat("2026-03-20T12:00:00-04:00"))
    await add_scheduled(db, tenant.id, tenant.owner_id, MARCH_LOCAL_LAST_MINUTE, 3)
    await add_scheduled(db, tenant.id, tenant.owner_id, APRIL_LOCAL_FIRST_HOUR, 2)
    usage = (await tenant.get("/v1/workspace")).json()["usage"]
    assert usage["scheduled_posts_this_month"] == 3
