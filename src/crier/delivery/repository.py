"""Queries on deliveries and attempts (always inside one workspace)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.sql import any_of
from crier.models import Delivery, DeliveryAttempt


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
