"""Review syncs: incremental, complete, and safe across failures, crashes and workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import update

from crier.kit.db import Database
from crier.models import ReviewSync
from crier.review.tasks import SYNC_LEASE, ReviewSyncer
from crier.runtime import Runtime
from tests.conftest import FakeClock, Tenant
from tests.review.conftest import (
    Location,
    NewSyncer,
    events_of,
    new_location,
    review_calls,
    whole_feed,
)


def instant(moment: datetime) -> str:
    """A UTC instant as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def reviews_of(tenant: Tenant, **params: Any) -> dict[str, dict[str, Any]]:
    """The tenant's reviews by their id on the network."""
    seen, _ = await whole_feed(tenant, **params)
    by_id = {r["external_id"]: r for r in seen}
    assert len(by_id) == len(seen), "a review came twice in one reading of the feed"
    return by_id


async def many_reviews(location: Location, clock: FakeClock, count: int) -> list[str]:
    """`count` reviews, a second apart, the oldest first."""
    made = []
    for n in range(count):
        clock.advance(timedelta(seconds=1))
        made.append(await location.review(n % 5 + 1, f"Visit number {n}"))
    return made


async def sync_state(tenant: Tenant, account_id: str) -> dict[str, Any]:
    found = (await tenant.get("/v1/reviews/sync")).json()["data"]
    [state] = [s for s in found if s["social_account_id"] == account_id]
    assert isinstance(state, dict)
    return state


async def test_a_first_sync_reads_every_review_of_the_location(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    db: Database,
) -> None:
    made = await many_reviews(location, clock, 120)  # three pages of 50
    await location.edit(made[3], reply="Thank you!")
    assert await syncer.sync(location.workspace, UUID(location.account_id))

    stored = await reviews_of(location.tenant)
    assert set(stored) == set(made)
    assert stored[made[7]]["rating"] == 3
    assert stored[made[7]]["body"] == "Visit number 7"
    assert stored[made[7]]["reviewer_name"] == "Ada"
    assert stored[made[3]]["reply"]["text"] == "Thank you!"
    assert stored[made[3]]["responded_at"] is not None
    assert stored[made[7]]["reply"] is None
    assert stored[made[7]]["responded_at"] is None
    created = await events_of(db, location.tenant, "review.created")
    assert sorted(e["external_id"] for e in created) == sorted(made)
    state = await sync_state(location.tenant, location.account_id)
    assert state["network_total"] == 120
    assert state["last_error"] is None
    assert state["in_progress"] is False
    assert state["next_sync_at"] == instant(clock.now() + timedelta(minutes=15))


async def test_a_later_sync_reads_only_what_changed_since(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
) -> None:
    made = await many_reviews(location, clock, 120)
    await syncer.sync(location.workspace, UUID(location.account_id))
    _, cursor = await whole_feed(location.tenant)
    clock.advance(timedelta(minutes=1))
    oldest = made[0]  # on the last page, until it changes
    await location.edit(oldest, rating=1, comment="It got worse.", reply="We are sorry.")
    clock.advance(timedelta(seconds=1))
    new = await location.review(5, "Lovely")
    clock.advance(timedelta(minutes=15))

    pages = await review_calls(control)
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    assert await review_calls(control) - pages == 1  # the changes are all on the first page

    changed, _ = await whole_feed(location.tenant, cursor)
    assert sorted(r["external_id"] for r in changed) == sorted([oldest, new])
    [edited] = [r for r in changed if r["external_id"] == oldest]
    assert (edited["rating"], edited["body"]) == (1, "It got worse.")
    assert edited["reply"]["text"] == "We are sorry."
    assert len(await reviews_of(location.tenant)) == 121
    updated = await events_of(db, location.tenant, "review.updated")
    assert [e["external_id"] for e in updated] == [oldest]


async def test_a_sync_with_nothing_new_changes_nothing(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    control: httpx.AsyncClient,
) -> None:
    await many_reviews(location, clock, 60)
    await syncer.sync(location.workspace, UUID(location.account_id))
    _, cursor = await whole_feed(location.tenant)
    clock.advance(timedelta(minutes=15))
    pages = await review_calls(control)
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    assert await review_calls(control) - pages == 1
    assert (await whole_feed(location.tenant, cursor))[0] == []


