"""Workspace resources."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from crier.kit.time import IanaTimezone
from crier.workspace.plans import PlanName

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"


class PlanLimits(BaseModel):
    members: int = Field(description="Members at most.")
    social_accounts: int = Field(description="Connected social accounts at most.")
    scheduled_posts_per_month: int = Field(
        description="Posts scheduled to publish in one calendar month (workspace timezone)."
    )
    media_upload_bytes: int = Field(description="Largest media file accepted, in bytes.")


class PlanUsage(BaseModel):
    members: int = Field(description="Current members.")
    social_accounts: int = Field(description="Connected (not disconnected) social accounts.")
    scheduled_posts_this_month: int = Field(
        description="Posts scheduled to publish this calendar month (workspace timezone)."
    )


class Workspace(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID = Field(description="Identifier of the workspace.")
    slug: str = Field(description="Unique, URL-safe name of the workspace.")
    name: str = Field(description="Display name.")
    plan: PlanName = Field(description="The workspace's plan.")
    timezone: str = Field(description="IANA timezone; schedules and analytics days use it.")
    limits: PlanLimits = Field(description="What the plan allows.")
    usage: PlanUsage = Field(description="How much of the limits is in use.")
    created_at: datetime = Field(description="When the workspace was created.")
    updated_at: datetime = Field(description="When the workspace last changed.")


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Display name."
    )
    slug: str | None = Field(
        default=None, pattern=SLUG_PATTERN, description="Unique, URL-safe name (a-z, 0-9, -)."
    )
    timezone: IanaTimezone | None = Field(
        default=None, max_length=64, description="IANA timezone, e.g. `Europe/Paris`."
    )
