"""A post as the API shows it: UTC and local time, lock state, targets, and warnings
about the offset it was sent with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crier.models import Post, PostTarget
from crier.post import repository
from crier.post.lifecycle import PostStatus, is_locked
from crier.post.schemas import Post as PostOut
from crier.post.schemas import PostPayload, Target, Warning
from crier.social_account.schemas import Platform


def offset_warnings(sent: datetime | None, timezone: str) -> list[Warning]:
    """Warn when the offset sent is not the zone's offset at that instant (a DST slip)."""
    if sent is None:
        return []
    local = sent.astimezone(ZoneInfo(timezone))
    if local.utcoffset() == sent.utcoffset():
        return []
    return [
        Warning(
            code="offset_mismatch",
            message=(
                f"publish_at was sent as {sent.isoformat()}, but at that instant {timezone} "
                f"is at UTC{local.strftime('%z')[:3]}:{local.strftime('%z')[3:]}: the post "
                f"will publish at {local.isoformat()} local time "
                f"({sent.astimezone(UTC).isoformat().replace('+00:00', 'Z')})."
            ),
        )
    ]


class _Shown(Protocol):
    """What showing a post reads: a `Post` row, or the same columns from a query."""

    id: UUID
    status: str
    payload: dict[str, Any]
    publish_at: datetime | None
    timezone: str | None
    author_id: UUID
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: UUID | None


def show(
    post: _Shown,
    targets: list[Target],
    workspace_tz: str,
    now: datetime,
    warnings: list[Warning] | None = None,
) -> PostOut:
    """A post as the API shows it, with local time and lock state."""
    timezone = post.timezone or workspace_tz
    return PostOut(
        id=post.id,
        status=PostStatus(post.status),
        payload=PostPayload.model_validate(post.payload),
        targets=targets,
        publish_at=post.publish_at.astimezone(UTC) if post.publish_at else None,
        publish_at_local=post.publish_at.astimezone(ZoneInfo(timezone))
        if post.publish_at
        else None,
        timezone=timezone,
        timezone_is_workspace_default=post.timezone is None,
        locked=is_locked(post, now),
        author_id=post.author_id,
        version=post.version,
        created_at=post.created_at,
        updated_at=post.updated_at,
        published_at=post.published_at,
        cancelled_at=post.cancelled_at,
        cancelled_by=post.cancelled_by,
        warnings=warnings or [],
    )


async def view(
    session: AsyncSession,
    posts: Sequence[Post],
    workspace_tz: str,
    now: datetime,
    warnings: list[Warning] | None = None,
    targets: dict[UUID, list[tuple[PostTarget, str]]] | None = None,
) -> list[PostOut]:
    """Posts as the API shows them, with targets, local time and lock state."""
    if targets is None:
        targets = await repository.targets_of(session, [p.id for p in posts])
    return [
        show(
            post,
            [
                Target(
                    id=t.id,
                    social_account_id=t.social_account_id,
                    platform=Platform(platform),
                    platform_settings=t.platform_settings,
                )
                for t, platform in targets[post.id]
            ],
            workspace_tz,
            now,
            warnings,
        )
        for post in posts
    ]
