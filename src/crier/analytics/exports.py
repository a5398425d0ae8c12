"""Exports of a saved view's figures or a query's: CSV, XLSX and PDF.

A CSV may be streamed straight to the client (`GET .../data.csv`), read through a
server-side cursor a partition at a time, so that memory stays flat whatever its size.
Any format may also be asked of the workers (`POST /v1/analytics/exports`): the export is
a row committed with its range resolved to days, which a worker takes under a lease,
writes to a file (its progress and lease renewed as it goes), puts in storage and marks
`ready` in the transaction that emits `analytics.export.ready`. A worker that dies
mid-way loses the lease and another starts the file again; failures are retried
`EXPORT_ATTEMPTS` times in all, then the export fails (`analytics.export.failed`). Files
are kept `keep` (7 days by default), then deleted and the export marked `expired`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import export_files, metrics_of, query, repository, views
from crier.analytics.export_files import Account, Heading
from crier.analytics.schemas import (
    LEVELS,
    AnalyticsData,
    AnalyticsExportCreate,
    Comparison,
    DayRange,
    ExportFormat,
    ExportStatus,
    Granularity,
    Metric,
    Period,
    RelativeRange,
)
from crier.analytics.schemas import (
    AnalyticsExport as ExportOut,
)
from crier.auth.principal import Acting
from crier.kit.db import Database, after_commit
from crier.kit.errors import Conflict, CrierError, NotFound
from crier.kit.ids import new_id
from crier.kit.storage import Storage
from crier.kit.time import Clock
from crier.models import AnalyticsExport
from crier.webhook import events
from crier.webhook.events import EventType
from crier.workspace import repository as workspace_repository

log = logging.getLogger(__name__)

EXPORT_LEASE = timedelta(minutes=5)
"""How long a worker holds an export without renewing: renewed at every hundredth of it."""
EXPORT_ATTEMPTS = 3
"""Starts of one export before a failure is final."""
RETRY_AFTER = timedelta(minutes=1)
"""How long a failed export waits before a worker starts it again."""
KEEP = timedelta(days=7)
"""How long a ready export's file is kept, by default."""
TOP_POSTS = 10
"""Posts in a PDF report's table."""


class ExportNotReady(Conflict):
    """The export's file is not there to download: it is still queued or running, or it
    failed (`status` says which; see `error`). Poll `GET /v1/analytics/exports/{id}` or wait
    for the `analytics.export.ready` event."""

    slug = "analytics-export-not-ready"
    title = "Analytics export not ready"


class ExportExpired(CrierError):
    """The export's file was kept for its time and deleted. Ask for the export again."""

    slug = "analytics-export-expired"
    title = "Analytics export expired"
    status = 410


@dataclass(frozen=True)
class Spec:
    """What an export holds: whose figures, which, over which days, in which steps,
    beside which comparison."""

    title: str
    timezone: str
    scope: query.Scope
    metrics: tuple[Metric, ...]
    first: date
    last: date
    granularity: Granularity
    comparison: Comparison | None

    @property
    def compared(self) -> tuple[date, date] | None:
        if self.comparison is None:
            return None
        return query.compared(self.first, self.last, self.comparison)

    def pairs(self) -> list[tuple[date, date]]:
        """Each shown period's first day beside its compared period's, as the view's data
        places them."""
        other = self.compared
        if other is None:
            return []
        shown = query.periods(self.first, self.last, self.granularity)
        before = query.periods(other[0], other[1], self.granularity)
        return list(zip(shown, before, strict=False))

    def heading(self, made_at: datetime) -> Heading:
        return Heading(
            title=self.title,
            timezone=self.timezone,
            first=self.first,
            last=self.last,
            granularity=self.granularity.value,
            comparison=self.comparison.value if self.comparison else None,
            compared=self.compared,
            made_at=made_at,
        )


def spec_of(export: AnalyticsExport, timezone: str) -> Spec:
    return Spec(
        title=export.title,
        timezone=timezone,
        scope=query.Scope(export.social_account_ids, export.platforms),
        metrics=tuple(Metric(m) for m in export.metrics),
        first=export.first_day,
        last=export.last_day,
        granularity=Granularity(export.granularity),
        comparison=Comparison(export.comparison) if export.comparison else None,
    )


