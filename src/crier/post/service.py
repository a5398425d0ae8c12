"""The rules of a post's life before publishing: drafts, scheduling, the 5-minute lock,
cancelling, and what must be true of a post before it may be scheduled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth import repository as key_repository
from crier.auth import service as auth_service
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.delivery import MAX_ATTEMPTS
from crier.delivery import repository as delivery_repository
from crier.kit.concurrency import etag_of, require_match
from crier.kit.db import Database
from crier.kit.db.engine import Pipelined
from crier.kit.errors import Conflict, CrierError, NotFound, ValidationFailed, field_error
from crier.kit.idempotency import Idempotency, claim_statements, fingerprint
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.media import repository as media_repository
from crier.models import MediaAsset, Post, PostTarget, SocialAccount
from crier.platforms.rules import MediaLike, check_content
from crier.post import repository
from crier.post.lifecycle import (
    CANCELLABLE,
    EDITABLE,
    LOCK_WINDOW,
    PostStatus,
    is_locked,
    move,
    revise,
)
from crier.post.schemas import Post as PostOut
from crier.post.schemas import (
    PostCreate,
    PostPayload,
    PostUpdate,
    ScheduleRequest,
    Target,
    TargetIn,
    Warning,
)
from crier.social_account import repository as account_repository
from crier.social_account.schemas import Platform
from crier.webhook import events
from crier.webhook.events import EventType
from crier.workspace.service import (
    SCHEDULED_POSTS_CONSTRAINT,
    check_timezone,
    hold_to_scheduled_posts_limit,
    scheduled_posts_limit,
)

_Medium = TypeVar("_Medium")

PAST_TOLERANCE = timedelta(seconds=30)


class PostLocked(Conflict):
    """The post publishes in less than 5 minutes (or is being published): it is locked, and
    edits, rescheduling, unscheduling and deletion are refused so that what publishes is what
    was reviewed. `locked_since` says when the lock began. Cancelling is still possible until
    publishing begins."""

    slug = "post-locked"
    title = "Post locked"


class PostNotEditable(Conflict):
    """The post is past the point where it can be changed (published, failed, cancelled, or
    not in the state this action needs)."""

    slug = "post-not-editable"
    title = "Post not editable"


class PostNotCancellable(Conflict):
    """Publishing has begun (or finished): the post can no longer be cancelled."""

    slug = "post-not-cancellable"
    title = "Post not cancellable"


class PostNotDeletable(Conflict):
    """Only drafts can be deleted. Cancel a scheduled post instead; published posts stay as
    the record of what was sent."""

    slug = "post-not-deletable"
    title = "Post not deletable"


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


def _ensure_changeable(post: Post, now: datetime) -> None:
    _ensure_unlocked(post, now)
    if post.status not in EDITABLE:
        raise PostNotEditable(f"A {post.status} post cannot be changed.", status=post.status)


def _ensure_unlocked(post: Post, now: datetime) -> None:
    if is_locked(post, now):
        since = post.publish_at - LOCK_WINDOW if post.publish_at else now
        raise PostLocked(
            "The post publishes within 5 minutes and is locked.",
            locked_since=since.isoformat(),
            publish_at=post.publish_at.isoformat() if post.publish_at else None,
        )


def offset_warnings(sent: datetime | None, timezone: str) -> list[Warning]:
    """Warn when the offset sent is not the zone's offset at that instant (a DST slip)."""
    if sent is None:
        return []
    local = sent.astimezone(ZoneInfo(timezone))
    if local.utcoffset() == sent.utcoffset():
        return []
    return [
        Warning(
            code="offset_mismatch",
            message=(
                f"publish_at was sent as {sent.isoformat()}, but at that instant {timezone} "
                f"is at UTC{local.strftime('%z')[:3]}:{local.strftime('%z')[3:]}: the post "
                f"will publish at {local.isoformat()} local time "
                f"({sent.astimezone(UTC).isoformat().replace('+00:00', 'Z')})."
            ),
        )
    ]


class _Shown(Protocol):
    """What showing a post reads: a `Post` row, or the same columns from a query."""

    id: UUID
    status: str
    payload: dict[str, Any]
    publish_at: datetime | None
    timezone: str | None
    author_id: UUID
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: UUID | None


