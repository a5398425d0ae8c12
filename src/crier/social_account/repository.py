"""Queries on social accounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.sql import any_of
from crier.models import OAuthGrant, OAuthState, PlatformApp, Post, PostTarget, SocialAccount
from crier.post.lifecycle import TO_PUBLISH


async def get(session: AsyncSession, account_id: UUID) -> SocialAccount | None:
    result = await session.execute(select(SocialAccount).where(SocialAccount.id == account_id))
    return result.scalar_one_or_none()


async def active_accounts(session: AsyncSession, platforms: Sequence[str]) -> list[SocialAccount]:
    """The workspace's active accounts on these platforms."""
    found = await session.scalars(
        select(SocialAccount).where(
            SocialAccount.status == "active", any_of(SocialAccount.platform, platforms)
        )
    )
    return list(found)


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
    "SELECT id, platform, status, token_expires_at, refresh_token, content_limits "
    "FROM social_accounts WHERE id = ANY(:ids)"
)


def targetable_statement(account_ids: Sequence[UUID]) -> Statement:
    """What a post needs to know of the accounts it targets (`id`, `platform`, `status`,
    `token_expires_at`, `refresh_token` (sealed), `content_limits`), to send with other
    statements."""
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
    session: AsyncSession,
    account_id: UUID,
    now: datetime,
    before: datetime | None,
    lease: timedelta,
) -> tuple[str, bytes, str | None, str] | None:
    """Take the account's refresh in hand until `now + lease`, if it is active, its token
    expires before `before` (whenever it expires, when None) and no other worker holds the
    refresh: its platform, sealed refresh token, server and id on the network; None
    otherwise."""
    due = [] if before is None else [SocialAccount.token_expires_at < before]
    result = await session.execute(
        update(SocialAccount)
        .where(
            SocialAccount.id == account_id,
            SocialAccount.status == "active",
            SocialAccount.refresh_token.is_not(None),
            *due,
            or_(SocialAccount.refreshing_until.is_(None), SocialAccount.refreshing_until <= now),
        )
        .values(refreshing_until=now + lease)
        .returning(
            SocialAccount.platform,
            SocialAccount.refresh_token,
            SocialAccount.server_url,
            SocialAccount.external_id,
        )
    )
    row = result.one_or_none()
    if row is None:
        return None
    return (row.platform, row.refresh_token, row.server_url, row.external_id)


async def refresh_held(session: AsyncSession, account_id: UUID, now: datetime) -> bool:
    """Whether another worker is refreshing the account's tokens right now."""
    result = await session.execute(
        select(SocialAccount.id).where(
            SocialAccount.id == account_id,
            SocialAccount.status == "active",
            SocialAccount.refreshing_until > now,
        )
    )
    return result.scalar_one_or_none() is not None


async def find_identity(
    session: AsyncSession, platform: str, external_id: str, server_url: str | None
) -> SocialAccount | None:
    """The account this workspace has for one identity on a network (the latest, locked)."""
    query = (
        select(SocialAccount)
        .where(
            SocialAccount.platform == platform,
            SocialAccount.external_id == external_id,
            SocialAccount.server_url.is_(None)
            if server_url is None
            else SocialAccount.server_url == server_url,
        )
        .order_by(SocialAccount.id.desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(query)).scalar_one_or_none()


async def scheduled_posts_targeting(
    session: AsyncSession, account_id: UUID, before: datetime | None = None, limit: int = 100
) -> list[UUID]:
    """Posts still to publish (scheduled, queued or publishing) with a target on the
    account, soonest first; only those due before `before` when given."""
    query = (
        select(Post.id)
        .join(
            PostTarget,
            and_(PostTarget.workspace_id == Post.workspace_id, PostTarget.post_id == Post.id),
        )
        .where(
            PostTarget.social_account_id == account_id,
            Post.status.in_(sorted(TO_PUBLISH)),
        )
        .order_by(Post.publish_at, Post.id)
        .limit(limit)
    )
    if before is not None:
        query = query.where(Post.publish_at < before)
    return list((await session.execute(query)).scalars())


async def find_app(
    session: AsyncSession, platform: str, server_url: str, redirect_uri: str, scopes: str
) -> PlatformApp | None:
    result = await session.execute(
        select(PlatformApp).where(
            PlatformApp.platform == platform,
            PlatformApp.server_url == server_url,
            PlatformApp.redirect_uri == redirect_uri,
            PlatformApp.scopes == scopes,
        )
    )
    return result.scalar_one_or_none()


async def add_app(session: AsyncSession, app: PlatformApp) -> PlatformApp:
    """Keep an app registered on a server; if another request kept one for the same server
    first, that one (both are valid; one is enough)."""
    inserted = await session.execute(
        insert(PlatformApp)
        .values(
            id=app.id,
            platform=app.platform,
            server_url=app.server_url,
            redirect_uri=app.redirect_uri,
            scopes=app.scopes,
            client_id=app.client_id,
            client_secret=app.client_secret,
        )
        .on_conflict_do_nothing()
        .returning(PlatformApp.id)
    )
    if inserted.scalar_one_or_none() is None:
        kept = await find_app(session, app.platform, app.server_url, app.redirect_uri, app.scopes)
        assert kept is not None
        return kept
    found = await session.get(PlatformApp, app.id)
    assert found is not None
    return found


async def get_app(session: AsyncSession, app_id: UUID) -> PlatformApp | None:
    return await session.get(PlatformApp, app_id)


async def state_by_secret(session: AsyncSession, secret_hash: bytes) -> OAuthState | None:
    """The workspace's consent under way with this secret, locked."""
    result = await session.execute(
        select(OAuthState).where(OAuthState.secret_hash == secret_hash).with_for_update()
    )
    return result.scalar_one_or_none()


async def purge_states(session: AsyncSession, before: datetime) -> None:
    """Forget the workspace's consents that ended (or expired) before `before`."""
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < before))


async def purge_grants(session: AsyncSession, now: datetime, before: datetime) -> None:
    """Erase the tokens of the workspace's consents whose hour has passed, and forget
    those that ended before `before`."""
    await session.execute(delete(OAuthGrant).where(OAuthGrant.expires_at < before))
    await session.execute(
        update(OAuthGrant)
        .where(OAuthGrant.expires_at <= now, OAuthGrant.access_token.is_not(None))
        .values(access_token=None, refresh_token=None)
    )


async def accounts_with_ids(
    session: AsyncSession, platform: str, external_ids: list[str]
) -> dict[str, UUID]:
    """The workspace's accounts (not disconnected) on `platform` with these external ids."""
    found = await session.execute(
        select(SocialAccount.external_id, SocialAccount.id).where(
            SocialAccount.platform == platform,
            any_of(SocialAccount.external_id, external_ids),
            SocialAccount.status != "disconnected",
        )
    )
    return {row.external_id: row.id for row in found}
