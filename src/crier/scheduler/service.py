"""Delivering claimed posts: prepare their deliveries, send them, settle the posts.

Every step runs as crier_app inside the posts' workspace, in short transactions shared by
the posts of one workspace that are due together: no transaction is open while waiting on a
platform. Each attempt is written down before it is sent, so a worker that dies mid-call
leaves its delivery `uncertain`; whoever takes the post over looks the delivery up on the
platform by its idempotency key (the delivery id) before sending anything again. That is
what makes "exactly once" hold through crashes.

The decisions are pure and live elsewhere: what to send (`crier.scheduler.sends`), what
follows a failure (`crier.delivery.retry`), how a delivery's state changes
(`crier.delivery.outcomes`). This module does the I/O around them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import repository as analytics_repository
from crier.analytics import schedule as metric_schedule
from crier.delivery import outcomes
from crier.delivery import repository as delivery_repository
from crier.delivery import service as delivery_service
from crier.delivery.repository import Due, Sent
from crier.delivery.retry import RETRY_POLICY, Retry, RetryPolicy
from crier.kit.db import Database
from crier.kit.db.tenancy import enter_workspace_statement
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import Delivery, DeliveryAttempt, Post, SocialAccount
from crier.platforms.base import Account, Prepared, Published
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.platforms.rules import AssetLike
from crier.post import events as post_events
from crier.post import repository as post_repository
from crier.post.lifecycle import IN_FLIGHT, PostStatus, move
from crier.post.schemas import PostPayload
from crier.scheduler.metrics import DELIVERY_ATTEMPTS, PUBLISH_LATENESS
from crier.scheduler.sends import (
    PostToSend,
    Recheck,
    Refusal,
    SealedAccount,
    Send,
    plan_sends,
    refusal,
)
from crier.social_account import repository as account_repository
from crier.social_account.schemas import SocialAccount as SocialAccountOut
from crier.webhook import events
from crier.webhook.events import EventType

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=10)
"""Tokens expiring this soon are refreshed when their posts are prepared."""
REFRESH_LEASE = timedelta(seconds=30)
"""How long one worker has an account's refresh to itself: longer than a platform call may
take, and lapsing by itself if that worker dies."""
KEY_MARGIN = timedelta(minutes=5)
"""A resend must reach the platform this long before it may forget the key."""
_KEY_FORGOTTEN = (
    "interrupted long enough ago that the platform no longer knows its idempotency key: "
    "whether the post was made cannot be told, so it is not sent again; check the account"
)
EXPIRY_NOTICE = timedelta(days=7)
"""`social_account.expired` names the account's posts due within this long."""
OPENED_KEPT = 10_000
"""Opened access tokens a sender keeps, at most (all are forgotten when it is full)."""


@dataclass(frozen=True)
class Held:
    """A post this worker holds: when it is next due to be worked on."""

    workspace_id: UUID
    post_id: UUID
    due_at: datetime


@dataclass(frozen=True)
class Fired:
    """A workspace's posts that began publishing in one firing, and the deliveries of theirs
    that the platforms accepted: what is left to settle."""

    workspace_id: UUID
    post_ids: list[UUID]
    succeeded: list[Sent]


