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
)
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
    network_total: Mapped[int | None] = mapped_column(Integer)
    """How many reviews the network said the location has, at the last finished run."""
    last_error: Mapped[str | None] = mapped_column(Text)
    """The error code of the last run that failed, until one succeeds."""
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
