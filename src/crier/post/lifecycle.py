"""A post's lifecycle, in one place: its statuses, the lock before publishing, which
statuses may be edited, cancelled or claimed, and the one way a post changes status.

    draft -> scheduled -> queued -> publishing -> published | failed
    draft, scheduled, queued -> cancelled;  scheduled -> draft;  failed -> scheduled (retry)

Every change of a post goes through `move` (a step, checked, at a new version: its ETag)
or `revise` (new content, same status). Two steps are taken in bulk in SQL instead, by
the same rules: claiming (`scheduler/queries.sql`, `claim_due_posts`) queues the
`CLAIMABLE` posts due within `LOCK_WINDOW` at one version more, and sending
(`post/queries.sql`, `mark_publishing`) marks queued posts publishing, leaving the
version, since a locked post's ETag can change nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class PostStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"


LOCK_WINDOW = timedelta(minutes=5)
"""From this long before its time a scheduled post is locked, and the scheduler claims it."""

EDITABLE = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED})
"""May be edited, rescheduled or unscheduled (a scheduled one only until it is locked)."""
CANCELLABLE = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.QUEUED})
"""May be cancelled: anything not yet being sent, even in its last minutes."""
CLAIMABLE = frozenset({PostStatus.SCHEDULED})
"""Claimed by the scheduler once due within `LOCK_WINDOW`."""
IN_FLIGHT = frozenset({PostStatus.QUEUED, PostStatus.PUBLISHING})
"""Held by a worker on a lease; claimed again only when that lease lapses."""
TO_PUBLISH = CLAIMABLE | IN_FLIGHT
"""Still to publish: what keeps its accounts and media from being removed."""

_STEPS: dict[PostStatus, frozenset[PostStatus]] = {
    PostStatus.DRAFT: frozenset({PostStatus.SCHEDULED, PostStatus.CANCELLED}),
    PostStatus.SCHEDULED: frozenset(
        {PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.CANCELLED}
    ),
    PostStatus.QUEUED: frozenset(
        {PostStatus.PUBLISHING, PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.CANCELLED}
    ),
    PostStatus.PUBLISHING: frozenset({PostStatus.PUBLISHED, PostStatus.FAILED}),
    PostStatus.FAILED: frozenset({PostStatus.SCHEDULED}),
    PostStatus.PUBLISHED: frozenset(),
    PostStatus.CANCELLED: frozenset(),
}


class _Timed(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def publish_at(self) -> datetime | None: ...


class _Versioned(Protocol):
    status: str
    version: int


class IllegalStep(RuntimeError):
    """A move the lifecycle does not have: a defect in Crier, never the client's doing."""


def is_locked(post: _Timed, now: datetime) -> bool:
    """Locked from `LOCK_WINDOW` before `publish_at` (a rule of time, not of worker progress),
    and while a worker holds it."""
    if post.status in IN_FLIGHT:
        return True
    return (
        post.status == PostStatus.SCHEDULED
        and post.publish_at is not None
        and now >= post.publish_at - LOCK_WINDOW
    )


def move(post: _Versioned, to: PostStatus) -> None:
    """Move `post` to `to`, one of the steps its status allows, at a new version."""
    current = PostStatus(post.status)
    if to not in _STEPS[current]:
        raise IllegalStep(f"a {current} post cannot become {to}")
    post.status = to.value
    revise(post)


def revise(post: _Versioned) -> None:
    """A new version of `post` in the status it has: its content changed."""
    post.version += 1
