"""Webhook events about posts, written where the scheduler changes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crier.models import Post
from crier.post.views import view
from crier.webhook import events
from crier.webhook.events import EventType
from crier.workspace import repository as workspace_repository


async def announce(session: AsyncSession, now: datetime, type_: EventType, post: Post) -> None:
    """Write `type_` for `post`, with the post as the API shows it, in this transaction."""
    await announce_many(session, now, type_, [post])


async def announce_many(
    session: AsyncSession, now: datetime, type_: EventType, posts: Sequence[Post]
) -> None:
    """Write `type_` for each of a workspace's `posts`, as `announce` does."""
    if not posts:
        return
    await session.flush()
    workspace = await workspace_repository.get(session, posts[0].workspace_id)
    assert workspace is not None
    shown = await view(session, posts, workspace.timezone, now)
    await events.emit_many(session, now, type_, [(post, post.id) for post in shown])


# The events that mark a post's own steps, not its deliveries': a worker that takes over a
# post already announced as queued does not announce it again.
LIFECYCLE = frozenset(
    {
        EventType.POST_SCHEDULED,
        EventType.POST_UNSCHEDULED,
        EventType.POST_QUEUED,
        EventType.POST_PUBLISHED,
        EventType.POST_FAILED,
        EventType.POST_CANCELLED,
    }
)
