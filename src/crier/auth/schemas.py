"""API key resources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from crier.auth.permissions import Permission, Role
from crier.kit.time import Timestamp

ApiKeyId = Annotated[UUID, Field(description="Identifier of an API key.")]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the key is for.")
    scopes: list[Permission] | None = Field(
        default=None,
        description=(
            "Permissions this key is limited to; null for all of the member's permissions. "
            "A key can never do more than its member."
        ),
    )
    expires_at: Timestamp | None = Field(
        default=None, description="When the key stops working (ISO 8601 with an offset)."
    )


class ApiKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ApiKeyId
    member_id: UUID = Field(description="The member this key acts as.")
    name: str = Field(description="What the key is for.")
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    scopes: list[Permission] | None = Field(
        description="Permissions this key is limited to; null for all of the member's."
    )
    created_at: datetime = Field(description="When the key was created.")
    expires_at: datetime | None = Field(description="When the key stops working, if ever.")
    last_used_at: datetime | None = Field(
        description="When the key last authenticated a request (to the minute)."
    )
    revoked_at: datetime | None = Field(description="When the key was revoked, if it was.")


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The secret key. Shown this once only: Crier keeps just its hash.")


class Me(BaseModel):
    workspace_id: UUID = Field(description="The workspace the key belongs to.")
    member_id: UUID = Field(description="The member the key acts as.")
    api_key_id: UUID = Field(description="The key used for this request.")
    role: Role = Field(description="The member's role.")
    permissions: list[Permission] = Field(description="What requests made with this key may do.")


class RoleGrants(BaseModel):
    role: Role = Field(description="A member role.")
    permissions: list[Permission] = Field(description="The permissions the role grants.")


class PermissionInfo(BaseModel):
    permission: Permission = Field(description="A permission.")
    description: str = Field(description="What it allows.")


class RoleCatalogue(BaseModel):
    roles: list[RoleGrants] = Field(description="Each role and what it grants.")
    permissions: list[PermissionInfo] = Field(description="Every permission.")
