"""Review syncs: workers read each location's reviews from its network, incrementally.

A network lists a location's reviews the most recently changed first, with no "changed
since" filter (Google Business Profile's `reviews.list`). A run reads pages from the newest
down to the watermark (the newest change time the last finished run read), so it reads
only what changed since; each page is stored in its own transaction with where the run
goes on, so a run cut short (a crash, a rate limit) resumes from that page, and a review
is never lost or stored twice. A run that finds the network counting a different number
of reviews than Crier holds reads every review once more (a full scan) and marks those it
did not see as removed; so does the first run a day (a setting) after the last full scan,
for the changes a network does not list as changes (a reply made elsewhere, on Google).

One worker at a time syncs a location, under a lease; the lease's end is also the run's
fence: a worker that finds it changed (another took over after it stalled) stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import Database
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import ReviewSync, SocialAccount
from crier.platforms.base import Account, HasReviews, ReviewPage
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.review import repository, service
from crier.social_account import repository as account_repository

log = logging.getLogger(__name__)

SYNC_LEASE = timedelta(minutes=2)
"""How long a worker has a location's sync to itself unrenewed (renewed at every page)."""
RETRY_AFTER = timedelta(minutes=1)
"""How soon a run that failed on a transient error is tried again (unless told later)."""
REFRESH_AHEAD = timedelta(minutes=5)
"""A token expiring this soon is refreshed before a run."""
PAGES_PER_RUN = 100
"""Pages one run reads before letting the next sweep go on (5,000 reviews on Google)."""
_UNUSABLE = {
    "expired": ErrorCode.AUTH_EXPIRED,
    "revoked": ErrorCode.AUTH_REVOKED,
    "disconnected": ErrorCode.ACCOUNT_DISCONNECTED,
}


def unusable(platforms: Platforms, account: SocialAccount | None) -> ErrorCode | None:
    """Why the location cannot be reached now (to sync its reviews or reply), if it cannot."""
    if account is None:
        return ErrorCode.ACCOUNT_DISCONNECTED
    if account.status in _UNUSABLE:
        return _UNUSABLE[account.status]
    if account.access_token is None or not platforms.has_reviews(account.platform):
        return ErrorCode.PLATFORM_NOT_CONFIGURED
    return None


def reach(vault: Vault, account: SocialAccount) -> Account:
    """How an adapter reaches the location: its token, unsealed."""
    assert account.access_token is not None
    return Account(vault.open(account.access_token), account.external_id, account.server_url)


async def reload_target(
    db: Database, vault: Vault, workspace_id: UUID, account_id: UUID
) -> Account | None:
    """The location as its account is now (after a refresh stored new tokens)."""
    async with db.workspace_transaction(workspace_id) as session:
        account = await account_repository.get(session, account_id)
        return reach(vault, account) if account is not None and account.access_token else None


async def each_at_most(
    slots: asyncio.Semaphore,
    due: list[tuple[UUID, UUID]],
    work: Callable[[UUID, UUID], Awaitable[object]],
) -> int:
    """`work(workspace_id, id)` for each of `due`, as many at once as `slots` allows;
    returns how many were due."""

    async def one(workspace_id: UUID, item: UUID) -> None:
        async with slots:
            await work(workspace_id, item)

    await asyncio.gather(*(one(ws, item) for ws, item in due))
    return len(due)


Refresh = Callable[..., Awaitable[bool]]
"""`refresh(workspace_id, account_id, force=...)`: new tokens for the account (the
scheduler's, so that a single-use refresh token is spent once)."""


@dataclass
class _Run:
    """A run in hand: the location, how to reach it, and the lease it holds."""

    workspace_id: UUID
    account_id: UUID
    adapter: HasReviews
    target: Account
    lease: datetime
    page_token: str | None
    """Where the run goes on (None: from the newest)."""


