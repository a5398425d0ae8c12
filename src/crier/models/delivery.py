"""Deliveries: one per target of a post, with every attempt to send it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel


class Delivery(TenantModel):
    """Sending one post to one social account. Its id is the platform idempotency key."""

    __tablename__ = "deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "post_id"], ["posts.workspace_id", "posts.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "post_target_id"],
            ["post_targets.workspace_id", "post_targets.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
        ),
        UniqueConstraint("workspace_id", "post_target_id"),
        # A post's deliveries, read at every step of sending it.
        Index("ix_deliveries_post", "workspace_id", "post_id"),
        # The deliveries published in a stretch of days (the rollup's posts_published),
        # found without reading every delivery the workspace ever made.
        Index(
            "ix_deliveries_published",
            "workspace_id",
            "published_at",
            postgresql_where=text("status = 'published'"),
        ),
        CheckConstraint(
            "status IN ('pending', 'sending', 'published', 'failed', 'cancelled')",
            name="status_known",
        ),
    )

    post_id: Mapped[UUID] = mapped_column()
    post_target_id: Mapped[UUID] = mapped_column()
    social_account_id: Mapped[UUID] = mapped_column()
    platform: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    attempts_allowed: Mapped[int] = mapped_column(Integer, server_default="3")
    """Attempts may go up to this number; a retry of a failed post allows 3 more."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    external_id: Mapped[str | None] = mapped_column(Text)
    permalink: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_code: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    uncertain: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """The last attempt may have reached the platform without an answer saying so: look
    the delivery up by its idempotency key before sending it again."""


class DeliveryAttempt(TenantModel):
    """One try at a delivery: when, what the platform answered, and with which error code."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["deliveries.workspace_id", "deliveries.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "delivery_id", "number"),
        CheckConstraint(
            "outcome IN ('sending', 'published', 'retrying', 'failed', 'unknown')",
            name="outcome_known",
        ),
    )

    delivery_id: Mapped[UUID] = mapped_column()
    number: Mapped[int] = mapped_column(SmallInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(Text, server_default="sending")
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    error_code: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
