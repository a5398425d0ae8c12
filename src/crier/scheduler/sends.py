"""What to do with each delivery that is due: decided without I/O.

A due delivery is refused when its account cannot publish (gone, revoked, expired) or
this server has no adapter for its platform; looked up first when its last attempt may
have reached the platform (`uncertain`); otherwise sent, shaped for its platform.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from crier.delivery.repository import Due
from crier.kit.ids import new_id
from crier.platforms.base import Prepared
from crier.platforms.errors import ErrorCode
from crier.platforms.rules import AssetLike, shape_for
from crier.post.schemas import PostPayload

_RECONNECT = "the account cannot publish; reconnect it"


class AccountLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def token_expires_at(self) -> datetime | None: ...
    @property
    def access_token(self) -> bytes | None: ...
    @property
    def refresh_token(self) -> bytes | None: ...
    @property
    def external_id(self) -> str: ...
    @property
    def server_url(self) -> str | None: ...


@dataclass(frozen=True)
class SealedAccount:
    """The account a delivery is sent as, its token still sealed."""

    access_token: bytes | None
    external_id: str
    server_url: str | None

    @classmethod
    def of(cls, account: AccountLike) -> SealedAccount:
        return cls(account.access_token, account.external_id, account.server_url)


@dataclass(frozen=True)
class PostToSend:
    """What a post's deliveries are made of."""

    payload: PostPayload
    publish_at: datetime | None
    assets: Sequence[AssetLike]
    """The post's media found in the workspace, in the payload's order."""


@dataclass(frozen=True)
class Send:
    """An attempt to write down and then send."""

    delivery_id: UUID
    platform: str
    account: SealedAccount
    content: Prepared
    first_due: datetime | None
    """The post's time when this is the delivery's first attempt (its lateness is observed
    as it leaves); None for a retry."""
    attempt_id: UUID = field(default_factory=new_id)


@dataclass(frozen=True)
class Recheck:
    """A delivery whose last attempt may have reached the platform: look it up by its
    idempotency key, and send it again only if it is not there."""

    delivery_id: UUID
    platform: str
    content: Prepared
    publish_at: datetime | None


@dataclass(frozen=True)
class Refusal:
    """A delivery that fails at once, without being sent."""

    delivery_id: UUID
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class SendPlan:
    sends: list[Send]
    rechecks: list[Recheck]
    refusals: list[Refusal]


def refusal(
    account: AccountLike | None, platform: str, configured: Container[str], now: datetime
) -> tuple[ErrorCode, str] | None:
    """Why a delivery to `account` on `platform` cannot be sent, if it cannot."""
    if platform not in configured:
        return (
            ErrorCode.PLATFORM_NOT_CONFIGURED,
            f"this server is not configured to publish to {platform}",
        )
    if account is not None and account.status == "disconnected":
        return ErrorCode.ACCOUNT_DISCONNECTED, "the account was disconnected from Crier"
    if account is None or account.status == "revoked":
        return ErrorCode.AUTH_REVOKED, _RECONNECT
    if account.status == "expired" or (
        account.token_expires_at is not None
        and account.token_expires_at <= now
        and account.refresh_token is None  # else refreshed when the network refuses it
    ):
        return ErrorCode.AUTH_EXPIRED, _RECONNECT
    return None


def plan_sends(
    due: Sequence[Due],
    posts: Mapping[UUID, PostToSend],
    accounts: Mapping[UUID, AccountLike],
    configured: Container[str],
    now: datetime,
    media_base_url: str,
) -> SendPlan:
    """For each due delivery: refuse it, look it up first, or send it."""
    plan = SendPlan([], [], [])
    for d in due:
        post = posts[d.post_id]
        account = accounts.get(d.social_account_id)
        refused = refusal(account, d.platform, configured, now)
        if refused is not None:
            plan.refusals.append(Refusal(d.id, *refused))
            continue
        assert account is not None  # refused otherwise
        content = shape_for(
            d.platform, post.payload.text, post.assets, media_base_url, d.platform_settings
        )
        if d.uncertain:
            plan.rechecks.append(Recheck(d.id, d.platform, content, post.publish_at))
        else:
            first_due = post.publish_at if d.attempts == 0 else None
            plan.sends.append(Send(d.id, d.platform, SealedAccount.of(account), content, first_due))
    return plan
