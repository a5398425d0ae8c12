"""Social account resources."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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
    BLUESKY = "bluesky"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISCONNECTED = "disconnected"


class SocialAccountConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: ConnectablePlatform = Field(
        description="The platform. `sandbox` connects with no credentials; `bluesky` with "
        "the account's handle (or DID, or email) and an app password."
    )
    handle: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9_.:@+-]+$",
        description="The account's handle on the platform; generated when omitted (sandbox). "
        "On Bluesky, what it signs in with: handle (`alice.bsky.social`), DID or email.",
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name shown for the account."
    )
    app_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Bluesky only: an app password (Settings, Privacy and security, App "
        "passwords), not the account's own password. It opens a session and is never kept.",
    )
    service_url: str | None = Field(
        default=None,
        max_length=500,
        description="Bluesky only: the server the account signs in at, when it is not this "
        "server's default (CRIER_BLUESKY_SERVICE_URL, `https://bsky.social`).",
    )

    @model_validator(mode="after")
    def _credentials(self) -> SocialAccountConnect:
        if self.platform == ConnectablePlatform.BLUESKY:
            missing = [n for n in ("handle", "app_password") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a Bluesky account connects with {' and '.join(missing)}")
        else:
            extra = [n for n in ("app_password", "service_url") if getattr(self, n) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for Bluesky")
        return self


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
    server_url: str | None = Field(
        description="The account's own server, on networks with many (a Mastodon instance)."
    )
    last_refreshed_at: datetime | None = Field(
        description="When its tokens were last obtained (connected or refreshed)."
    )
    reconnect_by: datetime | None = Field(
        description="When the network's grant ends for good however often it is refreshed "
        "(LinkedIn's 365 days): reconnect before then. Null where it does not end."
    )
    created_at: datetime = Field(description="When the account was connected.")
    disconnected_at: datetime | None = Field(description="When it was disconnected, if it was.")


class OAuthConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform = Field(description="The network to connect an account of.")
    redirect_to: str | None = Field(
        default=None,
        max_length=2000,
        description="Where to send the browser once connected (with `account_id` and "
        "`platform` added to its query); on an origin the server allows. Without it, the "
        "callback shows a small page saying it worked.",
    )
    instance_url: str | None = Field(
        default=None,
        max_length=500,
        description="Mastodon only: the instance the account lives on, such as "
        "`https://mastodon.social`.",
    )
    organization: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="LinkedIn only: connect this company page instead of the member who "
        "consents, by its id, URN or vanity name (`acme` for linkedin.com/company/acme). The "
        "member must hold a role on it that lets them post (administrator, content admin or "
        "sponsored content poster), else `oauth-organization-refused`.",
    )


class OAuthStarted(BaseModel):
    authorize_url: str = Field(description="Send the user's browser here to give consent.")
    expires_at: datetime = Field(description="The consent must be completed before then.")


class PlatformInfo(BaseModel):
    name: Platform = Field(description="The platform.")
    configured: bool = Field(description="Whether this server can connect and publish to it.")
    connects: str | None = Field(
        description="How its accounts connect: `direct` (`POST /v1/social-accounts`), "
        "`app_password` (the same, with `handle` and `app_password`), `oauth` "
        "(`POST /v1/social-accounts/connect`), `oauth_instance` (the same, naming the server "
        "in `instance_url`), `oauth_choose` (the same, then choosing which of the accounts "
        "the consent reaches to connect: Google's locations); null when this server cannot "
        "connect them."
    )
    reviews: bool = Field(
        description="Whether this server syncs its accounts' reviews (they are business "
        "locations: `/v1/reviews`); false, too, for a platform it is not configured for."
    )
    rules: dict[str, Any] = Field(
        description="What a post may hold: `max_text` and how text is counted "
        "(`text_counting`), `max_text_bytes`, `max_media`, `media_kinds`, `max_videos`, "
        "`video_alone`, `requires_media`, `max_image_bytes`, `max_video_bytes`, "
        "`max_video_seconds` (null: "
        "not checked). An account's own server may allow other numbers (Mastodon)."
    )


GrantId = Annotated[UUID, Field(description="Identifier of a consent to choose accounts from.")]


class GrantChoice(BaseModel):
    external_id: str = Field(
        description="The account's id on the network (a Google location: "
        "`accounts/{a}/locations/{l}`); what to name in `connect`."
    )
    name: str = Field(description="Its name (a location's title).")
    group: str | None = Field(description="What it belongs to (the Google business account).")
    detail: str | None = Field(description="What tells it apart (a location's address).")
    social_account_id: SocialAccountId | None = Field(
        description="The workspace's account for it, if it is connected already."
    )


class OAuthGrant(BaseModel):
    """A consent that reaches many accounts: choose which to connect before `expires_at`."""

    id: GrantId
    platform: Platform = Field(description="The network.")
    expires_at: datetime = Field(description="Until then, accounts can be chosen from it.")
    choices: list[GrantChoice] = Field(description="Every account the consent reaches.")


class GrantConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_ids: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        min_length=1,
        max_length=100,
        json_schema_extra={"uniqueItems": True},
        description="The `external_id`s of the choices to connect (at most 100 at once); "
        "each becomes an account, or updates the workspace's account for it.",
    )

    @field_validator("external_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("each external_id once")
        return ids


class ConnectedAccounts(BaseModel):
    data: list[SocialAccount] = Field(description="The accounts connected, in the order asked.")
