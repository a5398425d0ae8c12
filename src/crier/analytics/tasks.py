"""Metric collection: workers fetch each published delivery's figures on a decaying
schedule from its receipt (`schedule.DEFAULT`), and each active account's own figures once
a day, and keep every observation. A network that keeps an account's figures as counts per
day (`HasDailyFigures`) is read back over its history the first time and over its recent
days, which it may still revise, each day after; each day's figure is kept once, replaced
when it changed, and the days it changed are aggregated again.

A fetch is due at one time; it is taken under a lease, the network asked, and what it said
stored with the next due time in one transaction, if the lease is still the worker's. A
fetch late by more than a step stands for every step it passed. Transient failures are
tried again with a growing wait (or when the network said); a network asking for a pause
holds back every fetch of that account until then; after `MAX_FAILURES` in a row a step is
given up and the next one awaited. A post the network no longer has is not asked for again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import repository, schedule
from crier.analytics.names import with_engagements
from crier.analytics.rollups import TOUCHED_SOON
from crier.delivery import repository as delivery_repository
from crier.kit.db import Database
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import MetricFetch, SocialAccount
from crier.platforms.base import Account, HasDailyFigures
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms
from crier.review.tasks import Refresh, reach, reload_target
from crier.social_account import repository as account_repository

log = logging.getLogger(__name__)

FETCH_LEASE = timedelta(minutes=2)
"""How long a worker has a fetch to itself."""
RETRY_AFTER = timedelta(minutes=1)
"""The wait after a first transient failure; doubled after each next one."""
MAX_FAILURES = 5
"""Transient failures in a row after which a step is given up."""
_UNUSABLE = {"expired", "revoked", "disconnected"}


@dataclass
class _Fetch:
    workspace_id: UUID
    account_id: UUID
    delivery_id: UUID | None
    platform: str
    target: Account
    external_id: str
    """The post on the network (its id), for a delivery's figures."""
    lease: datetime
    first_fetch: bool
    """Whether the account's own figures were never fetched yet (a network's daily figures
    are then read back over its whole history)."""


@dataclass
class _Days:
    """A network's figures of whole days (`HasDailyFigures`), by day."""

    figures: dict[date, dict[str, int]]