def show(
    post: _Shown,
    targets: list[Target],
    workspace_tz: str,
    now: datetime,
    warnings: list[Warning] | None = None,
) -> PostOut:
    """A post as the API shows it, with local time and lock state."""
    timezone = post.timezone or workspace_tz
    return PostOut(
        id=post.id,
        status=PostStatus(post.status),
        payload=PostPayload.model_validate(post.payload),
        targets=targets,
        publish_at=post.publish_at.astimezone(UTC) if post.publish_at else None,
        publish_at_local=post.publish_at.astimezone(ZoneInfo(timezone))
        if post.publish_at
        else None,
        timezone=timezone,
        timezone_is_workspace_default=post.timezone is None,
        locked=is_locked(post, now),
        author_id=post.author_id,
        version=post.version,
        created_at=post.created_at,
        updated_at=post.updated_at,
        published_at=post.published_at,
        cancelled_at=post.cancelled_at,
        cancelled_by=post.cancelled_by,
        warnings=warnings or [],
    )


async def view(
    session: AsyncSession,
    posts: Sequence[Post],
    workspace_tz: str,
    now: datetime,
    warnings: list[Warning] | None = None,
    targets: dict[UUID, list[tuple[PostTarget, str]]] | None = None,
) -> list[PostOut]:
    """Posts as the API shows them, with targets, local time and lock state."""
    if targets is None:
        targets = await repository.targets_of(session, [p.id for p in posts])
    return [
        show(
            post,
            [
                Target(
                    id=t.id,
                    social_account_id=t.social_account_id,
                    platform=Platform(platform),
                    platform_settings=t.platform_settings,
                )
                for t, platform in targets[post.id]
            ],
            workspace_tz,
            now,
            warnings,
        )
        for post in posts
    ]


async def _one(
    session: AsyncSession,
    post: Post,
    principal: Principal,
    now: datetime,
    warnings: list[Warning] | None = None,
    targets: list[tuple[PostTarget, str]] | None = None,
) -> PostOut:
    await session.flush()  # server defaults (version, timestamps) come back by RETURNING
    known = {post.id: targets} if targets is not None else None
    shown = await view(session, [post], principal.workspace_timezone, now, warnings, known)
    return shown[0]


async def _announce(session: AsyncSession, now: datetime, type_: EventType, shown: PostOut) -> None:
    """Write the post's webhook event, in this transaction, with the post as shown."""
    await events.emit(
        session, now, type_, shown.model_copy(update={"warnings": []}), post_id=shown.id
    )


class _Account(Protocol):
    """What scheduling reads of a target's account: a `SocialAccount`, or those columns."""

    id: UUID
    platform: str
    status: str
    token_expires_at: datetime | None


async def _references(
    session: AsyncSession,
    targets: Sequence[TargetIn],
    media_ids: Sequence[UUID],
    lock_media: bool,
) -> tuple[dict[UUID, SocialAccount], list[MediaAsset]]:
    """The accounts and media a post names, all of this workspace (else 422)."""
    accounts = await account_repository.get_many(session, [t.social_account_id for t in targets])
    media = await media_repository.get_many(session, media_ids, share_lock=lock_media)
    return accounts, _all_found(targets, media_ids, accounts, media)


def _all_found(
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


def _check_schedulable(
    publish_at: datetime | None,
    text: str,
    targets: Sequence[TargetIn],
    accounts: Mapping[UUID, _Account],
    media: Sequence[MediaLike],
    now: datetime,
) -> None:
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
        elif account.token_expires_at is not None and account.token_expires_at <= now:
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, "social_account_id"],
                    "message": "the account's token has expired; reconnect it",
                    "type": "account_not_usable",
                }
            )
        for violation in check_content(account.platform, text, media):
            errors.append(
                {
                    "target": str(account.id),
                    "platform": account.platform,
                    "loc": [*where, violation.field],
                    "message": violation.message,
                    "type": violation.kind,
                }
            )
    if errors:
        raise TargetsInvalid(errors)


def _targets_in(post_targets: Sequence[tuple[Any, str]]) -> list[TargetIn]:
    return [
        TargetIn(social_account_id=t.social_account_id, platform_settings=t.platform_settings)
        for t, _ in post_targets
    ]


