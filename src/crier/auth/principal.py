"""Who is calling: the authenticated member of one workspace, through one API key."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.permissions import Permission, Role
from crier.kit.errors import PermissionDenied
from crier.kit.time import Clock


@dataclass(frozen=True)
class Principal:
    workspace_id: UUID
    member_id: UUID
    api_key_id: UUID
    role: Role
    permissions: frozenset[Permission]
    """What this request may do: the member's permissions narrowed by the key's scopes."""
    workspace_timezone: str = "UTC"
    """The workspace's IANA timezone as of the start of the request."""
    workspace_plan: str = "free"
    """The workspace's plan as of the start of the request."""

    def require(self, permission: Permission) -> None:
        """Raise `permission-denied` naming `permission` unless this request has it."""
        if permission not in self.permissions:
            raise PermissionDenied(permission.value)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class Acting:
    """A principal acting: who, in which transaction (inside its workspace), on which clock.
    What a service that changes things on a caller's behalf is given."""

    principal: Principal
    session: AsyncSession
    clock: Clock
