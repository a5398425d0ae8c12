"""Connected social profiles. Platform tokens are stored encrypted, never in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel

ACCOUNT_STATUSES = ("active", "expired", "revoked", "disconnected")


class SocialAccount(TenantModel):
    __tablename__ = "social_accounts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'expired', 'revoked', 'disconnected')", name="status_known"
        ),
    )

    platform: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    handle: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    access_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disconnected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refreshing_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """A worker is refreshing the tokens until then: the others leave them alone."""
