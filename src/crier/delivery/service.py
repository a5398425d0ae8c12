"""Reading deliveries for the API."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.delivery import repository
from crier.delivery.schemas import Attempt, Delivery, DeliveryList, DeliveryStatus
from crier.models import Delivery as DeliveryRow
from crier.platforms.errors import ErrorCode


async def list_for_post(session: AsyncSession, post_id: UUID) -> DeliveryList:
    return DeliveryList(data=await shown(session, await repository.of_post(session, post_id)))


async def shown(session: AsyncSession, deliveries: Sequence[DeliveryRow]) -> list[Delivery]:
    """Deliveries as the API shows them, with their attempts."""
    attempts = await repository.attempts_of(session, [d.id for d in deliveries])
    return [
        Delivery(
            id=d.id,
            post_id=d.post_id,
            target_id=d.post_target_id,
            social_account_id=d.social_account_id,
            platform=d.platform,
            status=DeliveryStatus(d.status),
            platform_post_id=d.external_id,
            permalink=d.permalink,
            published_at=d.published_at,
            error_code=ErrorCode(d.error_code) if d.error_code else None,
            error_message=d.error_message,
            next_attempt_at=d.next_attempt_at,
            attempts=[
                Attempt(
                    number=a.number,
                    started_at=a.started_at,
                    finished_at=a.finished_at,
                    outcome=a.outcome,
                    http_status=a.http_status,
                    error_code=ErrorCode(a.error_code) if a.error_code else None,
                    message=a.message,
                )
                for a in attempts[d.id]
            ],
        )
        for d in deliveries
    ]
