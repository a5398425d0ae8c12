"""Workspaces: the tenants."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import CheckConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from crier.kit.ids import new_id
from crier.models.base import Base, Timestamps


class Workspace(Base, Timestamps):
    __tablename__ = "workspaces"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'", name="slug_format"),
        CheckConstraint("plan IN ('free', 'pro', 'agency')", name="plan_known"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    plan: Mapped[str] = mapped_column(Text, server_default="free")
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
