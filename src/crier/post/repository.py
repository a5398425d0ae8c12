"""Queries on posts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.ids import new_id
from crier.kit.sql import any_of, queries
from crier.models import Post, PostMedia, PostTarget, ScheduledPostMonth, SocialAccount
from crier.post.schemas import TargetIn

QUERIES = queries(__file__, "queries.sql")


async def scheduled_in_month(session: AsyncSession, month_start: datetime) -> int:
    """Posts scheduled (or published) in the workspace's month starting at `month_start`."""
    count = await session.scalar(
        select(ScheduledPostMonth.scheduled).where(ScheduledPostMonth.month_start == month_start)
    )
    return count or 0


async def recount_scheduled(session: AsyncSession) -> None:
    """Count the workspace's months afresh (after its timezone changed)."""
    await session.execute(text("SELECT crier_recount_scheduled()"))


async def get(session: AsyncSession, post_id: UUID, *, lock: bool = False) -> Post | None:
    """A post; with `lock`, held until commit so that concurrent changes queue up."""
    query = select(Post).where(Post.id == post_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


@dataclass(frozen=True)
class ToSend:
    """A post a worker is about to send, as it reads it (locked)."""

    id: UUID
    payload: dict[str, Any]
    publish_at: datetime | None


def begin_publishing_statement(post_ids: Sequence[UUID], worker: str, now: datetime) -> Statement:
    """The posts among `post_ids` still `worker`'s to send, locked in id order, now
    `publishing` (rows for `ToSend`), to send with other statements."""
    return QUERIES["begin_publishing"], {"post_ids": list(post_ids), "worker": worker, "now": now}


def with_targets_statement(post_id: UUID) -> Statement:
    """A post (as a row) with its targets (`targets`: a list of dicts with each account's
    `platform`), to run in one round trip with others (`Database.read_at_once`)."""
    return QUERIES["post_with_targets"], {"id": post_id}


async def get_many(
    session: AsyncSession, post_ids: Sequence[UUID], *, lock: bool = False
) -> list[Post]:
    """The posts among `post_ids` that exist here, in id order (the order locks are taken)."""
    query = select(Post).where(any_of(Post.id, post_ids)).order_by(Post.id)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class PostFilter:
    """Which posts a list shows (every one by default)."""

    statuses: Sequence[str] = ()
    publish_after: datetime | None = None
    """At or after this instant."""
    publish_before: datetime | None = None
    """Before this instant."""
    social_account_id: UUID | None = None
    """Targeting this account."""


async def list_posts(
    session: AsyncSession, shown: PostFilter, after: UUID | None, limit: int
) -> list[Post]:
    """Up to `limit` posts `shown` lets through, in id order, after the id `after`."""
    query = select(Post).order_by(Post.id).limit(limit)
    if shown.statuses:
        query = query.where(Post.status.in_(list(shown.statuses)))
    if shown.publish_after is not None:
        query = query.where(Post.publish_at >= shown.publish_after)
    if shown.publish_before is not None:
        query = query.where(Post.publish_at < shown.publish_before)
    if shown.social_account_id is not None:
        query = query.where(
            exists().where(
                PostTarget.workspace_id == Post.workspace_id,
                PostTarget.post_id == Post.id,
                PostTarget.social_account_id == shown.social_account_id,
            )
        )
    if after is not None:
        query = query.where(Post.id > after)
    return list((await session.execute(query)).scalars())


async def targets_of(
    session: AsyncSession, post_ids: Sequence[UUID]
) -> dict[UUID, list[tuple[PostTarget, str]]]:
    """The targets of each post, with each target account's platform, in creation order."""
    found: dict[UUID, list[tuple[PostTarget, str]]] = {p: [] for p in post_ids}
    if not post_ids:
        return found
    rows = await session.execute(
        select(PostTarget, SocialAccount.platform)
        .join(
            SocialAccount,
            (SocialAccount.workspace_id == PostTarget.workspace_id)
            & (SocialAccount.id == PostTarget.social_account_id),
        )
        .where(any_of(PostTarget.post_id, post_ids))
        .order_by(PostTarget.id)
    )
    for target, platform in rows.all():
        found[target.post_id].append((target, platform))
    return found


def insert_statement(
    workspace_id: UUID,
    post: Any,
    targets: Sequence[tuple[UUID, TargetIn]],
    media_ids: Sequence[UUID],
    scheduled_limit: int | None,
) -> Statement:
    """A new post (its columns as attributes of `post`) with its targets (each with its
    id) and media links, as one statement. With `scheduled_limit`, the transaction is held
    to that many scheduled posts a month (see `workspace.service.scheduled_posts_limit`)."""
    return QUERIES["insert_post"], {
        "workspace_id": workspace_id,
        "id": post.id,
        "author_id": post.author_id,
        "status": post.status,
        "publish_at": post.publish_at,
        "timezone": post.timezone,
        "payload": json.dumps(post.payload),
        "created_at": post.created_at,
        "targets": json.dumps(
            [
                {
                    "id": str(target_id),
                    "social_account_id": str(t.social_account_id),
                    "platform_settings": t.platform_settings,
                }
                for target_id, t in targets
            ]
        ),
        "media_link_ids": [new_id() for _ in media_ids],
        "media_ids": list(media_ids),
        "scheduled_limit": str(scheduled_limit) if scheduled_limit is not None else None,
    }


async def replace_targets(
    session: AsyncSession, post: Post, wanted: Sequence[tuple[UUID, dict[str, Any]]]
) -> None:
    """Make the post's targets exactly `wanted`, keeping the rows of accounts that stay."""
    current = {
        t.social_account_id: t
        for t in (
            await session.execute(select(PostTarget).where(PostTarget.post_id == post.id))
        ).scalars()
    }
    keep = {account for account, _ in wanted}
    for account, target in current.items():
        if account not in keep:
            await session.delete(target)
    for account, settings in wanted:
        if account in current:
            current[account].platform_settings = settings
        else:
            session.add(
                PostTarget(
                    workspace_id=post.workspace_id,
                    post_id=post.id,
                    social_account_id=account,
                    platform_settings=settings,
                )
            )


async def replace_media_links(session: AsyncSession, post: Post, media_ids: Sequence[UUID]) -> None:
    """Make the post's media links exactly `media_ids` (a trigger keeps usage counts)."""
    current = set(
        (
            await session.execute(select(PostMedia.media_id).where(PostMedia.post_id == post.id))
        ).scalars()
    )
    wanted = set(media_ids)
    if current - wanted:
        await session.execute(
            delete(PostMedia).where(
                PostMedia.post_id == post.id, PostMedia.media_id.in_(list(current - wanted))
            )
        )
    for media_id in media_ids:
        if media_id not in current:
            session.add(
                PostMedia(workspace_id=post.workspace_id, post_id=post.id, media_id=media_id)
            )


async def release_media(session: AsyncSession, post: Post) -> None:
    await session.execute(delete(PostMedia).where(PostMedia.post_id == post.id))
