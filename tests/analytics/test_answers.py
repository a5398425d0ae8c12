"""View data and queries are kept in each API process until the workspace's snapshots
change: a trigger moves the workspace's snapshot generation whenever a statement writes,
changes or removes any of them, and an answer is kept under that generation and
everything else it rests on, so a kept answer is never one the snapshots no longer give."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update

from crier.analytics.answers import Answers
from crier.analytics.rollups import rebuild
from crier.kit.db import Database
from crier.models import AnalyticsGeneration, AnalyticsSnapshot
from tests.analytics.test_endpoints import PARIS, TODAY, snap, view_body
from tests.analytics.test_rollups import observe
from tests.conftest import FakeClock, MakeTenant, Tenant
from tests.post.conftest import sandbox_account

YESTERDAY = TODAY - timedelta(days=1)


def kept(tenant: Tenant) -> Answers:
    answers: Answers = tenant.http._transport.app.state.analytics_answers  # type: ignore[attr-defined]
    return answers


async def generation(db: Database, tenant: Tenant) -> int | None:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        return await session.scalar(select(AnalyticsGeneration.generation))


async def likes(tenant: Tenant, path: str, **params: Any) -> float:
    answer = await tenant.get(path, params=params or None)
    assert answer.status_code == 200, answer.text
    [series] = answer.json()["series"]
    total: float = series["total"]
    return total


async def test_a_kept_answer_is_given_again_until_a_snapshot_is_written_changed_or_removed(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    tenant = await make_tenant(timezone="Europe/Paris")
    account = await sandbox_account(tenant)
    await snap(db, tenant, account, "likes", YESTERDAY, 4)
    view = (await tenant.post("/v1/analytics/views", json=view_body())).json()
    path = f"/v1/analytics/views/{view['id']}/data"
    answers = kept(tenant)

    assert await likes(tenant, path) == 4
    hits = answers.hits
    first = (await tenant.get(path)).json()
    assert answers.hits == hits + 1  # kept: the snapshots did not change
    assert first["series"][0]["total"] == 4

    await snap(db, tenant, account, "likes", YESTERDAY - timedelta(days=1), 3)  # written
    assert await likes(tenant, path) == 7
    async with db.workspace_transaction(UUID(tenant.id)) as session:  # changed
        await session.execute(
            update(AnalyticsSnapshot).where(AnalyticsSnapshot.date == YESTERDAY).values(value=10)
        )
    assert await likes(tenant, path) == 13
    async with db.workspace_transaction(UUID(tenant.id)) as session:  # removed
        await session.execute(delete(AnalyticsSnapshot).where(AnalyticsSnapshot.date == YESTERDAY))
    assert await likes(tenant, path) == 3

    # A query is kept the same way, apart from another workspace's same query.
    query = {"metric": "likes", "range": "last_7_days"}
    assert await likes(tenant, "/v1/analytics/query", **query) == 3
    other = await make_tenant(timezone="Europe/Paris")
    await snap(db, other, await sandbox_account(other), "likes", YESTERDAY, 50)
    assert await likes(other, "/v1/analytics/query", **query) == 50
    assert await likes(tenant, "/v1/analytics/query", **query) == 3


async def test_a_kept_answer_follows_the_accounts_in_its_scope_and_the_days_of_its_range(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    tenant = await make_tenant(timezone="Europe/Paris")
    one = await sandbox_account(tenant)
    await snap(db, tenant, one, "likes", YESTERDAY, 4)
    view = (await tenant.post("/v1/analytics/views", json=view_body())).json()
    path = f"/v1/analytics/views/{view['id']}/data"
    assert (await tenant.get(path)).json()["social_account_ids"] == [one]

    two = await sandbox_account(tenant)  # no snapshot yet: the generation stays
    assert (await tenant.get(path)).json()["social_account_ids"] == sorted([one, two])
    changed = await tenant.patch(
        f"/v1/analytics/views/{view['id']}", json={"range": "last_30_days"}
    )
    assert changed.status_code == 200, changed.text
    assert (await tenant.get(path)).json()["range"]["from"] == str(TODAY - timedelta(days=30))

    clock.set(datetime.combine(TODAY + timedelta(days=40), time(9, 30), PARIS))  # other days
    assert await likes(tenant, path) == 0


async def test_the_generation_moves_only_when_a_rebuild_changes_snapshots(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    tenant = await make_tenant(timezone="Europe/Paris")
    account = await sandbox_account(tenant)
    assert await generation(db, tenant) is None  # no snapshot yet
    at = datetime.combine(YESTERDAY, time(12), PARIS)
    await observe(db, tenant, account, None, at, followers=40)
    await rebuild(db, UUID(tenant.id), YESTERDAY, YESTERDAY, clock.now())
    made = await generation(db, tenant)
    assert made is not None
    await rebuild(db, UUID(tenant.id), YESTERDAY, YESTERDAY, clock.now())  # nothing changed
    assert await generation(db, tenant) == made
    await observe(db, tenant, account, None, at + timedelta(hours=1), followers=41)
    await rebuild(db, UUID(tenant.id), YESTERDAY, YESTERDAY, clock.now())
    assert await generation(db, tenant) == made + 1


def test_answers_are_dropped_least_recently_used_first_past_their_budget() -> None:
    answers = Answers(budget=10)
    answers.put("a", b"1234")
    answers.put("b", b"5678")
    assert answers.get("a") == b"1234"  # now the most recently used
    answers.put("c", b"90ab")  # 12 bytes: "b" goes
    assert answers.get("b") is None
    assert (answers.get("a"), answers.get("c"), answers.size) == (b"1234", b"90ab", 8)
    answers.put("a", b"12")  # replaced, not added
    assert answers.size == 6
    answers.put("huge", b"x" * 11)  # more than the whole budget: not kept
    assert answers.get("huge") is None
    assert Answers(budget=0).get("a") is None
    nothing = Answers(budget=0)
    nothing.put("a", b"1")
    assert nothing.get("a") is None
