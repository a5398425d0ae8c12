"""Authenticating requests and managing API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth import keys
from crier.auth import repository as key_repository
from crier.auth.permissions import Permission, Role, effective_permissions
from crier.auth.principal import Principal
from crier.auth.schemas import ApiKeyCreate
from crier.kit.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    field_error,
)
from crier.kit.time import Clock
from crier.member import repository as member_repository
from crier.models import ApiKey, Member


async def authenticate(session: AsyncSession, clock: Clock, secret_hash: bytes) -> Principal:
    """The principal of the API key hashing to `secret_hash`, in its workspace from now on."""
    now = clock.now()
    return principal_of(await key_repository.authenticate(session, secret_hash, now), now)


def principal_of(found: key_repository.Authenticated | None, now: datetime) -> Principal:
    """The principal of what the key lookup found (401 if the key may not be used now)."""
    if (
        found is None
        or found.revoked_at is not None
        or (found.expires_at is not None and found.expires_at <= now)
    ):
        raise NotAuthenticated("The API key is unknown, revoked or expired.")
    if found.member_removed_at is not None:
        raise NotAuthenticated("The API key belongs to a member who has left the workspace.")
    grants = found.permissions or {}
    return Principal(
        workspace_id=found.workspace_id,
        member_id=found.member_id,
        api_key_id=found.api_key_id,
        role=Role(found.role),
        permissions=effective_permissions(
            found.role, grants.get("grant", ()), grants.get("deny", ()), found.scopes
        ),
        workspace_timezone=found.workspace_timezone,
        workspace_plan=found.workspace_plan,
    )


async def issue_key(
    session: AsyncSession,
    member: Member,
    name: str,
    scopes: Iterable[Permission] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for `member`; returns the row and the secret, which is not kept."""
    secret = keys.generate_key()
    key = ApiKey(
        workspace_id=member.workspace_id,
        member_id=member.id,
        name=name,
        prefix=keys.display_prefix(secret),
        secret_hash=keys.hash_key(secret),
        scopes=sorted(p.value for p in scopes) if scopes is not None else None,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key, secret


async def create_key(
    session: AsyncSession, clock: Clock, principal: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """Create a key for the calling member, never with more than the caller may do."""
    if data.scopes is not None:
        beyond = sorted(p.value for p in set(data.scopes) - principal.permissions)
        if beyond:
            raise PermissionDenied(
                beyond[0],
                f"A key cannot be given permissions its creator lacks: {', '.join(beyond)}.",
            )
    if data.expires_at is not None and data.expires_at <= clock.now():
        raise ValidationFailed(
            "The expiry is in the past.",
            [field_error(["body", "expires_at"], "must be in the future", "expired")],
        )
    member = await member_repository.get(session, principal.member_id)
    assert member is not None  # authenticate() just loaded it
    # A key scoped to nothing would be the member's full rights if scopes were None;
    # inherit the caller's own narrowing so a scoped key cannot mint a broader one.
    scopes = data.scopes
    if scopes is None and principal.permissions != _member_permissions(member):
        scopes = sorted(principal.permissions)
    return await issue_key(session, member, data.name, scopes, data.expires_at)


def _member_permissions(member: Member) -> frozenset[Permission]:
    grants = member.permissions or {}
    return effective_permissions(member.role, grants.get("grant", ()), grants.get("deny", ()))


async def list_keys(
    session: AsyncSession,
    principal: Principal,
    member_id: UUID | None,
    after: UUID | None,
    limit: int,
) -> list[ApiKey]:
    """The caller's keys, or with `api_keys:manage` any member's (all by default)."""
    if not principal.can(Permission.API_KEYS_MANAGE):
        if member_id not in (None, principal.member_id):
            raise PermissionDenied(Permission.API_KEYS_MANAGE.value)
        member_id = principal.member_id
    return await key_repository.list_keys(session, member_id=member_id, after=after, limit=limit)


async def get_key(session: AsyncSession, principal: Principal, key_id: UUID) -> ApiKey:
    key = await key_repository.get(session, key_id)
    if key is None or (
        key.member_id != principal.member_id and not principal.can(Permission.API_KEYS_MANAGE)
    ):
        raise NotFound("No API key with this id in this workspace.")
    return key


async def revoke_key(
    session: AsyncSession, clock: Clock, principal: Principal, key_id: UUID
) -> ApiKey:
    """Revoke a key at once; revoking a revoked key changes nothing."""
    key = await get_key(session, principal, key_id)
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.flush()
    return key
