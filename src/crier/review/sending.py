"""Workers send the replies asked of Crier to the networks.

Each reply is a row committed before any worker sees it (`crier.review.replies.request`),
taken under a lease, sent, and its outcome stored in one transaction with the review's new
state and its event. A worker that dies mid-send loses the lease, and another sends the
reply again: the networks' reply call is an upsert, so the review ends with one reply, the
one asked. A review's replies go out one at a time, in the order they were asked for (the
scheduler's query passes over a review while a worker holds one of its replies); the
lease is also the fence, so a worker that finds its lease changed writes nothing.

Transient failures (rate limits with the network's `Retry-After`, outages, timeouts) are
retried with backoff, `REPLY_ATTEMPTS` times in all; a token the network refuses is
refreshed once; anything else fails the reply for good, visibly on the review.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.delivery.retry import GiveUp, RetryPolicy
from crier.kit.db import Database
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import ReviewReplyRecord
from crier.platforms.base import Account, HasReviews, ReplyReceipt
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.review import replies, repository
from crier.review.tasks import (
    REFRESH_AHEAD,
    Refresh,
    each_at_most,
    reach,
    reload_target,
    unusable,
)
from crier.social_account import repository as account_repository

log = logging.getLogger(__name__)

REPLY_LEASE = timedelta(minutes=2)
"""How long a worker has a reply to itself: longer than any call to a network takes."""
REPLY_ATTEMPTS = 8
"""Sends of one reply before a transient failure is final (about an hour of backoff)."""
REPLY_RETRY = RetryPolicy(base=timedelta(seconds=30))
"""30 s after the first failure, doubling (with jitter), never sooner than `Retry-After`."""


@dataclass
class _Send:
    workspace_id: UUID
    reply_id: UUID
    account_id: UUID
    adapter: HasReviews
    target: Account
    review_external_id: str
    text: str | None
    """The reply (None: remove the reply)."""
    lease: datetime
    refresh_first: bool


class ReplySender:
    """Sends the replies that are due, across workspaces."""

    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        platforms: Platforms,
        vault: Vault,
        clock: Clock,
        *,
        refresh: Refresh | None = None,
        batch: int = 50,
        at_once: int = 4,
        policy: RetryPolicy = REPLY_RETRY,
        attempts: int = REPLY_ATTEMPTS,
    ) -> None:
        self.db, self.scheduler_db = app_db, scheduler_db
        self.platforms, self.vault, self.clock = platforms, vault, clock
        self.refresh, self.batch = refresh, batch
        self.policy, self.attempts = policy, attempts
        self._slots = asyncio.Semaphore(at_once)

    async def sweep(self) -> int:
        """Send the replies due now (at most `batch`, a few at once); returns how many were
        due."""
        due = await repository.due_replies(self.scheduler_db, self.clock.now(), self.batch)
        return await each_at_most(self._slots, due, self.send)

    async def send(self, workspace_id: UUID, reply_id: UUID) -> bool:
        """Send the reply, if it is due and no worker holds it or another reply of its
        review: whether the network took it."""
        sending = await self._take(workspace_id, reply_id)
        if sending is None:
            return False
        if sending.refresh_first and self.refresh is not None:
            await self.refresh(workspace_id, sending.account_id)
            await self._reload_token(sending)
        refreshed = False
        while True:
            try:
                receipt = await self._call(sending)
            except PlatformError as error:
                if error.code == ErrorCode.AUTH_EXPIRED and not refreshed and self.refresh:
                    refreshed = True
                    if await self.refresh(workspace_id, sending.account_id, force=True):
                        await self._reload_token(sending)
                        continue
                await self._failed(sending, error)
                return False
            break
        async with self.db.workspace_transaction(workspace_id) as session:
            record = await self._held(session, sending)
            if record is None:
                return False
            await replies.confirmed(session, self.clock, record, receipt)
        return True

    async def _call(self, sending: _Send) -> ReplyReceipt | None:
        if sending.text is None:
            await sending.adapter.delete_reply(sending.target, sending.review_external_id)
            return None
        return await sending.adapter.reply(sending.target, sending.review_external_id, sending.text)

    async def _take(self, workspace_id: UUID, reply_id: UUID) -> _Send | None:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            record = await repository.held_reply(session, reply_id)
            if (
                record is None
                or record.status != "pending"
                or record.next_attempt_at is None
                or record.next_attempt_at > now
                or (record.leased_until is not None and record.leased_until > now)
                or await repository.another_in_flight(session, record.review_id, reply_id, now)
            ):
                return None
            review = await repository.get(session, record.review_id)
            assert review is not None
            account = await account_repository.get(session, review.social_account_id)
            problem = unusable(self.platforms, account)
            if problem is not None or review.removed_at is not None:
                code = problem.value if problem else ErrorCode.INVALID_REQUEST.value
                message = None if problem else "The review was removed from the network."
                await replies.failed(session, self.clock, record, code, message, None)
                return None
            assert account is not None
            assert account.access_token is not None
            adapter = self.platforms.adapter(account.platform)
            assert isinstance(adapter, HasReviews)
            record.attempts += 1
            record.leased_until = now + REPLY_LEASE
            expires = account.token_expires_at
            return _Send(
                workspace_id,
                reply_id,
                account.id,
                adapter,
                reach(self.vault, account),
                review.external_id,
                record.text,
                record.leased_until,
                expires is not None and expires <= now + REFRESH_AHEAD,
            )

    async def _reload_token(self, sending: _Send) -> None:
        target = await reload_target(self.db, self.vault, sending.workspace_id, sending.account_id)
        sending.target = target or sending.target

    async def _held(self, session: AsyncSession, sending: _Send) -> ReviewReplyRecord | None:
        """The reply, locked, if this worker still holds it."""
        record = await repository.held_reply(session, sending.reply_id)
        if record is None or record.leased_until != sending.lease:
            log.info("review reply taken over", extra={"reply": str(sending.reply_id)})
            return None
        return record

    async def _failed(self, sending: _Send, error: PlatformError) -> None:
        now = self.clock.now()
        log.warning("review reply failed", extra={"code": error.code.value})
        async with self.db.workspace_transaction(sending.workspace_id) as session:
            record = await self._held(session, sending)
            if record is None:
                return
            decision = self.policy.after(error, record.attempts, self.attempts, now)
            retry_at = None if isinstance(decision, GiveUp) else decision.at
            await replies.failed(
                session, self.clock, record, error.code.value, error.message, retry_at
            )
