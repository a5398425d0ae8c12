"""Analytics: what workers fetch when, the raw observations they bring back, and the daily
aggregates made of them (days being days in the workspace timezone)."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel


class AnalyticsSnapshot(TenantModel):
    __tablename__ = "analytics_snapshots"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
        # The rollup's upsert and the reading of views (by metric and day, for many
        # accounts at once, the value in the index itself) share this one index.
        Index(
            "ux_analytics_snapshots_reading",
            "workspace_id",
            "metric",
            "date",
            "social_account_id",
            unique=True,
            postgresql_include=["value"],
        ),
    )

    # No foreign key of its own to the workspace: the one to the account, which carries
    # `workspace_id`, implies it, and one check per snapshot written is enough.
    workspace_id: Mapped[UUID] = mapped_column(primary_key=True, sort_order=-20)
    social_account_id: Mapped[UUID] = mapped_column()
    metric: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    date: Mapped[dt.date] = mapped_column(Date)


def _measured() -> tuple[ForeignKeyConstraint, ForeignKeyConstraint]:
    """A published delivery's figures, or (with no delivery) its account's own."""
    return (
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["deliveries.workspace_id", "deliveries.id"],
            ondelete="CASCADE",
        ),
    )


class MetricFetch(TenantModel):
    """When a published delivery's figures (or, with no delivery, an account's own) are
    next fetched from the network, and how the last fetch went."""

    __tablename__ = "metric_fetches"
    __table_args__ = (
        *_measured(),
        UniqueConstraint("workspace_id", "delivery_id"),
        Index(
            "uq_metric_fetches_account",
            "workspace_id",
            "social_account_id",
            unique=True,
            postgresql_where=sql("delivery_id IS NULL"),
        ),
        Index(
            "ix_metric_fetches_due",
            "next_fetch_at",
            postgresql_where=sql("next_fetch_at IS NOT NULL"),
        ),
    )

    social_account_id: Mapped[UUID] = mapped_column()
    delivery_id: Mapped[UUID | None] = mapped_column()
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    """Where the schedule counts from: the delivery's publishing (its receipt), or when
    the account's figures were first due."""
    stage: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    """Steps of the schedule already behind it."""
    next_fetch_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """None once the schedule is done (or the post is gone from the network)."""
    leased_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    """Transient failures in a row at this step."""
    last_fetched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class MetricObservation(TenantModel):
    """One figure as the network gave it at one time (counts of a post so far; an
    account's followers then)."""

    __tablename__ = "metric_observations"
    __table_args__ = (
        *_measured(),
        Index(
            "ix_metric_observations_delivery",
            "workspace_id",
            "delivery_id",
            "metric",
            "observed_at",
            postgresql_where=sql("delivery_id IS NOT NULL"),
        ),
        Index(
            "ix_metric_observations_account_time",
            "workspace_id",
            "social_account_id",
            "observed_at",
        ),
        Index("ix_metric_observations_time", "workspace_id", "observed_at"),
        # An account's own figures of a day, which the rollup finds without reading the
        # pages of every post's figures beside them.
        Index(
            "ix_metric_observations_own_time",
            "workspace_id",
            "observed_at",
            postgresql_where=sql("delivery_id IS NULL AND day IS NULL"),
        ),
        Index(
            "ux_metric_observations_day",
            "workspace_id",
            "day",
            "social_account_id",
            "metric",
            unique=True,
            postgresql_where=sql("day IS NOT NULL"),
        ),
    )

    social_account_id: Mapped[UUID] = mapped_column()
    delivery_id: Mapped[UUID | None] = mapped_column()
    metric: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    delta: Mapped[float | None] = mapped_column(Double)
    """For a delivery's count: how much it grew since the delivery's previous observation
    of it (from 0 for the first), so that a day's growth is the sum of its deltas."""
    observed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    day: Mapped[dt.date | None] = mapped_column(Date)
    """For a network's figure of a whole day (Google's daily series): the day, as the
    network counts it; one per account, metric and day, replaced when the network revises
    it."""


