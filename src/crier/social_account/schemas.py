"""Social account resources."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

SocialAccountId = Annotated[UUID, Field(description="Identifier of a social account.")]


class Platform(StrEnum):
    SANDBOX = "sandbox"
    X = "x"
    LINKEDIN = "linkedin"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    GOOGLE_BUSINESS = "google_business"


class ConnectablePlatform(StrEnum):
    """Platforms that can be connected through the API without an OAuth flow."""

    SANDBOX = "sandbox"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISCONNECTED = "disconnected"


class SocialAccountConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: ConnectablePlatform = Field(
        description="The platform. `sandbox` connects with no credentials."
    )
    handle: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The account's handle on the platform; generated when omitted.",
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name shown for the account."
    )


class SocialAccount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: SocialAccountId
    platform: Platform = Field(description="The platform the account lives on.")
    external_id: str = Field(description="The account's id on the platform.")
    handle: str = Field(description="The account's handle on the platform.")
    display_name: str = Field(description="Name shown for the account.")
    status: AccountStatus = Field(
        description=(
            "`active`: usable; `expired`: its token expired and could not be refreshed; "
            "`revoked`: the platform revoked access; `disconnected`: removed from Crier."
        )
    )
    token_expires_at: datetime | None = Field(
        description="When the platform token expires, if it does."
    )
    created_at: datetime = Field(description="When the account was connected.")
    disconnected_at: datetime | None = Field(description="When it was disconnected, if it was.")