async def create_post(
    db: Database,
    vault: Vault,
    clock: Clock,
    authorization: str | None,
    idempotency_key: str | None,
    data: PostCreate,
) -> Response:
    """Create a draft, or a scheduled post if everything needed to publish it holds.

    Two round trips: the key, the `Idempotency-Key`'s claim and what the post refers to
    are read together; then the post, its event and the stored response are written
    together with the COMMIT.
    """
    secret_hash = auth_service.key_hash(authorization)
    scheduling = data.status == "scheduled"
    now = clock.now()
    if data.timezone is not None:
        check_timezone(data.timezone, ["body", "timezone"])
    idem = Idempotency(None, vault, clock, idempotency_key)
    async with db.pipelined() as tx:
        found = await tx.send(key_repository.authenticate_statement(secret_hash, now))
        claim = (
            [await tx.send(s) for s in claim_statements(idempotency_key)]
            if idempotency_key is not None
            else []
        )
        account_ids = [t.social_account_id for t in data.targets]
        accounts_found = await tx.send(account_repository.targetable_statement(account_ids))
        media_found = (
            await tx.send(
                media_repository.attachable_statement(data.payload.media_ids, share_lock=scheduling)
            )
            if data.payload.media_ids
            else None
        )
        principal = auth_service.principal_of(key_repository.authenticated(await found.rows()), now)
        principal.require(Permission.POSTS_WRITE)
        if claim:
            request = fingerprint("POST", "/v1/posts", data.model_dump(mode="json"))
            replay, expired = idem.decide(request, await claim[0].rows(), await claim[1].rows())
            if replay is not None:
                return replay
            if expired is not None:
                await tx.send(idem.forget_statement(expired))
        if scheduling:
            principal.require(Permission.POSTS_SCHEDULE)
        accounts = {a["id"]: SimpleNamespace(**a) for a in await accounts_found.rows()}
        media = _all_found(
            data.targets,
            data.payload.media_ids,
            accounts,
            {m["id"]: SimpleNamespace(**m) for m in await media_found.rows()}
            if media_found
            else {},
        )
        if scheduling:
            _check_schedulable(
                data.publish_at, data.payload.text, data.targets, accounts, media, now
            )
        shown = await _insert_post(tx, principal, data, accounts, now)
        headers = {"ETag": etag_of(shown.version), "Location": f"/v1/posts/{shown.id}"}
        response, store = idem.response(201, shown, headers)
        if store is not None:
            await tx.send(store)
    return response


async def _insert_post(
    tx: Pipelined,
    principal: Principal,
    data: PostCreate,
    accounts: Mapping[UUID, _Account],
    now: datetime,
) -> PostOut:
    """Send the new post, its targets and media links (and, when scheduled, its event and
    the plan's monthly limit); the post as shown."""
    scheduling = data.status == "scheduled"
    post = SimpleNamespace(
        id=new_id(),
        status=data.status,
        payload=data.payload.model_dump(mode="json"),
        publish_at=data.publish_at,
        timezone=data.timezone,
        author_id=principal.member_id,
        version=1,
        created_at=now,
        updated_at=now,
        published_at=None,
        cancelled_at=None,
        cancelled_by=None,
    )
    targets = [(new_id(), t) for t in data.targets]
    limit = None
    if scheduling:
        limit, error = scheduled_posts_limit(principal.workspace_plan)
        tx.raise_on_violation(SCHEDULED_POSTS_CONSTRAINT, error)
    await tx.send(
        repository.insert_statement(
            principal.workspace_id, post, targets, data.payload.media_ids, limit
        )
    )
    timezone = data.timezone or principal.workspace_timezone
    shown = show(
        post,
        [
            Target(
                id=target_id,
                social_account_id=t.social_account_id,
                platform=Platform(accounts[t.social_account_id].platform),
                platform_settings=t.platform_settings,
            )
            for target_id, t in targets
        ],
        principal.workspace_timezone,
        now,
        offset_warnings(data.publish_at, timezone),
    )
    if scheduling:
        event = shown.model_copy(update={"warnings": []})
        await tx.send(
            events.emit_statement(now, EventType.POST_SCHEDULED, [(event, post.id)], [new_id()])
        )
    return shown