async def test_a_review_removed_on_the_network_is_marked_removed_and_kept(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    db: Database,
) -> None:
    made = await many_reviews(location, clock, 70)
    await syncer.sync(location.workspace, UUID(location.account_id))
    _, cursor = await whole_feed(location.tenant)
    await location.remove(made[1])
    clock.advance(timedelta(minutes=15))
    await syncer.sync(location.workspace, UUID(location.account_id))

    [removed] = (await whole_feed(location.tenant, cursor))[0]
    assert removed["external_id"] == made[1]
    assert removed["removed_at"] == instant(clock.now())
    assert len(await reviews_of(location.tenant, removed="false")) == 69
    [event] = await events_of(db, location.tenant, "review.updated")
    assert event["removed_at"] is not None
    state = await sync_state(location.tenant, location.account_id)
    assert (state["network_total"], state["in_progress"]) == (69, False)


async def test_a_rate_limited_sync_waits_as_told_then_resumes_where_it_stopped(
    location: Location,
    clock: FakeClock,
    control: httpx.AsyncClient,
    new_syncer: NewSyncer,
) -> None:
    made = await many_reviews(location, clock, 120)
    one_page = new_syncer(pages_per_run=1)
    assert not await one_page.sync(location.workspace, UUID(location.account_id))
    assert len(await reviews_of(location.tenant)) == 50
    await control.put("/control/faults", json={"rate_limit_next": 1, "retry_after_seconds": 600})
    assert not await one_page.sync(location.workspace, UUID(location.account_id))
    state = await sync_state(location.tenant, location.account_id)
    assert state["last_error"] == "rate_limited"
    assert state["next_sync_at"] == instant(clock.now() + timedelta(seconds=600))
    assert state["in_progress"] is True

    pages = await review_calls(control)
    assert not await one_page.sync(location.workspace, UUID(location.account_id))
    assert await review_calls(control) == pages  # not before the network said
    clock.advance(timedelta(seconds=600))
    full = new_syncer()
    assert await full.sync(location.workspace, UUID(location.account_id))
    assert await review_calls(control) - pages == 2  # pages 2 and 3, not page 1 again
    assert set(await reviews_of(location.tenant)) == set(made)
    assert (await sync_state(location.tenant, location.account_id))["last_error"] is None


async def test_a_sync_whose_worker_died_mid_call_is_taken_over_from_its_last_page(
    location: Location,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
    new_syncer: NewSyncer,
) -> None:
    """The worker stored page 1 and was asking for page 2 when it died: its lease runs out,
    then another worker goes on from page 2, and no review is lost or stored twice."""
    made = await many_reviews(location, clock, 120)
    first = new_syncer(pages_per_run=1)
    await first.sync(location.workspace, UUID(location.account_id))
    await control.put("/control/faults", json={"hang_next": 1, "hang_seconds": 5})
    pages = await review_calls(control)
    dying = asyncio.create_task(first.sync(location.workspace, UUID(location.account_id)))
    for _ in range(500):  # until the sandbox holds the call (bounded)
        if await review_calls(control) > pages:
            break
        await asyncio.sleep(0.01)
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    await control.delete("/control/faults")

    other = new_syncer()
    assert not await other.sync(location.workspace, UUID(location.account_id))  # leased
    clock.advance(SYNC_LEASE)
    assert await other.sync(location.workspace, UUID(location.account_id))
    assert set(await reviews_of(location.tenant)) == set(made)
    assert len(await events_of(db, location.tenant, "review.created")) == 120


async def test_two_workers_syncing_one_location_read_it_once(
    location: Location,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
    new_syncer: NewSyncer,
) -> None:
    made = await many_reviews(location, clock, 120)
    workers = [new_syncer() for _ in range(3)]
    pages = await review_calls(control)
    finished = await asyncio.gather(
        *(w.sync(location.workspace, UUID(location.account_id)) for w in workers)
    )
    assert sorted(finished) == [False, False, True]
    assert await review_calls(control) - pages == 3
    assert set(await reviews_of(location.tenant)) == set(made)
    assert len(await events_of(db, location.tenant, "review.created")) == 120


async def test_a_stalled_worker_whose_location_was_taken_over_leaves_the_run_alone(
    location: Location,
    clock: FakeClock,
    control: httpx.AsyncClient,
    new_syncer: NewSyncer,
) -> None:
    """The lease is the run's fence: a worker whose page came back after its lease ran out
    and another took the location over stores nothing and reads no further."""
    made = await many_reviews(location, clock, 120)

    await new_syncer(pages_per_run=1).sync(location.workspace, UUID(location.account_id))
    await control.put("/control/faults", json={"latency_ms": 1000})
    pages = await review_calls(control)
    stalled = asyncio.create_task(new_syncer().sync(location.workspace, UUID(location.account_id)))
    for _ in range(500):  # until the sandbox holds its call for page 2 (bounded)
        if await review_calls(control) > pages:
            break
        await asyncio.sleep(0.01)
    await control.delete("/control/faults")  # the call held answers in a second, others at once
    clock.advance(SYNC_LEASE)
    assert await new_syncer().sync(location.workspace, UUID(location.account_id))
    assert not await stalled
    assert await review_calls(control) - pages == 3  # its page 2; the other's pages 2 and 3
    assert set(await reviews_of(location.tenant)) == set(made)