async def view_spec(session: AsyncSession, view_id: UUID, timezone: str, today: date) -> Spec:
    """A saved view's export, its range resolved to days as of `today`."""
    view = await views.get(session, view_id)
    shown = views.shown(view)
    first, last = query.resolve(shown.range, today)
    return Spec(
        title=view.name,
        timezone=timezone,
        scope=views.scope_of(view),
        metrics=tuple(dict.fromkeys(shown.metrics)),
        first=first,
        last=last,
        granularity=shown.granularity,
        comparison=shown.comparison,
    )


def query_spec(
    *,
    title: str,
    timezone: str,
    today: date,
    scope: query.Scope,
    metrics: Sequence[Metric],
    range_: RelativeRange | DayRange,
    granularity: Granularity,
    comparison: Comparison | None,
) -> Spec:
    """An ad-hoc query's export, its range resolved to days as of `today`."""
    first, last = query.resolve(range_, today)
    return Spec(
        title=title,
        timezone=timezone,
        scope=scope,
        metrics=tuple(dict.fromkeys(metrics)),
        first=first,
        last=last,
        granularity=granularity,
        comparison=comparison,
    )


async def accounts_of(
    session: AsyncSession, spec: Spec
) -> tuple[list[UUID] | None, dict[UUID, Account]]:
    """The accounts an export reads (None: every account, unfiltered) and how each is
    named; an account id not of this workspace answers 404."""
    ids = await query.accounts(session, spec.scope)
    every = spec.scope.social_account_ids is None and spec.scope.platforms is None
    rows = await repository.export_accounts(session, None if every else ids)
    return (None if every else ids), {
        r.id: Account(r.platform, r.handle, r.display_name) for r in rows
    }


@dataclass
class Rows:
    """An export's rows as they are read, and how far through its accounts they are."""

    accounts: dict[UUID, Account]
    before: dict[date, date] | None
    """Each shown period's compared period (None: no comparison)."""
    order: list[UUID]
    written: int = 0

    def progress(self, last: repository.ExportRow | None) -> float:
        """The share of the accounts whose rows are all read (rows come by account)."""
        if last is None or not self.order:
            return 0.0
        return bisect.bisect_left(self.order, last.social_account_id) / len(self.order)


async def read_rows(
    session: AsyncSession, spec: Spec
) -> tuple[Rows, AsyncIterator[list[repository.ExportRow]]]:
    """The export's rows, a partition at a time, in an open transaction."""
    among, accounts = await accounts_of(session, spec)
    pairs = spec.pairs()
    state = Rows(
        accounts=accounts,
        before=dict(pairs) if spec.comparison is not None else None,
        order=sorted(among if among is not None else accounts),
    )
    parts = repository.export_rows(
        session,
        among,
        [m.value for m in spec.metrics],
        [m.value for m in spec.metrics if m in LEVELS],
        (spec.first, spec.last),
        spec.compared,
        pairs,
        spec.granularity.value,
    )
    return state, parts


async def stream_csv(db: Database, workspace_id: UUID, spec: Spec) -> AsyncIterator[bytes]:
    """The CSV of `spec`, a partition at a time, from a transaction of its own (the
    request's has ended by the time the body is sent)."""
    async with db.workspace_transaction(workspace_id) as session:
        rows, parts = await read_rows(session, spec)
        yield export_files.csv_text([], rows.accounts, rows.before, with_header=True).encode()
        async for part in parts:
            yield export_files.csv_text(part, rows.accounts, rows.before).encode()


async def summary(session: AsyncSession, spec: Spec, today: date) -> AnalyticsData:
    """What a view's data would show for `spec`: series, totals and deltas."""
    return await query.data(
        session,
        spec.timezone,
        today,
        scope=spec.scope,
        metrics=spec.metrics,
        range_=DayRange.model_validate({"from": spec.first, "to": spec.last}),
        granularity=spec.granularity,
        comparison=spec.comparison,
    )


