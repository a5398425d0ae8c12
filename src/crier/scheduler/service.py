"""Delivering claimed posts: prepare their deliveries, send them, settle the posts.

Every step runs as crier_app inside the posts' workspace, in short transactions shared by
the posts of one workspace that are due together: no transaction is open while waiting on a
platform. Each attempt is written down before it is
sent, so a worker that dies mid-call leaves an attempt marked `sending`; whoever takes the
post over looks the delivery up on the platform by its idempotency key (the delivery id)
before sending anything again. That is what makes "exactly once" hold through crashes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.delivery import repository as delivery_repository
from crier.delivery import service as delivery_service
from crier.kit.db import Database
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.media import repository as media_repository
from crier.models import Delivery, DeliveryAttempt, Post, SocialAccount
from crier.platforms.base import Prepared, Published
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.platforms.rules import shape_for
from crier.post import events as post_events
from crier.post import repository as post_repository
from crier.post.lifecycle import IN_FLIGHT, PostStatus, move
from crier.post.schemas import PostPayload
from crier.scheduler.claims import QUERIES
from crier.scheduler.metrics import DELIVERY_ATTEMPTS, PUBLISH_LATENESS
from crier.social_account import repository as account_repository
from crier.social_account.schemas import SocialAccount as SocialAccountOut
from crier.webhook import events
from crier.webhook.events import EventType

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=2)
REFRESH_MARGIN = timedelta(minutes=10)
_random = random.Random()  # noqa: S311 - jitter, not security


def backoff(attempt: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with jitter (2 s, 4 s ...), never sooner than `Retry-After`."""
    seconds = BACKOFF_BASE.total_seconds() * 2.0 ** (attempt - 1)
    jittered = timedelta(seconds=seconds * (0.8 + 0.4 * _random.random()))
    floor = timedelta(seconds=retry_after or 0)
    return max(jittered, floor)


@dataclass(frozen=True)
class Held:
    """A post this worker holds: when it is next due to be worked on."""

    workspace_id: UUID
    post_id: UUID
    due_at: datetime


async def prepare_many(
    db: Database,
    platforms: Platforms,
    vault: Vault,
    clock: Clock,
    workspace_id: UUID,
    post_ids: Sequence[UUID],
    worker: str,
) -> list[Held]:
    """Create the deliveries of a workspace's claimed posts (once), announce them as queued
    (once), and refresh tokens about to expire; in one transaction, whatever the count.

    Returns the posts still this worker's to send (not cancelled, taken over or done).
    """
    now = clock.now()
    async with db.workspace_transaction(workspace_id) as session:
        posts = [
            p
            for p in await post_repository.get_many(session, post_ids, lock=True)
            if _ours(p, worker)
        ]
        ids = [p.id for p in posts]
        if not ids:
            return []
        await session.execute(QUERIES["create_deliveries"], {"post_ids": ids})
        steps = await events.latest_of_many(session, ids, post_events.LIFECYCLE)
        await post_events.announce_many(
            session,
            now,
            EventType.POST_QUEUED,
            [p for p in posts if steps.get(p.id) != EventType.POST_QUEUED],
        )
        stale = list(
            (
                await session.execute(
                    QUERIES["stale_accounts"], {"post_ids": ids, "before": now + REFRESH_MARGIN}
                )
            ).scalars()
        )
        held = [Held(workspace_id, p.id, p.publish_at) for p in posts if p.publish_at]
    for account_id in stale:
        await refresh_account(db, platforms, vault, clock, workspace_id, account_id)
    return held


