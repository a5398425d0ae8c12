"""Queries on reviews, their feed and their syncs: as crier_app inside one workspace, but
finding due syncs, which runs as crier_scheduler across workspaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import Database
from crier.kit.sql import any_of, queries
from crier.models import (
    Review,
    ReviewAlertRule,
    ReviewReplyRecord,
    ReviewSync,
    ReviewTemplate,
    SocialAccount,
)

QUERIES = queries(__file__, "queries.sql")


async def take_sequences(session: AsyncSession, count: int) -> list[int]:
    """`count` new numbers of the workspace's feed, in order; the feed stays locked to
    others until this transaction ends."""
    last = (await session.execute(QUERIES["take_sequences"], {"count": count})).scalar_one()
    return list(range(last - count + 1, last + 1))


async def committed_sequence(session: AsyncSession) -> int:
    """The feed's last committed number, as this statement sees it."""
    return int((await session.execute(QUERIES["committed_sequence"])).scalar_one())


async def get(session: AsyncSession, review_id: UUID, *, lock: bool = False) -> Review | None:
    query = select(Review).where(Review.id == review_id)
    return await session.scalar(query.with_for_update() if lock else query)


async def by_external_ids(
    session: AsyncSession, account_id: UUID, external_ids: Sequence[str]
) -> dict[str, Review]:
    """The location's reviews with these ids on the network, locked for update."""
    found = await session.scalars(
        select(Review)
        .where(Review.social_account_id == account_id, any_of(Review.external_id, external_ids))
        .with_for_update()
    )
    return {r.external_id: r for r in found}


async def not_seen_since(session: AsyncSession, account_id: UUID, scan: int) -> list[Review]:
    """The location's reviews, not yet removed, that full scan `scan` did not see."""
    found = await session.scalars(
        select(Review)
        .where(
            Review.social_account_id == account_id,
            Review.removed_at.is_(None),
            Review.seen_in_scan < scan,
        )
        .with_for_update()
    )
    return list(found)


async def live_count(session: AsyncSession, account_id: UUID) -> int:
    """How many of the location's reviews are still on the network, as far as Crier knows."""
    count = await session.scalar(
        select(func.count())
        .select_from(Review)
        .where(Review.social_account_id == account_id, Review.removed_at.is_(None))
    )
    return int(count or 0)


@dataclass(frozen=True)
class FeedFilters:
    social_account_id: UUID | None = None
    ratings: Sequence[int] = ()
    sentiment: str | None = None
    responded: bool | None = None
    removed: bool | None = None
    reviewed_from: datetime | None = None
    reviewed_to: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.social_account_id is not None:
            found.append(Review.social_account_id == self.social_account_id)
        if self.ratings:
            found.append(any_of(Review.rating, self.ratings))
        if self.sentiment is not None:
            found.append(Review.sentiment_label == self.sentiment)
        if self.responded is not None:
            found.append(
                Review.responded_at.is_not(None)
                if self.responded
                else Review.responded_at.is_(None)
            )
        if self.removed is not None:
            found.append(
                Review.removed_at.is_not(None) if self.removed else Review.removed_at.is_(None)
            )
        if self.reviewed_from is not None:
            found.append(Review.reviewed_at >= self.reviewed_from)
        if self.reviewed_to is not None:
            found.append(Review.reviewed_at < self.reviewed_to)
        return found


async def feed(
    session: AsyncSession, after: int, upto: int, filters: FeedFilters, limit: int
) -> list[Review]:
    """Reviews matching `filters` whose latest change is numbered after `after` and at most
    `upto`, in that order; at most `limit`."""
    found = await session.scalars(
        select(Review)
        .where(Review.feed_sequence > after, Review.feed_sequence <= upto, *filters.conditions())
        .order_by(Review.feed_sequence)
        .limit(limit)
    )
    return list(found)


async def track(
    session: AsyncSession, workspace_id: UUID, account_ids: Sequence[UUID], due: datetime
) -> None:
    """Sync these locations' reviews by `due` (at once for those never synced)."""
    if not account_ids:
        return
    statement = insert(ReviewSync).values(
        [
            {"workspace_id": workspace_id, "social_account_id": a, "next_sync_at": due}
            for a in account_ids
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ReviewSync.workspace_id, ReviewSync.social_account_id],
            set_={"next_sync_at": func.least(ReviewSync.next_sync_at, due)},
        )
    )


async def syncs(session: AsyncSession, account_id: UUID | None = None) -> list[ReviewSync]:
    """The workspace's location syncs (or one location's), by account."""
    where = [] if account_id is None else [ReviewSync.social_account_id == account_id]
    found = await session.scalars(
        select(ReviewSync)
        .where(*where)
        .order_by(ReviewSync.social_account_id)
        # Rows just written with a plain INSERT replace what the session held of them.
        .execution_options(populate_existing=True)
    )
    return list(found)


