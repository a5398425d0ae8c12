"""Review resources: the inbox's reviews, its change feed, and each location's sync."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from crier.social_account.schemas import SocialAccountId

ReviewId = Annotated[UUID, Field(description="Identifier of a review.")]


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class SentimentSource(StrEnum):
    TEXT = "text"
    RATING = "rating"


class ReviewReply(BaseModel):
    text: str = Field(description="The reply the network shows.")
    updated_at: datetime | None = Field(description="When the network says it was last set.")


class Review(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ReviewId
    social_account_id: SocialAccountId = Field(description="The location's account.")
    location_id: str = Field(description="The location on the network.")
    external_id: str = Field(description="The review's id on the network.")
    rating: int = Field(ge=1, le=5, description="1 to 5 stars.")
    body: str | None = Field(description="What the reviewer wrote; null for a rating alone.")
    reviewer_name: str | None = Field(description="The reviewer's name, as the network shows it.")
    sentiment: float | None = Field(
        ge=-1, le=1, description="From -1 (negative) to 1 (positive), scored when it is read."
    )
    sentiment_label: SentimentLabel | None = Field(description="negative, neutral or positive.")
    sentiment_source: SentimentSource | None = Field(
        description="What the sentiment was scored from: the review's `text` (English text "
        "that carries sentiment), or its `rating` (no text, or text in another language)."
    )
    language: str | None = Field(
        description="The language of `body` (ISO 639, two letters where there is a code of "
        "two), when it could be told with confidence."
    )
    reviewed_at: datetime = Field(description="When the review was first written.")
    network_updated_at: datetime = Field(
        description="When the network last changed it (text, rating or reply)."
    )
    reply: ReviewReply | None = Field(description="The business's reply, wherever it was made.")
    responded_at: datetime | None = Field(
        description="When the business first replied, as the network confirmed it."
    )
    removed_at: datetime | None = Field(
        description="When a sync found the review gone from the network (it stays here)."
    )
    sequence: int = Field(
        description="The review's place in the change feed: greater after every change."
    )
    created_at: datetime = Field(description="When Crier first read it.")
    updated_at: datetime = Field(description="When Crier last changed it.")


class ReviewFeedPage(BaseModel):
    """A page of the change feed: reviews in the order their latest change committed."""

    data: list[Review] = Field(description="The reviews, each as it is now.")
    next_cursor: str = Field(
        description="Pass as `cursor` for what follows. Never null: at the end, it is where "
        "to ask again later for what changed since."
    )
    has_more: bool = Field(description="Whether more follow at once (ask again now).")


class ReviewSyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    social_account_id: SocialAccountId | None = Field(
        default=None, description="The location to sync; every location of the workspace if null."
    )


class ReviewSyncState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    social_account_id: SocialAccountId
    next_sync_at: datetime = Field(description="When a worker syncs the location next.")
    in_progress: bool = Field(description="Whether a run is under way (resumed after a crash).")
    last_synced_at: datetime | None = Field(description="When the last run finished.")
    network_total: int | None = Field(description="Reviews the network counted at that run.")
    last_error: str | None = Field(
        description="The error code of the last failed run, until one succeeds (see "
        "docs/errors.md)."
    )
    last_error_at: datetime | None = Field(description="When that run failed.")


class ReviewSyncs(BaseModel):
    data: list[ReviewSyncState] = Field(description="Each location's sync.")
