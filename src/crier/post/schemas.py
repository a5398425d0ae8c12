"""Post resources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crier.kit.time import IanaTimezone, Timestamp
from crier.post.lifecycle import PostStatus
from crier.social_account.schemas import Platform

PostId = Annotated[UUID, Field(description="Identifier of a post.")]

MAX_TEXT = 100_000
MAX_MEDIA = 20
MAX_TARGETS = 50


class PostPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=MAX_TEXT, description="The post's text.")
    media_ids: list[UUID] = Field(
        default_factory=list,
        max_length=MAX_MEDIA,
        description="Media assets of this workspace to attach, in order.",
    )

    @field_validator("media_ids")
    @classmethod
    def _distinct_media(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("a media asset may be attached once")
        return value


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    social_account_id: UUID = Field(description="A social account of this workspace.")
    platform_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings for this platform only (e.g. a first comment, a link).",
    )


def _distinct_targets(value: list[TargetIn] | None) -> list[TargetIn] | None:
    if value is not None and len({t.social_account_id for t in value}) != len(value):
        raise ValueError("each social account may be targeted once")
    return value


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: PostPayload = Field(description="What to publish.")
    targets: list[TargetIn] = Field(
        default_factory=list, max_length=MAX_TARGETS, description="Where to publish it."
    )
    publish_at: Timestamp | None = Field(
        default=None,
        description="When to publish: ISO 8601 with an explicit offset. Required to schedule.",
    )
    timezone: IanaTimezone | None = Field(
        default=None,
        max_length=64,
        description="IANA timezone of this post; the workspace's when omitted.",
    )
    status: Literal["draft", "scheduled"] = Field(
        default="draft", description="`draft` (default) or `scheduled` (needs `publish_at`)."
    )

    _targets = field_validator("targets")(_distinct_targets)


class PostUpdate(BaseModel):
    """Fields to change; omitted fields stay. `publish_at` and `timezone` may be null."""

    model_config = ConfigDict(extra="forbid")

    payload: PostPayload | None = Field(default=None, description="Replaces the payload.")
    targets: list[TargetIn] | None = Field(
        default=None, max_length=MAX_TARGETS, description="Replaces the targets."
    )
    publish_at: Timestamp | None = Field(
        default=None, description="New time (ISO 8601 with offset); null clears a draft's."
    )
    timezone: IanaTimezone | None = Field(
        default=None, max_length=64, description="New IANA timezone; null uses the workspace's."
    )

    _targets = field_validator("targets")(_distinct_targets)


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    publish_at: Timestamp | None = Field(
        default=None, description="When to publish; the post's own `publish_at` when omitted."
    )
    timezone: IanaTimezone | None = Field(
        default=None, max_length=64, description="IANA timezone to set on the post."
    )


class Target(BaseModel):
    id: UUID = Field(description="Identifier of the target.")
    social_account_id: UUID = Field(description="The social account published to.")
    platform: Platform = Field(description="That account's platform.")
    platform_settings: dict[str, Any] = Field(description="Settings for this platform.")


class Warning(BaseModel):
    code: str = Field(description="Stable code of the warning, e.g. `offset_mismatch`.")
    message: str = Field(description="What it means for this post.")


class Post(BaseModel):
    id: PostId
    status: PostStatus = Field(description="Where the post is in its lifecycle.")
    payload: PostPayload = Field(description="What to publish.")
    targets: list[Target] = Field(description="Where to publish it.")
    publish_at: datetime | None = Field(description="When it publishes, in UTC.")
    publish_at_local: datetime | None = Field(
        description="The same instant in the post's effective timezone."
    )
    timezone: str = Field(description="Effective IANA timezone: the post's or the workspace's.")
    timezone_is_workspace_default: bool = Field(
        description="True when the post follows the workspace's timezone."
    )
    locked: bool = Field(
        description="True from 5 minutes before `publish_at`: edits answer `post-locked`."
    )
    author_id: UUID = Field(description="The member who created the post.")
    version: int = Field(description="Increases with every change; the ETag is derived from it.")
    created_at: datetime = Field(description="When the post was created.")
    updated_at: datetime = Field(description="When the post last changed.")
    published_at: datetime | None = Field(description="When every target had published.")
    cancelled_at: datetime | None = Field(description="When the post was cancelled.")
    cancelled_by: UUID | None = Field(description="The member who cancelled it.")
    warnings: list[Warning] = Field(
        default_factory=list, description="Things worth knowing about this request's input."
    )
