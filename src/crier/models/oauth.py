"""OAuth: consents under way, and the apps Crier registers on servers of a network."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, LargeBinary, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.kit.ids import new_id
from crier.models.base import Base, TenantModel, Timestamps


class PlatformApp(Base, Timestamps):
    """The app Crier registered on one server of a network (a Mastodon instance), shared
    by every workspace. Its client secret is sealed."""

    __tablename__ = "platform_apps"
    __table_args__ = (UniqueConstraint("platform", "server_url", "redirect_uri", "scopes"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    platform: Mapped[str] = mapped_column(Text)
    server_url: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(Text)
    client_secret: Mapped[bytes] = mapped_column(LargeBinary)


class OAuthState(TenantModel):
    """A consent under way: single-use, short-lived, bound to its workspace and member."""

    __tablename__ = "oauth_states"
    __table_args__ = (UniqueConstraint("workspace_id", "secret_hash"),)

    member_id: Mapped[UUID] = mapped_column()
    platform: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    code_verifier: Mapped[bytes] = mapped_column(LargeBinary)
    """The PKCE verifier, sealed."""
    redirect_to: Mapped[str | None] = mapped_column(Text)
    server_url: Mapped[str | None] = mapped_column(Text)
    organization: Mapped[str | None] = mapped_column(Text)
    """The organization to connect instead of the member (its id or vanity name)."""
    app_id: Mapped[UUID | None] = mapped_column(ForeignKey("platform_apps.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthGrant(TenantModel):
    """A consent that reaches many accounts (a Google user's business locations), kept an
    hour while a member of the workspace chooses which of them to connect: its tokens,
    sealed, and the accounts it reaches (`choices`)."""

    __tablename__ = "oauth_grants"

    member_id: Mapped[UUID] = mapped_column()
    """Who consented through Crier."""
    platform: Mapped[str] = mapped_column(Text)
    access_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed; erased once the grant has expired."""
    refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed; erased once the grant has expired."""
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reconnect_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    choices: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    """The accounts it reaches: `external_id`, `name`, `group`, `detail`."""
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
