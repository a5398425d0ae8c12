"""Queries on media assets and the posts that use them."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.sql import any_of
from crier.models import MediaAsset, Post, PostMedia

# While a post is in one of these, its media must stay: it is about to be published.
PINNING_STATUSES = ("scheduled", "queued", "publishing")


async def get(session: AsyncSession, media_id: UUID, *, lock: bool = False) -> MediaAsset | None:
    query = select(MediaAsset).where(MediaAsset.id == media_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_many(
    session: AsyncSession, media_ids: Sequence[UUID], *, share_lock: bool = False
) -> dict[UUID, MediaAsset]:
    """The assets among `media_ids` that exist here; with `share_lock`, none can be deleted
    until this transaction ends."""
    if not media_ids:
        return {}
    query = select(MediaAsset).where(any_of(MediaAsset.id, media_ids))
    if share_lock:
        query = query.with_for_update(key_share=True, read=True)
    return {m.id: m for m in (await session.execute(query)).scalars()}


_ATTACHABLE = text("SELECT id, category, size_bytes FROM media_assets WHERE id = ANY(:ids)")
_ATTACHABLE_HELD = text(_ATTACHABLE.text + " FOR KEY SHARE")


def attachable_statement(media_ids: Sequence[UUID], *, share_lock: bool) -> Statement:
    """What a post needs to know of the media it attaches (`id`, `category`, `size_bytes`),
    to send with other statements; with `share_lock`, as `get_many`."""
    return (_ATTACHABLE_HELD if share_lock else _ATTACHABLE), {"ids": list(media_ids)}


async def list_media(
    session: AsyncSession, *, category: str | None, after: UUID | None, limit: int
) -> list[MediaAsset]:
    query = select(MediaAsset).order_by(MediaAsset.id).limit(limit)
    if category is not None:
        query = query.where(MediaAsset.category == category)
    if after is not None:
        query = query.where(MediaAsset.id > after)
    return list((await session.execute(query)).scalars())


async def pinning_posts(session: AsyncSession, media_id: UUID) -> list[UUID]:
    """Posts about to publish with this asset."""
    query = (
        select(Post.id)
        .join(
            PostMedia,
            (PostMedia.workspace_id == Post.workspace_id) & (PostMedia.post_id == Post.id),
        )
        .where(PostMedia.media_id == media_id, Post.status.in_(PINNING_STATUSES))
        .order_by(Post.id)
    )
    return list((await session.execute(query)).scalars())
