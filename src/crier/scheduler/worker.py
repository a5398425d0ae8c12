"""The scheduler worker: claims due posts, holds them on a timer, fires them on time.

`tick()` is one round of work at the clock's current time. `run()` claims in a task of its
own every `poll` (the safety net), at once when a schedule changes (NOTIFY) and again
straight away while claims come back full; beside it, it fires, waking exactly when the next
held post is due (so lateness depends neither on the poll nor on a claim's round trips) and
gathering what falls due within `gather` into one send, and hands what it fired to a
`Settler`, which settles a workspace's posts together, off the firing path. Any number of
workers may run against one database: claims use SKIP LOCKED and leases, renewed well before
they expire. Each worker also beats every `heartbeat`: one silent for `silence` is taken for
dead, and the posts it held that are not being sent pass to the others at once (a post being
sent waits for its lease, as the dead worker's call may still reach the network). A worker
that stops hands its posts over the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.exc import DBAPIError

from crier.analytics import schedule as metric_schedule
from crier.analytics.exports import KEEP as EXPORT_KEEP
from crier.analytics.exports import Exporter
from crier.analytics.rollups import Rollups
from crier.analytics.tasks import MetricCollector
from crier.kit.db import Database
from crier.kit.db.notify import first_of, listen
from crier.kit.idempotency import purge_expired as purge_idempotency_keys
from crier.kit.storage import Storage
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.platforms.registry import Platforms
from crier.review.sending import ReplySender
from crier.review.tasks import ReviewSyncer
from crier.scheduler.metrics import LEASES_HELD, QUEUE_DEPTH
from crier.scheduler.repository import (
    accounts_to_refresh,
    beat,
    claim_due,
    queue_depth,
    release,
    renew_leases,
    take_from_the_dead,
)
from crier.scheduler.service import REFRESH_MARGIN, Held, Sender
from crier.scheduler.settling import Settler
from crier.webhook import repository as webhook_repository

log = logging.getLogger(__name__)
T = TypeVar("T")
# Housekeeping that need not run every round: expired idempotency keys, old webhook events.
PURGE_EVERY = timedelta(minutes=1)
FIRE_BATCH = 250
"""Posts of one workspace sent together (their bookkeeping shares transactions)."""
REFRESH_BATCH = 100
"""Accounts refreshed in one sweep, at most (the rest wait for the next)."""
REFRESHES_AT_ONCE = 4
"""Accounts of a sweep refreshed at once."""
NEVER = datetime.min.replace(tzinfo=UTC)
REFIRE_AFTER = timedelta(seconds=1)
"""How long posts whose firing failed (the database was lost) wait before the next try."""


@dataclass
class _Sweep:
    """Work across workspaces that runs every `every` beside the loop, in a task of its own
    (platform calls must not hold up claims and sends), never twice at once."""

    name: str
    every: timedelta | None
    work: Callable[[], Coroutine[Any, Any, object]]
    next_at: datetime = NEVER
    task: asyncio.Task[None] | None = None

    def start(self, now: datetime) -> None:
        if self.every is None or now < self.next_at:
            return
        if self.task is not None and not self.task.done():
            return
        self.next_at = now + self.every
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self.work()
        except (DBAPIError, OSError) as error:  # the next sweep tries again
            log.warning(f"{self.name} failed", extra={"error": type(error).__name__})


class Worker:
    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        platforms: Platforms,
        vault: Vault,
        clock: Clock,
        storage: Storage,
        *,
        worker_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        heartbeat: timedelta = timedelta(seconds=1),
        silence: timedelta = timedelta(seconds=3),
        batch: int = 200,
        poll: timedelta = timedelta(seconds=1),
        gather: timedelta = timedelta(milliseconds=20),
        concurrency: int = 64,
        webhook_retention: timedelta = timedelta(days=30),
        refresh_every: timedelta | None = timedelta(minutes=1),
        review_poll: timedelta | None = timedelta(seconds=5),
        review_sync_every: timedelta = timedelta(minutes=15),
        review_full_scan_every: timedelta = timedelta(hours=24),
        metrics_poll: timedelta | None = timedelta(seconds=30),
        metrics_schedule: Sequence[timedelta] = metric_schedule.DEFAULT,
        analytics_today_every: timedelta | None = timedelta(hours=1),
        export_poll: timedelta | None = timedelta(seconds=2),
        export_keep: timedelta = EXPORT_KEEP,
    ) -> None:
        self.app_db, self.scheduler_db = app_db, scheduler_db
        self.platforms, self.vault, self.clock = platforms, vault, clock
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.sender = Sender(
            app_db, platforms, vault, clock, self.id, first_metrics_fetch=metrics_schedule[0]
        )
        self.settler = Settler(self.sender)
        self.lease, self.batch, self.poll, self.gather = lease, batch, poll, gather
        self.heartbeat, self.silence = heartbeat, silence
        self.webhook_retention = webhook_retention
        self.reviews = ReviewSyncer(
            app_db,
            scheduler_db,
            platforms,
            vault,
            clock,
            every=review_sync_every,
            full_scan_every=review_full_scan_every,
            refresh=self.sender.refresh_account,
        )
        self.replies = ReplySender(
            app_db, scheduler_db, platforms, vault, clock, refresh=self.sender.refresh_account
        )
        self.metrics = MetricCollector(
            app_db,
            scheduler_db,
            platforms,
            vault,
            clock,
            steps=metrics_schedule,
            refresh=self.sender.refresh_account,
        )
        self.rollups = Rollups(app_db, scheduler_db, clock, today_every=analytics_today_every)
        self.exports = Exporter(app_db, scheduler_db, storage, clock, self.id, keep=export_keep)
        self._sweeps = [
            # How often the accounts whose tokens are about to expire are refreshed, whether
            # or not a post is due for them (None: only when one is).
            _Sweep("token refresh sweep", refresh_every, self._refresh_expiring),
            # How often the locations due for a review sync are looked for (None: never).
            _Sweep("review sync sweep", review_poll, self.reviews.sweep),
            # And the replies to reviews due to be sent (None: never).
            _Sweep("review reply sweep", review_poll, self.replies.sweep),
            # And the posts' and accounts' figures due to be fetched, and the workspaces
            # whose days are due to be aggregated (None: never).
            _Sweep("metric fetch sweep", metrics_poll, self.metrics.sweep),
            _Sweep("analytics rollup sweep", metrics_poll, self.rollups.sweep),
            # And the analytics exports waiting to be written (None: never).
            _Sweep("analytics export sweep", export_poll, self.exports.sweep),
        ]
        self.held: dict[tuple[UUID, UUID], Held] = {}
        self._timers: list[tuple[datetime, UUID, UUID]] = []
        """`held` by due time (a heap); entries no longer matching `held` are skipped."""
        self._slots = asyncio.Semaphore(concurrency)
        """Groups of posts (a workspace's, due together) being sent at once."""
        self._preparing = asyncio.Semaphore(4)
        """Workspaces' claimed posts prepared at once (database work)."""
        self.firing: set[tuple[UUID, UUID]] = set()
        self.wake = asyncio.Event()
        """Set when a post finishes firing (it may be due again, or free a slot)."""
        self.changed = asyncio.Event()
        """Set by NOTIFY when a post is scheduled, rescheduled or cancelled: claim now."""
        self._next_purge = datetime.min.replace(tzinfo=UTC)
        self._next_renew = datetime.min.replace(tzinfo=UTC)
        self._next_burial = datetime.min.replace(tzinfo=UTC)
        self.listening = asyncio.Event()
        """Set once the worker hears schedule changes (LISTEN is in place)."""

    async def tick(self) -> None:
        """One round of work at the clock's current time, waiting for every post it fires
        to be sent and settled (what tests step through)."""
        await beat(self.scheduler_db, self.id, self.clock.now())
        await self._claim()
        await asyncio.gather(*self._fire_due())
        await self._sweeps_done()

    async def _claim(self) -> bool:
        """Renew leases when due, claim and prepare what is due soon, purge and measure;
        returns whether the claim came back full (more may be waiting)."""
        now = self.clock.now()
        if self.held and now >= self._next_renew:
            await renew_leases(self.scheduler_db, self.id, now, self.lease)
            self._next_renew = now + self.lease / 3
        if now >= self._next_burial:
            freed = await take_from_the_dead(self.scheduler_db, now, self.silence)
            if freed:
                log.warning(
                    "took over the posts of a silent worker",
                    extra={"worker": self.id, "posts": freed},
                )
            self._next_burial = now + self.heartbeat
        claimed = await claim_due(self.scheduler_db, self.id, now, self.lease, self.batch)
        by_workspace: dict[UUID, list[UUID]] = {}
        for c in claimed:
            by_workspace.setdefault(c.workspace_id, []).append(c.post_id)
            self.held.pop((c.workspace_id, c.post_id), None)
        prepared = await self._bounded(
            self.sender.prepare(workspace, posts) for workspace, posts in by_workspace.items()
        )
        for held in prepared:
            for h in held:
                self._hold(h)
        if self.clock.now() >= self._next_purge:
            await purge_idempotency_keys(self.scheduler_db, self.clock.now())
            await webhook_repository.purge_events(
                self.scheduler_db, self.clock.now() - self.webhook_retention
            )
            self._next_purge = self.clock.now() + PURGE_EVERY
        for sweep in self._sweeps:
            sweep.start(self.clock.now())
        LEASES_HELD.set(len(self.held))
        QUEUE_DEPTH.set(await queue_depth(self.scheduler_db, self.clock.now()))
        return len(claimed) >= self.batch

    async def _sweeps_done(self) -> None:
        """Wait for the sweeps under way."""
        await asyncio.gather(*(s.task for s in self._sweeps if s.task is not None))

    async def _refresh_expiring(self) -> None:
        """Refresh the tokens about to expire: a refresh token is kept alive, and access
        that was withdrawn is found (and announced, with the posts due in the next week)
        before a post comes due."""
        slots = asyncio.Semaphore(REFRESHES_AT_ONCE)

        async def refresh(workspace_id: UUID, account_id: UUID) -> None:
            async with slots:
                await self.sender.refresh_account(workspace_id, account_id)

        now = self.clock.now()
        due = await accounts_to_refresh(self.scheduler_db, now, now + REFRESH_MARGIN, REFRESH_BATCH)
        await asyncio.gather(*(refresh(ws, account) for ws, account in due))

    def _hold(self, held: Held) -> None:
        self.held[(held.workspace_id, held.post_id)] = held
        heapq.heappush(self._timers, (held.due_at, held.workspace_id, held.post_id))
        self.wake.set()  # the firing loop may have to wake sooner

    def _fire_due(self) -> list[asyncio.Task[None]]:
        """Start firing every held post that has reached its time, a workspace's together;
        returns the firing tasks, which run on by themselves."""
        now = self.clock.now()
        due: dict[UUID, list[Held]] = {}
        while self._timers and self._timers[0][0] <= now:
            held = self._waiting(heapq.heappop(self._timers))
            if held is None:
                continue
            self.firing.add((held.workspace_id, held.post_id))
            due.setdefault(held.workspace_id, []).append(held)
        return [
            asyncio.create_task(self._fire(workspace, posts[start : start + FIRE_BATCH]))
            for workspace, posts in due.items()
            for start in range(0, len(posts), FIRE_BATCH)
        ]

    async def _fire(self, workspace_id: UUID, held: list[Held]) -> None:
        """Send a workspace's posts that have reached their time, together, on their own
        (the loop goes on meanwhile), then settle them."""
        keys = [(workspace_id, h.post_id) for h in held]
        after: dict[UUID, Held | None] = {h.post_id: None for h in held}
        try:
            async with self._slots:
                fired = await self.sender.fire(workspace_id, held)
            # The slot is free again: settling waits on no platform, and is coalesced.
            if fired.post_ids:
                after.update(await self.settler.settle(fired))
        except (DBAPIError, OSError) as error:  # kept: fired again shortly
            log.warning(
                "firing posts failed; retrying",
                extra={"worker": self.id, "error": type(error).__name__},
            )
            again = self.clock.now() + REFIRE_AFTER
            after = {h.post_id: Held(workspace_id, h.post_id, again) for h in held}
        finally:
            self.firing.difference_update(keys)
            self.wake.set()
        for post_id, next_due in after.items():
            if next_due is None:
                self.held.pop((workspace_id, post_id), None)
            else:
                self._hold(next_due)

    async def _bounded(self, work: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
        """Run `work` concurrently, at most `concurrency` at a time (the pool's measure)."""

        async def one(job: Coroutine[Any, Any, T]) -> T:
            async with self._preparing:
                return await job

        return list(await asyncio.gather(*(one(job) for job in work)))

    def next_due(self) -> datetime | None:
        """When the next held post (not being sent already) is due."""
        while self._timers:
            if self._waiting(self._timers[0]) is not None:
                return self._timers[0][0]
            heapq.heappop(self._timers)
        return None

    def _waiting(self, timer: tuple[datetime, UUID, UUID]) -> Held | None:
        """The held post a `_timers` entry stands for, unless the entry is stale (the post
        was released, is due at another time now, or is being sent)."""
        due_at, workspace_id, post_id = timer
        key = (workspace_id, post_id)
        held = self.held.get(key)
        if held is None or held.due_at != due_at or key in self.firing:
            return None
        return held

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then let the posts being sent finish. A lost database
        is waited out, not fatal."""
        log.info("worker started", extra={"worker": self.id})
        # Scheduled, rescheduled or cancelled posts NOTIFY `crier_schedule` (a trigger).
        listener = asyncio.create_task(
            listen(self.app_db, "crier_schedule", self.changed, stop, self.listening)
        )
        beating = asyncio.create_task(self._beat(stop))
        sending: set[asyncio.Task[None]] = set()
        try:
            await self._loop(stop, sending)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await asyncio.gather(*sending, return_exceptions=True)
            await asyncio.gather(
                *(s.task for s in self._sweeps if s.task is not None), return_exceptions=True
            )
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(DBAPIError, OSError):
                await release(self.scheduler_db, self.id, self.clock.now())
        log.info("worker stopped", extra={"worker": self.id})

    async def _beat(self, stop: asyncio.Event) -> None:
        """Say every `heartbeat` that this worker is alive, on its own: a slow claim or send
        does not silence it. A lost database is waited out."""
        while not stop.is_set():
            try:
                await beat(self.scheduler_db, self.id, self.clock.now())
            except (DBAPIError, OSError) as error:
                log.warning(
                    "heartbeat failed; retrying",
                    extra={"worker": self.id, "error": type(error).__name__},
                )
            await first_of(stop, within=self.heartbeat)

    async def _loop(self, stop: asyncio.Event, sending: set[asyncio.Task[None]]) -> None:
        """Claim in a task of its own, and fire here: a claim's round trips never hold up
        a post that falls due meanwhile."""
        claiming = asyncio.create_task(self._claims(stop))
        try:
            await self._firing(stop, sending)
        finally:
            claiming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claiming

    async def _claims(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self.changed.clear()
            try:
                more = await self._claim()
                failures = 0
                wait = timedelta(0) if more else self.poll
            except (DBAPIError, OSError) as error:
                failures += 1
                log.warning(
                    "worker round failed; retrying",
                    extra={"worker": self.id, "error": type(error).__name__},
                )
                wait = min(timedelta(seconds=2**failures), timedelta(seconds=30))
            if wait > timedelta(0):
                await first_of(stop, self.changed, within=wait)

    async def _firing(self, stop: asyncio.Event, sending: set[asyncio.Task[None]]) -> None:
        fired_at = NEVER
        while not stop.is_set():
            self.wake.clear()
            tasks = self._fire_due()
            for task in tasks:
                sending.add(task)
                task.add_done_callback(sending.discard)
            if tasks:
                fired_at = self.clock.now()
            now = self.clock.now()
            wait = self.poll
            due = self.next_due()
            if due is not None:
                # Due posts wait for the gathering window after the last send, no longer.
                wait = min(wait, max(due - now, fired_at + self.gather - now))
            if wait > timedelta(0):
                await first_of(stop, self.wake, within=wait)
