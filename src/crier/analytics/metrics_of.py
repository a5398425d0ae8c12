"""A post's own figures, and the posts that did best: read from the observations kept."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import query, repository
from crier.analytics.schemas import (
    BestTimes,
    Figures,
    History,
    Metric,
    Period,
    PostMetrics,
    Slot,
    TargetMetrics,
    TopPost,
    TopPosts,
    TopPostTarget,
)
from crier.delivery import repository as delivery_repository
from crier.kit.errors import NotFound
from crier.kit.sql import any_of
from crier.models import MetricFetch, MetricObservation
from crier.post import repository as post_repository


async def post(session: AsyncSession, post_id: UUID) -> PostMetrics:
    """Each target's latest figures and every observation of them."""
    if await post_repository.get(session, post_id) is None:
        raise NotFound("No post with this id in this workspace.")
    deliveries = await delivery_repository.of_post(session, post_id)
    ids = [d.id for d in deliveries]
    observed: dict[UUID, dict[datetime, dict[str, float]]] = defaultdict(dict)
    if ids:
        rows = await session.scalars(
            select(MetricObservation)
            .where(any_of(MetricObservation.delivery_id, ids))
            .order_by(MetricObservation.observed_at, MetricObservation.metric)
        )
        for row in rows:
            assert row.delivery_id is not None
            observed[row.delivery_id].setdefault(row.observed_at, {})[row.metric] = row.value
    fetches = {
        f.delivery_id: f.next_fetch_at
        for f in (
            await session.scalars(select(MetricFetch).where(any_of(MetricFetch.delivery_id, ids)))
            if ids
            else []
        )
    }
    targets = []
    for d in deliveries:
        history = [Figures(observed_at=at, figures=f) for at, f in observed[d.id].items()]
        targets.append(
            TargetMetrics(
                delivery_id=d.id,
                social_account_id=d.social_account_id,
                platform=d.platform,
                status=d.status,
                published_at=d.published_at,
                permalink=d.permalink,
                next_fetch_at=fetches.get(d.id),
                latest=history[-1] if history else None,
                history=history,
            )
        )
    return PostMetrics(post_id=post_id, targets=targets)


async def top_posts(
    session: AsyncSession,
    timezone: str,
    days: Period,
    scope: query.Scope,
    metric: Metric,
    limit: int,
) -> TopPosts:
    """The posts published in `days` with the highest latest `metric`, added up over
    their targets."""
    ids = await query.accounts(session, scope)
    starts, ends = query.day_bounds(days.first, days.last, timezone)
    rows = await repository.top_posts(session, ids, metric.value, starts, ends, limit)
    found: dict[UUID, TopPost] = {}
    for r in rows:
        top = found.get(r.post_id)
        if top is None:
            top = found[r.post_id] = TopPost(
                post_id=r.post_id,
                text=r.text,
                published_at=r.post_published_at,
                value=r.post_value,
                targets=[],
            )
        top.targets.append(
            TopPostTarget(
                delivery_id=r.delivery_id,
                social_account_id=r.social_account_id,
                platform=r.platform,
                permalink=r.permalink,
                published_at=r.published_at,
                value=r.value,
                observed_at=r.observed_at,
            )
        )
    return TopPosts(metric=metric, timezone=timezone, range=days, data=list(found.values()))


YOUNG = timedelta(days=1)
"""Posts published more recently are left out of best times: too young to compare."""
BEST = 5


async def best_times(
    session: AsyncSession, timezone: str, account_id: UUID, now: datetime, weeks: int
) -> BestTimes:
    """When the account's posts did best, from its own history of `weeks` weeks."""
    await query.accounts(session, query.Scope([account_id], None))
    since = now - timedelta(weeks=weeks)
    rows = await repository.best_times(session, account_id, since, now - YOUNG)
    slots = sorted(
        (
            Slot(weekday=r.weekday, hour=r.hour, posts=r.posts, mean_engagements=float(r.mean))
            for r in rows
        ),
        key=lambda s: (s.weekday, s.hour),
    )
    first = min((r.first_at for r in rows), default=None)
    last = max((r.last_at for r in rows), default=None)
    span = (last - first) / timedelta(weeks=1) if first and last else 0.0
    best = sorted(
        (s for s in slots if s.posts >= 2), key=lambda s: (-s.mean_engagements, s.weekday, s.hour)
    )[:BEST]
    return BestTimes(
        social_account_id=account_id,
        timezone=timezone,
        since=since,
        history=History(
            posts=sum(s.posts for s in slots),
            first_published_at=first,
            last_published_at=last,
            weeks=round(span, 1),
            enough=span >= 8,
        ),
        best=best,
        slots=slots,
    )
