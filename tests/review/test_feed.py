"""The review feed: whoever follows `next_cursor` sees every change once and misses none."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text

from crier.kit.db import Database
from crier.models import SocialAccount
from crier.platforms.base import NetworkReview
from crier.review import service
from crier.review.tasks import ReviewSyncer
from tests.conftest import FakeClock
from tests.review.conftest import Location, feed, whole_feed


def network_review(external_id: str, clock: FakeClock, rating: int = 4) -> NetworkReview:
    return NetworkReview(
        external_id=external_id,
        rating=rating,
        text="Nice place",
        reviewer_name="Grace",
        created_at=clock.now(),
        updated_at=clock.now(),
    )


async def waiting_on_a_lock(db: Database, query_hint: str) -> bool:
    """Whether a backend running a query that mentions `query_hint` waits on a lock now."""
    async with db.engine.connect() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE :hint"
            ),
            {"hint": f"%{query_hint}%"},
        )
        return bool(waiting)


async def test_a_review_committed_while_the_feed_is_read_is_seen_once_never_skipped(
    location: Location, db: Database, clock: FakeClock
) -> None:
    """Two syncs store a review each at once. The first takes the feed's next number and
    holds its transaction open; the second must wait for it, so it cannot commit a later
    number first and let a reader's cursor pass over the first one's review."""
    workspace = location.workspace
    before = await feed(location.tenant)
    first_stored = asyncio.Event()
    first_may_commit = asyncio.Event()

    async def store(external_id: str, hold: bool) -> None:
        async with db.workspace_transaction(workspace) as session:
            account = await session.get(SocialAccount, (workspace, UUID(location.account_id)))
            assert account is not None
            await service.ingest(session, clock, account, [network_review(external_id, clock)])
            if hold:
                first_stored.set()
                await first_may_commit.wait()

    first = asyncio.create_task(store("first", hold=True))
    await first_stored.wait()
    second = asyncio.create_task(store("second", hold=False))
    for _ in range(500):  # until the second waits for the first's lock on the feed (bounded)
        if await waiting_on_a_lock(db, "review_feeds"):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the second store did not wait for the first")
    assert not second.done()

    reading = await feed(location.tenant, before["next_cursor"])
    assert reading["data"] == []  # neither has committed
    first_may_commit.set()
    await asyncio.gather(first, second)
    seen, _ = await whole_feed(location.tenant, reading["next_cursor"])
    assert [r["external_id"] for r in seen] == ["first", "second"]


async def test_a_review_changed_again_comes_again_and_once_per_reading(
    location: Location, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    review = await location.review(5, "Great coffee")
    await syncer.sync(location.workspace, UUID(location.account_id))
    seen, cursor = await whole_feed(location.tenant)
    assert [r["body"] for r in seen] == ["Great coffee"]
    assert (await whole_feed(location.tenant, cursor))[0] == []  # nothing new

    clock.advance(timedelta(minutes=15))
    await location.edit(review, comment="Great coffee, slow service", rating=3)
    await syncer.sync(location.workspace, UUID(location.account_id))
    again, later = await whole_feed(location.tenant, cursor)
    assert [(r["body"], r["rating"]) for r in again] == [("Great coffee, slow service", 3)]
    assert again[0]["sequence"] > seen[0]["sequence"]
    assert again[0]["id"] == seen[0]["id"]
    assert (await whole_feed(location.tenant, later))[0] == []
    everything, _ = await whole_feed(location.tenant)
    assert len(everything) == 1  # from the start: each review once, as it is now


async def test_a_filtered_reading_goes_on_past_what_it_filtered_out(
    location: Location, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    for rating in (5, 4, 5):
        clock.advance(timedelta(seconds=1))
        await location.review(rating, "Good")
    await syncer.sync(location.workspace, UUID(location.account_id))
    low = await feed(location.tenant, rating=[1, 2])
    assert low["data"] == []
    assert low["has_more"] is False
    clock.advance(timedelta(minutes=15))
    await location.review(1, "Cold food")
    await syncer.sync(location.workspace, UUID(location.account_id))
    [bad] = (await feed(location.tenant, low["next_cursor"], rating=[1, 2]))["data"]
    assert bad["body"] == "Cold food"