async def read_post(
    db: Database, clock: Clock, authorization: str | None, post_id: UUID
) -> PostOut:
    """One post, for the caller named by `authorization`: the key's lookup and the post's
    read in one round trip (this is the most frequent request integrators make)."""
    secret_hash = auth_service.key_hash(authorization)
    now = clock.now()
    found, rows = await db.read_at_once(
        key_repository.authenticate_statement(secret_hash, now),
        repository.with_targets_statement(post_id),
    )
    principal = auth_service.principal_of(key_repository.authenticated(found), now)
    principal.require(Permission.POSTS_READ)
    if not rows:
        raise NotFound("No post with this id in this workspace.")
    post = SimpleNamespace(**rows[0])
    targets = [Target.model_validate(t) for t in post.targets]
    return show(post, targets, principal.workspace_timezone, now)


async def list_posts(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    *,
    statuses: Sequence[str],
    publish_after: datetime | None,
    publish_before: datetime | None,
    social_account_id: UUID | None,
    after: UUID | None,
    limit: int,
) -> list[PostOut]:
    posts = await repository.list_posts(
        session,
        statuses=statuses,
        publish_after=publish_after,
        publish_before=publish_before,
        social_account_id=social_account_id,
        after=after,
        limit=limit,
    )
    return await view(session, posts, principal.workspace_timezone, clock.now())


async def _locked_post(
    session: AsyncSession, post_id: UUID, if_match: str | None, *, require_if_match: bool = True
) -> Post:
    post = await repository.get(session, post_id, lock=True)
    if post is None:
        raise NotFound("No post with this id in this workspace.")
    if require_if_match or if_match is not None:
        require_match(if_match, post.version)
    return post


async def update_post(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    post_id: UUID,
    data: PostUpdate,
    if_match: str | None,
) -> PostOut:
    """Change a draft or a scheduled post (not within 5 minutes of publishing).

    A scheduled post stays scheduled only if it still could be scheduled as changed.
    """
    now = clock.now()
    post = await _locked_post(session, post_id, if_match)
    _ensure_changeable(post, now)
    scheduled = post.status == PostStatus.SCHEDULED
    if scheduled:
        principal.require(Permission.POSTS_SCHEDULE)
    changes = data.model_fields_set
    if "timezone" in changes and data.timezone is not None:
        check_timezone(data.timezone, ["body", "timezone"])
    targets = (
        data.targets
        if "targets" in changes and data.targets is not None
        else _targets_in((await repository.targets_of(session, [post.id]))[post.id])
    )
    payload = (
        data.payload
        if "payload" in changes and data.payload
        else PostPayload.model_validate(post.payload)
    )
    accounts, media = await _references(session, targets, payload.media_ids, scheduled)
    if "payload" in changes and data.payload is not None:
        post.payload = data.payload.model_dump(mode="json")
        await repository.replace_media_links(session, post, data.payload.media_ids)
    if "targets" in changes and data.targets is not None:
        await repository.replace_targets(
            session, post, [(t.social_account_id, t.platform_settings) for t in data.targets]
        )
    if "publish_at" in changes:
        post.publish_at = data.publish_at
    if "timezone" in changes:
        post.timezone = data.timezone
    if scheduled:
        text = PostPayload.model_validate(post.payload).text
        _check_schedulable(post.publish_at, text, targets, accounts, media, now)
    revise(post)
    if scheduled:
        await hold_to_scheduled_posts_limit(session, principal.workspace_plan)
    timezone = post.timezone or principal.workspace_timezone
    warnings = offset_warnings(data.publish_at, timezone) if "publish_at" in changes else []
    shown = await _one(session, post, principal, now, warnings)
    if scheduled and changes & {"publish_at", "timezone"}:
        await _announce(session, now, EventType.POST_SCHEDULED, shown)  # rescheduled
    return shown