async def refresh_account(
    db: Database,
    platforms: Platforms,
    vault: Vault,
    clock: Clock,
    workspace_id: UUID,
    account_id: UUID,
) -> None:
    """Trade the refresh token for new tokens; if the platform refuses, the account is
    `expired` (its deliveries then fail with `auth_expired`)."""
    async with db.workspace_transaction(workspace_id) as session:
        account = await account_repository.get(session, account_id)
        if account is None or account.refresh_token is None:
            return
        refresh_token = vault.open(account.refresh_token)
    try:
        tokens = await platforms.sandbox.refresh(refresh_token)
    except PlatformError as error:
        if error.retryable:
            log.warning("token refresh failed, will retry", extra={"code": error.code.value})
            return
        async with db.workspace_transaction(workspace_id) as session:
            account = await account_repository.get(session, account_id)
            if account is not None and account.status != "expired":
                account.status = "expired"
                await session.flush()
                await events.emit(
                    session,
                    clock.now(),
                    EventType.SOCIAL_ACCOUNT_EXPIRED,
                    SocialAccountOut.model_validate(account),
                )
        return
    async with db.workspace_transaction(workspace_id) as session:
        account = await account_repository.get(session, account_id)
        if account is not None:
            account.access_token = vault.seal(tokens.access_token)
            if tokens.refresh_token:
                account.refresh_token = vault.seal(tokens.refresh_token)
            account.token_expires_at = tokens.expires_at


