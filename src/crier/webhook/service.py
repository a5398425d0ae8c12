"""Webhook endpoints, their secrets, and what was sent to them."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.errors import Conflict, CrierError, NotFound
from crier.kit.ids import new_id
from crier.kit.outbound import DestinationRefused, Guard
from crier.kit.sql import any_of
from crier.kit.vault import Vault
from crier.models import WebhookAttempt as AttemptRow
from crier.models import WebhookDelivery as DeliveryRow
from crier.models import WebhookEndpoint as EndpointRow
from crier.models import WebhookEvent as EventRow
from crier.webhook import events
from crier.webhook.events import EventType
from crier.webhook.schemas import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEvent,
    WebhookSent,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_OVERLAP = timedelta(hours=24)
"""After a rotation, calls are signed with both secrets for this long."""


class DestinationNotAllowed(CrierError):
    """The endpoint URL points at an address webhooks may not be sent to: loopback, private,
    link-local (cloud metadata) or reserved. Use a public address."""

    slug = "webhook-destination-refused"
    title = "Webhook destination refused"
    status = 422


class EndpointDisabled(Conflict):
    """The endpoint is disabled: enable it (`PATCH` with `enabled: true`) first."""

    slug = "webhook-endpoint-disabled"
    title = "Webhook endpoint disabled"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_destination(guard: Guard, url: str) -> None:
    try:
        guard.check_literal(url)
    except DestinationRefused as refused:
        raise DestinationNotAllowed(f"{refused}.", url=url) from None


async def _get(session: AsyncSession, endpoint_id: UUID, *, lock: bool = False) -> EndpointRow:
    query = select(EndpointRow).where(EndpointRow.id == endpoint_id)
    if lock:
        query = query.with_for_update()
    endpoint = (await session.execute(query)).scalar_one_or_none()
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id in this workspace.")
    return endpoint


async def create(
    session: AsyncSession,
    vault: Vault,
    guard: Guard,
    workspace_id: UUID,
    data: WebhookEndpointCreate,
) -> WebhookEndpointWithSecret:
    _check_destination(guard, data.url)
    secret = new_secret()
    endpoint = EndpointRow(
        id=new_id(),
        workspace_id=workspace_id,
        url=data.url,
        event_types=[t.value for t in data.event_types] if data.event_types else None,
        description=data.description,
        enabled=data.enabled,
        secret=vault.seal(secret),
    )
    session.add(endpoint)
    await session.flush()
    return WebhookEndpointWithSecret(
        **WebhookEndpoint.model_validate(endpoint).model_dump(), secret=secret
    )


async def list_endpoints(
    session: AsyncSession, after: UUID | None, limit: int
) -> Sequence[EndpointRow]:
    query = select(EndpointRow).order_by(EndpointRow.id).limit(limit)
    if after is not None:
        query = query.where(EndpointRow.id > after)
    return (await session.execute(query)).scalars().all()


async def get(session: AsyncSession, endpoint_id: UUID) -> EndpointRow:
    return await _get(session, endpoint_id)


async def update(
    session: AsyncSession,
    guard: Guard,
    endpoint_id: UUID,
    data: WebhookEndpointUpdate,
    now: datetime,
) -> EndpointRow:
    endpoint = await _get(session, endpoint_id, lock=True)
    changes = data.model_fields_set
    if data.url is not None:
        _check_destination(guard, data.url)
        endpoint.url = data.url
    if "event_types" in changes:
        endpoint.event_types = [t.value for t in data.event_types] if data.event_types else None
    if data.description is not None:
        endpoint.description = data.description
    if data.enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    elif data.enabled is False and endpoint.enabled:
        disable(endpoint, now, "disabled by a member")
    await session.flush()
    return endpoint


def disable(endpoint: EndpointRow, now: datetime, reason: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason


async def delete(session: AsyncSession, endpoint_id: UUID) -> None:
    """Delete an endpoint with its pending and past deliveries."""
    await session.delete(await _get(session, endpoint_id, lock=True))
    await session.flush()


async def rotate_secret(
    session: AsyncSession, vault: Vault, endpoint_id: UUID, now: datetime
) -> WebhookEndpointWithSecret:
    """A new secret; the old one keeps signing alongside it for `SECRET_OVERLAP`."""
    endpoint = await _get(session, endpoint_id, lock=True)
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + SECRET_OVERLAP
    endpoint.secret = vault.seal(secret)
    await session.flush()
    return WebhookEndpointWithSecret(
        **WebhookEndpoint.model_validate(endpoint).model_dump(), secret=secret
    )


def signing_secrets(
    secret: bytes,
    previous: bytes | None,
    previous_expires_at: datetime | None,
    vault: Vault,
    now: datetime,
) -> list[str]:
    """The secrets a call is signed with now (sealed as stored): the current one, and the
    previous one during the overlap after a rotation."""
    found = [vault.open(secret)]
    if previous is not None and previous_expires_at is not None and now < previous_expires_at:
        found.append(vault.open(previous))
    return found


async def send_test(session: AsyncSession, endpoint_id: UUID, now: datetime) -> WebhookSent:
    endpoint = await _get(session, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled; enable it to test it.")
    event_id = await events.emit(
        session,
        now,
        EventType.WEBHOOK_TEST,
        {"endpoint_id": str(endpoint.id), "message": "A test event from Crier."},
        endpoint_id=endpoint.id,
    )
    return WebhookSent(event_id=event_id, deliveries=1)


async def deliveries_of(
    session: AsyncSession, endpoint_id: UUID, after: UUID | None, limit: int
) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first, with their attempts."""
    await _get(session, endpoint_id)
    query = (
        select(DeliveryRow, EventRow.type)
        .join(
            EventRow,
            (EventRow.workspace_id == DeliveryRow.workspace_id)
            & (EventRow.id == DeliveryRow.event_id),
        )
        .where(DeliveryRow.endpoint_id == endpoint_id)
        .order_by(DeliveryRow.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(DeliveryRow.id < after)
    rows = (await session.execute(query)).all()
    attempts: dict[UUID, list[WebhookAttempt]] = {d.id: [] for d, _ in rows}
    if rows:
        found = await session.execute(
            select(AttemptRow)
            .where(any_of(AttemptRow.delivery_id, attempts))
            .order_by(AttemptRow.number)
        )
        for a in found.scalars():
            attempts[a.delivery_id].append(
                WebhookAttempt(
                    number=a.number,
                    started_at=a.started_at,
                    duration_ms=a.duration_ms,
                    status_code=a.status_code,
                    error=a.error,
                )
            )
    return [
        WebhookDelivery(
            id=d.id,
            event_id=d.event_id,
            event_type=type_,
            status=WebhookDeliveryStatus(d.status),
            attempts=attempts[d.id],
            last_status_code=d.last_status_code,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            succeeded_at=d.succeeded_at,
            created_at=d.created_at,
        )
        for d, type_ in rows
    ]


async def _event(session: AsyncSession, event_id: UUID) -> EventRow:
    event = (
        await session.execute(select(EventRow).where(EventRow.id == event_id))
    ).scalar_one_or_none()
    if event is None:
        raise NotFound("No event with this id in this workspace.")
    return event


async def get_event(session: AsyncSession, event_id: UUID) -> WebhookEvent:
    event = await _event(session, event_id)
    return WebhookEvent(
        id=event.id,
        type=event.type,
        sequence=event.sequence,
        payload=event.payload,
        created_at=event.created_at,
    )


async def replay(
    session: AsyncSession, event_id: UUID, endpoint_id: UUID | None, now: datetime
) -> WebhookSent:
    """Send an event again, with the same `webhook-id` and payload."""
    event = await _event(session, event_id)
    if endpoint_id is not None:
        endpoint = await _get(session, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabled("The endpoint is disabled; enable it to replay to it.")
        targets = [endpoint.id]
    else:
        sent_to = await session.execute(
            select(DeliveryRow.endpoint_id)
            .join(
                EndpointRow,
                (EndpointRow.workspace_id == DeliveryRow.workspace_id)
                & (EndpointRow.id == DeliveryRow.endpoint_id),
            )
            .where(DeliveryRow.event_id == event_id, EndpointRow.enabled)
            .distinct()
        )
        targets = list(sent_to.scalars())
    session.add_all(
        DeliveryRow(
            workspace_id=event.workspace_id,
            id=new_id(),
            event_id=event.id,
            endpoint_id=target,
            next_attempt_at=now,
        )
        for target in targets
    )
    await session.flush()
    if targets:
        await events.notify(session)
    return WebhookSent(event_id=event.id, deliveries=len(targets))