async def take_sync(
    session: AsyncSession, account_id: UUID, now: datetime, lease: timedelta
) -> ReviewSync | None:
    """Take the location's sync in hand until `now + lease`, if it is due and no other
    worker holds it."""
    found = await session.scalars(
        update(ReviewSync)
        .where(
            ReviewSync.social_account_id == account_id,
            ReviewSync.next_sync_at <= now,
            or_(ReviewSync.leased_until.is_(None), ReviewSync.leased_until <= now),
        )
        .values(leased_until=now + lease)
        .returning(ReviewSync),
        execution_options={"populate_existing": True},
    )
    return found.one_or_none()


async def held_sync(session: AsyncSession, account_id: UUID) -> ReviewSync | None:
    """The location's sync, locked for update (to record what a run did)."""
    return await session.scalar(
        select(ReviewSync).where(ReviewSync.social_account_id == account_id).with_for_update()
    )


async def due_syncs(scheduler_db: Database, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
    """Locations (workspace and account) of any workspace due for a sync that no worker
    holds, the longest due first; at most `limit`."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(QUERIES["due_review_syncs"], {"now": now, "limit": limit})
        return [(r.workspace_id, r.social_account_id) for r in rows]


async def replies(session: AsyncSession, review_id: UUID) -> list[ReviewReplyRecord]:
    """The review's reply history, the newest first."""
    found = await session.scalars(
        select(ReviewReplyRecord)
        .where(ReviewReplyRecord.review_id == review_id)
        .order_by(ReviewReplyRecord.created_at.desc(), ReviewReplyRecord.id.desc())
    )
    return list(found)


async def supersede_pending(session: AsyncSession, review_id: UUID) -> None:
    """The review's replies asked of Crier and not yet sent give way to a newer one."""
    await session.execute(
        update(ReviewReplyRecord)
        .where(
            ReviewReplyRecord.review_id == review_id,
            ReviewReplyRecord.status == "pending",
        )
        .values(status="superseded", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


async def held_reply(session: AsyncSession, reply_id: UUID) -> ReviewReplyRecord | None:
    """A reply, locked for update."""
    return await session.scalar(
        select(ReviewReplyRecord)
        .where(ReviewReplyRecord.id == reply_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def another_in_flight(
    session: AsyncSession, review_id: UUID, reply_id: UUID, now: datetime
) -> bool:
    """Whether a worker holds another reply of the review."""
    found = await session.scalar(
        select(func.count())
        .select_from(ReviewReplyRecord)
        .where(
            ReviewReplyRecord.review_id == review_id,
            ReviewReplyRecord.id != reply_id,
            ReviewReplyRecord.leased_until > now,
        )
    )
    return bool(found)


async def due_replies(scheduler_db: Database, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
    """Replies (workspace and id) of any workspace due to be sent; at most `limit`."""
    async with scheduler_db.engine.connect() as conn:
        rows = await conn.execute(QUERIES["due_review_replies"], {"now": now, "limit": limit})
        return [(r.workspace_id, r.id) for r in rows]


async def templates(
    session: AsyncSession, after: UUID | None, limit: int
) -> Sequence[ReviewTemplate]:
    query = select(ReviewTemplate).order_by(ReviewTemplate.id).limit(limit)
    if after is not None:
        query = query.where(ReviewTemplate.id > after)
    return (await session.scalars(query)).all()


async def template(session: AsyncSession, template_id: UUID) -> ReviewTemplate | None:
    return await session.scalar(select(ReviewTemplate).where(ReviewTemplate.id == template_id))


async def alert_rules(
    session: AsyncSession,
    *,
    enabled: bool | None = None,
    after: UUID | None = None,
    limit: int = 1000,
) -> Sequence[ReviewAlertRule]:
    """The workspace's alert rules, oldest first (only the enabled ones, with `enabled`)."""
    query = select(ReviewAlertRule).order_by(ReviewAlertRule.id).limit(limit)
    if enabled is not None:
        query = query.where(ReviewAlertRule.enabled.is_(enabled))
    if after is not None:
        query = query.where(ReviewAlertRule.id > after)
    return (await session.scalars(query)).all()


async def alert_rule(session: AsyncSession, rule_id: UUID) -> ReviewAlertRule | None:
    return await session.scalar(select(ReviewAlertRule).where(ReviewAlertRule.id == rule_id))


async def location_ids(session: AsyncSession, account_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these are the ids of the workspace's locations (accounts with a review
    sync)."""
    found = await session.scalars(
        select(ReviewSync.social_account_id).where(
            any_of(ReviewSync.social_account_id, account_ids)
        )
    )
    return set(found)


async def locations_named(session: AsyncSession, external_id: str) -> set[UUID]:
    """The ids of the workspace's locations (accounts with a review sync) that the network
    knows as `external_id`."""
    found = await session.scalars(
        select(ReviewSync.social_account_id)
        .join(SocialAccount, SocialAccount.id == ReviewSync.social_account_id)
        .where(SocialAccount.external_id == external_id)
    )
    return set(found)