def file_name(spec: Spec, format_: str) -> str:
    """`<title>-<first>-<last>.<format>`, the title cut to letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.title.lower()).strip("-")[:60].strip("-")
    return f"{slug or 'analytics'}-{spec.first.isoformat()}-{spec.last.isoformat()}.{format_}"


def download_url(export_id: UUID) -> str:
    return f"/v1/analytics/exports/{export_id}/file"


def shown(export: AnalyticsExport) -> ExportOut:
    compared = (
        query.compared(export.first_day, export.last_day, Comparison(export.comparison))
        if export.comparison
        else None
    )
    return ExportOut(
        id=export.id,
        format=ExportFormat(export.format),
        status=ExportStatus(export.status),
        progress=export.progress,
        rows_written=export.rows_written,
        title=export.title,
        view_id=export.view_id,
        social_account_ids=export.social_account_ids,
        platforms=export.platforms,
        metrics=[Metric(m) for m in export.metrics],
        range=Period(first=export.first_day, last=export.last_day),
        granularity=Granularity(export.granularity),
        comparison=Comparison(export.comparison) if export.comparison else None,
        comparison_range=Period(first=compared[0], last=compared[1]) if compared else None,
        attempts=export.attempts,
        error=export.error,
        file_name=export.file_name if export.status == "ready" else None,
        size_bytes=export.size_bytes if export.status == "ready" else None,
        download_url=download_url(export.id) if export.status == "ready" else None,
        created_at=export.created_at,
        started_at=export.started_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
    )


async def create(acting: Acting, data: AnalyticsExportCreate, today: date) -> AnalyticsExport:
    """Ask the workers for an export; its accounts are checked and its range resolved
    now."""
    session, principal = acting.session, acting.principal
    timezone = principal.workspace_timezone
    if data.view_id is not None:
        spec = await view_spec(session, data.view_id, timezone, today)
    else:
        assert data.query is not None
        q = data.query
        spec = query_spec(
            title="Analytics",
            timezone=timezone,
            today=today,
            scope=query.Scope(
                q.social_account_ids, [p.value for p in q.platforms] if q.platforms else None
            ),
            metrics=q.metrics,
            range_=q.range,
            granularity=q.granularity,
            comparison=q.comparison,
        )
    await query.accounts(session, spec.scope)
    now = acting.clock.now()
    export = AnalyticsExport(
        workspace_id=principal.workspace_id,
        id=new_id(),
        requested_by=principal.member_id,
        format=data.format.value,
        status="queued",
        view_id=data.view_id,
        title=data.title or spec.title,
        social_account_ids=list(spec.scope.social_account_ids)
        if spec.scope.social_account_ids is not None
        else None,
        platforms=list(spec.scope.platforms) if spec.scope.platforms is not None else None,
        metrics=[m.value for m in spec.metrics],
        first_day=spec.first,
        last_day=spec.last,
        granularity=spec.granularity.value,
        comparison=spec.comparison.value if spec.comparison else None,
        progress=0.0,
        rows_written=0,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(export)
    await session.flush()
    return export


async def get(session: AsyncSession, export_id: UUID) -> AnalyticsExport:
    export = await repository.export(session, export_id)
    if export is None:
        raise NotFound("No analytics export with this id in this workspace.")
    return export


def ready_file(export: AnalyticsExport) -> str:
    """Where the export's file is in storage; refused while it has none."""
    if export.status == "expired":
        raise ExportExpired(
            f"The export's file was deleted at {export.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask for it again."
        )
    if export.status != "ready" or export.file_path is None:
        detail = (
            f"The export failed: {export.error}"
            if export.status == "failed"
            else f"The export is {export.status} ({export.progress:.0%} done)."
        )
        raise ExportNotReady(detail, export_status=export.status)
    return export.file_path


async def delete(session: AsyncSession, storage: Storage, export_id: UUID) -> None:
    """Delete an export and, once that is committed, its file; a worker writing it stops."""
    export = await repository.export(session, export_id, lock=True)
    if export is None:
        raise NotFound("No analytics export with this id in this workspace.")
    if export.file_path is not None:
        after_commit(session, partial(storage.delete, export.file_path))
    await session.delete(export)
    await session.flush()


