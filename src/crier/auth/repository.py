"""Queries on API keys. Row Level Security limits every one of them to the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db.engine import Statement
from crier.models import ApiKey


@dataclass(frozen=True)
class Authenticated:
    """What `crier_authenticate` found for a key hash (see migration 0003)."""

    api_key_id: UUID
    workspace_id: UUID
    member_id: UUID
    scopes: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    role: str
    permissions: dict[str, Any]
    member_removed_at: datetime | None
    workspace_timezone: str
    workspace_plan: str


_AUTHENTICATE = text("SELECT * FROM crier_authenticate(:hash, :now)")


async def authenticate(
    session: AsyncSession, secret_hash: bytes, now: datetime
) -> Authenticated | None:
    """Find the key by its hash and enter its workspace, in one round trip.

    The database function records the key's use (at most once a minute) and leaves the
    transaction inside the key's workspace; Row Level Security applies throughout.
    """
    row = (await session.execute(*authenticate_statement(secret_hash, now))).one_or_none()
    return Authenticated(**row._mapping) if row is not None else None


def authenticate_statement(secret_hash: bytes, now: datetime) -> Statement:
    """`authenticate` as a statement to run ahead of others in one round trip
    (`Database.read_at_once`); `authenticated` reads its rows."""
    return _AUTHENTICATE, {"hash": secret_hash, "now": now}


def authenticated(rows: list[dict[str, Any]]) -> Authenticated | None:
    return Authenticated(**rows[0]) if rows else None


async def get(session: AsyncSession, key_id: UUID) -> ApiKey | None:
    result = await session.execute(select(ApiKey).where(ApiKey.id == key_id))
    return result.scalar_one_or_none()


async def list_keys(
    session: AsyncSession, *, member_id: UUID | None, after: UUID | None, limit: int
) -> list[ApiKey]:
    """Keys in id order (creation order), `limit` of them after `after`."""
    query = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if member_id is not None:
        query = query.where(ApiKey.member_id == member_id)
    if after is not None:
        query = query.where(ApiKey.id > after)
    return list((await session.execute(query)).scalars())


async def revoke_member_keys(session: AsyncSession, member_id: UUID, when: datetime) -> None:
    """Revoke every live key of a member."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.member_id == member_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=when)
    )
