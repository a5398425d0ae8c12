"""Nightly rollups: each workspace's observations aggregated into `analytics_snapshots`,
one row per account, metric and day, days being days in the workspace timezone.

Workers run a workspace's rollup after its local midnight (`AFTER_MIDNIGHT`), with no
external cron: it aggregates every day since the last one done up to yesterday, and again
any earlier day that observations arrived for since (`touch_day`). Between midnights it
aggregates today so far every `today_every` (an hour by default), so that today's figures
show before the day is over; yesterday is done once more after midnight, complete. A
workspace's first observation makes its rollup due at once. The aggregation itself
(`repository.rebuild_days`) is one set-based statement per stretch of days, idempotent, so
`crier analytics rebuild` may run it again for any range, as after the workspace changes
its timezone.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from crier.analytics import repository
from crier.analytics.repository import Rebuilt
from crier.kit.db import Database
from crier.kit.time import Clock
from crier.workspace import repository as workspace_repository

log = logging.getLogger(__name__)

AFTER_MIDNIGHT = timedelta(minutes=15)
"""How long after a workspace's local midnight its rollup runs (the day's last
observations are stored by then)."""
TOUCHED_SOON = timedelta(minutes=10)
"""How soon a rollup runs once an observation arrived for a day already aggregated."""
ROLLUP_LEASE = timedelta(minutes=10)
"""How long a worker has a rollup to itself: far longer than one takes."""
STRETCH = 31
"""Days aggregated in one transaction, at most."""


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def next_run(now: datetime, timezone: str) -> datetime:
    """`AFTER_MIDNIGHT` past the workspace's next local midnight."""
    zone = ZoneInfo(timezone)
    tomorrow = local_today(now, timezone) + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time(), zone) + AFTER_MIDNIGHT


async def rebuild(
    db: Database, workspace_id: UUID, first: date, last: date, now: datetime
) -> Rebuilt:
    """Aggregate the workspace's days `first` to `last` again, a stretch of days per
    transaction; what was made, written and removed in all."""
    made = written = removed = 0
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=STRETCH - 1))
        done = await repository.rebuild_days(db, workspace_id, start, end, now)
        made, written, removed = made + done.made, written + done.written, removed + done.removed
        start = end + timedelta(days=1)
    return Rebuilt(made, written, removed)


class Rollups:
    """Runs the rollups that are due, across workspaces."""

    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        clock: Clock,
        *,
        today_every: timedelta | None = timedelta(hours=1),
        batch: int = 20,
    ) -> None:
        self.db, self.scheduler_db, self.clock = app_db, scheduler_db, clock
        self.today_every = today_every
        """How often today so far is aggregated too (None: only complete days, after
        midnight)."""
        self.batch = batch

    async def sweep(self) -> int:
        """Run the rollups due now (at most `batch`, one at a time: each is one heavy
        statement); returns how many were due."""
        due = await repository.due_rollups(self.scheduler_db, self.clock.now(), self.batch)
        for workspace_id in due:
            await self.run(workspace_id)
        return len(due)

    async def run(self, workspace_id: UUID) -> bool:
        """The workspace's rollup, if it is due and no other worker holds it: whether it
        ran."""
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            rollup = await repository.take_rollup(session, now, ROLLUP_LEASE)
            workspace = await workspace_repository.get(session, workspace_id)
            if rollup is None or workspace is None:
                return False
            timezone, lease = workspace.timezone, rollup.leased_until
            seen_dirty, done = rollup.dirty_from, rollup.rebuilt_through
            first_day = None
            if done is None:
                first_day = await repository.first_observed_day(session, timezone)
        yesterday = local_today(now, timezone) - timedelta(days=1)
        if done is not None:
            first = done + timedelta(days=1)
        elif first_day is not None:
            first = first_day
        else:
            first = yesterday
        if seen_dirty is not None:
            first = min(first, seen_dirty)
        last = yesterday if self.today_every is None else yesterday + timedelta(days=1)
        if first <= last:
            result = await rebuild(self.db, workspace_id, first, last, now)
            log.info(
                "analytics rollup",
                extra={"workspace": str(workspace_id), "days": (last - first).days + 1}
                | result._asdict(),
            )
        async with self.db.workspace_transaction(workspace_id) as session:
            rollup = await repository.held_rollup(session)
            if rollup is None or rollup.leased_until != lease:
                return False
            rollup.leased_until, rollup.last_run_at = None, now
            rollup.rebuilt_through = max(done or yesterday, yesterday)
            if rollup.dirty_from == seen_dirty:
                rollup.dirty_from = None
                rollup.next_run_at = next_run(now, timezone)
                if self.today_every is not None:
                    rollup.next_run_at = min(rollup.next_run_at, now + self.today_every)
            else:  # observations arrived for an aggregated day meanwhile: again soon
                rollup.next_run_at = now + TOUCHED_SOON
            return True
