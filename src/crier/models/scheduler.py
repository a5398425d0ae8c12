"""What the scheduler keeps of its own, across workspaces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Text
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import Base


class SchedulerWorker(Base):
    """A worker's heartbeat: written every second while it runs, removed when it stops or
    is taken for dead (the posts it held then pass to other workers)."""

    __tablename__ = "scheduler_workers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
