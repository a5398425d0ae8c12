"""Queries on members and users."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import present_user_email
from crier.models import Member, User


async def get(session: AsyncSession, member_id: UUID) -> Member | None:
    result = await session.execute(select(Member).where(Member.id == member_id))
    return result.scalar_one_or_none()


async def get_with_email(session: AsyncSession, member_id: UUID) -> tuple[Member, str] | None:
    result = await session.execute(
        select(Member, User.email)
        .join(User, User.id == Member.user_id)
        .where(Member.id == member_id, Member.removed_at.is_(None))
    )
    row = result.one_or_none()
    return (row[0], row[1]) if row else None


async def list_members(
    session: AsyncSession, *, after: UUID | None, limit: int
) -> list[tuple[Member, str]]:
    """Current members in id (joining) order."""
    query = (
        select(Member, User.email)
        .join(User, User.id == Member.user_id)
        .where(Member.removed_at.is_(None))
        .order_by(Member.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Member.id > after)
    return [(m, e) for m, e in (await session.execute(query)).all()]


async def by_user(session: AsyncSession, user_id: UUID) -> Member | None:
    """The membership of `user_id` in this workspace, current or past."""
    result = await session.execute(select(Member).where(Member.user_id == user_id))
    return result.scalar_one_or_none()


async def count_active(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count()).select_from(Member).where(Member.removed_at.is_(None))
    )
    return int(result.scalar_one())


async def lock_owners(session: AsyncSession) -> list[Member]:
    """The current owners, locked so that two requests cannot each remove 'another' owner."""
    result = await session.execute(
        select(Member)
        .where(Member.role == "owner", Member.removed_at.is_(None))
        .order_by(Member.id)
        .with_for_update()
    )
    return list(result.scalars())


async def ensure_user(session: AsyncSession, email: str) -> UUID:
    """The id of the user with `email`, created if no workspace has met them yet."""
    email = email.lower()
    await present_user_email(session, email)
    await session.execute(
        insert(User).values(email=email).on_conflict_do_nothing(index_elements=["email"])
    )
    user_id = (await session.execute(select(User.id).where(User.email == email))).scalar_one()
    return user_id
