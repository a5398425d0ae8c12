"""The event catalogue and the outbox: events are written in the transaction that causes
them, so a rolled-back change emits nothing and a committed one is never lost."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.ids import new_id
from crier.webhook import repository

CHANNEL = "crier_webhooks"


class EventType(StrEnum):
    POST_SCHEDULED = "post.scheduled"
    POST_UNSCHEDULED = "post.unscheduled"
    POST_QUEUED = "post.queued"
    POST_PUBLISHED = "post.published"
    POST_FAILED = "post.failed"
    POST_CANCELLED = "post.cancelled"
    POST_DELIVERY_PUBLISHED = "post.delivery.published"
    POST_DELIVERY_FAILED = "post.delivery.failed"
    SOCIAL_ACCOUNT_EXPIRED = "social_account.expired"
    MEDIA_DELETED = "media.deleted"
    REVIEW_CREATED = "review.created"
    REVIEW_UPDATED = "review.updated"
    REVIEW_REPLIED = "review.replied"
    REVIEW_REPLY_FAILED = "review.reply_failed"
    REVIEW_ALERT = "review.alert"
    ANALYTICS_EXPORT_READY = "analytics.export.ready"
    ANALYTICS_EXPORT_FAILED = "analytics.export.failed"
    WEBHOOK_TEST = "webhook.test"


DESCRIPTIONS: dict[EventType, str] = {
    EventType.POST_SCHEDULED: "A post was scheduled, rescheduled, or put back in the queue "
    "by a retry. `data`: the post.",
    EventType.POST_UNSCHEDULED: "A scheduled post went back to draft. `data`: the post.",
    EventType.POST_QUEUED: "A worker took the post in hand, up to 5 minutes before its time; "
    "it is locked from now on. `data`: the post.",
    EventType.POST_PUBLISHED: "Every target of the post published. `data`: the post.",
    EventType.POST_FAILED: "At least one target failed for good; the others may have "
    "published (see the `post.delivery.*` events). `data`: the post.",
    EventType.POST_CANCELLED: "The post was cancelled before publishing. `data`: the post.",
    EventType.POST_DELIVERY_PUBLISHED: "One target published. `data`: the delivery, as "
    "`GET /v1/posts/{id}/deliveries` lists it.",
    EventType.POST_DELIVERY_FAILED: "One target failed for good. `data`: the delivery, "
    "with its `error_code` and every attempt.",
    EventType.SOCIAL_ACCOUNT_EXPIRED: "An account's token could not be refreshed: reconnect "
    "it. `data`: the social account.",
    EventType.MEDIA_DELETED: "A media asset was deleted. `data`: the asset as it was.",
    EventType.REVIEW_CREATED: "A sync found a new review of a location. `data`: the review, "
    "as `GET /v1/reviews/{id}` shows it.",
    EventType.REVIEW_UPDATED: "A review changed: its text or rating was edited, a reply was "
    "made or removed (anywhere), or it was removed from the network (`removed_at`). `data`: "
    "the review as it is now.",
    EventType.REVIEW_REPLIED: "The network confirmed a reply asked through Crier "
    "(`PUT /v1/reviews/{id}/reply`). `data`: the review, with its `reply` and `responded_at`.",
    EventType.REVIEW_REPLY_FAILED: "A reply (or its removal) asked through Crier failed for "
    "good. `data`: the review, with `reply_status: failed` and `reply_error`.",
    EventType.REVIEW_ALERT: "A review met an alert rule (once per rule and review). `data`: "
    "`rule` (`id`, `name`) and `review`, as it is now.",
    EventType.ANALYTICS_EXPORT_READY: "An export asked of the workers is ready to download. "
    "`data`: the export, as `GET /v1/analytics/exports/{id}` shows it, with its "
    "`download_url`.",
    EventType.ANALYTICS_EXPORT_FAILED: "An export failed for good (after its retries). "
    "`data`: the export, with its `error`.",
    EventType.WEBHOOK_TEST: "Sent by `POST /v1/webhook-endpoints/{id}/test`, to that "
    "endpoint only. `data`: `{endpoint_id, message}`.",
}

POST_EVENTS = frozenset(t for t in EventType if t.value.startswith("post."))


def _timestamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def emit(
    session: AsyncSession,
    now: datetime,
    type_: EventType,
    data: BaseModel | dict[str, Any],
    *,
    post_id: UUID | None = None,
    endpoint_id: UUID | None = None,
) -> UUID:
    """Write an event, in this transaction, for every endpoint that wants it (or for
    `endpoint_id` only). Events of a post carry the post's next sequence number.
    Returns the event's id: its `webhook-id` in every delivery."""
    [event_id] = await emit_many(session, now, type_, [(data, post_id)], endpoint_id=endpoint_id)
    return event_id


async def emit_many(
    session: AsyncSession,
    now: datetime,
    type_: EventType,
    events: Sequence[tuple[BaseModel | dict[str, Any], UUID | None]],
    *,
    endpoint_id: UUID | None = None,
) -> list[UUID]:
    """`emit` for many events of one type, each `(data, post_id)`, in one statement; a
    post's events take its next sequence numbers in the order given."""
    if not events:
        return []
    ids = [new_id() for _ in events]
    await session.execute(*emit_statement(now, type_, events, ids, endpoint_id=endpoint_id))
    return ids


def emit_statement(
    now: datetime,
    type_: EventType,
    events: Sequence[tuple[BaseModel | dict[str, Any], UUID | None]],
    ids: Sequence[UUID],
    *,
    endpoint_id: UUID | None = None,
) -> Statement:
    """`emit_many` as a statement, the events' ids given, to send with others."""
    return repository.emit_events_statement(
        {
            "ids": list(ids),
            "subject_ids": [post_id for _, post_id in events],
            "data": "["
            + ",".join(
                data.model_dump_json(by_alias=True)
                if isinstance(data, BaseModel)
                else json.dumps(data)
                for data, _ in events
            )
            + "]",
            "type": type_.value,
            "timestamp": _timestamp(now),
            "now": now,
            "endpoint_id": endpoint_id,
        }
    )


async def notify(session: AsyncSession) -> None:
    """Wake the dispatchers when this transaction commits."""
    await repository.notify(session, CHANNEL)


async def latest_of_many(
    session: AsyncSession, post_ids: Sequence[UUID], types: frozenset[EventType]
) -> dict[UUID, str]:
    """For each post, the type of its latest event among `types` (posts with none left out)."""
    return await repository.latest_post_events(session, post_ids, [t.value for t in types])