async def test_a_page_token_the_network_no_longer_takes_starts_the_run_over(
    location: Location,
    clock: FakeClock,
    db: Database,
    new_syncer: NewSyncer,
) -> None:
    made = await many_reviews(location, clock, 120)
    one_page = new_syncer(pages_per_run=1)
    await one_page.sync(location.workspace, UUID(location.account_id))
    async with db.workspace_transaction(location.workspace) as session:
        await session.execute(
            update(ReviewSync)
            .where(ReviewSync.social_account_id == UUID(location.account_id))
            .values(page_token="forgotten")
        )
    full = new_syncer()
    assert await full.sync(location.workspace, UUID(location.account_id))
    assert set(await reviews_of(location.tenant)) == set(made)


async def test_a_location_whose_account_expired_is_not_synced_and_says_why(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    db: Database,
) -> None:
    from crier.models import SocialAccount

    await location.review(4, "Fine")
    async with db.workspace_transaction(location.workspace) as session:
        await session.execute(
            update(SocialAccount)
            .where(SocialAccount.id == UUID(location.account_id))
            .values(status="expired")
        )
    assert not await syncer.sync(location.workspace, UUID(location.account_id))
    state = await sync_state(location.tenant, location.account_id)
    assert state["last_error"] == "auth_expired"
    assert (await whole_feed(location.tenant))[0] == []


async def test_a_token_about_to_expire_is_refreshed_before_the_run(
    location: Location, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    await location.review(2, "Slow service")
    clock.advance(timedelta(hours=3))  # the 2-hour access token has run out
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    assert len(await reviews_of(location.tenant)) == 1
    account = (await location.tenant.get(f"/v1/social-accounts/{location.account_id}")).json()
    assert account["status"] == "active"
    assert account["token_expires_at"] > clock.now().isoformat()


async def test_a_token_the_network_refuses_mid_run_is_refreshed_and_the_run_goes_on(
    location: Location,
    syncer: ReviewSyncer,
    clock: FakeClock,
    db: Database,
    control: httpx.AsyncClient,
) -> None:
    """Crier thought the token good for a day, but the network let it lapse: the page it
    refused is asked for again with fresh tokens."""
    from crier.models import SocialAccount

    await location.review(2, "Slow service")
    clock.advance(timedelta(hours=3))  # the sandbox's 2-hour token has run out
    async with db.workspace_transaction(location.workspace) as session:
        await session.execute(
            update(SocialAccount)
            .where(SocialAccount.id == UUID(location.account_id))
            .values(token_expires_at=clock.now() + timedelta(days=1))
        )
    pages = await review_calls(control)
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    assert await review_calls(control) - pages == 2  # refused, then read
    assert len(await reviews_of(location.tenant)) == 1
    account = (await location.tenant.get(f"/v1/social-accounts/{location.account_id}")).json()
    assert account["last_refreshed_at"] == instant(clock.now())


async def sync_every_due_location_for_a_year(new_syncer: NewSyncer) -> None:
    """Sync whatever other tests left due (they share the database), and let it be for a
    year: the sweeps of a test then find only its own locations due."""
    drainer = new_syncer(every=timedelta(days=365), batch=200, at_once=8)
    for _ in range(100):
        if await drainer.sweep() < drainer.batch:
            return
    raise AssertionError("locations kept coming due")


async def test_workers_sync_due_locations_on_their_own_and_on_demand(
    tenant: Tenant,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    control: httpx.AsyncClient,
    new_syncer: NewSyncer,
) -> None:
    await sync_every_due_location_for_a_year(new_syncer)
    location = await new_location(tenant, control)
    worker = runtime.worker(scheduler_db, worker_id="reviews", review_poll=timedelta(seconds=5))
    await location.review(5, "Great")
    await worker.tick()  # a new location is due at once
    assert len(await reviews_of(tenant)) == 1
    await location.review(1, "Awful")
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    assert len(await reviews_of(tenant)) == 1  # not due for another 14 minutes
    asked = await tenant.post("/v1/reviews/sync", json={"social_account_id": location.account_id})
    assert asked.status_code == 202, asked.text
    assert asked.json()["data"][0]["next_sync_at"] == instant(clock.now())
    clock.advance(timedelta(seconds=5))
    await worker.tick()
    assert len(await reviews_of(tenant)) == 2
    await location.review(3, "Okay")
    clock.advance(timedelta(minutes=15))
    await worker.tick()
    assert len(await reviews_of(tenant)) == 3
