"""Delivery resources: what `GET /v1/posts/{id}/deliveries` shows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from crier.platforms.errors import ErrorCode


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Attempt(BaseModel):
    number: int = Field(description="1 for the first try, up to 3.")
    started_at: datetime = Field(description="When the attempt began.")
    finished_at: datetime | None = Field(description="When its answer (or failure) came.")
    outcome: str = Field(
        description="`published`, `retrying`, `failed`, `unknown` (settled by looking the "
        "post up on the platform), or `sending` while under way."
    )
    http_status: int | None = Field(description="The platform's HTTP status, if it answered.")
    error_code: ErrorCode | None = Field(description="From the catalogue in docs/errors.md.")
    message: str | None = Field(description="What the platform said.")


class Delivery(BaseModel):
    id: UUID = Field(description="Identifier of the delivery; also its idempotency key.")
    post_id: UUID = Field(description="The post delivered.")
    target_id: UUID = Field(description="The post target this delivery sends.")
    social_account_id: UUID = Field(description="The account published to.")
    platform: str = Field(description="That account's platform.")
    status: DeliveryStatus = Field(
        description="`pending`, `sending`, `published`, `failed`, or `cancelled` (the "
        "post was cancelled before this was sent)."
    )
    platform_post_id: str | None = Field(description="The post's id on the platform.")
    permalink: str | None = Field(description="Where the post can be seen.")
    published_at: datetime | None = Field(description="When the platform published it.")
    error_code: ErrorCode | None = Field(description="Why it failed, if it did.")
    error_message: str | None = Field(
        description="What the platform said, or why it was not sent (yet)."
    )
    next_attempt_at: datetime | None = Field(description="When the next retry is due.")
    attempts: list[Attempt] = Field(description="Every attempt, oldest first.")


class DeliveryList(BaseModel):
    """A post's deliveries, shaped like every list; a post has few targets, so one page."""

    data: list[Delivery] = Field(
        description="One delivery per target, once the scheduler has prepared the post."
    )
    next_cursor: str | None = Field(
        default=None, description="Always null: every delivery of the post is on this page."
    )
