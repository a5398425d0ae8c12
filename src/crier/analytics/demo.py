"""A demo's history: `crier analytics demo` gives a workspace's accounts days of published
posts measured on the usual schedule, followers day by day, and two saved views, then
aggregates the days, so that views, best times and reports can be looked at at once.

The figures are made up but shaped like real ones: each post's counts grow quickly, then
level off; some weekdays and hours do better than others; followers grow with a little
noise. Every post is marked `"demo": true` in its payload.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crier.analytics import repository, schedule
from crier.analytics.rollups import local_today, rebuild
from crier.kit.db import Database
from crier.kit.errors import ValidationFailed
from crier.kit.ids import new_id
from crier.models import AnalyticsView, Delivery, Post, PostTarget, SocialAccount, Workspace
from crier.workspace.operator import find_member

HOURS = (8, 9, 12, 13, 17, 18, 20)
"""When the demo's posts go out, in the workspace timezone."""
_BEST = {(1, 9): 1.8, (3, 18): 2.2, (4, 12): 1.5, (6, 20): 0.6, (7, 9): 0.5}
"""Weekday (ISO) and hour of the slots that do better or worse than the others."""
VIEWS = (
    ("Demo: the last 30 days", ["impressions", "engagements", "followers"], "last_30_days", "day"),
    (
        "Demo: the last 90 days by week",
        ["impressions", "likes", "posts_published"],
        "last_90_days",
        "week",
    ),
)


@dataclass(frozen=True)
class Backfilled:
    accounts: int
    posts: int
    observations: int
    snapshots: int
    first_day: date
    last_day: date


def _grown(total: float, age: timedelta) -> float:
    """How much of a post's final count it has at `age` (most of it within a day)."""
    hours = age / timedelta(hours=1)
    return float(total * (1 - 0.85 ** (hours**0.6)))


async def backfill(db: Database, workspace_id: UUID, days: int, now: datetime) -> Backfilled:
    """Give the workspace's active accounts `days` days of history up to now."""
    if not 1 <= days <= 730:
        raise ValidationFailed("Backfill between 1 and 730 days.", [])
    luck = random.Random(f"{workspace_id}:{days}")  # noqa: S311 - made-up figures
    observations = 0
    made: list[tuple[tuple[Post, PostTarget, Delivery], datetime, float]] = []
    async with db.workspace_transaction(workspace_id) as session:
        workspace = await session.get(Workspace, workspace_id)
        assert workspace is not None
        zone = ZoneInfo(workspace.timezone)
        accounts = list(
            await session.scalars(
                select(SocialAccount)
                .where(SocialAccount.status == "active")
                .order_by(SocialAccount.id)
            )
        )
        if not accounts:
            raise ValidationFailed(
                "The workspace has no active account to give a history to: connect one "
                '(POST /v1/social-accounts {"platform": "sandbox"}) first.',
                [],
            )
        author = await find_member(session, None)
        today = local_today(now, workspace.timezone)
        first = today - timedelta(days=days)
        for account in accounts:
            audience = luck.randint(200, 5000)
            for n in range(days + 1):
                day = first + timedelta(days=n)
                at = datetime.combine(day, time(23, 0), zone)
                if at <= now:
                    followers = audience + 4 * n + luck.randint(-3, 3)
                    await repository.observe(
                        session,
                        workspace_id,
                        account.id,
                        None,
                        {"followers": followers, "following": 150},
                        at,
                    )
                    observations += 2
                for hour in luck.sample(HOURS, luck.choice((1, 1, 2))):
                    sent = datetime.combine(day, time(hour, luck.randint(0, 59)), zone)
                    if sent < now:
                        factor = _BEST.get((day.isoweekday(), hour), 1.0)
                        reach = audience * factor * luck.uniform(0.6, 1.4)
                        made.append((_post(account, author.id, sent, n), sent, reach))
        for kind in (Post, PostTarget, Delivery):  # referenced rows first
            session.add_all(row for rows in made for row in rows[0] if isinstance(row, kind))
            await session.flush()
        for rows, sent, reach in made:
            delivery = rows[2]
            assert isinstance(delivery, Delivery)
            for step in schedule.DEFAULT:
                if sent + step > now:
                    break
                impressions = _grown(reach * 1.6, step)
                likes = _grown(reach * 0.04, step)
                figures = {
                    "impressions": round(impressions),
                    "reach": round(impressions * 0.7),
                    "likes": round(likes),
                    "comments": round(likes / 8),
                    "shares": round(likes / 5),
                    "clicks": round(impressions / 60),
                }
                figures["engagements"] = sum(
                    figures[k] for k in ("likes", "comments", "shares", "clicks")
                )
                await repository.observe(
                    session,
                    workspace_id,
                    delivery.social_account_id,
                    delivery.id,
                    figures,
                    sent + step,
                )
                observations += len(figures)
        await session.flush()
        for name, metrics, relative, granularity in VIEWS:
            taken = await session.scalar(select(AnalyticsView.id).where(AnalyticsView.name == name))
            if taken is None:
                session.add(
                    AnalyticsView(
                        id=new_id(),
                        workspace_id=workspace_id,
                        name=name,
                        metrics=metrics,
                        relative_range=relative,
                        granularity=granularity,
                        comparison="previous_period",
                    )
                )
        await repository.open_rollup(session, now)
    done = await rebuild(db, workspace_id, first, today, now)
    return Backfilled(len(accounts), len(made), observations, done.made, first, today)


def _post(
    account: SocialAccount, author_id: UUID, sent: datetime, n: int
) -> tuple[Post, PostTarget, Delivery]:
    """A post published to `account` at `sent`, its target and its delivery."""
    workspace_id = account.workspace_id
    post_id, target_id, delivery_id = new_id(), new_id(), new_id()
    return (
        Post(
            id=post_id,
            workspace_id=workspace_id,
            status="published",
            publish_at=sent,
            published_at=sent,
            payload={"text": f"Demo post {n + 1} for {account.handle}", "demo": True},
            author_id=author_id,
        ),
        PostTarget(
            id=target_id, workspace_id=workspace_id, post_id=post_id, social_account_id=account.id
        ),
        Delivery(
            id=delivery_id,
            workspace_id=workspace_id,
            post_id=post_id,
            post_target_id=target_id,
            social_account_id=account.id,
            platform=account.platform,
            status="published",
            attempts=1,
            external_id=f"demo-{delivery_id}",
            published_at=sent,
        ),
    )
