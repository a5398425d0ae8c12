"""Queries on metric fetches and observations: as crier_app inside one workspace, but
finding due fetches, which runs as crier_scheduler across workspaces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import Database
from crier.kit.db.engine import Statement
from crier.kit.db.tenancy import enter_workspace_statement
from crier.kit.ids import new_id
from crier.kit.sql import queries
from crier.models import (
    AnalyticsExport,
    AnalyticsRollup,
    AnalyticsView,
    MetricFetch,
    MetricObservation,
)

QUERIES = queries(__file__, "queries.sql")


class Due(NamedTuple):
    workspace_id: UUID
    social_account_id: UUID
    delivery_id: UUID | None
    """None: the account's own figures."""


async def due_fetches(scheduler_db: Database, now: datetime, limit: int) -> list[Due]:
    """Fetches of any workspace due now that no worker holds (the longest due first), then
    active accounts never measured yet; at most `limit` in all."""
    async with scheduler_db.engine.connect() as conn:
        rows = list(await conn.execute(QUERIES["due_metric_fetches"], {"now": now, "limit": limit}))
        if len(rows) < limit:
            more = {"limit": limit - len(rows)}
            rows += list(await conn.execute(QUERIES["accounts_never_measured"], more))
    return [Due(r.workspace_id, r.social_account_id, r.delivery_id) for r in rows]


async def start_histories(
    session: AsyncSession, published: Sequence[tuple[UUID, datetime]], first_step: timedelta
) -> None:
    """The receipts of deliveries just published (id, when): each starts its metric
    history, its first fetch due `first_step` after its publishing."""
    if not published:
        return
    await session.execute(
        QUERIES["start_histories"],
        {
            "delivery_ids": [d for d, _ in published],
            "published_ats": [at for _, at in published],
            "first_step": first_step,
        },
    )


async def open_account_fetch(
    session: AsyncSession, workspace_id: UUID, account_id: UUID, now: datetime
) -> None:
    """The account's own figures get a fetch, due now, unless they have one."""
    await session.execute(
        insert(MetricFetch)
        .values(
            workspace_id=workspace_id,
            id=new_id(),
            social_account_id=account_id,
            since=now,
            next_fetch_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["workspace_id", "social_account_id"],
            index_where=text("delivery_id IS NULL"),
        )
    )


def _of(account_id: UUID, delivery_id: UUID | None) -> list[object]:
    return [
        MetricFetch.social_account_id == account_id,
        MetricFetch.delivery_id == delivery_id
        if delivery_id is not None
        else MetricFetch.delivery_id.is_(None),
    ]


async def take_fetch(
    session: AsyncSession,
    account_id: UUID,
    delivery_id: UUID | None,
    now: datetime,
    lease: timedelta,
) -> MetricFetch | None:
    """Take the fetch in hand until `now + lease`, if it is due and no other worker
    holds it."""
    found = await session.scalars(
        update(MetricFetch)
        .where(
            *_of(account_id, delivery_id),  # type: ignore[arg-type]
            MetricFetch.next_fetch_at <= now,
            or_(MetricFetch.leased_until.is_(None), MetricFetch.leased_until <= now),
        )
        .values(leased_until=now + lease)
        .returning(MetricFetch),
        execution_options={"populate_existing": True},
    )
    return found.one_or_none()


async def held_fetch(
    session: AsyncSession, account_id: UUID, delivery_id: UUID | None
) -> MetricFetch | None:
    """The fetch, locked for update (to record how it went)."""
    return await session.scalar(
        select(MetricFetch).where(*_of(account_id, delivery_id)).with_for_update()  # type: ignore[arg-type]
    )


async def observe(
    session: AsyncSession,
    workspace_id: UUID,
    account_id: UUID,
    delivery_id: UUID | None,
    figures: Mapping[str, float],
    at: datetime,
) -> None:
    """Keep what the network reported at `at`: a delivery's counts, each with how much it
    grew since the delivery's previous observation of it; or an account's own figures."""
    if not figures:
        return
    if delivery_id is None:
        session.add_all(
            MetricObservation(
                workspace_id=workspace_id,
                id=new_id(),
                social_account_id=account_id,
                metric=metric,
                value=float(value),
                observed_at=at,
            )
            for metric, value in sorted(figures.items())
        )
        await session.flush()
        return
    await session.flush()  # the rows this one is counted from
    names = sorted(figures)
    await session.execute(
        QUERIES["observe_post"],
        {
            "metrics": names,
            "values": [float(figures[n]) for n in names],
            "account_id": account_id,
            "delivery_id": delivery_id,
            "at": at,
        },
    )