class ReviewSyncer:
    """Syncs the reviews of locations that are due, across workspaces."""

    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        platforms: Platforms,
        vault: Vault,
        clock: Clock,
        *,
        every: timedelta = timedelta(minutes=15),
        full_scan_every: timedelta = timedelta(hours=24),
        refresh: Refresh | None = None,
        batch: int = 50,
        at_once: int = 4,
        pages_per_run: int = PAGES_PER_RUN,
    ) -> None:
        self.db, self.scheduler_db = app_db, scheduler_db
        self.platforms, self.vault, self.clock = platforms, vault, clock
        self.every = every
        """How often each location is synced."""
        self.full_scan_every = full_scan_every
        """How often a location's reviews are all read (a full scan)."""
        self.refresh = refresh
        self.batch, self.pages_per_run = batch, pages_per_run
        self._slots = asyncio.Semaphore(at_once)

    async def sweep(self) -> int:
        """Sync the locations due now (at most `batch`, a few at once); returns how many
        were due."""
        due = await repository.due_syncs(self.scheduler_db, self.clock.now(), self.batch)
        return await each_at_most(self._slots, due, self.sync)

    async def sync(self, workspace_id: UUID, account_id: UUID) -> bool:
        """Run the location's sync, if it is due and no other worker holds it: whether a
        run finished."""
        run = await self._take(workspace_id, account_id)
        if run is None:
            return False
        refreshed = False
        restarted = False
        for _ in range(self.pages_per_run):
            try:
                page = await run.adapter.reviews(run.target, run.page_token)
            except PlatformError as error:
                if error.code == ErrorCode.INVALID_REQUEST and run.page_token and not restarted:
                    restarted = True  # the network forgot the token: start the run over
                    if not await self._restart(run):
                        return False
                    continue
                if error.code == ErrorCode.AUTH_EXPIRED and not refreshed and self.refresh:
                    refreshed = True
                    if await self.refresh(workspace_id, account_id, force=True):
                        await self._reload_token(run)
                        continue
                await self._failed(run, error)
                return False
            finished = await self._store(run, page)
            if finished is not None:
                return finished
        await self._pause(run)
        return False

    async def _take(self, workspace_id: UUID, account_id: UUID) -> _Run | None:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            sync = await repository.take_sync(session, account_id, now, SYNC_LEASE)
            if sync is None:
                return None
            account = await account_repository.get(session, account_id)
            problem = unusable(self.platforms, account)
            if problem is not None:
                self._settle(sync, now, error=problem)
                return None
            assert account is not None
            adapter = self.platforms.adapter(account.platform)
            assert isinstance(adapter, HasReviews)
            expires = account.token_expires_at
            run = _Run(
                workspace_id,
                account_id,
                adapter,
                reach(self.vault, account),
                now + SYNC_LEASE,
                sync.page_token,
            )
            sync.leased_until = run.lease
        if self.refresh is not None and expires is not None and expires <= now + REFRESH_AHEAD:
            await self.refresh(workspace_id, account_id)
            await self._reload_token(run)
        return run

    async def _reload_token(self, run: _Run) -> None:
        target = await reload_target(self.db, self.vault, run.workspace_id, run.account_id)
        run.target = target or run.target

    async def _held(self, session: AsyncSession, run: _Run) -> ReviewSync | None:
        """The location's sync, locked, if this run still holds it."""
        sync = await repository.held_sync(session, run.account_id)
        if sync is None or sync.leased_until != run.lease:
            log.info("review sync taken over", extra={"account": str(run.account_id)})
            return None
        return sync

    async def _restart(self, run: _Run) -> bool:
        async with self.db.workspace_transaction(run.workspace_id) as session:
            sync = await self._held(session, run)
            if sync is None:
                return False
            sync.page_token, sync.run_top = None, None
            run.page_token = None
            return True

    async def _store(self, run: _Run, page: ReviewPage) -> bool | None:
        """Store a page and where the run goes on, in one transaction. True when the run
        finished, False when it lost the location, None when it goes on."""
        now = self.clock.now()
        async with self.db.workspace_transaction(run.workspace_id) as session:
            sync = await self._held(session, run)
            account = await account_repository.get(session, run.account_id)
            if sync is None or account is None:
                return False
            reached = False
            changed = []
            for review in page.reviews:
                if (
                    not sync.full_scan
                    and sync.watermark is not None
                    and review.updated_at < sync.watermark
                ):
                    reached = True  # older than what the last run read: nothing new below
                    break
                changed.append(review)
            await service.ingest(
                session, self.clock, account, changed, sync.scan if sync.full_scan else None
            )
            tops = [r.updated_at for r in changed] + ([sync.run_top] if sync.run_top else [])
            sync.run_top = max(tops) if tops else None
            if not reached and page.next_page_token is not None:
                sync.page_token = run.page_token = page.next_page_token
                run.lease = sync.leased_until = now + SYNC_LEASE  # renewed at every page
                return None
            full = sync.full_scan
            if full:
                await service.mark_removed(session, self.clock, account, sync.scan)
            if full or sync.watermark is None:  # a first run reads every review too
                sync.full_scanned_at = now
            if sync.run_top is not None:
                sync.watermark = max(sync.watermark or sync.run_top, sync.run_top)
            sync.page_token, sync.run_top = None, None
            live = await repository.live_count(session, run.account_id)
            overdue = (
                sync.full_scanned_at is None or now - sync.full_scanned_at >= self.full_scan_every
            )
            if not full and (overdue or (page.total is not None and page.total != live)):
                # Crier's count differs from the network's: a review was removed there (or
                # one was passed while pages shifted). Or the last full scan is a day old,
                # and a network may not list a review as changed when only its reply
                # changed (Google does not say it does). Read them all once more.
                sync.full_scan, sync.scan = True, sync.scan + 1
                run.page_token = None
                run.lease = sync.leased_until = now + SYNC_LEASE
                return None
            sync.full_scan = False
            sync.network_total = page.total
            self._settle(sync, now)
            return True

    def _settle(
        self,
        sync: ReviewSync,
        now: datetime,
        *,
        error: ErrorCode | None = None,
        due: datetime | None = None,
    ) -> None:
        """End the run: release the location, and say when it is next due."""
        sync.leased_until = None
        sync.next_sync_at = due or now + self.every
        if error is None:
            sync.last_synced_at, sync.last_error, sync.last_error_at = now, None, None
        else:
            sync.last_error, sync.last_error_at = error.value, now

    async def _failed(self, run: _Run, error: PlatformError) -> None:
        """A page could not be read: the run stops where it is (resumed at its next try:
        soon, or when the network said, for a transient failure; at the usual time
        otherwise)."""
        now = self.clock.now()
        due = None
        if error.retryable:
            wait = timedelta(seconds=error.retry_after or 0)
            due = now + max(RETRY_AFTER, wait)
        log.warning("review sync failed", extra={"code": error.code.value})
        async with self.db.workspace_transaction(run.workspace_id) as session:
            sync = await self._held(session, run)
            if sync is not None:
                self._settle(sync, now, error=error.code, due=due)

    async def _pause(self, run: _Run) -> None:
        """The run read its share of pages: the next sweep goes on from where it is."""
        async with self.db.workspace_transaction(run.workspace_id) as session:
            sync = await self._held(session, run)
            if sync is not None:
                sync.leased_until, sync.next_sync_at = None, self.clock.now()
