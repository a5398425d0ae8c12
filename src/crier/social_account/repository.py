"""Queries on social accounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.sql import any_of
from crier.models import PostTarget, SocialAccount


async def get(session: AsyncSession, account_id: UUID) -> SocialAccount | None:
    result = await session.execute(select(SocialAccount).where(SocialAccount.id == account_id))
    return result.scalar_one_or_none()


async def list_accounts(
    session: AsyncSession,
    *,
    platform: str | None,
    status: str | None,
    after: UUID | None,
    limit: int,
) -> list[SocialAccount]:
    query = select(SocialAccount).order_by(SocialAccount.id).limit(limit)
    if platform is not None:
        query = query.where(SocialAccount.platform == platform)
    if status is not None:
        query = query.where(SocialAccount.status == status)
    if after is not None:
        query = query.where(SocialAccount.id > after)
    return list((await session.execute(query)).scalars())


async def count_connected(session: AsyncSession) -> int:
    """Accounts that count against the plan: all but disconnected ones."""
    result = await session.execute(
        select(func.count())
        .select_from(SocialAccount)
        .where(SocialAccount.status != "disconnected")
    )
    return int(result.scalar_one())


_TARGETABLE = text(
    "SELECT id, platform, status, token_expires_at FROM social_accounts WHERE id = ANY(:ids)"
)


def targetable_statement(account_ids: Sequence[UUID]) -> Statement:
    """What a post needs to know of the accounts it targets (`id`, `platform`, `status`,
    `token_expires_at`), to send with other statements."""
    return _TARGETABLE, {"ids": list(account_ids)}


async def get_many(session: AsyncSession, account_ids: list[UUID]) -> dict[UUID, SocialAccount]:
    if not account_ids:
        return {}
    result = await session.execute(
        select(SocialAccount).where(any_of(SocialAccount.id, account_ids))
    )
    return {a.id: a for a in result.scalars()}


async def expiring_for_posts(
    session: AsyncSession, post_ids: Sequence[UUID], before: datetime
) -> list[UUID]:
    """The active accounts targeted by `post_ids` whose token expires before `before`."""
    query = (
        select(SocialAccount.id)
        .distinct()
        .join(
            PostTarget,
            and_(
                PostTarget.workspace_id == SocialAccount.workspace_id,
                PostTarget.social_account_id == SocialAccount.id,
            ),
        )
        .where(
            any_of(PostTarget.post_id, post_ids),
            SocialAccount.status == "active",
            SocialAccount.token_expires_at.is_not(None),
            SocialAccount.token_expires_at < before,
        )
    )
    return list((await session.execute(query)).scalars())


async def take_refresh(
    session: AsyncSession, account_id: UUID, now: datetime, before: datetime, lease: timedelta
) -> tuple[str, bytes] | None:
    """Take the account's refresh in hand until `now + lease`, if it is active, its token
    expires before `before` and no other worker holds the refresh: its platform and sealed
    refresh token; None otherwise."""
    result = await session.execute(
        update(SocialAccount)
        .where(
            SocialAccount.id == account_id,
            SocialAccount.status == "active",
            SocialAccount.refresh_token.is_not(None),
            SocialAccount.token_expires_at < before,
            or_(SocialAccount.refreshing_until.is_(None), SocialAccount.refreshing_until <= now),
        )
        .values(refreshing_until=now + lease)
        .returning(SocialAccount.platform, SocialAccount.refresh_token)
    )
    row = result.one_or_none()
    return (row.platform, row.refresh_token) if row is not None else None