class MetricCollector:
    """Fetches the figures that are due, across workspaces."""

    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        platforms: Platforms,
        vault: Vault,
        clock: Clock,
        *,
        steps: Sequence[timedelta] = schedule.DEFAULT,
        account_every: timedelta = schedule.ACCOUNT_EVERY,
        refresh: Refresh | None = None,
        batch: int = 100,
        at_once: int = 4,
    ) -> None:
        self.db, self.scheduler_db = app_db, scheduler_db
        self.platforms, self.vault, self.clock = platforms, vault, clock
        self.steps = tuple(steps)
        self.account_every = account_every
        self.refresh = refresh
        self.batch = batch
        self._slots = asyncio.Semaphore(at_once)

    async def sweep(self) -> int:
        """Fetch what is due now (at most `batch`, a few at once); returns how many were."""
        due = await repository.due_fetches(self.scheduler_db, self.clock.now(), self.batch)
        slots = self._slots

        async def one(item: repository.Due) -> None:
            async with slots:
                await self.fetch(item.workspace_id, item.social_account_id, item.delivery_id)

        await asyncio.gather(*(one(item) for item in due))
        return len(due)

    async def fetch(self, workspace_id: UUID, account_id: UUID, delivery_id: UUID | None) -> bool:
        """Fetch the figures if they are due and no other worker has them: whether they
        were stored."""
        taken = await self._take(workspace_id, account_id, delivery_id)
        if taken is None:
            return False
        refreshed = False
        while True:
            try:
                figures = await self._ask(taken)
            except PlatformError as error:
                if error.code == ErrorCode.AUTH_EXPIRED and not refreshed and self.refresh:
                    refreshed = True
                    if await self.refresh(workspace_id, account_id, force=True):
                        found = await reload_target(self.db, self.vault, workspace_id, account_id)
                        taken.target = found or taken.target
                        continue
                await self._failed(taken, error)
                return False
            return await self._store(taken, figures)

    async def _ask(self, taken: _Fetch) -> Mapping[str, float] | _Days:
        adapter = self.platforms.adapter(taken.platform)
        if taken.delivery_id is None and isinstance(adapter, HasDailyFigures):
            last = self.clock.now().astimezone(UTC).date()
            days = adapter.history_days if taken.first_fetch else adapter.revised_days
            first = last - timedelta(days - 1)
            return _Days(await adapter.daily_metrics(taken.target, first, last))
        if taken.delivery_id is None:
            return await adapter.account_metrics(taken.target)
        return with_engagements(await adapter.metrics(taken.target, taken.external_id))

    async def _take(
        self, workspace_id: UUID, account_id: UUID, delivery_id: UUID | None
    ) -> _Fetch | None:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            if delivery_id is None:
                await repository.open_account_fetch(session, workspace_id, account_id, now)
            fetch = await repository.take_fetch(session, account_id, delivery_id, now, FETCH_LEASE)
            if fetch is None:
                return None
            account = await account_repository.get(session, account_id)
            external_id = ""
            if delivery_id is not None:
                delivery = await delivery_repository.get(session, delivery_id)
                external_id = (delivery.external_id if delivery else None) or ""
            problem = self._unusable(account, delivery_id, external_id)
            if problem is not None:
                # Not now: the next step may find the account reconnected.
                self._next(fetch, now, error=problem)
                return None
            assert account is not None
            return _Fetch(
                workspace_id,
                account_id,
                delivery_id,
                account.platform,
                reach(self.vault, account),
                external_id,
                now + FETCH_LEASE,
                fetch.last_fetched_at is None,
            )

    def _unusable(
        self, account: SocialAccount | None, delivery_id: UUID | None, external_id: str
    ) -> ErrorCode | None:
        """Why the figures cannot be fetched now, if they cannot."""
        if account is None or account.status == "disconnected":
            return ErrorCode.ACCOUNT_DISCONNECTED
        if account.status in _UNUSABLE:
            return ErrorCode.AUTH_EXPIRED if account.status == "expired" else ErrorCode.AUTH_REVOKED
        if account.access_token is None or account.platform not in self.platforms:
            return ErrorCode.PLATFORM_NOT_CONFIGURED
        if delivery_id is not None and not external_id:
            return ErrorCode.INVALID_REQUEST
        return None

    def _next(self, fetch: MetricFetch, now: datetime, *, error: ErrorCode | None = None) -> None:
        """The fetch is done for this step (stored, or given up): the next step is due."""
        if fetch.delivery_id is None:
            fetch.stage, fetch.next_fetch_at = fetch.stage + 1, now + self.account_every
        else:
            fetch.stage, fetch.next_fetch_at = schedule.next_step(fetch.since, self.steps, now)
        fetch.leased_until, fetch.failures = None, 0
        if error is None:
            fetch.last_fetched_at = now
        else:
            fetch.last_error, fetch.last_error_at = error.value, now

    async def _held(self, session: AsyncSession, taken: _Fetch) -> MetricFetch | None:
        """The fetch, locked, if this worker still holds it."""
        fetch = await repository.held_fetch(session, taken.account_id, taken.delivery_id)
        if fetch is None or fetch.leased_until != taken.lease:
            log.info("metric fetch taken over", extra={"account": str(taken.account_id)})
            return None
        return fetch

    async def _store(self, taken: _Fetch, figures: Mapping[str, float] | _Days) -> bool:
        now = self.clock.now()
        async with self.db.workspace_transaction(taken.workspace_id) as session:
            fetch = await self._held(session, taken)
            if fetch is None:
                return False
            self._next(fetch, now)
            fetch.last_error, fetch.last_error_at = None, None
            await repository.open_rollup(session, now)
            if isinstance(figures, _Days):
                first = await repository.observe_days(
                    session, taken.account_id, figures.figures, now
                )
                if first is not None:
                    await repository.touch_days(session, first, now, now + TOUCHED_SOON)
                return True
            await repository.observe(
                session, taken.workspace_id, taken.account_id, taken.delivery_id, figures, now
            )
            await repository.touch_day(session, now, now, now + TOUCHED_SOON)
            return True

    async def _failed(self, taken: _Fetch, error: PlatformError) -> None:
        now = self.clock.now()
        log.warning("metric fetch failed", extra={"code": error.code.value})
        async with self.db.workspace_transaction(taken.workspace_id) as session:
            fetch = await self._held(session, taken)
            if fetch is None:
                return
            gone = error.code == ErrorCode.INVALID_REQUEST and taken.delivery_id is not None
            if error.retryable and fetch.failures + 1 < MAX_FAILURES:
                fetch.failures += 1
                wait = max(
                    RETRY_AFTER * 2 ** (fetch.failures - 1),
                    timedelta(seconds=error.retry_after or 0),
                )
                fetch.leased_until, fetch.next_fetch_at = None, now + wait
                fetch.last_error, fetch.last_error_at = error.code.value, now
            elif gone:  # the post is no longer on the network: nothing more to fetch
                fetch.leased_until, fetch.next_fetch_at = None, None
                fetch.last_error, fetch.last_error_at = error.code.value, now
            else:
                self._next(fetch, now, error=error.code)
            if error.code == ErrorCode.RATE_LIMITED and error.retry_after:
                until = now + timedelta(seconds=error.retry_after)
                await repository.hold_back_account(session, taken.account_id, until, now)
