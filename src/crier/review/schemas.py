"""Review resources: the inbox's reviews, its change feed, and each location's sync."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from crier.review import templates
from crier.social_account.schemas import SocialAccountId

ReviewId = Annotated[UUID, Field(description="Identifier of a review.")]
TemplateId = Annotated[UUID, Field(description="Identifier of a reply template.")]
MAX_REPLY_BYTES = 4096
"""The longest reply, in UTF-8 bytes (Google Business Profile's limit)."""


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class SentimentSource(StrEnum):
    TEXT = "text"
    RATING = "rating"


class ReplyStatus(StrEnum):
    PENDING = "pending"
    FAILED = "failed"


class ReplyError(BaseModel):
    code: str = Field(description="The error code (see docs/errors.md).")
    message: str | None = Field(description="What the network said, where it said something.")


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
    reply_status: ReplyStatus | None = Field(
        description="`pending` while a reply (or its removal) asked of Crier is on its way to "
        "the network; `failed` when the last one failed for good (see `reply_error`); null "
        "otherwise."
    )
    reply_error: ReplyError | None = Field(description="Why the last reply asked failed.")
    removed_at: datetime | None = Field(
        description="When a sync found the review gone from the network (it stays here)."
    )
    sequence: int = Field(
        description="The review's place in the change feed: greater after every change. Its "
        'ETag is this number in quotes ("42").'
    )
    created_at: datetime = Field(description="When Crier first read it.")
    updated_at: datetime = Field(description="When Crier last changed it.")


class ReplyAction(StrEnum):
    REPLY = "reply"
    DELETE = "delete"


class ReplyOrigin(StrEnum):
    CRIER = "crier"
    NETWORK = "network"


class ReplyRecordStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class ReplyRecord(BaseModel):
    """A reply or its removal, asked of Crier or seen made on the network."""

    id: UUID = Field(description="Identifier of this reply record.")
    action: ReplyAction = Field(description="`reply` (made or replaced) or `delete`.")
    text: str | None = Field(description="The reply's text (null for `delete`).")
    origin: ReplyOrigin = Field(
        description="`crier` (asked through this API) or `network` (made elsewhere, seen by "
        "a sync)."
    )
    status: ReplyRecordStatus = Field(
        description="`pending` (on its way), `sent` (the network confirmed it), `failed` "
        "(for good: see `error`), `superseded` (a newer one was asked before it was sent)."
    )
    attempts: int = Field(description="How many times Crier has sent it.")
    error: ReplyError | None = Field(description="The last failure, if any.")
    requested_by: UUID | None = Field(description="The member who asked for it.")
    template_id: TemplateId | None = Field(description="The template it was made from.")
    requested_at: datetime = Field(description="When it was asked for (or seen).")
    sent_at: datetime | None = Field(description="When the network confirmed (or made) it.")


class ReviewDetail(Review):
    replies: list[ReplyRecord] = Field(description="The reply history, the newest first.")


def _check_reply(text: str) -> str:
    if not text.strip():
        raise ValueError("A reply has some text.")
    if len(text.encode()) > MAX_REPLY_BYTES:
        raise ValueError(f"A reply is at most {MAX_REPLY_BYTES} bytes in UTF-8.")
    return text


NOT_BLANK = r"\S"
"""Some character that is not white space."""


class ReplyText(BaseModel):
    """A reply written out."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=MAX_REPLY_BYTES,
        pattern=NOT_BLANK,
        description="The reply: not blank, 4096 bytes of UTF-8 at most.",
    )

    _text = field_validator("text")(_check_reply)


class ReplyFromTemplate(BaseModel):
    """A reply made from a template, filled from the review."""

    model_config = ConfigDict(extra="forbid")

    template_id: TemplateId = Field(description="A reply template of the workspace.")


ReplyRequest = ReplyText | ReplyFromTemplate
"""The reply to make: its `text`, or a `template_id` to fill from the review."""


def _check_template(text: str) -> str:
    try:
        templates.check(text)
    except templates.TemplateError as exc:
        raise ValueError(str(exc)) from exc
    return _check_reply(text)


class ReviewTemplate(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: TemplateId
    name: str = Field(description="Unique in the workspace.")
    text: str = Field(
        description="The reply, with placeholders `{reviewer_name}`, `{location_name}`, "
        "`{rating}`; `{reviewer_name|there}` gives a fallback; `{{` and `}}` are braces."
    )
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When it was last changed.")


class ReviewTemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, pattern=NOT_BLANK, description="Unique in the workspace."
    )
    text: str = Field(
        min_length=1,
        max_length=MAX_REPLY_BYTES,
        pattern=NOT_BLANK,
        description="The reply, with placeholders.",
    )

    _text = field_validator("text")(_check_template)


class ReviewTemplateUpdate(BaseModel):
    """What changes; fields left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=NOT_BLANK, description="A new name."
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REPLY_BYTES,
        pattern=NOT_BLANK,
        description="A new text.",
    )

    _text = field_validator("text")(lambda text: _check_template(text) if text else text)


class ReviewTemplatePreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_id: ReviewId = Field(description="The review to fill the template from.")


class RenderedReply(BaseModel):
    text: str = Field(description="The template filled from the review, as it would be sent.")


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


AlertRuleId = Annotated[UUID, Field(description="Identifier of a review alert rule.")]
Sentiment = Annotated[float, Field(ge=-1, le=1)]
Stars = Annotated[int, Field(ge=1, le=5)]


