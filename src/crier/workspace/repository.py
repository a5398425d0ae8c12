"""Queries on the workspace row."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.models import Workspace


async def get(session: AsyncSession, workspace_id: UUID) -> Workspace | None:
    result = await session.execute(select(Workspace).where(Workspace.id == workspace_id))
    return result.scalar_one_or_none()


async def lock(session: AsyncSession, workspace_id: UUID, *, exclusive: bool = False) -> Workspace:
    """The workspace row, locked until commit: serialises checks of plan limits.

    FOR NO KEY UPDATE, not FOR UPDATE: rows inserted with a foreign key to the workspace
    hold KEY SHARE on it, which FOR UPDATE would wait for; two such transactions would
    deadlock each other. With `exclusive`, FOR UPDATE all the same, to wait for (and hold
    off) every transaction holding KEY SHARE; the caller must not have inserted any such row
    before.
    """
    result = await session.execute(
        select(Workspace)
        .where(Workspace.id == workspace_id)
        .with_for_update(key_share=not exclusive)
    )
    return result.scalar_one()


async def by_slug(session: AsyncSession, slug: str) -> Workspace | None:
    """The workspace named `slug`; its slug must have been presented first."""
    result = await session.execute(select(Workspace).where(Workspace.slug == slug))
    return result.scalar_one_or_none()