async def observe_days(
    session: AsyncSession,
    account_id: UUID,
    days: Mapping[date, Mapping[str, float]],
    at: datetime,
) -> date | None:
    """Keep a network's figures of whole days for the account, observed `at`: one per
    metric and day, replacing the one kept before where the network revised it. The
    earliest day whose figures are new or changed (None: none are)."""
    rows = [(day, m, float(v)) for day in sorted(days) for m, v in sorted(days[day].items())]
    if not rows:
        return None
    await session.flush()
    found = await session.execute(
        QUERIES["observe_days"],
        {
            "days": [r[0] for r in rows],
            "metrics": [r[1] for r in rows],
            "values": [r[2] for r in rows],
            "account_id": account_id,
            "at": at,
        },
    )
    first = found.scalar_one()
    return first if isinstance(first, date) else None


async def hold_back_account(
    session: AsyncSession, account_id: UUID, until: datetime, now: datetime
) -> None:
    """None of the account's fetches is due before `until` (the network asked for a
    pause)."""
    await session.execute(
        QUERIES["hold_back_account"], {"account_id": account_id, "until": until, "now": now}
    )


async def observations(
    session: AsyncSession, *, delivery_id: UUID | None = None, account_id: UUID | None = None
) -> list[MetricObservation]:
    """A delivery's observations (or an account's own), the oldest first."""
    query = select(MetricObservation).order_by(
        MetricObservation.observed_at, MetricObservation.metric
    )
    if delivery_id is not None:
        query = query.where(MetricObservation.delivery_id == delivery_id)
    if account_id is not None:
        query = query.where(
            MetricObservation.social_account_id == account_id,
            MetricObservation.delivery_id.is_(None),
        )
    return list(await session.scalars(query))


class Rebuilt(NamedTuple):
    made: int
    """Snapshots the days have."""
    written: int
    """Of those, new or changed."""
    removed: int
    """Snapshots the days no longer have."""


async def rebuild_days(
    db: Database, workspace_id: UUID, first: date, last: date, now: datetime
) -> Rebuilt:
    """Make the workspace's snapshots for the days `first` to `last` again (set-based), in
    a transaction of its own that goes to the server in one round trip.

    The commit is not waited for on disk: the snapshots are made again from the
    observations whenever needed, and the rollup's own record, committed after them,
    flushes them with it."""
    async with db.pipelined() as tx:
        await tx.send(enter_workspace_statement(workspace_id, await_commit=False))
        made = await tx.send((QUERIES["rebuild_days"], {"first": first, "last": last, "now": now}))
        await tx.commit()
        [row] = await made.rows()
    return Rebuilt(int(row["made"]), int(row["written"]), int(row["removed"]))


async def open_rollup(session: AsyncSession, now: datetime) -> None:
    """The workspace's days get a rollup, due at once, unless they have one."""
    await session.execute(QUERIES["open_rollup"], {"now": now})


async def touch_day(session: AsyncSession, at: datetime, now: datetime, soon: datetime) -> None:
    """An observation made `at` arrived: its day is aggregated again if it was already."""
    await session.execute(QUERIES["touch_day"], {"at": at, "now": now, "soon": soon})


async def touch_days(session: AsyncSession, first: date, now: datetime, soon: datetime) -> None:
    """A network revised its figures of whole days from `first` on: those days are
    aggregated again if they were already."""
    await session.execute(QUERIES["touch_days"], {"first": first, "now": now, "soon": soon})


async def redo_every_day(session: AsyncSession, now: datetime) -> None:
    """The workspace's timezone changed: its rollup does every day again, now."""
    await session.execute(QUERIES["redo_every_day"], {"now": now})


async def due_rollups(scheduler_db: Database, now: datetime, limit: int) -> list[UUID]:
    """Workspaces whose rollup is due and that no worker holds, the longest due first."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(QUERIES["due_rollups"], {"now": now, "limit": limit})
        return [r.workspace_id for r in rows]


async def take_rollup(
    session: AsyncSession, now: datetime, lease: timedelta
) -> AnalyticsRollup | None:
    """Take the workspace's rollup in hand until `now + lease`, if it is due and free."""
    found = await session.scalars(
        update(AnalyticsRollup)
        .where(
            AnalyticsRollup.next_run_at <= now,
            or_(AnalyticsRollup.leased_until.is_(None), AnalyticsRollup.leased_until <= now),
        )
        .values(leased_until=now + lease)
        .returning(AnalyticsRollup),
        execution_options={"populate_existing": True},
    )
    return found.one_or_none()


