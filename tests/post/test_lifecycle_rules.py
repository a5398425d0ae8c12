"""The lifecycle's rules on their own: the steps a post may take, versions, the lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from crier.post.lifecycle import (
    CANCELLABLE,
    CLAIMABLE,
    EDITABLE,
    IN_FLIGHT,
    LOCK_WINDOW,
    IllegalStep,
    PostStatus,
    is_locked,
    move,
    revise,
)

NOW = datetime(2027, 3, 14, 6, 59, tzinfo=UTC)


@dataclass
class Row:
    status: str
    version: int = 1
    publish_at: datetime | None = None


def test_each_step_gives_a_new_version_and_the_journey_is_the_documented_one() -> None:
    post = Row(PostStatus.DRAFT)
    for step in (
        PostStatus.SCHEDULED,
        PostStatus.DRAFT,
        PostStatus.SCHEDULED,
        PostStatus.SCHEDULED,  # rescheduled
        PostStatus.QUEUED,
        PostStatus.PUBLISHING,
        PostStatus.FAILED,
        PostStatus.SCHEDULED,  # retried
        PostStatus.QUEUED,
        PostStatus.PUBLISHED,
    ):
        before = post.version
        move(post, step)
        assert (post.status, post.version) == (step, before + 1)
    revise(post)
    assert (post.status, post.version) == (PostStatus.PUBLISHED, 12)


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (PostStatus.DRAFT, PostStatus.QUEUED),  # only the scheduler queues, and only scheduled
        (PostStatus.DRAFT, PostStatus.PUBLISHED),
        (PostStatus.PUBLISHING, PostStatus.CANCELLED),  # too late to cancel
        (PostStatus.PUBLISHED, PostStatus.SCHEDULED),
        (PostStatus.CANCELLED, PostStatus.SCHEDULED),
        (PostStatus.FAILED, PostStatus.DRAFT),
    ],
)
def test_a_step_the_lifecycle_lacks_is_refused_and_changes_nothing(
    start: PostStatus, to: PostStatus
) -> None:
    post = Row(start, version=4)
    with pytest.raises(IllegalStep):
        move(post, to)
    assert (post.status, post.version) == (start, 4)


def test_the_sets_agree_with_the_steps() -> None:
    assert {PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.QUEUED} == CANCELLABLE
    assert EDITABLE < CANCELLABLE
    assert CLAIMABLE <= EDITABLE
    assert not IN_FLIGHT & EDITABLE
    for status in CANCELLABLE:
        move(Row(status), PostStatus.CANCELLED)


def test_a_scheduled_post_locks_at_the_window_and_an_in_flight_one_always() -> None:
    at = NOW + LOCK_WINDOW
    assert not is_locked(Row(PostStatus.SCHEDULED, publish_at=at), NOW - timedelta(seconds=1))
    assert is_locked(Row(PostStatus.SCHEDULED, publish_at=at), NOW)
    assert not is_locked(Row(PostStatus.DRAFT, publish_at=at), NOW)
    for status in IN_FLIGHT:
        assert is_locked(Row(status, publish_at=at + timedelta(days=1)), NOW)
