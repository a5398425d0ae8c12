"""What can be done to a post before it publishes: create, read, edit, schedule,
unschedule, cancel, retry, delete; under the lifecycle's rules (`crier.post.lifecycle`),
with what must hold to schedule in `crier.post.checks` and how a post is shown in
`crier.post.views`. Plain arguments in, plain results out: HTTP stays in the endpoints."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth import repository as key_repository
from crier.auth import service as auth_service
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.delivery import outcomes as delivery_outcomes
from crier.delivery import repository as delivery_repository
from crier.kit.concurrency import IfMatch, require_match
from crier.kit.db import Database
from crier.kit.db.engine import Pipelined
from crier.kit.errors import Conflict, NotFound
from crier.kit.idempotency import Answer, Idempotency, Recorded, claim_statements, fingerprint
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.media import repository as media_repository
from crier.models import Post, PostTarget
from crier.post import checks, repository, views
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
    shown = await views.view(session, [post], principal.workspace_timezone, now, warnings, known)
    return shown[0]


async def _announce(session: AsyncSession, now: datetime, type_: EventType, shown: PostOut) -> None:
    """Write the post's webhook event, in this transaction, with the post as shown."""
    await events.emit(
        session, now, type_, shown.model_copy(update={"warnings": []}), post_id=shown.id
    )


def _targets_in(post_targets: Sequence[tuple[Any, str]]) -> list[TargetIn]:
    return [
        TargetIn(social_account_id=t.social_account_id, platform_settings=t.platform_settings)
        for t, _ in post_targets
    ]


async def create_post(
    db: Database,
    vault: Vault,
    clock: Clock,
    secret_hash: bytes,
    idempotency_key: str | None,
    data: PostCreate,
    answer: Answer[PostOut],
    configured: Container[str],
) -> Recorded:
    """Create a draft, or a scheduled post if everything needed to publish it holds, for
    the caller whose API key hashes to `secret_hash`; `answer` makes the created post's
    answer (stored under `idempotency_key`, when there is one, to replay).

    Two round trips: the key, the `Idempotency-Key`'s claim and what the post refers to
    are read together; then the post, its event and the stored response are written
    together with the COMMIT.
    """
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
        media = checks.all_found(
            data.targets,
            data.payload.media_ids,
            accounts,
            {m["id"]: SimpleNamespace(**m) for m in await media_found.rows()}
            if media_found
            else {},
        )
        if scheduling:
            checks.check_schedulable(
                data.publish_at, data.payload.text, data.targets, accounts, media, now, configured
            )
        created = answer(await _insert_post(tx, principal, data, accounts, now))
        store = idem.store_statement(created)
        if store is not None:
            await tx.send(store)
    return created


