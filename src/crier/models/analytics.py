"""Daily metric aggregates per social account, days being days in the workspace timezone."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from sqlalchemy import Date, Double, ForeignKeyConstraint, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel


class AnalyticsSnapshot(TenantModel):
    __tablename__ = "analytics_snapshots"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
        ),
        UniqueConstraint("workspace_id", "social_account_id", "metric", "date"),
    )

    social_account_id: Mapped[UUID] = mapped_column()
    metric: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    date: Mapped[dt.date] = mapped_column(Date)