class ReviewAlertRule(BaseModel):
    """Conditions a review must all meet to raise an alert (`review.alert`)."""

    model_config = ConfigDict(from_attributes=True)

    id: AlertRuleId
    name: str = Field(description="Unique in the workspace.")
    max_rating: int | None = Field(description="Reviews of at most this many stars.")
    sentiment_below: float | None = Field(description="Reviews whose sentiment is under this.")
    social_account_ids: list[SocialAccountId] | None = Field(
        description="Only these locations; null for every location."
    )
    enabled: bool = Field(description="Whether it raises alerts.")
    active_from: datetime = Field(
        description="Only reviews written or changed on the network from then on raise it."
    )
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When it was last changed.")


_LOCATIONS = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="Only these locations (their account ids); null or left out for every one.",
)


class ReviewAlertRuleCreate(BaseModel):
    """A rule: at least one condition (`max_rating`, `sentiment_below`), all of which a
    review must meet."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [{"required": ["max_rating"]}, {"required": ["sentiment_below"]}]
        },
    )

    name: str = Field(
        min_length=1, max_length=200, pattern=NOT_BLANK, description="Unique in the workspace."
    )
    # Not null here (left out, if not wanted), so that the schema's anyOf says it all.
    max_rating: Stars | SkipJsonSchema[None] = Field(
        default=None, description="At most this many stars."
    )
    sentiment_below: Sentiment | SkipJsonSchema[None] = Field(
        default=None, description="A sentiment under this (from -1 to 1)."
    )
    social_account_ids: list[SocialAccountId] | None = _LOCATIONS
    enabled: bool = Field(default=True, description="Whether it raises alerts.")

    @model_validator(mode="after")
    def _a_condition(self) -> ReviewAlertRuleCreate:
        if self.max_rating is None and self.sentiment_below is None:
            raise ValueError("Give `max_rating`, `sentiment_below` or both.")
        return self


class ReviewAlertRuleUpdate(BaseModel):
    """What changes; fields left out stay. `max_rating`, `sentiment_below` and
    `social_account_ids` set to null are removed (the rule keeps at least one condition)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=NOT_BLANK, description="A new name."
    )
    max_rating: int | None = Field(default=None, ge=1, le=5, description="At most this many stars.")
    sentiment_below: Sentiment | None = Field(default=None, description="A sentiment under this.")
    social_account_ids: list[SocialAccountId] | None = _LOCATIONS
    enabled: bool | None = Field(default=None, description="Whether it raises alerts.")


class AlertedRule(BaseModel):
    id: AlertRuleId
    name: str = Field(description="The rule's name.")


class ReviewAlertEvent(BaseModel):
    """What `review.alert` carries."""

    rule: AlertedRule = Field(description="The rule the review met.")
    review: Review = Field(description="The review, as it is now.")


class RatingDistribution(BaseModel):
    """How many reviews gave each number of stars."""

    one: int = Field(serialization_alias="1", ge=0, description="Reviews of 1 star.")
    two: int = Field(serialization_alias="2", ge=0, description="Reviews of 2 stars.")
    three: int = Field(serialization_alias="3", ge=0, description="Reviews of 3 stars.")
    four: int = Field(serialization_alias="4", ge=0, description="Reviews of 4 stars.")
    five: int = Field(serialization_alias="5", ge=0, description="Reviews of 5 stars.")

    @classmethod
    def of(cls, counts: Sequence[int]) -> RatingDistribution:
        """From the counts of one to five stars, in that order."""
        one, two, three, four, five = counts
        return cls(one=one, two=two, three=three, four=four, five=five)


class WeekSentiment(BaseModel):
    week: date = Field(description="The week's Monday, in the workspace's timezone.")
    days: int = Field(
        ge=1,
        le=7,
        description="How many of the range's days fall in this week: 7, but in a first or "
        "last week the range cuts.",
    )
    count: int = Field(ge=0, description="Reviews written in those days.")
    average_sentiment: float | None = Field(
        ge=-1, le=1, description="Their mean `sentiment`; null without reviews scored."
    )
    negative: int = Field(ge=0, description="Reviews labelled negative.")
    neutral: int = Field(ge=0, description="Reviews labelled neutral.")
    positive: int = Field(ge=0, description="Reviews labelled positive.")


class ReviewStats(BaseModel):
    """Reviews written from `from` to `to` (days in `timezone`, both included), removed
    ones left out."""

    from_: date = Field(serialization_alias="from", description="The range's first day.")
    to: date = Field(description="The range's last day.")
    timezone: str = Field(description="The workspace's timezone, which the days are in.")
    social_account_id: SocialAccountId | None = Field(
        description="The location counted; null for all of them."
    )
    location_id: str | None = Field(
        description="The location counted, by its id on the network, if asked so."
    )
    count: int = Field(ge=0, description="Reviews written in the range.")
    average_rating: float | None = Field(
        ge=1, le=5, description="Their mean rating; null without reviews."
    )
    rating_distribution: RatingDistribution = Field(
        description='How many gave each rating: {"1": 0, ..., "5": 12}.'
    )
    responded: int = Field(ge=0, description="Those the business has answered.")
    response_rate: float | None = Field(
        ge=0, le=1, description="`responded` / `count`; null without reviews."
    )
    median_response_seconds: float | None = Field(
        ge=0,
        description="The median time from a review to its first reply (`responded_at` - "
        "`reviewed_at`), over those answered; null when none was.",
    )
    average_sentiment: float | None = Field(
        ge=-1, le=1, description="Their mean `sentiment`; null without reviews scored."
    )
    weeks: list[WeekSentiment] = Field(
        description="Each week (from Monday) the range touches, in order, with no gaps."
    )
