"""Review statistics over a range of days in the workspace's timezone: how many reviews
were written, their ratings, how many were answered and how fast, and their sentiment week
by week (weeks from Monday).

A review counts on the day it was written (`reviewed_at`) where the workspace is: from
local midnight of `from` to local midnight after `to`, so a review written at 23:30 on a
Sunday in New York counts in that Sunday's week, not the Monday it already was in UTC.
Reviews removed from the network are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Float, and_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.errors import NotFound, ValidationFailed, field_error
from crier.kit.sql import any_of
from crier.models import Review
from crier.review import repository
from crier.review.schemas import RatingDistribution, ReviewStats, WeekSentiment

DEFAULT_DAYS = 90
"""The range without `from`: the 90 days ending `to` (today, without `to`)."""
MAX_DAYS = 731
"""The longest range: two years, a leap day included."""
EARLIEST = date(1970, 1, 1)
LATEST = date(9998, 12, 31)


@dataclass(frozen=True)
class Scope:
    """Which reviews: of one location (by Crier's id or the network's), or all."""

    social_account_id: UUID | None = None
    location_id: str | None = None


def days_of(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The range asked for, with its defaults, checked."""
    for name, value in (("from", first), ("to", last)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise ValidationFailed(
                f"`{name}` must be a day from {EARLIEST} to {LATEST}.",
                [field_error(["query", name], "day out of range", "date_out_of_range")],
            )
    if last is None:
        last = max(today, first) if first is not None else today
    if first is None:
        first = max(EARLIEST, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ValidationFailed(
            f"`from` ({first}) is after `to` ({last}).",
            [field_error(["query", "from"], "after `to`", "range_reversed")],
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            f"A range is at most {MAX_DAYS} days; {first} to {last} is {(last - first).days + 1}.",
            [field_error(["query", "to"], f"more than {MAX_DAYS} days", "range_too_long")],
        )
    return first, last


def week_starts(first: date, last: date) -> list[date]:
    """The Monday of each week the range touches, in order."""
    monday = first - timedelta(days=first.weekday())
    return [monday + timedelta(weeks=n) for n in range((last - monday).days // 7 + 1)]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`. Where a DST change skips midnight (clocks go
    from 23:59:59 to 01:00), that is the change itself, which the offset before it names."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


async def _locations(session: AsyncSession, scope: Scope) -> list[UUID] | None:
    """The ids of the locations in scope (None: all of them); 404 when one named is not a
    location of the workspace."""
    if scope.social_account_id is None and scope.location_id is None:
        return None
    found: set[UUID] | None = None
    if scope.social_account_id is not None:
        found = await repository.location_ids(session, [scope.social_account_id])
        if not found:
            raise NotFound("No location with this `social_account_id` in this workspace.")
    if scope.location_id is not None:
        named = await repository.locations_named(session, scope.location_id)
        if not named:
            raise NotFound("No location with this `location_id` in this workspace.")
        found = named if found is None else found & named
        if not found:
            raise NotFound("The `social_account_id` and the `location_id` name two locations.")
    assert found is not None
    return sorted(found)


async def stats(
    session: AsyncSession,
    timezone: str,
    today: date,
    first: date | None,
    last: date | None,
    scope: Scope,
) -> ReviewStats:
    first, last = days_of(first, last, today)
    locations = await _locations(session, scope)
    zone = ZoneInfo(timezone)
    mondays = week_starts(first, last)
    start, end = _midnight(first, zone), _midnight(last + timedelta(days=1), zone)
    # Bucket i (1-based) of width_bucket: [bounds[i-1], bounds[i]); the first week starts at
    # `from`, the last ends after `to`.
    bounds = [start, *(_midnight(m, zone) for m in mondays[1:]), end]
    filters = repository.FeedFilters(removed=False, reviewed_from=start, reviewed_to=end)
    where = and_(
        *filters.conditions(),
        *([any_of(Review.social_account_id, locations)] if locations is not None else []),
    )
    responded = Review.responded_at.is_not(None)
    # Clamped at 0: a network's clocks can put a reply a moment before the review.
    wait = func.greatest(0, func.extract("epoch", Review.responded_at - Review.reviewed_at))
    totals = (
        await session.execute(
            select(
                func.count(),
                cast(func.avg(Review.rating), Float),
                *(func.count().filter(Review.rating == stars) for stars in range(1, 6)),
                func.count().filter(responded),
                cast(func.percentile_cont(0.5).within_group(wait).filter(responded), Float),
                func.avg(Review.sentiment),
            ).where(where)
        )
    ).one()
    count, average_rating, *ratings = totals[:7]
    answered, median_wait, average_sentiment = totals[7:]
    week = func.width_bucket(
        Review.reviewed_at, bindparam("bounds", bounds, type_=ARRAY(DateTime(timezone=True)))
    )
    label = Review.sentiment_label
    by_week = {
        row[0]: row
        for row in await session.execute(
            select(
                week,
                func.count(),
                func.avg(Review.sentiment),
                func.count().filter(label == "negative"),
                func.count().filter(label == "neutral"),
                func.count().filter(label == "positive"),
            )
            .where(where)
            .group_by(week)
        )
    }
    weeks = []
    for n, monday in enumerate(mondays, start=1):
        row = by_week.get(n)
        shown_from, shown_to = max(monday, first), min(monday + timedelta(days=6), last)
        weeks.append(
            WeekSentiment(
                week=monday,
                days=(shown_to - shown_from).days + 1,
                count=row[1] if row else 0,
                average_sentiment=row[2] if row else None,
                negative=row[3] if row else 0,
                neutral=row[4] if row else 0,
                positive=row[5] if row else 0,
            )
        )
    return ReviewStats(
        from_=first,
        to=last,
        timezone=timezone,
        social_account_id=scope.social_account_id,
        location_id=scope.location_id,
        count=count,
        average_rating=average_rating,
        rating_distribution=RatingDistribution.of(ratings),
        responded=answered,
        response_rate=answered / count if count else None,
        median_response_seconds=median_wait,
        average_sentiment=average_sentiment,
        weeks=weeks,
    )
