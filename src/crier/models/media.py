"""Stored media files and their derived crops."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel


class MediaAsset(TenantModel):
    __tablename__ = "media_assets"
    __table_args__ = (
        CheckConstraint("category IN ('image', 'video', 'gif')", name="category_known"),
        CheckConstraint("usage_count >= 0", name="usage_count_not_negative"),
    )

    category: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    storage_path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    usage_count: Mapped[int] = mapped_column(Integer, server_default="0")
    filename: Mapped[str | None] = mapped_column(Text)
    alt_text: Mapped[str | None] = mapped_column(Text)
    """What the media shows, for people who cannot see it (sent to networks with it)."""
    sha256: Mapped[str] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
