"""Queries on API keys. Row Level Security limits every one of them to the workspace."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crier.models import ApiKey


async def key_by_hash(session: AsyncSession, secret_hash: bytes) -> ApiKey | None:
    """The key with this secret hash; visible only once the hash has been presented."""
    result = await session.execute(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, key_id: UUID) -> ApiKey | None:
    result = await session.execute(select(ApiKey).where(ApiKey.id == key_id))
    return result.scalar_one_or_none()


async def list_keys(
    session: AsyncSession, *, member_id: UUID | None, after: UUID | None, limit: int
) -> list[ApiKey]:
    """Keys in id order (creation order), `limit` of them after `after`."""
    query = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if member_id is not None:
        query = query.where(ApiKey.member_id == member_id)
    if after is not None:
        query = query.where(ApiKey.id > after)
    return list((await session.execute(query)).scalars())


async def revoke_member_keys(session: AsyncSession, member_id: UUID, when: datetime) -> None:
    """Revoke every live key of a member."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.member_id == member_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=when)
    )
