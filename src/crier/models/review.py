"""Reviews of a business location (Google Business Profile, the sandbox), Crier's responses,
and the state of each location's review sync."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel

SENTIMENT_LABELS = ("negative", "neutral", "positive")


class Review(TenantModel):
    __tablename__ = "reviews"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
        ),
        UniqueConstraint("workspace_id", "social_account_id", "external_id"),
        UniqueConstraint("workspace_id", "feed_sequence"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("sentiment BETWEEN -1 AND 1", name="sentiment_range"),
        CheckConstraint(
            "sentiment_label IN ('negative', 'neutral', 'positive')", name="sentiment_label_known"
        ),
        CheckConstraint("sentiment_source IN ('text', 'rating')", name="sentiment_source_known"),
        CheckConstraint("reply_status IN ('pending', 'failed')", name="reply_status_known"),
        Index(None, "workspace_id", "social_account_id", "reviewed_at"),
    )

    social_account_id: Mapped[UUID] = mapped_column()
    location_id: Mapped[str] = mapped_column(Text)
    """The location on the network (the account's external id)."""
    external_id: Mapped[str] = mapped_column(Text)
    rating: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(Text)
    sentiment_source: Mapped[str | None] = mapped_column(Text)
    """What the sentiment was scored from: `text` or `rating` (see `review.sentiment`)."""
    language: Mapped[str | None] = mapped_column(Text)
    """The language of `body` (ISO 639, two letters where there is a code of two), where it
    could be told."""
    reviewer_name: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When the review was first written (the network's create time)."""
    network_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When the network last changed it (its text, rating or reply): the sync's watermark."""
    reply: Mapped[str | None] = mapped_column(Text)
    """The reply the network shows, whoever made it."""
    reply_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the business first replied, as the network confirmed it."""
    reply_status: Mapped[str | None] = mapped_column(Text)
    """`pending` while a reply (or its removal) asked of Crier is on its way to the network,
    `failed` when the last one failed for good; None otherwise."""
    reply_error: Mapped[str | None] = mapped_column(Text)
    """The error code of the reply that failed (with `reply_status` `failed`)."""
    reply_error_message: Mapped[str | None] = mapped_column(Text)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a sync found the review gone from the network."""
    feed_sequence: Mapped[int] = mapped_column(BigInteger)
    """The review's place in the workspace's change feed: taken anew at every change, in
    commit order (see `review_feeds`)."""
    seen_in_scan: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The last full scan of the location that saw it (reviews not seen are removed)."""


class ReviewFeed(TenantModel):
    """The last sequence number given to a workspace's review changes (one row per
    workspace). Taking numbers locks the row until the transaction ends, so numbers become
    visible in the order they were taken, and a reader following the feed never passes one
    still to commit."""

    __tablename__ = "review_feeds"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    last_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ReviewSync(TenantModel):
    """Where a location's review sync stands: its watermark, the run under way (resumed
    from `page_token` after a crash), and when it is next due."""

    __tablename__ = "review_syncs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "social_account_id"),
        Index("ix_review_syncs_due", "next_sync_at"),
    )

    social_account_id: Mapped[UUID] = mapped_column()
    next_sync_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """A worker is syncing the location until then: the others leave it alone."""
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The newest change time read by the last finished run: the next reads down to it."""
    run_top: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The newest change time read by the run under way (its watermark once it finishes)."""
    page_token: Mapped[str | None] = mapped_column(Text)
    """Where the run under way goes on (None: the next run starts from the newest)."""
    full_scan: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """The run under way reads every review, to find those removed from the network."""
    scan: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    full_scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the last run that read every review (a full scan, or the first run) ended."""
    network_total: Mapped[int | None] = mapped_column(Integer)
    """How many reviews the network said the location has, at the last finished run."""
    last_error: Mapped[str | None] = mapped_column(Text)
    """The error code of the last run that failed, until one succeeds."""
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


REPLY_ACTIONS = ("reply", "delete")
REPLY_ORIGINS = ("crier", "network")
REPLY_STATUSES = ("pending", "sent", "failed", "superseded")


class ReviewReplyRecord(TenantModel):
    """A reply to a review, or its removal: asked of Crier and sent by the workers (the
    row is its job: attempts, lease, next try), or seen made on the network itself. The
    rows of a review are its reply history."""

    __tablename__ = "review_replies"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "review_id"],
            ["reviews.workspace_id", "reviews.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("action IN ('reply', 'delete')", name="action_known"),
        CheckConstraint("origin IN ('crier', 'network')", name="origin_known"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'superseded')", name="status_known"
        ),
        CheckConstraint("(action = 'reply') = (text IS NOT NULL)", name="text_for_reply"),
        Index(None, "workspace_id", "review_id", "created_at"),
        Index(
            "ix_review_replies_due",
            "next_attempt_at",
            postgresql_where=sql("status = 'pending'"),
        ),
    )

    review_id: Mapped[UUID] = mapped_column()
    action: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[UUID | None] = mapped_column()
    """The member who asked for it (for Crier's own)."""
    template_id: Mapped[UUID | None] = mapped_column()
    """The template its text was made from, if any."""
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """A worker is sending it until then: no other reply of the review is sent meanwhile."""
    error_code: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the network confirmed it (or, for one made there, when the network made it)."""


class ReviewTemplate(TenantModel):
    """A reply with placeholders (`{reviewer_name}`, `{location_name}`, `{rating}`)."""

    __tablename__ = "review_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class ReviewAlertRule(TenantModel):
    """Conditions on reviews (all must hold) whose matches are announced (`review.alert`)."""

    __tablename__ = "review_alert_rules"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint(
            "max_rating IS NOT NULL OR sentiment_below IS NOT NULL", name="has_condition"
        ),
        CheckConstraint("max_rating BETWEEN 1 AND 5", name="max_rating_range"),
        CheckConstraint("sentiment_below BETWEEN -1 AND 1", name="sentiment_below_range"),
    )

    name: Mapped[str] = mapped_column(Text)
    max_rating: Mapped[int | None] = mapped_column(SmallInteger)
    """Reviews of at most this many stars."""
    sentiment_below: Mapped[float | None] = mapped_column(Float)
    """Reviews whose sentiment is under this."""
    social_account_ids: Mapped[list[UUID] | None] = mapped_column(ARRAY(Uuid))
    """Only these locations (None: every location)."""
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    active_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Only reviews the network changed from then on raise the alert."""


class ReviewAlert(TenantModel):
    """A rule's alert for a review, raised once."""

    __tablename__ = "review_alerts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "rule_id"],
            ["review_alert_rules.workspace_id", "review_alert_rules.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "review_id"],
            ["reviews.workspace_id", "reviews.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "rule_id", "review_id"),
        Index(None, "workspace_id", "review_id"),
    )

    rule_id: Mapped[UUID] = mapped_column()
    review_id: Mapped[UUID] = mapped_column()