class AnalyticsRollup(TenantModel):
    """When the workspace's days are next aggregated into snapshots (after its local
    midnight), the last day done, and the earliest earlier day a late observation touched."""

    __tablename__ = "analytics_rollups"
    __table_args__ = (
        UniqueConstraint("workspace_id"),
        Index("ix_analytics_rollups_due", "next_run_at"),
    )

    next_run_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rebuilt_through: Mapped[dt.date | None] = mapped_column(Date)
    """The last day aggregated (a day in the workspace timezone)."""
    dirty_from: Mapped[dt.date | None] = mapped_column(Date)
    """The earliest day up to `rebuilt_through` that observations arrived for since."""
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AnalyticsGeneration(TenantModel):
    """The workspace's snapshot generation: moved on by a trigger whenever a statement
    writes, changes or removes any of its snapshots, so that an answer read from them may
    be kept until it does."""

    __tablename__ = "analytics_generations"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    generation: Mapped[int] = mapped_column(BigInteger, server_default="0")


class AnalyticsView(TenantModel):
    """A saved view: which accounts' figures, which metrics, over which days, in which
    steps, compared with which period; read from the snapshots alone."""

    __tablename__ = "analytics_views"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint("granularity IN ('day', 'week', 'month')", name="granularity_known"),
        CheckConstraint(
            "comparison IN ('previous_period', 'previous_year')", name="comparison_known"
        ),
        CheckConstraint(
            "(relative_range IS NULL) <> (first_day IS NULL AND last_day IS NULL)",
            name="one_range",
        ),
    )

    name: Mapped[str] = mapped_column(Text)
    social_account_ids: Mapped[list[UUID] | None] = mapped_column(ARRAY(Uuid))
    platforms: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    metrics: Mapped[list[str]] = mapped_column(ARRAY(Text))
    relative_range: Mapped[str | None] = mapped_column(Text)
    first_day: Mapped[dt.date | None] = mapped_column(Date)
    last_day: Mapped[dt.date | None] = mapped_column(Date)
    granularity: Mapped[str] = mapped_column(Text, server_default="day")
    comparison: Mapped[str | None] = mapped_column(Text)


class AnalyticsExport(TenantModel):
    """A view's or a query's figures written to a file by a worker: what (the range
    resolved to days when it was asked), how far it got, and the file while it is kept."""

    __tablename__ = "analytics_exports"
    __table_args__ = (
        CheckConstraint("format IN ('csv', 'xlsx', 'pdf')", name="format_known"),
        CheckConstraint(
            "status IN ('queued', 'running', 'ready', 'failed', 'expired')", name="status_known"
        ),
        CheckConstraint("granularity IN ('day', 'week', 'month')", name="granularity_known"),
        CheckConstraint(
            "comparison IN ('previous_period', 'previous_year')", name="comparison_known"
        ),
        Index(
            "ix_analytics_exports_waiting",
            "created_at",
            postgresql_where=sql("status IN ('queued', 'running')"),
        ),
        Index("ix_analytics_exports_kept", "expires_at", postgresql_where=sql("status = 'ready'")),
    )

    requested_by: Mapped[UUID | None] = mapped_column()
    """The member who asked for it."""
    format: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    view_id: Mapped[UUID | None] = mapped_column()
    """The saved view it was made of (None: a query); the view may be gone since."""
    title: Mapped[str] = mapped_column(Text)
    social_account_ids: Mapped[list[UUID] | None] = mapped_column(ARRAY(Uuid))
    platforms: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    metrics: Mapped[list[str]] = mapped_column(ARRAY(Text))
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    granularity: Mapped[str] = mapped_column(Text)
    comparison: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Double, server_default="0")
    """From 0 to 1."""
    rows_written: Mapped[int] = mapped_column(BigInteger, server_default="0")
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    leased_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """While running: until when its worker holds it; while queued after a failure: not
    before."""
    leased_by: Mapped[str | None] = mapped_column(Text)
    file_path: Mapped[str | None] = mapped_column(Text)
    """Where the file lives in storage, while it is kept."""
    file_name: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