async def held_rollup(session: AsyncSession) -> AnalyticsRollup | None:
    """The workspace's rollup, locked for update."""
    return await session.scalar(select(AnalyticsRollup).with_for_update())


async def first_observed_day(session: AsyncSession, timezone: str) -> date | None:
    """The first day the workspace has an observation for, in its timezone (a network's
    daily figure on its own date); None when it has none yet."""
    found = (await session.execute(QUERIES["first_observed_day"], {"tz": timezone})).scalar_one()
    return found if isinstance(found, date) else None


class Context(NamedTuple):
    in_scope: list[UUID]
    """The workspace's accounts in the scope, ids ascending."""
    known: set[UUID]
    """Which of the ids the scope names are the workspace's."""
    generation: int
    """The workspace's snapshot generation: it moves whenever its snapshots change."""


def reading_context_statement(
    ids: Sequence[UUID] | None, platforms: Sequence[str] | None
) -> Statement:
    """The accounts of a scope and the snapshot generation (see the query)."""
    return QUERIES["reading_context"], {
        "ids": list(ids) if ids is not None else None,
        "platforms": list(platforms) if platforms is not None else None,
    }


def context_of(row: Mapping[Any, Any]) -> Context:
    return Context(list(row["in_scope"]), set(row["known"]), int(row["generation"]))


async def reading_context(
    session: AsyncSession, ids: Sequence[UUID] | None, platforms: Sequence[str] | None
) -> Context:
    """The accounts of a scope and the snapshot generation, in one statement."""
    row = (await session.execute(*reading_context_statement(ids, platforms))).one()
    return context_of(row._mapping)


async def snapshot_series(
    session: AsyncSession,
    accounts: Sequence[UUID] | None,
    metrics: Sequence[str],
    levels: Sequence[str],
    first: date,
    last: date,
    unit: str,
) -> dict[tuple[str, date], float]:
    """Each metric's value by period over `accounts` (None: every account of the
    workspace): a post figure's growth added up; an account figure (`levels`) each
    account's last level in the period, added up."""
    among = list(accounts) if accounts is not None else None
    params = {"accounts": among, "first": first, "last": last, "unit": unit}
    summed = [m for m in metrics if unit == "day" or m not in levels]
    lasts = [m for m in metrics if m not in summed]
    found: dict[tuple[str, date], float] = {}
    for query, named in (("snapshot_sums", summed), ("snapshot_last_levels", lasts)):
        if named:
            rows = await session.execute(QUERIES[query], params | {"metrics": named})
            found.update({(r.metric, r.period): float(r.value) for r in rows})
    return found


async def top_posts(
    session: AsyncSession,
    accounts: Sequence[UUID],
    metric: str,
    starts: datetime,
    ends: datetime,
    limit: int,
) -> list[Any]:
    """The top posts' deliveries, best post first (see the query)."""
    rows = await session.execute(
        QUERIES["top_posts"],
        {
            "accounts": list(accounts),
            "metric": metric,
            "starts": starts,
            "ends": ends,
            "limit": limit,
        },
    )
    return list(rows)


async def views(session: AsyncSession, *, after: UUID | None, limit: int) -> list[AnalyticsView]:
    """The workspace's saved views, oldest first, after the cursor."""
    query = select(AnalyticsView).order_by(AnalyticsView.id).limit(limit)
    if after is not None:
        query = query.where(AnalyticsView.id > after)
    return list(await session.scalars(query))


async def view(session: AsyncSession, view_id: UUID) -> AnalyticsView | None:
    return await session.scalar(select(AnalyticsView).where(AnalyticsView.id == view_id))


def view_in_context_statement(view_id: UUID) -> Statement:
    """The saved view with its accounts now and the snapshot generation (see the query),
    to run in one round trip with others (`Database.read_at_once`)."""
    return QUERIES["view_in_context"], {"id": view_id}


def view_in_context(row: Mapping[str, Any]) -> tuple[AnalyticsView, Context]:
    """The view and its `Context`, from a row of `view_in_context_statement`."""
    view = AnalyticsView(**{c.key: row[c.name] for c in AnalyticsView.__table__.columns})
    return view, context_of(row)


