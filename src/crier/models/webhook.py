"""Webhooks: endpoints, the event outbox, and each event's delivery to each endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel


class WebhookEndpoint(TenantModel):
    """Where a workspace wants its events sent, and the secret they are signed with."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    """The event types wanted; NULL for every type."""
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    """The signing secret (`whsec_...`), sealed with the vault."""
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The secret before the last rotation, still signing until `previous_secret_expires_at`."""
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The first failure since the last success: the endpoint is disabled after long enough."""
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class WebhookEvent(TenantModel):
    """The outbox: one row per event, written in the transaction that caused it."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_subject", "workspace_id", "subject_id", "sequence"),)

    type: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[UUID | None] = mapped_column()
    """The post the event is about, if any."""
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    """The event's place among its post's events: 1, 2, 3..."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """Exactly what is sent: `{type, timestamp, sequence, data}`."""


class WebhookDelivery(TenantModel):
    """One event to one endpoint, retried until it succeeds or its schedule runs out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "event_id"],
            ["webhook_events.workspace_id", "webhook_events.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "endpoint_id"],
            ["webhook_endpoints.workspace_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        Index(
            "ix_webhook_deliveries_due",
            "workspace_id",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where="status = 'pending'",
        ),
        Index(
            "ix_webhook_deliveries_order",
            "workspace_id",
            "endpoint_id",
            "subject_id",
            "sequence",
            postgresql_where="status = 'pending'",
        ),
        Index("ix_webhook_deliveries_endpoint", "workspace_id", "endpoint_id", "id"),
    )

    event_id: Mapped[UUID] = mapped_column()
    endpoint_id: Mapped[UUID] = mapped_column()
    subject_id: Mapped[UUID | None] = mapped_column()
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(TenantModel):
    """One HTTP call of a webhook delivery."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["webhook_deliveries.workspace_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "delivery_id", "number"),
    )

    delivery_id: Mapped[UUID] = mapped_column()
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
