"""Queries on webhook events, deliveries and attempts: the outbox's SQL, in one place.

Everything runs as crier_app inside one workspace, but claiming due deliveries and purging
old events, which run as crier_scheduler across workspaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crier.kit.db import Database
from crier.kit.db.engine import Statement
from crier.kit.sql import queries

QUERIES = queries(__file__, "queries.sql")
_NOTIFY = text("SELECT pg_notify(:channel, '')")


def emit_events_statement(params: dict[str, Any]) -> Statement:
    """Writes events of one type for every endpoint that wants them (see queries.sql)."""
    return QUERIES["emit_events"], params


async def notify(session: AsyncSession, channel: str) -> None:
    """Wake the listeners of `channel` when this transaction commits."""
    await session.execute(_NOTIFY, {"channel": channel})


async def latest_post_events(
    session: AsyncSession, post_ids: Sequence[UUID], types: Sequence[str]
) -> dict[UUID, str]:
    """For each post, the type of its latest event among `types` (posts with none left out)."""
    found = await session.execute(
        QUERIES["latest_post_events"], {"posts": list(post_ids), "types": list(types)}
    )
    return {row.subject_id: row.type for row in found}


async def claim_due_deliveries(conn: AsyncConnection, **params: Any) -> Sequence[Row[Any]]:
    """Claim deliveries due to be sent, as crier_scheduler (see queries.sql for `params`)."""
    return (await conn.execute(QUERIES["claim_due_deliveries"], params)).all()


async def load_deliveries(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, Row[Any]]:
    """Claimed deliveries with what sending each needs, by id."""
    rows = await session.execute(QUERIES["load_deliveries"], {"ids": list(ids)})
    return {row.id: row for row in rows}


async def record_successes(session: AsyncSession, **params: Any) -> None:
    """Record successful calls and their attempts, in one statement (see queries.sql)."""
    await session.execute(QUERIES["record_successes"], params)


async def purge_events(scheduler_db: Database, before: datetime, limit: int = 1000) -> int:
    """Delete settled webhook events older than `before` in every workspace (with their
    deliveries and attempts); returns how many went."""
    async with scheduler_db.engine.begin() as conn:
        result = await conn.execute(
            QUERIES["purge_webhook_events"], {"before": before, "limit": limit}
        )
        return int(result.rowcount or 0)
