"""Reading the daily snapshots: ranges resolved in the workspace's days, series per metric
and period beside a comparison period, and top posts.

Everything here reads snapshots (and, for top posts, each delivery's latest observation);
nothing asks a network.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import repository
from crier.analytics.schemas import (
    LEVELS,
    AnalyticsData,
    Comparison,
    DayRange,
    Granularity,
    Metric,
    Period,
    Point,
    RelativeRange,
    Series,
)
from crier.kit.errors import NotFound


@dataclass(frozen=True)
class Scope:
    """Whose figures: these accounts (all when None), on these platforms (all: None)."""

    social_account_ids: Sequence[UUID] | None = None
    platforms: Sequence[str] | None = None


def resolve(range_: RelativeRange | DayRange, today: date) -> tuple[date, date]:
    """The days a range stands for, `today` being today in the workspace timezone."""
    if isinstance(range_, DayRange):
        return range_.first, range_.last
    yesterday = today - timedelta(days=1)
    match range_:
        case RelativeRange.LAST_7_DAYS:
            return yesterday - timedelta(days=6), yesterday
        case RelativeRange.LAST_30_DAYS:
            return yesterday - timedelta(days=29), yesterday
        case RelativeRange.LAST_90_DAYS:
            return yesterday - timedelta(days=89), yesterday
        case RelativeRange.MONTH_TO_DATE:
            return today.replace(day=1), today
        case RelativeRange.LAST_MONTH:
            end = today.replace(day=1) - timedelta(days=1)
            return end.replace(day=1), end
        case RelativeRange.YEAR_TO_DATE:
            return today.replace(month=1, day=1), today


def _a_year_before(day: date) -> date:
    if day.month == 2 and day.day == 29:
        return date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)


def compared(first: date, last: date, comparison: Comparison) -> tuple[date, date]:
    """The days `first` to `last` are compared with."""
    if comparison == Comparison.PREVIOUS_YEAR:
        return _a_year_before(first), _a_year_before(last)
    days = (last - first).days + 1
    return first - timedelta(days=days), first - timedelta(days=1)


def periods(first: date, last: date, granularity: Granularity) -> list[date]:
    """The periods' first days (a week from Monday, a month from the 1st), in order."""
    if granularity == Granularity.DAY:
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if granularity == Granularity.WEEK:
        start = first - timedelta(days=first.weekday())
        return [start + timedelta(weeks=n) for n in range((last - start).days // 7 + 1)]
    found, day = [], first.replace(day=1)
    while day <= last:
        found.append(day)
        day = day + timedelta(days=calendar.monthrange(day.year, day.month)[1])
    return found


def day_bounds(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """When the day `first` begins and the day after `last` begins, in `timezone`."""
    zone = ZoneInfo(timezone)
    return (
        datetime.combine(first, time(), zone),
        datetime.combine(last + timedelta(days=1), time(), zone),
    )


async def context(session: AsyncSession, scope: Scope) -> repository.Context:
    """The workspace's accounts in `scope` and its snapshot generation; an account id not
    of this workspace answers 404, as a missing one does."""
    found = await repository.reading_context(session, scope.social_account_ids, scope.platforms)
    return checked(scope, found)


def checked(scope: Scope, found: repository.Context) -> repository.Context:
    """`found`, unless the scope names an account id not of this workspace (404)."""
    if scope.social_account_ids is not None:
        unknown = [str(a) for a in scope.social_account_ids if a not in found.known]
        if unknown:
            raise NotFound(
                f"No social account with these ids in this workspace: {', '.join(unknown)}."
            )
    return found


async def accounts(session: AsyncSession, scope: Scope) -> list[UUID]:
    """The workspace's accounts in `scope` (404 for an account id not of this workspace)."""
    return (await context(session, scope)).in_scope


def _total(metric: Metric, values: Sequence[float | None]) -> float | None:
    if metric in LEVELS:
        return next((v for v in reversed(values) if v is not None), None)
    return float(sum(v or 0 for v in values))


async def data(
    session: AsyncSession,
    timezone: str,
    today: date,
    *,
    scope: Scope,
    metrics: Sequence[Metric],
    range_: RelativeRange | DayRange,
    granularity: Granularity,
    comparison: Comparison | None,
    ids: Sequence[UUID] | None = None,
) -> AnalyticsData:
    """The series of `metrics` over `range_` by `granularity`, beside `comparison` (over
    the accounts `ids` of the scope, when they were looked up already)."""
    ids = list(ids) if ids is not None else await accounts(session, scope)
    first, last = resolve(range_, today)
    wanted = list(dict.fromkeys(metrics))
    levels = [m.value for m in wanted if m in LEVELS]
    unit = granularity.value

    async def read(a: date, b: date) -> tuple[list[date], dict[tuple[str, date], float]]:
        every = scope.social_account_ids is None and scope.platforms is None
        found = await repository.snapshot_series(
            session, None if every else ids, [m.value for m in wanted], levels, a, b, unit
        )
        return periods(a, b, granularity), found

    shown, values = await read(first, last)
    before: tuple[list[date], dict[tuple[str, date], float]] | None = None
    other = compared(first, last, comparison) if comparison else None
    if other is not None:
        before = await read(*other)
    series = []
    for metric in wanted:
        empty = None if metric in LEVELS else 0.0
        now = [values.get((metric.value, p), empty) for p in shown]
        then: list[float | None] = []
        if before is not None:
            then = [before[1].get((metric.value, p), empty) for p in before[0]]
        points = [
            Point(period=p, value=v, previous=then[n] if n < len(then) else None)
            for n, (p, v) in enumerate(zip(shown, now, strict=True))
        ]
        total = _total(metric, now)
        previous_total = _total(metric, then) if before is not None else None
        delta = total - previous_total if total is not None and previous_total is not None else None
        series.append(
            Series(
                metric=metric,
                points=points,
                total=total,
                previous_total=previous_total,
                delta=delta,
                delta_ratio=delta / previous_total
                if delta is not None and previous_total
                else None,
            )
        )
    return AnalyticsData(
        timezone=timezone,
        range=Period(first=first, last=last),
        granularity=granularity,
        comparison=comparison,
        comparison_range=Period(first=other[0], last=other[1]) if other else None,
        social_account_ids=ids,
        series=series,
    )
