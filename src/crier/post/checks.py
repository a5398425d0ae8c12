"""What must hold of a post before it may be scheduled: what it names exists in the
workspace, its time is not past, and every target can publish it as it is."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.errors import CrierError, ValidationFailed, field_error
from crier.media import repository as media_repository
from crier.models import MediaAsset, SocialAccount
from crier.platforms.rules import MediaLike, check_content, check_settings
from crier.post.schemas import TargetIn
from crier.social_account import repository as account_repository

_Medium = TypeVar("_Medium")

PAST_TOLERANCE = timedelta(seconds=30)


class PublishAtInPast(CrierError):
    """`publish_at` is in the past (beyond a 30-second tolerance for clock skew). Give a
    future time; to publish now, use the current time."""

    slug = "publish-at-in-past"
    title = "Publish time in the past"
    status = 422


class TargetsInvalid(CrierError):
    """The post cannot be scheduled as it is: `errors` lists every failing target and field
    (an account that is not usable, text too long for a platform, media a platform refuses)."""

    slug = "target-validation-failed"
    title = "Targets invalid"
    status = 422

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(errors)} problem(s) with the post's targets; see errors.", errors=errors
        )


class TargetAccount(Protocol):
    """What scheduling reads of a target's account: a `SocialAccount`, or those columns."""

    id: UUID
    platform: str
    status: str
    token_expires_at: datetime | None
    refresh_token: bytes | None
    """Sealed; an account with one is refreshed before publishing, however stale."""
    content_limits: dict[str, Any] | None


async def references(
    session: AsyncSession,
    targets: Sequence[TargetIn],
    media_ids: Sequence[UUID],
    lock_media: bool,
) -> tuple[dict[UUID, SocialAccount], list[MediaAsset]]:
    """The accounts and media a post names, all of this workspace (else 422)."""
    accounts = await account_repository.get_many(session, [t.social_account_id for t in targets])
    media = await media_repository.get_many(session, media_ids, share_lock=lock_media)
    return accounts, all_found(targets, media_ids, accounts, media)


def all_found(
    targets: Sequence[TargetIn],
    media_ids: Sequence[UUID],
    accounts: Mapping[UUID, object],
    media: Mapping[UUID, _Medium],
) -> list[_Medium]:
    """The media a post names, in its order, once every account and medium it names was
    found in this workspace (else 422 listing each one that was not)."""
    errors = [
        field_error(
            ["body", "targets", i, "social_account_id"],
            "no such social account in this workspace",
            "unknown_social_account",
        )
        for i, t in enumerate(targets)
        if t.social_account_id not in accounts
    ] + [
        field_error(
            ["body", "payload", "media_ids", i],
            "no such media asset in this workspace",
            "unknown_media",
        )
        for i, m in enumerate(media_ids)
        if m not in media
    ]
    if errors:
        raise ValidationFailed("The post refers to things this workspace does not have.", errors)
    return [media[m] for m in media_ids]


def check_schedulable(
    publish_at: datetime | None,
    text: str,
    targets: Sequence[TargetIn],
    accounts: Mapping[UUID, TargetAccount],
    media: Sequence[MediaLike],
    now: datetime,
    configured: Container[str],
) -> None:
    """Everything a post needs to publish holds, or one `target-validation-failed` with
    every failure: `configured` names the platforms this server publishes to."""
    if publish_at is None:
        raise ValidationFailed(
            "A scheduled post needs a publish_at.",
            [field_error(["body", "publish_at"], "required to schedule", "missing")],
        )
    if publish_at < now - PAST_TOLERANCE:
        raise PublishAtInPast(
            f"publish_at {publish_at.isoformat()} is in the past.",
            publish_at=publish_at.isoformat(),
            now=now.isoformat(),
        )
    if not targets:
        raise ValidationFailed(
            "A scheduled post needs at least one target.",
            [field_error(["body", "targets"], "at least one target is required", "missing")],
        )
    errors: list[dict[str, Any]] = []
    for i, target in enumerate(targets):
        account = accounts[target.social_account_id]
        where: list[str | int] = ["targets", i]
        if account.platform not in configured:
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, "social_account_id"],
                    "message": f"this server is not configured to publish to {account.platform}",
                    "type": "platform_not_configured",
                }
            )
            continue
        if account.status != "active":
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, "social_account_id"],
                    "message": f"the account is {account.status}",
                    "type": "account_not_usable",
                }
            )
        elif (
            account.token_expires_at is not None
            and account.token_expires_at <= now
            and account.refresh_token is None  # else it is refreshed before publishing
        ):
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, "social_account_id"],
                    "message": "the account's token has expired; reconnect it",
                    "type": "account_not_usable",
                }
            )
        for violation in check_content(
            account.platform, text, media, account.content_limits, target.platform_settings
        ):
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, violation.field],
                    "message": violation.message,
                    "type": violation.kind,
                }
            )
        for violation in check_settings(account.platform, target.platform_settings):
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, *violation.field.split(".")],
                    "message": violation.message,
                    "type": violation.kind,
                }
            )
    if errors:
        raise TargetsInvalid(errors)