class _Lost(Exception):
    """The export is no longer this worker's (deleted, or taken over)."""


class Exporter:
    """The workers' side: takes the exports waiting, writes their files, deletes the
    files kept long enough."""

    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        storage: Storage,
        clock: Clock,
        worker_id: str,
        *,
        keep: timedelta = KEEP,
        batch: int = 4,
    ) -> None:
        self.db, self.scheduler_db, self.storage = app_db, scheduler_db, storage
        self.clock, self.worker_id, self.keep, self.batch = clock, worker_id, keep, batch

    async def sweep(self) -> int:
        """Delete the files due to go, then write the exports waiting (one at a time, the
        oldest first; at most `batch`); returns how many were written."""
        await self.expire()
        waiting = await repository.waiting_exports(self.scheduler_db, self.clock.now(), self.batch)
        done = 0
        for w in waiting:
            done += await self.run(w.workspace_id, w.id)
        return done

    async def expire(self) -> int:
        """Delete the files of ready exports kept for `keep`; how many."""
        now = self.clock.now()
        expired = await repository.expired_exports(self.scheduler_db, now, 100)
        for e in expired:
            async with self.db.workspace_transaction(e.workspace_id) as session:
                export = await repository.export(session, e.id, lock=True)
                if export is None or export.status != "ready":
                    continue
                if export.file_path is not None:
                    after_commit(session, partial(self.storage.delete, export.file_path))
                export.status, export.file_path, export.updated_at = "expired", None, now
        return len(expired)

    async def run(self, workspace_id: UUID, export_id: UUID) -> bool:
        """Write the export, if it waits for a worker and none holds it: whether it became
        ready."""
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            export = await repository.take_export(
                session, export_id, self.worker_id, now, now + EXPORT_LEASE
            )
            if export is None:
                return False
            workspace = await workspace_repository.get(session, workspace_id)
            assert workspace is not None  # its export is still there
            spec = spec_of(export, workspace.timezone)
            format_, attempts = export.format, export.attempts
        try:
            with tempfile.TemporaryDirectory(prefix="crier-export-") as folder:
                name = file_name(spec, format_)
                local = Path(folder) / name
                written = await WRITERS[format_](self, workspace_id, export_id, spec, local)
                size = local.stat().st_size
                path = f"exports/{workspace_id}/{export_id}/{name}"
                await asyncio.to_thread(_store, self.storage, path, local)
        except _Lost:
            return False
        except Exception as error:  # anything that stops the file: retried, then final
            log.warning(
                "analytics export failed",
                extra={"export": str(export_id), "error": type(error).__name__},
            )
            await self._failed(workspace_id, export_id, attempts, error)
            return False
        return await self._ready(workspace_id, export_id, path, name, size, written)

    async def _ready(
        self, workspace_id: UUID, export_id: UUID, path: str, name: str, size: int, rows: int
    ) -> bool:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            export = await repository.held_export(session, export_id, self.worker_id)
            if export is None:  # deleted or taken over meanwhile: its file is not wanted
                after_commit(session, partial(self.storage.delete, path))
                return False
            export.status, export.progress, export.rows_written = "ready", 1.0, rows
            export.file_path, export.file_name, export.size_bytes = path, name, size
            export.error, export.leased_until, export.leased_by = None, None, None
            export.finished_at, export.expires_at, export.updated_at = now, now + self.keep, now
            await session.flush()
            await session.refresh(export)  # the event shows it as it is read back
            await events.emit(session, now, EventType.ANALYTICS_EXPORT_READY, shown(export))
            await events.notify(session)
        return True

    async def _failed(
        self, workspace_id: UUID, export_id: UUID, attempts: int, error: Exception
    ) -> None:
        now = self.clock.now()
        message = _describe(error)
        async with self.db.workspace_transaction(workspace_id) as session:
            export = await repository.held_export(session, export_id, self.worker_id)
            if export is None:
                return
            export.error, export.leased_by, export.updated_at = message, None, now
            if attempts < EXPORT_ATTEMPTS:
                export.status, export.leased_until = "queued", now + RETRY_AFTER * attempts
                return
            export.status, export.leased_until, export.finished_at = "failed", None, now
            await session.flush()
            await session.refresh(export)
            await events.emit(session, now, EventType.ANALYTICS_EXPORT_FAILED, shown(export))
            await events.notify(session)

    async def _progress(
        self, workspace_id: UUID, export_id: UUID, progress: float, rows: int
    ) -> None:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            mine = await repository.export_progress(
                session, export_id, self.worker_id, progress, rows, now, now + EXPORT_LEASE
            )
        if not mine:
            raise _Lost

    async def _rows(
        self,
        workspace_id: UUID,
        export_id: UUID,
        spec: Spec,
        write: Callable[[Rows, list[repository.ExportRow]], None],
        share: tuple[float, float] = (0.0, 1.0),
    ) -> int:
        """Read the rows, handing each partition to `write` (in a thread), progress
        recorded as it passes each hundredth of `share`."""
        start, span = share
        async with self.db.workspace_transaction(workspace_id) as session:
            rows, parts = await read_rows(session, spec)
            await asyncio.to_thread(write, rows, [])
            shown_at = -1
            async for part in parts:
                await asyncio.to_thread(write, rows, part)
                rows.written += len(part)
                done = start + span * rows.progress(part[-1])
                if int(done * 100) > shown_at:
                    shown_at = int(done * 100)
                    await self._progress(workspace_id, export_id, done, rows.written)
        return rows.written

    async def _csv(self, workspace_id: UUID, export_id: UUID, spec: Spec, local: Path) -> int:
        with local.open("w", encoding="utf-8", newline="") as out:

            def write(rows: Rows, part: list[repository.ExportRow]) -> None:
                out.write(
                    export_files.csv_text(part, rows.accounts, rows.before, with_header=not part)
                )

            return await self._rows(workspace_id, export_id, spec, write)

    async def _xlsx(self, workspace_id: UUID, export_id: UUID, spec: Spec, local: Path) -> int:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            data = await summary(session, spec, spec.last)
            _, accounts = await accounts_of(session, spec)
        book = export_files.Workbook(local, spec.heading(now), accounts)
        await asyncio.to_thread(book.summary, data)
        await self._progress(workspace_id, export_id, 0.05, 0)

        def write(rows: Rows, part: list[repository.ExportRow]) -> None:
            book.rows(part, rows.before)

        written = await self._rows(workspace_id, export_id, spec, write, (0.05, 0.9))
        await asyncio.to_thread(book.close)
        return written

    async def _pdf(self, workspace_id: UUID, export_id: UUID, spec: Spec, local: Path) -> int:
        now = self.clock.now()
        async with self.db.workspace_transaction(workspace_id) as session:
            data = await summary(session, spec, spec.last)
            _, accounts = await accounts_of(session, spec)
            ranked = next((m for m in spec.metrics if m not in LEVELS), Metric.ENGAGEMENTS)
            top = await metrics_of.top_posts(
                session,
                spec.timezone,
                Period(first=spec.first, last=spec.last),
                spec.scope,
                ranked,
                TOP_POSTS,
            )
        await self._progress(workspace_id, export_id, 0.5, 0)
        await asyncio.to_thread(export_files.report, local, spec.heading(now), data, top, accounts)
        return 0


Writer = Callable[[Exporter, UUID, UUID, Spec, Path], Awaitable[int]]
WRITERS: dict[str, Writer] = {
    "csv": Exporter._csv,
    "xlsx": Exporter._xlsx,
    "pdf": Exporter._pdf,
}


def _store(storage: Storage, path: str, local: Path) -> None:
    with local.open("rb") as source:
        storage.write(path, source)


def _describe(error: Exception) -> str:
    """What a client is told of a failure: its kind, never its inner details."""
    if isinstance(error, OSError):
        return "The export's file could not be written (storage failed)."
    return f"The export could not be made ({type(error).__name__})."