async def schedule_post(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    post_id: UUID,
    data: ScheduleRequest,
    if_match: str | None,
) -> PostOut:
    """Schedule a draft, or move a scheduled post to a new time."""
    now = clock.now()
    post = await _locked_post(session, post_id, if_match)
    _ensure_changeable(post, now)
    if data.timezone is not None:
        post.timezone = check_timezone(data.timezone, ["body", "timezone"])
    if data.publish_at is not None:
        post.publish_at = data.publish_at
    targets = _targets_in((await repository.targets_of(session, [post.id]))[post.id])
    payload = PostPayload.model_validate(post.payload)
    accounts, media = await _references(session, targets, payload.media_ids, lock_media=True)
    _check_schedulable(post.publish_at, payload.text, targets, accounts, media, now)
    move(post, PostStatus.SCHEDULED)
    await hold_to_scheduled_posts_limit(session, principal.workspace_plan)
    timezone = post.timezone or principal.workspace_timezone
    shown = await _one(session, post, principal, now, offset_warnings(data.publish_at, timezone))
    await _announce(session, now, EventType.POST_SCHEDULED, shown)
    return shown


async def unschedule_post(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    post_id: UUID,
    if_match: str | None,
) -> PostOut:
    """Take a scheduled post back to draft (not within 5 minutes of publishing)."""
    now = clock.now()
    post = await _locked_post(session, post_id, if_match)
    _ensure_changeable(post, now)
    if post.status != PostStatus.SCHEDULED:
        raise PostNotEditable("Only a scheduled post can be unscheduled.", status=post.status)
    move(post, PostStatus.DRAFT)
    shown = await _one(session, post, principal, now)
    await _announce(session, now, EventType.POST_UNSCHEDULED, shown)
    return shown


async def cancel_post(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    post_id: UUID,
    if_match: str | None,
) -> PostOut:
    """Cancel a post that has not begun publishing, even in its last minutes.

    The post leaves the queue at once, its media are released, and who cancelled it and
    when is recorded. Cancelling a cancelled post changes nothing.
    """
    now = clock.now()
    post = await _locked_post(session, post_id, if_match, require_if_match=False)
    if post.status == PostStatus.CANCELLED:
        return await _one(session, post, principal, now)
    if post.status not in CANCELLABLE:
        raise PostNotCancellable(
            f"The post is {post.status}; it can no longer be cancelled.", status=post.status
        )
    move(post, PostStatus.CANCELLED)
    post.cancelled_at = now
    post.cancelled_by = principal.member_id
    await repository.release_media(session, post)
    await delivery_repository.cancel_pending(session, post.id)
    shown = await _one(session, post, principal, now)
    await _announce(session, now, EventType.POST_CANCELLED, shown)
    return shown


class PostNotRetryable(Conflict):
    """Only a failed post can be retried; its published targets are left alone."""

    slug = "post-not-retryable"
    title = "Post not retryable"


async def retry_post(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    post_id: UUID,
    if_match: str | None,
) -> PostOut:
    """Send the failed targets of a failed post again, at once; published ones stay as they
    are. Each failed delivery gets 3 more attempts; its earlier attempts stay listed."""
    now = clock.now()
    post = await _locked_post(session, post_id, if_match, require_if_match=False)
    if post.status != PostStatus.FAILED:
        raise PostNotRetryable(
            f"The post is {post.status}; only failed posts are retried.", status=post.status
        )
    for delivery in await delivery_repository.of_post(session, post_id, lock=True):
        if delivery.status == "failed":
            delivery.status = "pending"
            delivery.attempts_allowed = delivery.attempts + MAX_ATTEMPTS
            delivery.next_attempt_at = None
            delivery.error_code = None
            delivery.error_message = None
    # Back in the queue and already due: the scheduler claims it on its next round.
    move(post, PostStatus.SCHEDULED)
    shown = await _one(session, post, principal, now)
    await _announce(session, now, EventType.POST_SCHEDULED, shown)
    return shown


async def delete_post(
    session: AsyncSession, clock: Clock, post_id: UUID, if_match: str | None
) -> None:
    """Delete a draft, with its targets and media links."""
    post = await _locked_post(session, post_id, if_match)
    _ensure_unlocked(post, clock.now())
    if post.status != PostStatus.DRAFT:
        raise PostNotDeletable(
            f"Only drafts can be deleted, not a {post.status} post; cancel a scheduled post "
            "instead.",
            status=post.status,
        )
    await session.delete(post)
    await session.flush()


async def ensure_exists(session: AsyncSession, post_id: UUID) -> None:
    if await repository.get(session, post_id) is None:
        raise NotFound("No post with this id in this workspace.")
