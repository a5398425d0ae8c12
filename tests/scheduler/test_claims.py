"""Claiming due posts across workspaces, as the narrow scheduler role."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import select, text

from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import SCHEDULER_ROLE
from crier.models import Post
from crier.post.lifecycle import CLAIMABLE, IN_FLIGHT, LOCK_WINDOW, PostStatus
from crier.scheduler.repository import QUERIES, Claimed, claim_due, renew_leases
from tests.conftest import FakeClock, MakeTenant, Tenant, connect_as

# Moments no other test schedules near, so claims here only see this module's posts. Each
# test takes an era before the previous test's, so no lease it left can look expired.
EPOCH = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
_eras = iter(range(1, 1000))


@pytest.fixture
def now() -> datetime:
    return EPOCH - timedelta(days=100 * next(_eras))


def mine(claimed: list[Claimed], posts: set[UUID]) -> list[Claimed]:
    return [c for c in claimed if c.post_id in posts]


async def add_post(db: Database, tenant: Tenant, status: str, publish_at: datetime) -> UUID:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        post = Post(
            workspace_id=UUID(tenant.id),
            author_id=UUID(tenant.owner_id),
            status=status,
            publish_at=publish_at,
            payload={"text": "secret text"},
        )
        session.add(post)
        await session.flush()
        return post.id


async def test_the_scheduler_sees_only_what_it_needs(
    make_tenant: MakeTenant, db: Database, scheduler_db: Database, db_urls: DatabaseUrls
) -> None:
    a, b = await make_tenant(), await make_tenant()
    due_a = await add_post(db, a, "scheduled", EPOCH)
    due_b = await add_post(db, b, "scheduled", EPOCH)
    draft = await add_post(db, a, "draft", EPOCH)
    async with scheduler_db.engine.connect() as conn:
        visible = set(
            (
                await conn.execute(
                    text("SELECT id FROM posts WHERE publish_at = :at"), {"at": EPOCH}
                )
            ).scalars()
        )
    assert {due_a, due_b} <= visible
    assert draft not in visible
    with connect_as(db_urls, SCHEDULER_ROLE) as conn:
        for forbidden in (
            "SELECT payload FROM posts",
            "SELECT * FROM members",
            "SELECT * FROM social_accounts",
            "SELECT access_token FROM social_accounts",
            "SELECT refresh_token FROM social_accounts",
            "UPDATE social_accounts SET status = 'expired'",
            "UPDATE posts SET payload = '{}'",
            "SELECT url FROM webhook_endpoints",
            "SELECT secret FROM webhook_endpoints",
            "SELECT payload FROM webhook_events",
            "SELECT last_error FROM webhook_deliveries",
            "UPDATE webhook_deliveries SET status = 'succeeded'",
            "UPDATE webhook_endpoints SET enabled = false",
            "SELECT * FROM webhook_attempts",
            "SELECT * FROM reviews",
            "SELECT * FROM review_feeds",
            "SELECT page_token FROM review_syncs",
            "UPDATE review_syncs SET leased_until = now()",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(forbidden)
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
            conn.transaction(),
        ):
            conn.execute("UPDATE posts SET status = 'published' WHERE id = %s", [due_a])


async def test_due_posts_are_queued_once_across_workspaces(
    make_tenant: MakeTenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    a, b = await make_tenant(), await make_tenant()
    in_window = [
        await add_post(db, a, "scheduled", now + timedelta(minutes=4)),
        await add_post(db, b, "scheduled", now + timedelta(minutes=1)),
    ]
    later = await add_post(db, a, "scheduled", now + timedelta(minutes=6))
    cancelled = await add_post(db, b, "cancelled", now + timedelta(minutes=2))
    claimed = await claim_due(scheduler_db, "worker-1", now, LEASE, limit=10)
    assert [c.post_id for c in claimed] == [in_window[1], in_window[0]]  # by publish_at
    assert {c.status for c in claimed} == {"queued"}
    assert later not in {c.post_id for c in claimed}
    assert cancelled not in {c.post_id for c in claimed}
    assert await claim_due(scheduler_db, "worker-2", now, LEASE, limit=10) == []
    async with db.workspace_transaction(UUID(a.id)) as session:
        post = await session.get(Post, (UUID(a.id), in_window[0]))
        assert post is not None
        assert (post.status, post.lease_owner, post.version) == ("queued", "worker-1", 2)
        assert post.locked_at == now


async def test_an_expired_lease_passes_to_another_worker(
    make_tenant: MakeTenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    tenant = await make_tenant()
    post_id = await add_post(db, tenant, "scheduled", now)
    [first] = mine(await claim_due(scheduler_db, "worker-1", now, LEASE, limit=10), {post_id})
    early = now + LEASE - timedelta(seconds=1)
    assert mine(await claim_due(scheduler_db, "worker-2", early, LEASE, limit=10), {post_id}) == []
    late = await claim_due(scheduler_db, "worker-2", now + LEASE, LEASE, limit=10)
    [taken] = mine(late, {post_id})
    assert (taken.post_id, taken.status) == (first.post_id, "queued")
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        post = await session.get(Post, (UUID(tenant.id), post_id))
        assert post is not None
        assert (post.lease_owner, post.locked_at, post.version) == ("worker-2", now, 2)


async def test_renewal_extends_leases_and_never_waits_for_a_post_being_sent(
    make_tenant: MakeTenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    tenant = await make_tenant()
    workspace = UUID(tenant.id)
    sending, held = (
        await add_post(db, tenant, "scheduled", now),
        await add_post(db, tenant, "scheduled", now),
    )
    claimed = await claim_due(scheduler_db, "renewing-worker", now, LEASE, limit=10)
    assert {c.post_id for c in mine(claimed, {sending, held})} == {sending, held}

    async def expiries() -> dict[UUID, datetime | None]:
        async with db.workspace_transaction(workspace) as session:
            rows = await session.execute(
                select(Post.id, Post.lease_expires_at).where(Post.id.in_([sending, held]))
            )
            return {row.id: row.lease_expires_at for row in rows}

    later = now + LEASE / 2
    async with db.workspace_transaction(workspace) as locking:  # a worker mid-send
        await locking.execute(select(Post).where(Post.id == sending).with_for_update())
        renewed = await asyncio.wait_for(
            renew_leases(scheduler_db, "renewing-worker", later, LEASE), timeout=5
        )
        assert renewed >= 1
        assert await expiries() == {sending: now + LEASE, held: later + LEASE}
    await renew_leases(scheduler_db, "renewing-worker", later, LEASE)
    assert await expiries() == {sending: later + LEASE, held: later + LEASE}


async def test_concurrent_claims_never_share_a_post(
    make_tenant: MakeTenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    tenant = await make_tenant()
    posts = {await add_post(db, tenant, "scheduled", now + timedelta(seconds=i)) for i in range(12)}
    results = await asyncio.gather(
        *(claim_due(scheduler_db, f"worker-{i}", now, LEASE, limit=5) for i in range(4))
    )
    claimed = [c.post_id for result in results for c in result]
    assert len(claimed) == len(set(claimed)) == 12
    assert set(claimed) == posts


async def test_a_claimed_post_is_locked_for_the_api(
    tenant: Tenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    post_id = await add_post(db, tenant, "scheduled", now)
    before = (await tenant.get(f"/v1/posts/{post_id}")).headers["etag"]
    await claim_due(scheduler_db, "worker-1", now, LEASE, limit=10)
    after = await tenant.get(f"/v1/posts/{post_id}")
    assert after.json()["status"] == "queued"
    assert after.json()["locked"] is True
    assert after.headers["etag"] != before


async def test_expired_idempotency_keys_are_purged_and_only_those(
    tenant: Tenant, scheduler_db: Database, db: Database, clock: FakeClock
) -> None:
    from crier.kit.idempotency import purge_expired
    from crier.models import IdempotencyKey

    body = {"platform": "sandbox"}
    for key in ("old", "fresh"):
        await tenant.http.post(
            "/v1/social-accounts", json=body, headers={**tenant.auth, "Idempotency-Key": key}
        )
        if key == "old":
            clock.advance(timedelta(hours=12))
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        old = (
            await session.execute(select(IdempotencyKey).where(IdempotencyKey.key == "old"))
        ).scalar_one()
        # Expire it in the database's own time, which the purge policy reads.
        old.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    purged = await purge_expired(scheduler_db, datetime.now(UTC) + timedelta(hours=1))
    assert purged >= 1
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        left = set((await session.execute(select(IdempotencyKey.key))).scalars())
    assert left == {"fresh"}, "the fresh key outlives the purge: the policy reads the clock"
    with (
        connect_as(db.urls, SCHEDULER_ROLE) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT response_body FROM idempotency_keys")


async def test_the_scheduler_claims_no_earlier_than_the_lock_window(
    tenant: Tenant, db: Database, scheduler_db: Database, now: datetime
) -> None:
    """Claiming starts exactly when the API's lock does, not a moment before."""
    at_the_lock = await add_post(db, tenant, "scheduled", now + LOCK_WINDOW)
    before_it = await add_post(db, tenant, "scheduled", now + LOCK_WINDOW + timedelta(seconds=1))
    claimed = await claim_due(scheduler_db, "worker-1", now, LEASE, limit=10)
    assert mine(claimed, {at_the_lock, before_it}) == [
        Claimed(UUID(tenant.id), at_the_lock, now + LOCK_WINDOW, "queued")
    ]


def test_the_claim_query_takes_the_lifecycles_statuses() -> None:
    """The SQL spells out the statuses the lifecycle names: keep the two together."""
    sql = str(QUERIES["claim_due_posts"])
    [claimable] = CLAIMABLE
    assert f"(status = '{claimable}' AND publish_at <= :horizon)" in sql
    in_flight = ", ".join(f"'{s}'" for s in PostStatus if s in IN_FLIGHT)
    assert f"(status IN ({in_flight}) AND lease_expires_at <= :now)" in sql
