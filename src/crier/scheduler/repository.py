"""The scheduler's queries: claiming due posts across workspaces, renewing leases, and
workers' heartbeats, as the scheduler role (crier_scheduler)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from crier.kit.db import Database
from crier.kit.sql import queries
from crier.post.lifecycle import LOCK_WINDOW

QUERIES = queries(__file__, "queries.sql")


@dataclass(frozen=True)
class Claimed:
    workspace_id: UUID
    post_id: UUID
    publish_at: datetime
    status: str


async def claim_due(
    scheduler_db: Database, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Claim up to `limit` posts due within the lock window, when they lock (or with expired
    leases), for `worker`: never earlier, so the API's edits stay possible until then."""
    async with scheduler_db.engine.begin() as conn:
        rows = await conn.execute(
            QUERIES["claim_due_posts"],
            {
                "worker": worker,
                "now": now,
                "horizon": now + LOCK_WINDOW,
                "lease_until": now + lease,
                "limit": limit,
            },
        )
        # RETURNING follows the plan, not the ORDER BY: sort, so the soonest come first.
        claimed = [Claimed(r.workspace_id, r.id, r.publish_at, r.status) for r in rows]
        return sorted(claimed, key=lambda c: c.publish_at)


async def renew_leases(scheduler_db: Database, worker: str, now: datetime, lease: timedelta) -> int:
    """Extend the leases `worker` holds, but for posts locked at this moment (the next
    renewal takes those); returns how many were extended."""
    async with scheduler_db.engine.begin() as conn:
        rows = await conn.execute(
            QUERIES["renew_leases"], {"worker": worker, "lease_until": now + lease}
        )
        return len(rows.all())


async def beat(scheduler_db: Database, worker: str, now: datetime) -> None:
    """`worker` is alive at `now` (its heartbeat)."""
    async with scheduler_db.engine.begin() as conn:
        await conn.execute(QUERIES["beat"], {"worker": worker, "now": now})


async def take_from_the_dead(scheduler_db: Database, now: datetime, silence: timedelta) -> int:
    """End the leases of the posts held, not being sent, by workers silent for `silence`
    (taken for dead), so that the next claim takes them; how many posts that frees."""
    async with scheduler_db.engine.begin() as conn:
        rows = await conn.execute(
            QUERIES["take_from_the_dead"], {"now": now, "stale": now - silence}
        )
        return len(rows.all())


async def release(scheduler_db: Database, worker: str, now: datetime) -> int:
    """`worker` stops: end its heartbeat and the leases of the posts it holds that are not
    being sent, for other workers to take at once; how many posts that frees."""
    async with scheduler_db.engine.begin() as conn:
        rows = await conn.execute(QUERIES["release"], {"worker": worker, "now": now})
        return len(rows.all())


async def accounts_to_refresh(
    scheduler_db: Database, now: datetime, before: datetime, limit: int
) -> list[tuple[UUID, UUID]]:
    """Active accounts (workspace and id) whose tokens expire before `before` and that no
    worker is refreshing, soonest first; at most `limit`."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(
            QUERIES["accounts_to_refresh"], {"now": now, "before": before, "limit": limit}
        )
        return [(r.workspace_id, r.id) for r in rows]


async def queue_depth(scheduler_db: Database, now: datetime) -> int:
    async with scheduler_db.engine.connect() as conn:
        result = await conn.execute(QUERIES["queue_depth"], {"horizon": now + LOCK_WINDOW})
        return int(result.scalar_one())
