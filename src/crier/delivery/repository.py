"""Queries on deliveries and attempts (always inside one workspace)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.kit.sql import any_of, queries
from crier.models import Delivery, DeliveryAttempt
from crier.platforms.base import Published

QUERIES = queries(__file__, "queries.sql")


@dataclass(frozen=True)
class Due:
    """A delivery due to be sent now, as the scheduler reads it (locked)."""

    id: UUID
    post_id: UUID
    social_account_id: UUID
    platform: str
    attempts: int
    """Attempts made so far (0 before the first)."""
    uncertain: bool
    """Its last attempt may have reached the platform: look it up before sending again."""
    platform_settings: dict[str, Any]
    """The target's settings for its platform (visibility, language...)."""


@dataclass(frozen=True)
class Sent:
    """An attempt the platform accepted, with its answer."""

    delivery_id: UUID
    attempt_id: UUID
    published: Published


async def create_for_posts(session: AsyncSession, post_ids: Sequence[UUID]) -> None:
    """One delivery per target of `post_ids` that has none yet."""
    await session.execute(QUERIES["create_deliveries"], {"post_ids": list(post_ids)})


def lock_due_statement(post_ids: Sequence[UUID], worker: str, now: datetime) -> Statement:
    """The deliveries of those of `post_ids` that are `worker`'s and publishing, still to
    send and due by `now`, locked in id order (rows for `Due`), to send with other
    statements."""
    return QUERIES["lock_due_deliveries"], {
        "post_ids": list(post_ids),
        "worker": worker,
        "now": now,
    }


def sending_accounts_statement(post_ids: Sequence[UUID]) -> Statement:
    """The accounts the deliveries of `post_ids` still to send go out as (`id`, `status`,
    `token_expires_at`, `access_token` and `refresh_token` sealed, `external_id`,
    `server_url`), to send with other statements."""
    return QUERIES["sending_accounts"], {"post_ids": list(post_ids)}


def sending_media_statement(post_ids: Sequence[UUID]) -> Statement:
    """The media `post_ids` attach (`id`, `category`, `content_type`, `storage_path`,
    `alt_text`, `variants`), to send with other statements."""
    return QUERIES["sending_media"], {"post_ids": list(post_ids)}


def begin_attempts_statement(
    delivery_ids: Sequence[UUID], attempt_ids: Sequence[UUID], started_at: datetime
) -> Statement:
    """Write down the next attempt of each delivery (`attempt_ids` side by side), in one
    statement, before anything is sent; the deliveries are `sending` and uncertain."""
    return QUERIES["begin_attempts"], {
        "ids": list(attempt_ids),
        "delivery_ids": list(delivery_ids),
        "started_at": started_at,
    }


async def record_published(session: AsyncSession, sent: Sequence[Sent], now: datetime) -> None:
    """Record published deliveries and their attempts, in one statement. Their rows must
    not be loaded in `session` yet (they would be stale)."""
    if not sent:
        return
    await session.execute(
        QUERIES["record_published"],
        {
            "delivery_ids": [s.delivery_id for s in sent],
            "attempt_ids": [s.attempt_id for s in sent],
            "external_ids": [s.published.external_id for s in sent],
            "permalinks": [s.published.permalink for s in sent],
            "published_ats": [s.published.published_at for s in sent],
            "now": now,
        },
    )


async def of_post(session: AsyncSession, post_id: UUID, *, lock: bool = False) -> list[Delivery]:
    query = select(Delivery).where(Delivery.post_id == post_id).order_by(Delivery.id)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def cancel_pending(session: AsyncSession, post_id: UUID) -> None:
    """Close the deliveries of `post_id` not yet sent: its post was cancelled."""
    await session.execute(
        update(Delivery)
        .where(Delivery.post_id == post_id, Delivery.status == "pending")
        .values(status="cancelled", next_attempt_at=None)
    )


async def of_posts(session: AsyncSession, post_ids: Sequence[UUID]) -> list[Delivery]:
    """The deliveries of `post_ids`, in id order."""
    query = select(Delivery).where(any_of(Delivery.post_id, post_ids)).order_by(Delivery.id)
    return list((await session.execute(query)).scalars())


async def get_many(session: AsyncSession, delivery_ids: Sequence[UUID]) -> list[Delivery]:
    query = select(Delivery).where(any_of(Delivery.id, delivery_ids)).order_by(Delivery.id)
    return list((await session.execute(query)).scalars())


async def get(session: AsyncSession, delivery_id: UUID, *, lock: bool = False) -> Delivery | None:
    query = select(Delivery).where(Delivery.id == delivery_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[UUID]
) -> dict[UUID, list[DeliveryAttempt]]:
    found: dict[UUID, list[DeliveryAttempt]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        rows = await session.execute(
            select(DeliveryAttempt)
            .where(any_of(DeliveryAttempt.delivery_id, delivery_ids))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)
        )
        for attempt in rows.scalars():
            found[attempt.delivery_id].append(attempt)
    return found


async def open_attempt(session: AsyncSession, delivery_id: UUID) -> DeliveryAttempt | None:
    """The attempt still marked as sending (its worker died mid-call, or is mid-call)."""
    result = await session.execute(
        select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id == delivery_id, DeliveryAttempt.outcome == "sending"
        )
    )
    return result.scalar_one_or_none()


async def refused_tokens(session: AsyncSession, delivery_id: UUID, besides: UUID) -> bool:
    """Whether an attempt of the delivery other than `besides` failed on an expired token."""
    result = await session.execute(
        select(DeliveryAttempt.id)
        .where(
            DeliveryAttempt.delivery_id == delivery_id,
            DeliveryAttempt.id != besides,
            DeliveryAttempt.error_code == "auth_expired",
        )
        .limit(1)
    )
    return result.scalar_one_or_none() is not None


async def first_attempt_started(session: AsyncSession, delivery_id: UUID) -> datetime | None:
    """When the delivery's first attempt began."""
    result = await session.execute(
        select(DeliveryAttempt.started_at)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.number)
        .limit(1)
    )
    return result.scalar_one_or_none()


TAKEN_MARGIN = timedelta(days=1)
"""How much earlier than a delivery's first attempt a network may date another delivery's
post that its lookup could meet (the network's clock against ours)."""


async def posts_of_others(
    session: AsyncSession, account_id: UUID, delivery_id: UUID, since: datetime
) -> frozenset[str]:
    """The network's ids of the posts that the account's other deliveries made since
    `since`: a lookup of this delivery's post by what it says must not take one of them."""
    result = await session.scalars(
        select(Delivery.external_id).where(
            Delivery.status == "published",
            Delivery.published_at >= since - TAKEN_MARGIN,
            Delivery.social_account_id == account_id,
            Delivery.id != delivery_id,
            Delivery.external_id.is_not(None),
        )
    )
    return frozenset(i for i in result if i is not None)


async def last_attempt_started(session: AsyncSession, delivery_id: UUID) -> datetime | None:
    """When the delivery's latest attempt began."""
    result = await session.execute(
        select(DeliveryAttempt.started_at)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.number.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()
