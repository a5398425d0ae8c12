"""Connected social profiles. Platform tokens are stored encrypted, never in clear."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.models.base import TenantModel

ACCOUNT_STATUSES = ("active", "expired", "revoked", "disconnected")


class SocialAccount(TenantModel):
    __tablename__ = "social_accounts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'expired', 'revoked', 'disconnected')", name="status_known"
        ),
        Index(None, "workspace_id", "platform", "external_id"),
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
    server_url: Mapped[str | None] = mapped_column(Text)
    """The account's own server, on networks with many (a Mastodon instance)."""
    content_limits: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """What the account's server allows in a post, where it says (read when connecting)."""
    app_id: Mapped[UUID | None] = mapped_column(ForeignKey("platform_apps.id"))
    """The app registered on the account's server that holds its grant."""
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reconnect_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the network's grant ends for good, whatever the refreshes."""
