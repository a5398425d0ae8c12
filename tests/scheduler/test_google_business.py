"""Google Business Profile local posts: a "What's new" post with a photo and a button,
published by the scheduler exactly once (Google has no idempotency key: a send whose
outcome is unknown is looked up among the location's posts before anything is sent
again); tokens refreshed until a testing app's week is over."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from crier.config import Settings
from crier.kit.db import Database
from crier.runtime import Runtime
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.google import Google, connect_google, new_business
from tests.scheduler.test_mastodon import image, publish_due, schedule, schedule_refused
from tests.scheduler.test_refresh import SWEEP_EVERY, sweep_until
from tests.scheduler.test_worker import deliveries

ORDER = {"call_to_action": {"type": "ORDER", "url": "https://example.com/order"}}


@pytest.fixture
def platform_timeout() -> float:
    return 0.5  # Google is made to hang after storing a post


async def location(tenant: Tenant, google: Google) -> tuple[dict[str, Any], str]:
    """A connected location and its name at Google."""
    business = new_business(google, "Rye Bakery")
    [account] = await connect_google(tenant, google, business)
    return account, business.locations[0].name


async def test_a_post_with_a_photo_and_a_button_is_published_once(
    tenant: Tenant, google: Google, worker: Worker, clock: FakeClock
) -> None:
    account, name = await location(tenant, google)
    photo = await image(tenant)
    post = await schedule(
        tenant,
        account,
        clock,
        text="Fresh rye every morning from 7.",
        media=[photo],
        settings=ORDER | {"language": "en-GB"},
    )
    await publish_due(worker, clock)

    [stored] = google.network.posts_of(name)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert stored.body["topicType"] == "STANDARD"
    assert stored.body["summary"] == "Fresh rye every morning from 7."
    assert stored.body["languageCode"] == "en-GB"
    assert stored.body["callToAction"] == {
        "actionType": "ORDER",
        "url": "https://example.com/order",
    }
    [media] = stored.body["media"]
    assert media["mediaFormat"] == "PHOTO"
    # Google fetches the photo from this server, in the crop Google Business Profile prefers.
    assert media["sourceUrl"] == f"{Settings().base_url}/v1/media/{photo}/file?variant=landscape"
    assert delivery["platform_post_id"] == stored.name
    assert delivery["permalink"].startswith("https://local.google.com/place?")
    await worker.tick()
    assert len(google.network.posts_of(name)) == 1


@pytest.mark.parametrize("fault", ["hang_after_store", "fail_after_store"])
async def test_a_send_whose_outcome_is_unknown_is_found_not_sent_again(
    tenant: Tenant, google: Google, worker: Worker, clock: FakeClock, fault: str
) -> None:
    """Google stored the post, then the call hung (or failed 500): the retry finds it among
    the location's posts and makes no second one."""
    account, name = await location(tenant, google)
    setattr(google.network.faults, fault, 1)
    google.network.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock, text="Open late on Friday", settings=ORDER)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending", delivery
    assert delivery["attempts"][0]["error_code"] in ("timeout", "platform_unavailable")

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [stored] = google.network.posts_of(name)
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == stored.name


async def test_a_send_refused_before_storing_is_retried_and_published_once(
    tenant: Tenant, google: Google, worker: Worker, clock: FakeClock
) -> None:
    account, name = await location(tenant, google)
    google.network.faults.unavailable = 1
    post = await schedule(tenant, account, clock, text="Half-term opening hours")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "platform_unavailable"
    await publish_due(worker, clock, minutes=10)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(google.network.posts_of(name)) == 1


async def test_a_quota_run_out_waits_for_the_next_minute(
    tenant: Tenant, google: Google, worker: Worker, clock: FakeClock
) -> None:
    account, name = await location(tenant, google)
    google.network.faults.calls_per_minute = 0
    post = await schedule(tenant, account, clock, text="Busy day")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [attempt] = delivery["attempts"]
    assert attempt["error_code"] == "rate_limited"
    google.network.faults.calls_per_minute = 300
    await publish_due(worker, clock, minutes=2)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(google.network.posts_of(name)) == 1


async def test_what_google_cannot_take_is_refused_when_scheduled(
    tenant: Tenant, google: Google, clock: FakeClock
) -> None:
    account, _ = await location(tenant, google)
    assert (await schedule(tenant, account, clock, text="é" * 1500))["status"] == "scheduled"
    assert "text_too_long" in str(await schedule_refused(tenant, account, clock, "é" * 1501))
    for settings in (
        {"call_to_action": {"type": "ORDER"}},  # a button that opens nothing
        {"call_to_action": {"type": "CALL", "url": "https://example.com"}},
        {"call_to_action": {"type": "BUY", "url": "https://example.com"}},
        {"call_to_action": {"type": "SHOP", "url": "not a url"}},
        {"language": "English!"},
        {"topic": "EVENT"},
    ):
        await schedule_refused(tenant, account, clock, "hi", settings)
    call = {"call_to_action": {"type": "CALL"}}
    assert (await schedule(tenant, account, clock, text="Ring us", settings=call))["status"] == (
        "scheduled"
    )


async def refreshed_or_expired(
    tenant: Tenant,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
    account: dict[str, Any],
) -> dict[str, Any]:
    """What the account is after the workers' refresh sweeps reached it."""
    worker = runtime.worker(scheduler_db, worker_id="google-sweeper", refresh_every=SWEEP_EVERY)
    before = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()

    async def reached() -> bool:
        now = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
        return bool(
            now["status"] != "active" or now["last_refreshed_at"] != before["last_refreshed_at"]
        )

    await sweep_until(worker, clock, reached)
    shown: dict[str, Any] = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    return shown


async def test_tokens_are_refreshed_until_a_testing_apps_week_is_over(
    tenant: Tenant,
    google: Google,
    runtime: Runtime,
    scheduler_db: Database,
    clock: FakeClock,
) -> None:
    google.client.testing = True  # its refresh tokens end 7 days after the consent
    business = new_business(google, "Mill Lane Dental", "High St Dental")
    first, second = await connect_google(tenant, google, business)
    assert first["reconnect_by"] is not None
    ends = datetime.fromisoformat(first["reconnect_by"].replace("Z", "+00:00"))
    assert ends == clock.now() + timedelta(days=7)

    clock.advance(timedelta(minutes=55))  # the hour's access token runs out in 5 minutes
    kept = await refreshed_or_expired(tenant, runtime, scheduler_db, clock, first)
    assert kept["status"] == "active"
    assert kept["token_expires_at"] > first["token_expires_at"]

    clock.advance(timedelta(days=7))
    gone = await refreshed_or_expired(tenant, runtime, scheduler_db, clock, second)
    assert gone["status"] == "expired"