async def best_times(
    session: AsyncSession, account_id: UUID, since: datetime, young: datetime
) -> list[Any]:
    """Engagements by weekday and hour of publishing (see the query)."""
    rows = await session.execute(
        QUERIES["best_times"], {"account_id": account_id, "since": since, "young": young}
    )
    return list(rows)


class ExportRow(NamedTuple):
    social_account_id: UUID
    metric: str
    period: date
    value: float | None
    """None: only the compared period has a figure."""
    previous_value: float | None


EXPORT_PARTITION = 5000
"""Rows read from the server at a time while exporting."""


async def export_rows(
    session: AsyncSession,
    accounts: Sequence[UUID] | None,
    metrics: Sequence[str],
    levels: Sequence[str],
    shown: tuple[date, date],
    before: tuple[date, date] | None,
    pairs: Sequence[tuple[date, date]],
    unit: str,
) -> AsyncIterator[list[ExportRow]]:
    """The export's rows (see the query), `EXPORT_PARTITION` at a time, read through a
    server-side cursor so that memory stays flat whatever their number. `pairs` puts each
    shown period's first day beside its compared period's."""
    params = {
        "accounts": list(accounts) if accounts is not None else None,
        "metrics": list(metrics),
        "levels": list(levels),
        "first": shown[0],
        "last": shown[1],
        "before_first": before[0] if before else None,
        "before_last": before[1] if before else None,
        "pairs_shown": [p for p, _ in pairs],
        "pairs_before": [b for _, b in pairs],
        "unit": unit,
    }
    result = await session.stream(QUERIES["export_rows"], params)
    async for part in result.partitions(EXPORT_PARTITION):
        yield [ExportRow(*r) for r in part]


async def export_accounts(session: AsyncSession, ids: Sequence[UUID] | None) -> list[Any]:
    """The accounts among `ids` (None: all), by id, with their platform, handle and name."""
    rows = await session.execute(
        QUERIES["export_accounts"], {"ids": list(ids) if ids is not None else None}
    )
    return list(rows)


async def waiting_exports(scheduler_db: Database, now: datetime, limit: int) -> list[Any]:
    """Exports of any workspace waiting for a worker, the oldest first."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(QUERIES["waiting_exports"], {"now": now, "limit": limit})
        return list(rows)


async def expired_exports(scheduler_db: Database, now: datetime, limit: int) -> list[Any]:
    """Ready exports of any workspace whose file was kept long enough."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(QUERIES["expired_exports"], {"now": now, "limit": limit})
        return list(rows)


async def take_export(
    session: AsyncSession, export_id: UUID, worker: str, now: datetime, until: datetime
) -> AnalyticsExport | None:
    """The export for `worker` until `until`, if it waits for a worker."""
    found = await session.execute(
        select(AnalyticsExport).from_statement(
            QUERIES["take_export"].bindparams(id=export_id, worker=worker, now=now, until=until)
        ),
        execution_options={"populate_existing": True},
    )
    return found.scalar_one_or_none()


async def export_progress(
    session: AsyncSession,
    export_id: UUID,
    worker: str,
    progress: float,
    rows: int,
    now: datetime,
    until: datetime,
) -> bool:
    """Record how far `worker` got and renew its lease; False when the export is no
    longer its own."""
    found = await session.execute(
        QUERIES["export_progress"],
        {
            "id": export_id,
            "worker": worker,
            "progress": progress,
            "rows": rows,
            "now": now,
            "until": until,
        },
    )
    return found.first() is not None


async def held_export(
    session: AsyncSession, export_id: UUID, worker: str
) -> AnalyticsExport | None:
    """The export, locked, if `worker` still holds it."""
    return await session.scalar(
        select(AnalyticsExport)
        .where(
            AnalyticsExport.id == export_id,
            AnalyticsExport.leased_by == worker,
            AnalyticsExport.status == "running",
        )
        .with_for_update()
    )


async def export(
    session: AsyncSession, export_id: UUID, *, lock: bool = False
) -> AnalyticsExport | None:
    query = select(AnalyticsExport).where(AnalyticsExport.id == export_id)
    return await session.scalar(query.with_for_update() if lock else query)


async def exports(
    session: AsyncSession, *, after: UUID | None, limit: int
) -> list[AnalyticsExport]:
    """The workspace's exports, the newest first, after the cursor."""
    query = select(AnalyticsExport).order_by(AnalyticsExport.id.desc()).limit(limit)
    if after is not None:
        query = query.where(AnalyticsExport.id < after)
    return list(await session.scalars(query))
