"""Webhook resources: endpoints, their deliveries, and events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crier.webhook.events import EventType

EndpointId = Annotated[UUID, Field(description="Identifier of a webhook endpoint.")]
EventId = Annotated[UUID, Field(description="Identifier of an event (its `webhook-id`).")]
MAX_URL_LENGTH = 2048
# What `_check_url` accepts, said so that a client can check it too: http(s), a host name,
# an IPv4 or a bracketed IPv6 address, an optional port, then a path or query of printable
# ASCII without `#` (no credentials, no fragment).
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV4 = r"((25[0-5]|(2[0-4]|1?[0-9])?[0-9])\.){3}(25[0-5]|(2[0-4]|1?[0-9])?[0-9])"
_IPV6 = "|".join(  # RFC 3986's IPv6address, spelled out (the pattern language has no lookahead)
    [
        f"({_H16}:){{7}}{_H16}",
        f"({_H16}:){{1,7}}:",
        f"({_H16}:){{1,6}}:{_H16}",
        *(f"({_H16}:){{1,{7 - n}}}(:{_H16}){{1,{n}}}" for n in range(2, 7)),
        f":((:{_H16}){{1,7}}|:)",
        f"({_H16}:){{6}}{_IPV4}",
        f"(({_H16}:){{0,5}}|:):({_H16}:){{0,5}}{_IPV4}",
    ]
)
_PORT = "([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = f"^https?://([A-Za-z0-9.-]+|\\[({_IPV6})\\])(:{_PORT})?([/?][!$-;=?-~]*)?$"


def _check_url(url: str) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ValueError(f"not a URL: {error}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ValueError("must be an absolute http(s) URL, such as https://example.com/hooks")
    if parsed.userinfo:
        raise ValueError("must not carry credentials; authenticate with the signature")
    if parsed.fragment:
        raise ValueError("must not have a fragment")
    return url


def _check_types(types: list[EventType] | None) -> list[EventType] | None:
    if types is not None and not types:
        raise ValueError("give at least one event type, or null for every type")
    return sorted(set(types)) if types is not None else None


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        pattern=URL_PATTERN,
        description="Where events are POSTed: an absolute http(s) URL.",
    )
    event_types: list[EventType] | None = Field(
        default=None,
        min_length=1,
        description="The event types to send; null (the default) for all.",
    )
    description: str = Field(default="", max_length=500, description="What it is for.")
    # Strict: `0` or "yes" is not a boolean, though Python would take it for one.
    enabled: StrictBool = Field(default=True, description="Whether events are sent to it.")

    _url = field_validator("url")(_check_url)
    _types = field_validator("event_types")(_check_types)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, max_length=MAX_URL_LENGTH, pattern=URL_PATTERN, description="A new URL."
    )
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, description="The event types to send; null for all."
    )
    description: str | None = Field(default=None, max_length=500, description="What it is for.")
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables an endpoint that was disabled."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return _check_url(url) if url is not None else None

    _types = field_validator("event_types")(_check_types)


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: EndpointId
    url: str = Field(description="Where events are POSTed.")
    event_types: list[EventType] | None = Field(description="null: every event type.")
    description: str = Field(description="What it is for.")
    enabled: bool = Field(description="Whether events are sent to it.")
    disabled_at: datetime | None = Field(description="When it was disabled, if it is.")
    disabled_reason: str | None = Field(
        description="Why: disabled by a member, `410 Gone`, or failing for too long."
    )
    failing_since: datetime | None = Field(
        description="The first failed call since the last success."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until then, calls carry a signature with the secret before the last "
        "rotation too."
    )
    created_at: datetime = Field(description="When it was added.")
    updated_at: datetime = Field(description="When it last changed.")


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(
        description="The signing secret, `whsec_` + base64. Shown only now: keep it."
    )


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookAttempt(BaseModel):
    number: int = Field(description="1 for the first call.")
    started_at: datetime = Field(description="When the call began.")
    duration_ms: int = Field(description="How long until the answer (or the failure).")
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why the attempt failed, if it did.")


class WebhookDelivery(BaseModel):
    id: UUID = Field(description="Identifier of the delivery.")
    event_id: EventId
    event_type: str = Field(description="The event's type.")
    status: WebhookDeliveryStatus = Field(
        description="`pending` (retries to come), `succeeded` (a 2xx) or `failed` (gave up)."
    )
    attempts: list[WebhookAttempt] = Field(description="Every call, oldest first.")
    last_status_code: int | None = Field(description="The last answer's HTTP status.")
    next_attempt_at: datetime | None = Field(description="When the next try is due, if any.")
    succeeded_at: datetime | None = Field(description="When a call succeeded.")
    created_at: datetime = Field(description="When the event was queued for the endpoint.")


class WebhookEvent(BaseModel):
    id: EventId
    type: str = Field(description="The event type (see `GET /v1/webhook-event-types`).")
    sequence: int | None = Field(description="Its place among its post's events.")
    payload: dict[str, Any] = Field(description="Exactly what is sent.")
    created_at: datetime = Field(description="When it happened.")


class WebhookReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: UUID | None = Field(
        default=None,
        description="Resend to this endpoint only; by default to every endpoint the event "
        "was sent to.",
    )


class WebhookSent(BaseModel):
    event_id: EventId
    deliveries: int = Field(description="How many deliveries were queued.")


class WebhookEventType(BaseModel):
    type: EventType = Field(description="The event type.")
    description: str = Field(description="When it is sent, and what its `data` holds.")
