"""Posts and their targets (one per social account a post goes to)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel
from crier.post.lifecycle import PostStatus

POST_STATUSES = ("draft", "scheduled", "queued", "publishing", "published", "failed", "cancelled")


class Post(TenantModel):
    __tablename__ = "posts"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "author_id"], ["members.workspace_id", "members.id"]),
        ForeignKeyConstraint(
            ["workspace_id", "cancelled_by"], ["members.workspace_id", "members.id"]
        ),
        CheckConstraint(
            f"status IN ({', '.join(repr(status.value) for status in PostStatus)})",
            name="status_known",
        ),
        CheckConstraint(
            "status <> 'scheduled' OR publish_at IS NOT NULL", name="scheduled_has_time"
        ),
        Index("ix_posts_due", "publish_at", postgresql_where="status = 'scheduled'"),
        Index(
            "ix_posts_leases",
            "lease_expires_at",
            postgresql_where="status IN ('queued', 'publishing')",
        ),
    )

    status: Mapped[str] = mapped_column(Text, server_default="draft")
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timezone: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    author_id: Mapped[UUID] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    event_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The sequence number of the post's last webhook event."""
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[UUID | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(Text)
    """The worker holding a queued or publishing post, until `lease_expires_at`."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PostTarget(TenantModel):
    __tablename__ = "post_targets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "post_id"], ["posts.workspace_id", "posts.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
        ),
        UniqueConstraint("workspace_id", "post_id", "social_account_id"),
        Index("ix_post_targets_account", "workspace_id", "social_account_id"),
    )

    post_id: Mapped[UUID] = mapped_column()
    social_account_id: Mapped[UUID] = mapped_column()
    platform_settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class PostMedia(TenantModel):
    """That a post (not cancelled) uses a media asset. A trigger keeps
    `media_assets.usage_count` equal to the number of these rows per asset."""

    __tablename__ = "post_media"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "post_id"], ["posts.workspace_id", "posts.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "media_id"],
            ["media_assets.workspace_id", "media_assets.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "post_id", "media_id"),
        Index("ix_post_media_media", "workspace_id", "media_id"),
    )

    post_id: Mapped[UUID] = mapped_column()
    media_id: Mapped[UUID] = mapped_column()


class ScheduledPostMonth(TenantModel):
    """How many posts are scheduled (or were published) in one calendar month of the
    workspace, for the plan's monthly limit. Kept by triggers on `posts` at commit (migration
    0008); read-only to the code."""

    __tablename__ = "scheduled_post_months"
    __table_args__ = (UniqueConstraint("workspace_id", "month_start"),)

    month_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The month's first instant in the workspace's timezone."""
    scheduled: Mapped[int] = mapped_column(Integer, server_default="0")
