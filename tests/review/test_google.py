"""Google Business Profile reviews, against the emulator: a location's first sync reads
every page, an incremental one only what changed, a removal is found by the count, a
reply made on Google is found by the daily full scan (Google need not list it as a
change), and replies asked through Crier go to Google once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from crier.review.sending import ReplySender
from crier.review.tasks import ReviewSyncer
from tests.conftest import FakeClock, Tenant
from tests.google import Google, connect_google, new_business
from tests.review.conftest import whole_feed
from tests.review.test_replies import (
    _settle_replies,  # noqa: F401 (closes the replies a test leaves pending)
    delete_reply,
    put_reply,
    read,
)
from tests.review.test_sync import instant


async def google_location(tenant: Tenant, google: Google) -> tuple[dict[str, Any], str]:
    business = new_business(google, "Quay Street Oysters")
    [account] = await connect_google(tenant, google, business)
    return account, business.locations[0].name


async def synced(tenant: Tenant, syncer: ReviewSyncer, account: dict[str, Any]) -> None:
    due = await tenant.post("/v1/reviews/sync", json={"social_account_id": account["id"]})
    assert due.status_code == 202, due.text
    assert await syncer.sync(UUID(tenant.id), UUID(account["id"]))


async def by_external_id(tenant: Tenant) -> dict[str, dict[str, Any]]:
    seen, _ = await whole_feed(tenant)
    latest: dict[str, dict[str, Any]] = {}
    for review in seen:
        latest[review["external_id"]] = review
    return latest


def pages_read(google: Google) -> int:
    return google.network.served.get("GET reviews", 0)


async def test_reviews_sync_from_google_page_by_page_then_only_what_changed(
    tenant: Tenant, google: Google, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    account, name = await google_location(tenant, google)
    network = google.network
    made = []
    for n in range(120):
        clock.advance(timedelta(seconds=1))
        made.append(network.add_review(name, n % 5 + 1, f"Oysters, visit {n}", f"Guest {n}"))
    made.append(network.add_review(name, 4, None, "Quiet Guest"))  # a rating alone
    before = pages_read(google)
    await synced(tenant, syncer, account)
    assert pages_read(google) - before == 3  # 121 reviews, 50 a page
    stored = await by_external_id(tenant)
    assert len(stored) == 121
    first = stored[made[0].review_id]
    assert (first["rating"], first["body"], first["reviewer_name"]) == (
        1,
        "Oysters, visit 0",
        "Guest 0",
    )
    assert first["location_id"] == name
    assert first["reviewed_at"].endswith("Z")
    assert stored[made[-1].review_id]["body"] is None
    assert stored[made[-1].review_id]["sentiment_source"] == "rating"

    # An edit and a new review: the next sync reads the first page alone.
    clock.advance(timedelta(minutes=15))
    made[3].comment, made[3].rating, made[3].updated_at = "Changed my mind: superb", 5, clock.now()
    fresh = network.add_review(name, 2, "Cold chips", "Late Guest")
    before = pages_read(google)
    await synced(tenant, syncer, account)
    assert pages_read(google) - before == 1
    stored = await by_external_id(tenant)
    assert (stored[made[3].review_id]["rating"], stored[made[3].review_id]["body"]) == (
        5,
        "Changed my mind: superb",
    )
    assert stored[fresh.review_id]["body"] == "Cold chips"

    # A review taken down: Google's count drops, and a full scan finds which.
    del network.reviews[made[7].review_id]
    clock.advance(timedelta(minutes=15))
    await synced(tenant, syncer, account)
    stored = await by_external_id(tenant)
    assert stored[made[7].review_id]["removed_at"] is not None
    assert sum(r["removed_at"] is None for r in stored.values()) == 121


async def test_a_reply_made_on_google_is_found_by_the_daily_full_scan(
    tenant: Tenant, google: Google, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    """Google does not say that a reply moves a review's `updateTime` (here it does not):
    an incremental sync cannot see it; the first sync a day after the last full scan
    reads every review, and does."""
    account, name = await google_location(tenant, google)
    network = google.network
    review = network.add_review(name, 3, "Fine", "Guest")
    clock.advance(timedelta(seconds=1))
    network.add_review(name, 5, "Lovely", "Other guest")
    await synced(tenant, syncer, account)
    clock.advance(timedelta(hours=1))
    review.reply, review.reply_updated_at = "Thanks for coming by!", clock.now()
    await synced(tenant, syncer, account)
    assert (await by_external_id(tenant))[review.review_id]["reply"] is None

    clock.advance(timedelta(hours=23))
    before = pages_read(google)
    await synced(tenant, syncer, account)
    assert pages_read(google) - before == 2  # the incremental page, then the full scan
    shown = (await by_external_id(tenant))[review.review_id]
    assert shown["reply"]["text"] == "Thanks for coming by!"
    assert shown["responded_at"] == shown["reply"]["updated_at"]
    clock.advance(timedelta(minutes=15))
    before = pages_read(google)
    await synced(tenant, syncer, account)  # the scan is a day's: this one is incremental
    assert pages_read(google) - before == 1


async def test_a_reply_through_crier_reaches_google_once_and_can_be_removed(
    tenant: Tenant,
    google: Google,
    syncer: ReviewSyncer,
    sender: ReplySender,
    clock: FakeClock,
) -> None:
    account, name = await google_location(tenant, google)
    review = google.network.add_review(name, 2, "Slow service", "Guest")
    await synced(tenant, syncer, account)
    review_id = (await by_external_id(tenant))[review.review_id]["id"]
    _, etag = await read(tenant, review_id)
    google.network.faults.unavailable = 1  # Google fails the first send: it is retried
    accepted = await put_reply(tenant, review_id, etag, text="Sorry, we are on it.")
    assert accepted.status_code == 202, accepted.text
    for _ in range(5):  # bounded: a sweep, then another after the retry's backoff
        clock.advance(timedelta(minutes=1))
        await sender.sweep()
        if review.reply is not None:
            break
    assert review.reply == "Sorry, we are on it."
    assert google.network.served["PUT reply"] == 2  # the refused send, then one that took
    done, etag = await read(tenant, review_id)
    assert done["reply"]["text"] == "Sorry, we are on it."
    assert done["reply_status"] is None
    assert done["responded_at"] is not None

    removed = await delete_reply(tenant, review_id, etag)
    assert removed.status_code == 202, removed.text
    clock.advance(timedelta(seconds=1))
    await sender.sweep()
    assert review.reply is None
    after, _ = await read(tenant, review_id)
    assert after["reply"] is None


async def test_a_sync_that_google_refuses_for_a_minute_goes_on_after_it(
    tenant: Tenant, google: Google, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    account, name = await google_location(tenant, google)
    google.network.add_review(name, 4, "Good", "Guest")
    google.network.faults.calls_per_minute = 0
    due = await tenant.post("/v1/reviews/sync", json={"social_account_id": account["id"]})
    assert due.status_code == 202, due.text
    assert not await syncer.sync(UUID(tenant.id), UUID(account["id"]))
    [state] = [
        s
        for s in (await tenant.get("/v1/reviews/sync")).json()["data"]
        if s["social_account_id"] == account["id"]
    ]
    assert state["last_error"] == "rate_limited"
    assert await by_external_id(tenant) == {}
    assert state["next_sync_at"] == instant(clock.now() + timedelta(minutes=1))
    google.network.faults.calls_per_minute = 300
    clock.advance(timedelta(minutes=1))
    assert await syncer.sync(UUID(tenant.id), UUID(account["id"]))
    assert [r["body"] for r in (await by_external_id(tenant)).values()] == ["Good"]
