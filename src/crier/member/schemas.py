"""Member resources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from crier.auth.permissions import Permission, Role

MemberId = Annotated[UUID, Field(description="Identifier of a member in this workspace.")]


class PermissionOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: list[Permission] = Field(
        default_factory=list, description="Permissions given on top of the role's."
    )
    deny: list[Permission] = Field(
        default_factory=list, description="Permissions withheld although the role grants them."
    )


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(description="The person's email; identifies them across workspaces.")
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    role: Role = Field(description="The member's role.")
    permissions: PermissionOverrides = Field(
        default_factory=PermissionOverrides, description="Single permissions granted or withheld."
    )


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Display name."
    )
    role: Role | None = Field(default=None, description="The new role.")
    permissions: PermissionOverrides | None = Field(
        default=None, description="Replaces the member's grants and denials."
    )


class Member(BaseModel):
    id: MemberId
    email: str = Field(description="The person's email.")
    name: str = Field(description="Display name.")
    role: Role = Field(description="The member's role.")
    permissions: PermissionOverrides = Field(description="Grants and denials on top of the role.")
    effective_permissions: list[Permission] = Field(
        description="What the member may do: the role's permissions plus grants minus denials."
    )
    created_at: datetime = Field(description="When the member joined.")
    updated_at: datetime = Field(description="When the member last changed.")
