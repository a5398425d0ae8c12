"""X: an account connected through the consent page, posts with images, alt text, links and
reply settings published by the scheduler exactly once (X has no idempotency key: a post of
unknown outcome is looked up before any resend), tokens refreshed and rotated as they run
out, rate limits and refusals in the delivery error catalogue."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from crier.kit.db import Database
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.scheduler.test_mastodon import image, publish_due, schedule, schedule_refused
from tests.scheduler.test_metric_collection import collected_an_hour_on
from tests.scheduler.test_refresh import events_of
from tests.scheduler.test_worker import deliveries
from tests.x import X, connect_x


@pytest.fixture
def platform_timeout() -> float:
    return 0.5  # X is made to hang after storing a post


async def test_a_post_with_an_image_alt_text_a_link_and_reply_settings_is_published_once(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_x(tenant, x)
    media = await image(tenant, alt_text="A red square, photographed at noon")
    words = "Our spring menu & more: https://example.com/spring-menu-2027?utm=crier"
    post = await schedule(
        tenant,
        account,
        clock,
        text=words,
        media=[media],
        settings={"reply_settings": "following"},
    )
    await publish_due(worker, clock)

    [tweet] = x.tweets_of(account["handle"])
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert (tweet.text, tweet.reply_settings) == (words, "following")
    [uploaded] = [x.network.media[m] for m in tweet.media_ids]
    assert uploaded.alt_text == "A red square, photographed at noon"
    # the landscape crop X prefers, made as a JPEG
    assert (uploaded.category, uploaded.media_type) == ("tweet_image", "image/jpeg")
    assert delivery["platform_post_id"] == tweet.id
    assert delivery["permalink"] == f"https://x.com/i/web/status/{tweet.id}"
    await worker.tick()
    assert len(x.tweets_of(account["handle"])) == 1


async def test_a_call_that_hangs_after_x_stored_the_post_is_found_not_sent_again(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    """The send timed out after X stored the post: the next round looks the account's
    recent posts up, finds it by its text (X shows its link as a t.co link and appends one
    for the image), and sends nothing."""
    account = await connect_x(tenant, x)
    media = await image(tenant)
    x.network.faults.hang_after_store = 1
    x.network.faults.hang_seconds = 3
    post = await schedule(
        tenant, account, clock, text="Doors open at 9 — https://example.com/doors", media=[media]
    )
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["attempts"][0]["error_code"]) == ("pending", "timeout")

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [tweet] = x.tweets_of(account["handle"])
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == tweet.id
    assert len(delivery["attempts"]) == 1
    assert delivery["attempts"][0]["outcome"] == "published"


async def test_a_503_before_anything_was_stored_is_looked_up_then_sent_once(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    """A 503 may come after X stored the post, so the delivery is looked up first; not
    found, it is sent again, once."""
    account = await connect_x(tenant, x)
    post = await schedule(tenant, account, clock, text="A 503 first")
    x.network.faults.fail_after_store = 1
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "platform_unavailable"
    assert len(x.tweets_of(account["handle"])) == 1  # stored, then answered 503

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(x.tweets_of(account["handle"])) == 1
    assert [a["outcome"] for a in delivery["attempts"]] == ["published"]


async def test_a_post_of_unknown_outcome_is_not_sent_while_x_cannot_be_asked(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    """The look-up fails (the timeline answers 503): sending again could post twice, so
    nothing is sent and the look-up is tried again later, which finds the post."""
    account = await connect_x(tenant, x)
    x.network.faults.hang_after_store = 1
    x.network.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock, text="Asked about, not sent twice")
    await publish_due(worker, clock)
    x.network.faults.timeline_unavailable = 2
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("pending", "platform_unavailable")
    assert "could not be asked" in delivery["error_message"]
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending"
    assert len(x.tweets_of(account["handle"])) == 1

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(x.tweets_of(account["handle"])) == 1
    assert len(delivery["attempts"]) == 1


async def test_text_over_280_as_x_weighs_it_is_refused_when_scheduled(
    tenant: Tenant, x: X, clock: FakeClock
) -> None:
    account = await connect_x(tenant, x)
    fits = "日本" * 70  # 140 characters that weigh 2 each: 280
    assert (await schedule(tenant, account, clock, text=fits))["status"] == "scheduled"
    for heavy in ("日本" * 70 + "!", "👩‍👩‍👧" * 141, "https://example.com/a " * 12 + "x" * 5):
        body = await schedule_refused(tenant, account, clock, heavy)
        assert "weighted" in str(body)
    await schedule_refused(tenant, account, clock, "hi", {"reply_settings": "x"})


async def test_a_duplicate_is_refused_for_good_with_xs_message(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_x(tenant, x)
    first = await schedule(tenant, account, clock, text="Same words twice")
    await publish_due(worker, clock)
    second = await schedule(tenant, account, clock, text="Same words twice")
    await publish_due(worker, clock)
    [published] = await deliveries(tenant, first["id"])
    [refused] = await deliveries(tenant, second["id"])
    assert published["status"] == "published"
    assert (refused["status"], refused["error_code"]) == ("failed", "content_rejected")
    assert "duplicate content" in refused["attempts"][0]["message"]
    assert len(refused["attempts"]) == 1


async def test_a_rate_limit_waits_for_xs_reset_time(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_x(tenant, x)
    x.network.faults.tweet_limit = 0
    post = await schedule(tenant, account, clock, text="Slow down")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("pending", "rate_limited")
    waited = delivery["next_attempt_at"]
    assert waited >= (clock.now() + timedelta(minutes=14)).isoformat()  # the 15-minute window
    x.network.faults.tweet_limit = 100
    clock.advance(timedelta(minutes=16))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(x.tweets_of(account["handle"])) == 1


async def test_an_expired_token_is_refreshed_and_the_rotated_refresh_token_kept(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_x(tenant, x)
    clock.advance(timedelta(hours=3))  # past the access token's two hours
    first = await schedule(tenant, account, clock, text="After a refresh")
    await publish_due(worker, clock)
    clock.advance(timedelta(hours=3))  # and again: the rotated refresh token must be the one kept
    second = await schedule(tenant, account, clock, text="After a second refresh")
    await publish_due(worker, clock)
    for post in (first, second):
        [delivery] = await deliveries(tenant, post["id"])
        assert delivery["status"] == "published", delivery
    spent = [t for t in x.network.tokens.values() if t.expires_at is None and t.spent]
    assert len(spent) >= 2
    refreshed = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert refreshed["last_refreshed_at"] > account["last_refreshed_at"]
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = (await session.execute(text("SELECT * FROM social_accounts"))).all()
    live = [k for k, t in x.network.tokens.items() if not t.spent]
    assert all(k not in repr(row) for row in rows for k in live)  # sealed, never in the clear


async def test_a_refused_token_gets_one_refresh_and_one_retry(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock
) -> None:
    """X refuses the access token (401) though Crier thought it fresh: one refresh, one
    resend at once, published."""
    account = await connect_x(tenant, x)
    post = await schedule(tenant, account, clock, text="Refused, refreshed, sent")
    for token in x.network.tokens.values():
        if token.expires_at is not None:
            token.spent = True  # every access token is refused
    await publish_due(worker, clock)
    await worker.tick()  # the retry, due at once
    [delivery] = await deliveries(tenant, post["id"])
    assert [a["error_code"] for a in delivery["attempts"]] == ["auth_expired", None]
    assert delivery["status"] == "published", delivery
    assert len(x.tweets_of(account["handle"])) == 1


async def test_a_refused_refresh_expires_the_account_once_and_fails_its_post_at_once(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_x(tenant, x)
    for token in x.network.tokens.values():
        token.spent = True  # the user revoked Crier's access on X
    post = await schedule(tenant, account, clock, text="Never sent")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_expired")
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "expired"
    [expired] = await events_of(db, tenant, "social_account.expired")
    assert (expired["id"], expired["scheduled_posts"]) == (account["id"], [post["id"]])
    body = await schedule_refused(tenant, account, clock, "Not schedulable")
    assert "account_not_usable" in str(body["errors"])
    await publish_due(worker, clock)
    assert len(await events_of(db, tenant, "social_account.expired")) == 1
    assert x.tweets_of(account["handle"]) == []


async def test_the_posts_and_the_accounts_figures_are_collected_from_x(
    tenant: Tenant, x: X, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_x(tenant, x)
    post = await schedule(tenant, account, clock, text="Counted on X")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    x.network.user_named(account["handle"]).followers = 1_234
    figures, own = await collected_an_hour_on(tenant, worker, clock, db, delivery)
    assert set(figures) == {
        "likes",
        "shares",
        "comments",
        "quotes",
        "impressions",
        "bookmarks",
        "engagements",
    }
    assert own == {"followers": 1_234, "following": 0, "posts": 1, "listed": 0}