async def _insert_post(
    tx: Pipelined,
    principal: Principal,
    data: PostCreate,
    accounts: Mapping[UUID, checks.TargetAccount],
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
    shown = views.show(
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
        views.offset_warnings(data.publish_at, timezone),
    )
    if scheduling:
        event = shown.model_copy(update={"warnings": []})
        await tx.send(
            events.emit_statement(now, EventType.POST_SCHEDULED, [(event, post.id)], [new_id()])
        )
    return shown


async def read_post(db: Database, clock: Clock, secret_hash: bytes, post_id: UUID) -> PostOut:
    """One post, for the caller whose API key hashes to `secret_hash`: the key's lookup and
    the post's read in one round trip (this is the most frequent request integrators make)."""
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
    return views.show(post, targets, principal.workspace_timezone, now)


async def list_posts(
    acting: Acting, shown: repository.PostFilter, after: UUID | None, limit: int
) -> list[PostOut]:
    """Up to `limit` posts in creation order after the id `after`, as `shown` filters them."""
    posts = await repository.list_posts(acting.session, shown, after, limit)
    timezone = acting.principal.workspace_timezone
    return await views.view(acting.session, posts, timezone, acting.clock.now())


async def _locked_post(
    session: AsyncSession, post_id: UUID, if_match: IfMatch | None, *, require_if_match: bool = True
) -> Post:
    post = await repository.get(session, post_id, lock=True)
    if post is None:
        raise NotFound("No post with this id in this workspace.")
    if require_if_match or if_match is not None:
        require_match(if_match, post.version)
    return post


async def _changeable_post(
    acting: Acting, post_id: UUID, if_match: IfMatch | None
) -> tuple[Post, datetime]:
    """The post, locked, and the time, once `if_match` holds and the post may be changed
    now (not locked, and a draft or scheduled)."""
    now = acting.clock.now()
    post = await _locked_post(acting.session, post_id, if_match)
    _ensure_changeable(post, now)
    return post, now


async def update_post(
    acting: Acting,
    post_id: UUID,
    data: PostUpdate,
    if_match: IfMatch | None,
    configured: Container[str],
) -> PostOut:
    """Change a draft or a scheduled post (not within 5 minutes of publishing).

    A scheduled post stays scheduled only if it still could be scheduled as changed.
    """
    session, principal = acting.session, acting.principal
    post, now = await _changeable_post(acting, post_id, if_match)
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
    accounts, media = await checks.references(session, targets, payload.media_ids, scheduled)
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
        checks.check_schedulable(post.publish_at, text, targets, accounts, media, now, configured)
    revise(post)
    if scheduled:
        await hold_to_scheduled_posts_limit(session, principal.workspace_plan)
    timezone = post.timezone or principal.workspace_timezone
    warnings = views.offset_warnings(data.publish_at, timezone) if "publish_at" in changes else []
    shown = await _one(session, post, principal, now, warnings)
    if scheduled and changes & {"publish_at", "timezone"}:
        await _announce(session, now, EventType.POST_SCHEDULED, shown)  # rescheduled
    return shown


async def schedule_post(
    acting: Acting,
    post_id: UUID,
    data: ScheduleRequest,
    if_match: IfMatch | None,
    configured: Container[str],
) -> PostOut:
    """Schedule a draft, or move a scheduled post to a new time."""
    session, principal = acting.session, acting.principal
    post, now = await _changeable_post(acting, post_id, if_match)
    if data.timezone is not None:
        post.timezone = check_timezone(data.timezone, ["body", "timezone"])
    if data.publish_at is not None:
        post.publish_at = data.publish_at
    targets = _targets_in((await repository.targets_of(session, [post.id]))[post.id])
    payload = PostPayload.model_validate(post.payload)
    accounts, media = await checks.references(session, targets, payload.media_ids, lock_media=True)
    checks.check_schedulable(
        post.publish_at, payload.text, targets, accounts, media, now, configured
    )
    move(post, PostStatus.SCHEDULED)
    await hold_to_scheduled_posts_limit(session, principal.workspace_plan)
    timezone = post.timezone or principal.workspace_timezone
    shown = await _one(
        session, post, principal, now, views.offset_warnings(data.publish_at, timezone)
    )
    await _announce(session, now, EventType.POST_SCHEDULED, shown)
    return shown


async def unschedule_post(acting: Acting, post_id: UUID, if_match: IfMatch | None) -> PostOut:
    """Take a scheduled post back to draft (not within 5 minutes of publishing)."""
    session, principal = acting.session, acting.principal
    post, now = await _changeable_post(acting, post_id, if_match)
    if post.status != PostStatus.SCHEDULED:
        raise PostNotEditable("Only a scheduled post can be unscheduled.", status=post.status)
    move(post, PostStatus.DRAFT)
    shown = await _one(session, post, principal, now)
    await _announce(session, now, EventType.POST_UNSCHEDULED, shown)
    return shown


async def cancel_post(acting: Acting, post_id: UUID, if_match: IfMatch | None) -> PostOut:
    """Cancel a post that has not begun publishing, even in its last minutes.

    The post leaves the queue at once, its media are released, and who cancelled it and
    when is recorded. Cancelling a cancelled post changes nothing.
    """
    session, principal, now = acting.session, acting.principal, acting.clock.now()
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


async def retry_post(acting: Acting, post_id: UUID, if_match: IfMatch | None) -> PostOut:
    """Send the failed targets of a failed post again, at once; published ones stay as they
    are. Each failed delivery gets 3 more attempts; its earlier attempts stay listed."""
    session, principal, now = acting.session, acting.principal, acting.clock.now()
    post = await _locked_post(session, post_id, if_match, require_if_match=False)
    if post.status != PostStatus.FAILED:
        raise PostNotRetryable(
            f"The post is {post.status}; only failed posts are retried.", status=post.status
        )
    for delivery in await delivery_repository.of_post(session, post_id, lock=True):
        delivery_outcomes.reopen(delivery)
    # Back in the queue and already due: the scheduler claims it on its next round.
    move(post, PostStatus.SCHEDULED)
    shown = await _one(session, post, principal, now)
    await _announce(session, now, EventType.POST_SCHEDULED, shown)
    return shown


async def delete_post(acting: Acting, post_id: UUID, if_match: IfMatch | None) -> None:
    """Delete a draft, with its targets and media links."""
    session = acting.session
    post = await _locked_post(session, post_id, if_match)
    _ensure_unlocked(post, acting.clock.now())
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
