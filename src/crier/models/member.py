"""People: users (global), members (a user in a workspace) and members' API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crier.kit.ids import new_id
from crier.models.base import Base, TenantModel

ROLES = ("owner", "admin", "editor", "contributor", "viewer")


class User(Base):
    """A person, identified by email, who may be a member of several workspaces.

    A workspace sees only its own members' users; nothing else about a user is shared
    across workspaces.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Member(TenantModel):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        CheckConstraint(
            "role IN ('owner', 'admin', 'editor', 'contributor', 'viewer')", name="role_known"
        ),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    permissions: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default='{"grant": [], "deny": []}'
    )
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(TenantModel):
    """A bearer credential for one member of one workspace. Only its SHA-256 is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "member_id"],
            ["members.workspace_id", "members.id"],
            ondelete="CASCADE",
        ),
        Index("ix_api_keys_secret_hash", "secret_hash", unique=True),
    )

    member_id: Mapped[UUID] = mapped_column()
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