async def fire_many(
    db: Database,
    platforms: Platforms,
    vault: Vault,
    clock: Clock,
    workspace_id: UUID,
    held: Sequence[Held],
    worker: str,
) -> dict[UUID, Held | None]:
    """Send every due delivery of a workspace's posts that have reached their time,
    concurrently, then settle the posts.

    One transaction marks the posts publishing and writes down an attempt for every
    ordinary delivery before anything is sent; one records every success and settles the
    posts (failures are recorded one by one). A delivery whose last attempt's outcome is
    unknown goes through `_resend_uncertain`, which looks it up on the platform first.

    Returns, for each post, when it is next due (a retry), or None once it is settled or
    not this worker's.
    """
    now = clock.now()
    outcome: dict[UUID, Held | None] = {h.post_id: None for h in held}
    sends: list[tuple[UUID, UUID, str, Prepared]] = []
    uncertain: list[tuple[UUID, Prepared, datetime | None]] = []
    async with db.workspace_transaction(workspace_id) as session:
        # Plain rows, not ORM objects: nothing read here is changed through the session
        # (but the deliveries of unusable accounts, loaded again below).
        posts = (
            await session.execute(
                QUERIES["lock_posts_to_send"], {"post_ids": list(outcome), "worker": worker}
            )
        ).all()
        if not posts:
            return outcome  # cancelled (or taken over) before their time: nothing is sent
        payloads = {p.id: PostPayload.model_validate(p.payload) for p in posts}
        publish_at = {p.id: p.publish_at for p in posts}
        found = await media_repository.get_many(
            session, list({m for payload in payloads.values() for m in payload.media_ids})
        )
        deliveries = (
            await session.execute(
                QUERIES["lock_deliveries_to_send"],
                {"post_ids": [p.id for p in posts], "now": now},
            )
        ).all()
        accounts = await account_repository.get_many(
            session, list({d.social_account_id for d in deliveries})
        )
        unusable: dict[UUID, ErrorCode] = {}
        first_due: dict[UUID, datetime | None] = {}
        for d in deliveries:
            payload = payloads[d.post_id]
            assets = [found[m] for m in payload.media_ids if m in found]
            content = shape_for(d.platform, payload.text, assets, platforms.media_base_url)
            account = accounts.get(d.social_account_id)
            refused = _unusable(account, now)
            if refused is not None:
                unusable[d.id] = refused
            elif d.open_attempt or (
                d.error_code
                in (ErrorCode.TIMEOUT, ErrorCode.OUTCOME_UNKNOWN, ErrorCode.PLATFORM_UNAVAILABLE)
                and d.attempts > 0
            ):
                uncertain.append((d.id, content, publish_at[d.post_id]))
            else:
                token = vault.open(account.access_token) if account and account.access_token else ""
                first_due[d.id] = publish_at[d.post_id] if d.attempts == 0 else None
                sends.append((d.id, new_id(), token, content))
        await session.execute(
            QUERIES["begin_sends"],
            {
                "post_ids": [p.id for p in posts],
                "ids": [attempt_id for _, attempt_id, _, _ in sends],
                "delivery_ids": [delivery_id for delivery_id, _, _, _ in sends],
                "started_at": clock.now(),
            },
        )
        if unusable:
            failed_now = await delivery_repository.get_many(session, list(unusable))
            for delivery in failed_now:
                _fail(delivery, unusable[delivery.id], "the account cannot publish; reconnect it")
            await _announce(session, now, failed_now)
    results = await asyncio.gather(
        *(
            _publish(platforms, clock, token, content, str(key), first_due[key])
            for key, _, token, content in sends
        ),
        *(
            _resend_uncertain(db, platforms, vault, clock, workspace_id, d, content, due)
            for d, content, due in uncertain
        ),
        return_exceptions=True,
    )
    succeeded: list[tuple[UUID, UUID, Published]] = []
    for (delivery_id, attempt_id, _, _), result in zip(sends, results, strict=False):
        if isinstance(result, PlatformError):
            await _record_failure(db, clock, workspace_id, delivery_id, attempt_id, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            assert isinstance(result, Published)
            succeeded.append((delivery_id, attempt_id, result))
    for result in results[len(sends) :]:
        if isinstance(result, BaseException):
            raise result
    outcome.update(
        await settle_many(db, clock, workspace_id, [p.id for p in posts], worker, succeeded)
    )
    return outcome


async def _publish(
    platforms: Platforms,
    clock: Clock,
    token: str,
    content: Prepared,
    key: str,
    first_due: datetime | None,
) -> Published:
    """Send a post to its platform. For a delivery's first attempt, `first_due` is its post's
    time, and how late the call leaves is observed for /metrics as it leaves."""
    if first_due is not None:
        PUBLISH_LATENESS.observe(max(0.0, (clock.now() - first_due).total_seconds()))
    return await platforms.sandbox.publish(token, content, key)


async def settle_many(
    db: Database,
    clock: Clock,
    workspace_id: UUID,
    post_ids: Sequence[UUID],
    worker: str,
    succeeded: Sequence[tuple[UUID, UUID, Published]] = (),
) -> dict[UUID, Held | None]:
    """Published when every delivery is; failed when any failed for good; else next retry.
    `succeeded` (delivery, attempt, what the platform answered) are recorded first, in the
    same transaction.

    Returns, for each post, when it is next due, or None once settled or not this worker's.
    """
    outcome: dict[UUID, Held | None] = dict.fromkeys(post_ids)
    async with db.workspace_transaction(workspace_id) as session:
        posts = [
            p
            for p in await post_repository.get_many(session, post_ids, lock=True)
            if _ours(p, worker)
        ]
        await _write_successes(session, clock, succeeded)
        deliveries = await delivery_repository.of_posts(session, [p.id for p in posts])
        sent = {d for d, _, _ in succeeded}
        announced = [d for d in deliveries if d.id in sent]
        if len(announced) < len(sent):  # some post is no longer this worker's
            ours = {d.id for d in announced}
            announced += await delivery_repository.get_many(session, list(sent - ours))
        await _announce(session, clock.now(), announced)
        done: dict[EventType, list[Post]] = {
            EventType.POST_PUBLISHED: [],
            EventType.POST_FAILED: [],
        }
        by_post: dict[UUID, list[Delivery]] = {}
        for d in deliveries:
            by_post.setdefault(d.post_id, []).append(d)
        for post in posts:
            mine = by_post.get(post.id, [])
            open_ones = [d for d in mine if d.status in ("pending", "sending")]
            if open_ones:
                next_due = min((d.next_attempt_at or clock.now()) for d in open_ones)
                outcome[post.id] = Held(workspace_id, post.id, next_due)
                continue
            failed = any(d.status == "failed" for d in mine)
            move(post, PostStatus.FAILED if failed else PostStatus.PUBLISHED)
            if not failed:
                post.published_at = max(
                    (d.published_at for d in mine if d.published_at), default=clock.now()
                )
            post.lease_owner = None
            post.lease_expires_at = None
            done[EventType.POST_FAILED if failed else EventType.POST_PUBLISHED].append(post)
        for type_, settled in done.items():
            await post_events.announce_many(session, clock.now(), type_, settled)
    DELIVERY_ATTEMPTS.labels("published", "").inc(len(succeeded))
    return outcome


async def _resend_uncertain(
    db: Database,
    platforms: Platforms,
    vault: Vault,
    clock: Clock,
    workspace_id: UUID,
    delivery_id: UUID,
    content: Prepared,
    publish_at: datetime | None,
) -> None:
    """Settle a delivery whose last attempt's outcome is unknown (its worker died mid-call,
    or the platform timed out or failed): look it up on the platform by its idempotency key,
    and only if it is not there send it again, with the same key. The new attempt is written
    down (and committed) before the platform is called."""
    async with db.workspace_transaction(workspace_id) as session:
        delivery = await delivery_repository.get(session, delivery_id, lock=True)
        if delivery is None or delivery.status not in ("pending", "sending"):
            return
        account = await account_repository.get(session, delivery.social_account_id)
        unusable = _unusable(account, clock.now())
        if unusable is not None:
            _fail(delivery, unusable, "the account cannot publish; reconnect it")
            await _announce(session, clock.now(), [delivery])
            return
        token = vault.open(account.access_token) if account and account.access_token else ""
    key = str(delivery_id)
    try:
        found = await platforms.sandbox.find(token, key)
    except PlatformError:
        found = None  # cannot tell yet: the resend below is safe, it carries the same key
    if found is not None:
        await _record_found(db, clock, workspace_id, delivery_id, found)
        return
    async with db.workspace_transaction(workspace_id) as session:
        delivery = await delivery_repository.get(session, delivery_id, lock=True)
        if delivery is None or delivery.status not in ("pending", "sending"):
            return
        interrupted = await delivery_repository.open_attempt(session, delivery_id)
        first_due = publish_at if delivery.attempts == 0 else None
        attempt_id = await _begin_attempt(session, clock, delivery, interrupted)
    try:
        published = await _publish(platforms, clock, token, content, key, first_due)
    except PlatformError as error:
        await _record_failure(db, clock, workspace_id, delivery_id, attempt_id, error)
        return
    await _record_success(db, clock, workspace_id, delivery_id, attempt_id, published)


async def _begin_attempt(
    session: AsyncSession,
    clock: Clock,
    delivery: Delivery,
    interrupted: DeliveryAttempt | None,
) -> UUID:
    """Write down the attempt about to be made, closing `interrupted` (an earlier attempt
    left open, not found on the platform)."""
    if interrupted is not None:
        interrupted.outcome = "unknown"
        interrupted.finished_at = clock.now()
        interrupted.error_code = ErrorCode.OUTCOME_UNKNOWN.value
        interrupted.message = "interrupted; not found on the platform, so sent again"
    delivery.attempts += 1
    delivery.status = "sending"
    attempt = DeliveryAttempt(
        id=new_id(),
        workspace_id=delivery.workspace_id,
        delivery_id=delivery.id,
        number=delivery.attempts,
        started_at=clock.now(),
    )
    session.add(attempt)
    await session.flush()
    return attempt.id


async def _record_success(
    db: Database,
    clock: Clock,
    workspace_id: UUID,
    delivery_id: UUID,
    attempt_id: UUID,
    published: Published,
) -> None:
    async with db.workspace_transaction(workspace_id) as session:
        await _write_successes(session, clock, [(delivery_id, attempt_id, published)])
        await _announce(
            session, clock.now(), await delivery_repository.get_many(session, [delivery_id])
        )
    DELIVERY_ATTEMPTS.labels("published", "").inc()


async def _write_successes(
    session: AsyncSession, clock: Clock, succeeded: Sequence[tuple[UUID, UUID, Published]]
) -> None:
    """Record published deliveries of one workspace, in `session`, in one statement; the
    caller announces them. Their rows must not be loaded in `session` yet (they would be
    stale)."""
    if not succeeded:
        return
    now = clock.now()
    await session.execute(
        QUERIES["record_published"],
        {
            "delivery_ids": [d for d, _, _ in succeeded],
            "attempt_ids": [a for _, a, _ in succeeded],
            "external_ids": [p.external_id for _, _, p in succeeded],
            "permalinks": [p.permalink for _, _, p in succeeded],
            "published_ats": [p.published_at for _, _, p in succeeded],
            "now": now,
        },
    )


async def _record_found(
    db: Database, clock: Clock, workspace_id: UUID, delivery_id: UUID, published: Published
) -> None:
    async with db.workspace_transaction(workspace_id) as session:
        delivery = await delivery_repository.get(session, delivery_id, lock=True)
        assert delivery is not None
        attempts = (await delivery_repository.attempts_of(session, [delivery_id]))[delivery_id]
        if attempts:  # the uncertain attempt did publish
            last = attempts[-1]
            last.outcome = "published"
            last.finished_at = last.finished_at or clock.now()
            last.message = "found on the platform by its idempotency key"
        _published(delivery, published)
        await _announce(session, clock.now(), [delivery])


async def _record_failure(
    db: Database,
    clock: Clock,
    workspace_id: UUID,
    delivery_id: UUID,
    attempt_id: UUID,
    error: PlatformError,
) -> None:
    async with db.workspace_transaction(workspace_id) as session:
        delivery = await delivery_repository.get(session, delivery_id, lock=True)
        attempt = await session.get(DeliveryAttempt, (workspace_id, attempt_id))
        assert delivery is not None
        assert attempt is not None
        attempt.finished_at = clock.now()
        attempt.http_status = error.status
        attempt.error_code = error.code.value
        attempt.message = error.message[:1000]
        delivery.error_code = error.code.value
        delivery.error_message = error.message[:1000]
        if error.retryable and delivery.attempts < delivery.attempts_allowed:
            attempt.outcome = "retrying"
            delivery.status = "pending"
            delivery.next_attempt_at = clock.now() + backoff(delivery.attempts, error.retry_after)
        else:
            attempt.outcome = "failed"
            delivery.status = "failed"
            delivery.next_attempt_at = None
            await _announce(session, clock.now(), [delivery])
        outcome = attempt.outcome
    DELIVERY_ATTEMPTS.labels(outcome, error.code.value).inc()


async def _announce(session: AsyncSession, now: datetime, deliveries: Sequence[Delivery]) -> None:
    """The deliveries' final outcomes as webhook events, in this transaction."""
    if not deliveries:
        return
    await session.flush()
    shown = await delivery_service.shown(session, deliveries)
    for type_, published in (
        (EventType.POST_DELIVERY_PUBLISHED, True),
        (EventType.POST_DELIVERY_FAILED, False),
    ):
        await events.emit_many(
            session,
            now,
            type_,
            [(d, d.post_id) for d in shown if (d.status == "published") is published],
        )


def _published(delivery: Delivery, published: Published) -> None:
    delivery.status = "published"
    delivery.external_id = published.external_id
    delivery.permalink = published.permalink
    delivery.published_at = published.published_at
    delivery.next_attempt_at = None
    delivery.error_code = None
    delivery.error_message = None


def _fail(delivery: Delivery, code: ErrorCode, message: str) -> None:
    delivery.status = "failed"
    delivery.error_code = code.value
    delivery.error_message = message
    delivery.next_attempt_at = None


def _unusable(account: SocialAccount | None, now: datetime) -> ErrorCode | None:
    if account is None or account.status in ("revoked", "disconnected"):
        return ErrorCode.AUTH_REVOKED
    if account.status == "expired" or (
        account.token_expires_at is not None and account.token_expires_at <= now
    ):
        return ErrorCode.AUTH_EXPIRED
    return None


def _ours(post: Post | None, worker: str) -> bool:
    return post is not None and post.status in IN_FLIGHT and post.lease_owner == worker
