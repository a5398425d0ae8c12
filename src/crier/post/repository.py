"""Queries on posts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.models import Post

# Statuses of a post that has been, or is being, scheduled: what the monthly plan limit counts.
SCHEDULED_STATUSES = ("scheduled", "queued", "publishing", "published", "failed")


async def count_scheduled_between(
    session: AsyncSession, start: datetime, end: datetime, exclude: UUID | None = None
) -> int:
    """Posts scheduled to publish in `[start, end)`, leaving out `exclude`."""
    query = (
        select(func.count())
        .select_from(Post)
        .where(
            Post.status.in_(SCHEDULED_STATUSES),
            Post.publish_at >= start,
            Post.publish_at < end,
        )
    )
    if exclude is not None:
        query = query.where(Post.id != exclude)
    return int((await session.execute(query)).scalar_one())