@dataclass(frozen=True)
class Sender:
    """One worker's way of sending the posts it holds."""

    db: Database
    platforms: Platforms
    vault: Vault
    clock: Clock
    worker: str
    policy: RetryPolicy = RETRY_POLICY
    first_metrics_fetch: timedelta = metric_schedule.DEFAULT[0]
    """How long after publishing a delivery's figures are first fetched."""
    _opened: dict[bytes, str] = field(default_factory=dict, repr=False, compare=False)
    """Access tokens opened, by their sealed form (never shown, never logged)."""

    async def _receipts(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        """Published deliveries start their metric history."""
        await analytics_repository.start_histories(
            session,
            [(d.id, d.published_at) for d in deliveries if d.published_at is not None],
            self.first_metrics_fetch,
        )

    async def prepare(self, workspace_id: UUID, post_ids: Sequence[UUID]) -> list[Held]:
        """Create the deliveries of a workspace's claimed posts (once), announce them as
        queued (once), and refresh tokens about to expire; in one transaction, whatever the
        count. Returns the posts still this worker's to send (not cancelled, taken over or
        done)."""
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            posts = [
                p
                for p in await post_repository.get_many(session, post_ids, lock=True)
                if self._ours(p)
            ]
            ids = [p.id for p in posts]
            if not ids:
                return []
            await delivery_repository.create_for_posts(session, ids)
            steps = await events.latest_of_many(session, ids, post_events.LIFECYCLE)
            await post_events.announce_many(
                session,
                now,
                EventType.POST_QUEUED,
                [p for p in posts if steps.get(p.id) != EventType.POST_QUEUED],
            )
            stale = await account_repository.expiring_for_posts(session, ids, now + REFRESH_MARGIN)
            held = [Held(workspace_id, p.id, p.publish_at) for p in posts if p.publish_at]
        for account_id in stale:
            await self.refresh_account(workspace_id, account_id)
        return held

    async def refresh_account(
        self, workspace_id: UUID, account_id: UUID, *, force: bool = False
    ) -> bool:
        """Trade the refresh token for new tokens through the account's platform, if it is
        still due (or `force`: the platform refused its token) and no other worker is at it
        (refresh tokens may be single-use); the new tokens are stored at once. If the
        platform refuses for good, the account is `expired` (its deliveries then fail with
        `auth_expired`), announced once.

        Whether the account may have fresh tokens now: refreshed here, or being refreshed
        by another worker."""
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            taken = await account_repository.take_refresh(
                session, account_id, now, None if force else now + REFRESH_MARGIN, REFRESH_LEASE
            )
            busy = taken is None and await account_repository.refresh_held(session, account_id, now)
        if taken is None:
            return busy  # refreshed already, being refreshed, or no longer usable
        platform, sealed, server_url, external_id = taken
        try:
            adapter = self.platforms.adapter(platform)
            tokens = await adapter.refresh(self.vault.open(sealed), server_url, external_id)
        except PlatformError as error:
            async with self.db.workspace_transaction(workspace_id) as session:
                account = await account_repository.get(session, account_id)
                if account is None:
                    return False
                account.refreshing_until = None
                if error.retryable:
                    log.warning(
                        "token refresh failed, will retry", extra={"code": error.code.value}
                    )
                elif account.status != "expired":
                    account.status = "expired"
                    await self._announce_unusable(session, account)
            return False
        async with self.db.workspace_transaction(workspace_id) as session:
            account = await account_repository.get(session, account_id)
            if account is not None:
                account.access_token = self.vault.seal(tokens.access_token)
                if tokens.refresh_token:
                    account.refresh_token = self.vault.seal(tokens.refresh_token)
                account.token_expires_at = tokens.expires_at
                account.last_refreshed_at = self.clock.now()
                account.refreshing_until = None
        return True

    async def _announce_unusable(self, session: AsyncSession, account: SocialAccount) -> None:
        """`social_account.expired` for an account that just became expired or revoked,
        naming its posts due in the next week."""
        await session.flush()
        now = self.clock.now()
        soon = await account_repository.scheduled_posts_targeting(
            session, account.id, before=now + EXPIRY_NOTICE
        )
        await events.emit(
            session,
            now,
            EventType.SOCIAL_ACCOUNT_EXPIRED,
            SocialAccountOut.model_validate(account).model_dump(mode="json")
            | {"scheduled_posts": [str(p) for p in soon]},
        )

    async def fire(self, workspace_id: UUID, held: Sequence[Held]) -> Fired:
        """Send every due delivery of a workspace's posts that have reached their time,
        concurrently; what is left is to settle the posts (`settle`, which the worker
        coalesces off the firing path: `Settler`).

        One transaction marks the posts publishing and writes down an attempt for every
        delivery to send before anything is sent, in two round trips: it reads what
        sending needs in one (`Database.pipelined`), and writes the attempts with its
        COMMIT in the other. Deliveries that cannot be sent are failed next, in a
        transaction of their own; deliveries that may already be on the platform go
        through `_recheck`, which looks them up first; failures are recorded one by one.
        """
        now = self.clock.now()
        post_ids = [h.post_id for h in held]
        async with self.db.pipelined() as tx:
            await tx.send(enter_workspace_statement(workspace_id))
            began = await tx.send(
                post_repository.begin_publishing_statement(post_ids, self.worker, now)
            )
            due_found = await tx.send(
                delivery_repository.lock_due_statement(post_ids, self.worker, now)
            )
            accounts_found = await tx.send(delivery_repository.sending_accounts_statement(post_ids))
            media_found = await tx.send(delivery_repository.sending_media_statement(post_ids))
            posts = sorted(
                (post_repository.ToSend(**row) for row in await began.rows()),
                key=lambda p: p.id,
            )
            due = [Due(**row) for row in await due_found.rows()]
            accounts = {a["id"]: SimpleNamespace(**a) for a in await accounts_found.rows()}
            media = {m["id"]: SimpleNamespace(**m) for m in await media_found.rows()}
            plan = plan_sends(
                due,
                _contents(posts, media),
                accounts,
                self.platforms,
                now,
                self.platforms.media_base_url,
            )
            if plan.sends:
                await tx.send(
                    delivery_repository.begin_attempts_statement(
                        [s.delivery_id for s in plan.sends],
                        [s.attempt_id for s in plan.sends],
                        self.clock.now(),
                    )
                )
        if not posts:
            return Fired(workspace_id, [], [])  # cancelled (or taken over) before their time
        if plan.refusals:
            async with self.db.workspace_transaction(workspace_id) as session:
                await self._refuse(session, now, plan.refusals)
        results = await asyncio.gather(
            *(self._send(s) for s in plan.sends),
            *(self._recheck(workspace_id, r) for r in plan.rechecks),
            return_exceptions=True,
        )
        succeeded: list[Sent] = []
        for send, result in zip(plan.sends, results, strict=False):
            if isinstance(result, PlatformError):
                await self._record_failure(workspace_id, send.delivery_id, send.attempt_id, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                assert isinstance(result, Published)
                succeeded.append(Sent(send.delivery_id, send.attempt_id, result))
        for result in results[len(plan.sends) :]:
            if isinstance(result, BaseException):
                raise result
        return Fired(workspace_id, [p.id for p in posts], succeeded)

    async def _refuse(
        self, session: AsyncSession, now: datetime, refusals: Sequence[Refusal]
    ) -> None:
        """Fail the deliveries that cannot be sent, and announce it. An account whose token
        ran out with nothing to refresh it with (LinkedIn's without programmatic refresh)
        becomes `expired` then, announced once."""
        if not refusals:
            return
        why = {r.delivery_id: r for r in refusals}
        refused = await delivery_repository.get_many(session, list(why))
        for delivery in refused:
            outcomes.failed(delivery, why[delivery.id].code, why[delivery.id].message)
        await _announce(session, now, refused)
        ran_out = {d.social_account_id for d in refused if d.error_code == ErrorCode.AUTH_EXPIRED}
        for account_id in ran_out:
            account = await account_repository.get(session, account_id)
            if account is not None and account.status == "active":
                account.status = "expired"
                await self._announce_unusable(session, account)

    async def _send(self, send: Send) -> Published:
        return await self._publish(
            send.platform, send.account, send.content, send.delivery_id, send.first_due
        )

    def _open(self, account: SealedAccount) -> Account:
        """The account with its token opened: once per sealed token (a refresh seals a new
        one), not on every send, for decrypting was a twentieth of a busy worker's time."""
        sealed = account.access_token
        token = self._opened.get(sealed) if sealed else ""
        if token is None:
            assert sealed is not None
            if len(self._opened) >= OPENED_KEPT:
                self._opened.clear()
            token = self._opened[sealed] = self.vault.open(sealed)
        return Account(token, account.external_id, account.server_url)

    async def _publish(
        self,
        platform: str,
        account: SealedAccount,
        content: Prepared,
        delivery_id: UUID,
        first_due: datetime | None,
    ) -> Published:
        """Send a delivery through its platform's adapter, with the delivery id as its
        idempotency key. For a delivery's first attempt, `first_due` is its post's time,
        and how late the call leaves is observed for /metrics as it leaves."""
        adapter = self.platforms.adapter(platform)
        opened = self._open(account)
        if first_due is not None:
            PUBLISH_LATENESS.observe(max(0.0, (self.clock.now() - first_due).total_seconds()))
        return await adapter.publish(opened, content, str(delivery_id))

    async def settle(
        self, workspace_id: UUID, post_ids: Sequence[UUID], succeeded: Sequence[Sent] = ()
    ) -> dict[UUID, Held | None]:
        """Published when every delivery is; failed when any failed for good; else next
        retry. `succeeded` are recorded first, in the same transaction.

        Returns, for each post, when it is next due, or None once settled or not this
        worker's.
        """
        outcome: dict[UUID, Held | None] = dict.fromkeys(post_ids)
        async with self.db.workspace_transaction(workspace_id) as session:
            posts = [
                p
                for p in await post_repository.get_many(session, post_ids, lock=True)
                if self._ours(p)
            ]
            await delivery_repository.record_published(session, succeeded, self.clock.now())
            deliveries = await delivery_repository.of_posts(session, [p.id for p in posts])
            sent = {s.delivery_id for s in succeeded}
            announced = [d for d in deliveries if d.id in sent]
            if len(announced) < len(sent):  # some post is no longer this worker's
                ours = {d.id for d in announced}
                announced += await delivery_repository.get_many(session, list(sent - ours))
            await _announce(session, self.clock.now(), announced)
            await self._receipts(session, announced)
            done: dict[EventType, list[Post]] = {
                EventType.POST_PUBLISHED: [],
                EventType.POST_FAILED: [],
            }
            by_post: dict[UUID, list[Delivery]] = {}
            for d in deliveries:
                by_post.setdefault(d.post_id, []).append(d)
            for post in posts:
                mine = by_post.get(post.id, [])
                still_open = [d for d in mine if d.status in outcomes.OPEN]
                if still_open:
                    next_due = min((d.next_attempt_at or self.clock.now()) for d in still_open)
                    outcome[post.id] = Held(workspace_id, post.id, next_due)
                    continue
                failed = any(d.status == "failed" for d in mine)
                move(post, PostStatus.FAILED if failed else PostStatus.PUBLISHED)
                if not failed:
                    post.published_at = max(
                        (d.published_at for d in mine if d.published_at), default=self.clock.now()
                    )
                post.lease_owner = None
                post.lease_expires_at = None
                done[EventType.POST_FAILED if failed else EventType.POST_PUBLISHED].append(post)
            for type_, settled in done.items():
                await post_events.announce_many(session, self.clock.now(), type_, settled)
        DELIVERY_ATTEMPTS.labels("published", "").inc(len(succeeded))
        return outcome

    async def _recheck(self, workspace_id: UUID, recheck: Recheck) -> None:
        """Settle a delivery whose last attempt may have reached the platform (its worker
        died mid-call, or the platform timed out or failed after sending): look it up on
        the platform by its idempotency key, and only if it is not there send it again,
        with the same key; a resend the network refuses as a copy of a post it names is
        settled by that post. The new attempt is written down (and committed) before the
        platform is called."""
        delivery_id = recheck.delivery_id
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, delivery_id, lock=True)
            if delivery is None or delivery.status not in outcomes.OPEN:
                return
            account = await account_repository.get(session, delivery.social_account_id)
            refused = refusal(account, delivery.platform, self.platforms, self.clock.now())
            if refused is not None:
                outcomes.failed(delivery, *refused)
                await _announce(session, self.clock.now(), [delivery])
                return
            assert account is not None  # refused otherwise
            sealed = SealedAccount.of(account)
            since = await delivery_repository.first_attempt_started(session, delivery_id)
            taken = await delivery_repository.posts_of_others(
                session, account.id, delivery_id, since or self.clock.now()
            )
        adapter = self.platforms.adapter(recheck.platform)
        try:
            found = await adapter.find(
                self._open(sealed), str(delivery_id), recheck.content, since, taken
            )
        except PlatformError as error:
            if getattr(adapter, "lookup_before_resend", False):
                await self._lookup_failed(workspace_id, recheck, error)
                return
            found = None  # cannot tell yet: the resend below is safe, it carries the same key
        if found is not None:
            await self._record_found(workspace_id, delivery_id, found)
            return
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, delivery_id, lock=True)
            if delivery is None or delivery.status not in outcomes.OPEN:
                return
            interrupted = await delivery_repository.open_attempt(session, delivery_id)
            if await self._key_forgotten(session, recheck.platform, delivery_id):
                outcomes.unknowable(delivery, interrupted, _KEY_FORGOTTEN, self.clock.now())
                await _announce(session, self.clock.now(), [delivery])
                return
            first_due = recheck.publish_at if delivery.attempts == 0 else None
            attempt = outcomes.begin_attempt(delivery, interrupted, self.clock.now())
            session.add(attempt)
            await session.flush()
            attempt_id = attempt.id
        try:
            published = await self._publish(
                recheck.platform, sealed, recheck.content, delivery_id, first_due
            )
        except PlatformError as error:
            if error.existing is None:
                await self._record_failure(workspace_id, delivery_id, attempt_id, error)
                return
            # The network refused the resend as a copy of a post it has (LinkedIn's
            # duplicate answer names it): the one the earlier attempt made.
            published = error.existing
        async with self.db.workspace_transaction(workspace_id) as session:
            sent = Sent(delivery_id, attempt_id, published)
            await delivery_repository.record_published(session, [sent], self.clock.now())
            shown = await delivery_repository.get_many(session, [delivery_id])
            await _announce(session, self.clock.now(), shown)
            await self._receipts(session, shown)
        DELIVERY_ATTEMPTS.labels("published", "").inc()

    async def _lookup_failed(
        self, workspace_id: UUID, recheck: Recheck, error: PlatformError
    ) -> None:
        """The network could not be asked whether a delivery of unknown outcome was made,
        and a resend could make it twice: nothing is sent, and it is looked up again
        later (after a refresh, when the token was refused); failed `outcome_unknown` when
        the network can no longer tell, or refused for good."""
        if error.code == ErrorCode.AUTH_EXPIRED:
            async with self.db.workspace_transaction(workspace_id) as session:
                delivery = await delivery_repository.get(session, recheck.delivery_id)
                account_id = delivery.social_account_id if delivery else None
            if account_id is not None:
                await self.refresh_account(workspace_id, account_id, force=True)
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, recheck.delivery_id, lock=True)
            if delivery is None or delivery.status not in outcomes.OPEN:
                return
            now = self.clock.now()
            message = f"{recheck.platform} could not be asked whether it has the post: "
            final = not error.retryable and error.code != ErrorCode.AUTH_EXPIRED
            if final or await self._key_forgotten(session, recheck.platform, delivery.id):
                interrupted = await delivery_repository.open_attempt(session, delivery.id)
                outcomes.unknowable(delivery, interrupted, message + error.message, now)
                await _announce(session, now, [delivery])
                return
            wait = self.policy.backoff(delivery.attempts + 1, error.retry_after)
            outcomes.lookup_deferred(delivery, error, message, now + wait)

    async def _record_found(
        self, workspace_id: UUID, delivery_id: UUID, published: Published
    ) -> None:
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, delivery_id, lock=True)
            assert delivery is not None
            attempts = await delivery_repository.attempts_of(session, [delivery_id])
            outcomes.found(delivery, attempts[delivery_id], published, self.clock.now())
            await _announce(session, self.clock.now(), [delivery])
            await self._receipts(session, [delivery])

    async def _record_failure(
        self, workspace_id: UUID, delivery_id: UUID, attempt_id: UUID, error: PlatformError
    ) -> None:
        """The attempt failed: the retry policy says whether, and when, it is tried again.

        A token the platform calls expired is refreshed, and the delivery sent again at
        once, one time; if that fails too (or the refresh does), it fails `auth_expired`. A
        token the platform calls revoked makes the account `revoked`, announced once."""
        refreshed = False
        if error.code == ErrorCode.AUTH_EXPIRED:
            refreshed = await self._refresh_for(workspace_id, delivery_id, attempt_id)
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, delivery_id, lock=True)
            attempt = await session.get(DeliveryAttempt, (workspace_id, attempt_id))
            assert delivery is not None
            assert attempt is not None
            now = self.clock.now()
            decision = (
                Retry(now)
                if refreshed and delivery.attempts < delivery.attempts_allowed
                else self.policy.after(error, delivery.attempts, delivery.attempts_allowed, now)
            )
            outcomes.attempt_failed(delivery, attempt, error, decision, now)
            if error.code == ErrorCode.AUTH_REVOKED:
                account = await account_repository.get(session, delivery.social_account_id)
                if account is not None and account.status == "active":
                    account.status = "revoked"
                    await self._announce_unusable(session, account)
            if delivery.status == "failed":
                await _announce(session, now, [delivery])
            outcome = attempt.outcome
        DELIVERY_ATTEMPTS.labels(outcome, error.code.value).inc()

    async def _refresh_for(self, workspace_id: UUID, delivery_id: UUID, attempt_id: UUID) -> bool:
        """Refresh the tokens of a delivery's account after the platform refused its token,
        unless an earlier attempt of the delivery already led to a refresh: whether it may
        be sent again."""
        async with self.db.workspace_transaction(workspace_id) as session:
            delivery = await delivery_repository.get(session, delivery_id)
            if delivery is None:
                return False
            earlier = await delivery_repository.refused_tokens(session, delivery_id, attempt_id)
            account_id = delivery.social_account_id
        if earlier:
            return False
        return await self.refresh_account(workspace_id, account_id, force=True)

    async def _key_forgotten(self, session: AsyncSession, platform: str, delivery_id: UUID) -> bool:
        """Whether the platform may have forgotten the idempotency key of the delivery's
        last attempt (Mastodon keeps one an hour), so that a resend could post twice."""
        kept: timedelta | None = getattr(self.platforms.adapter(platform), "keys_kept", None)
        if kept is None:
            return False
        began = await delivery_repository.last_attempt_started(session, delivery_id)
        return began is not None and self.clock.now() - began > kept - KEY_MARGIN

    def _ours(self, post: Post | None) -> bool:
        return post is not None and post.status in IN_FLIGHT and post.lease_owner == self.worker


def _contents(
    posts: Sequence[post_repository.ToSend], media: Mapping[UUID, AssetLike]
) -> dict[UUID, PostToSend]:
    """What each post's deliveries are made of: its payload, and its media that are still
    in the workspace, in the payload's order."""
    contents = {}
    for post in posts:
        payload = PostPayload.model_validate(post.payload)
        found = [media[m] for m in payload.media_ids if m in media]
        contents[post.id] = PostToSend(payload, post.publish_at, found)
    return contents


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
