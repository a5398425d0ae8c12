"""The worker against the real sandbox platform, with time moved by the test clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select, update

from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import SCHEDULER_ROLE
from crier.kit.vault import Vault
from crier.models import DeliveryAttempt, WebhookEvent
from crier.runtime import Runtime
from crier.scheduler.worker import PURGE_EVERY, Worker
from tests.conftest import FakeClock, Tenant, assert_problem, connect_as
from tests.post.conftest import at, sandbox_account


@pytest.fixture
def platform_timeout() -> float:
    return 0.3  # the hang tests need the worker to give up quickly


async def schedule(
    tenant: Tenant, accounts: list[str], publish_at: str, text: str = "Hello"
) -> dict[str, Any]:
    response = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": text},
            "targets": [{"social_account_id": a} for a in accounts],
            "status": "scheduled",
            "publish_at": publish_at,
        },
    )
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


async def deliveries(tenant: Tenant, post_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await tenant.get(f"/v1/posts/{post_id}/deliveries")).json()[
        "data"
    ]
    return data


async def received_for(control: httpx.AsyncClient, keys: set[str]) -> list[dict[str, Any]]:
    posts = (await control.get("/control/received")).json()["data"]
    return [p for p in posts if p["idempotency_key"] in keys]


async def test_a_post_is_queued_five_minutes_ahead_and_sent_at_its_time(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    one, two = await sandbox_account(tenant), await sandbox_account(tenant)
    post = await schedule(tenant, [one, two], at(clock, minutes=10))
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "scheduled"

    clock.advance(timedelta(minutes=5, seconds=1))
    await worker.tick()
    queued = (await tenant.get(f"/v1/posts/{post['id']}")).json()
    assert (queued["status"], queued["locked"]) == ("queued", True)
    prepared = await deliveries(tenant, post["id"])
    assert [d["status"] for d in prepared] == ["pending", "pending"]

    clock.advance(timedelta(minutes=4, seconds=58))
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "queued"
    clock.advance(timedelta(seconds=1))
    await worker.tick()
    done = (await tenant.get(f"/v1/posts/{post['id']}")).json()
    assert done["status"] == "published"
    assert done["published_at"] is not None
    sent = await deliveries(tenant, post["id"])
    assert {d["status"] for d in sent} == {"published"}
    assert all(d["permalink"] and d["platform_post_id"] for d in sent)
    assert [len(d["attempts"]) for d in sent] == [1, 1]
    on_platform = await received_for(control, {d["id"] for d in sent})
    assert len(on_platform) == 2


async def test_a_failure_is_retried_and_every_attempt_recorded(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"fail_next": 1})
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending"

    assert delivery["attempts"][0]["error_code"] == "platform_unavailable"
    assert delivery["attempts"][0]["http_status"] == 503
    assert delivery["next_attempt_at"] is not None
    clock.advance(timedelta(minutes=2))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published"
    assert [a["outcome"] for a in delivery["attempts"]] == ["retrying", "published"]
    assert len(await received_for(control, {delivery["id"]})) == 1


async def test_three_attempts_at_most_then_the_post_fails(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"fail_next": 5})
    for _ in range(4):
        clock.advance(timedelta(minutes=1))
        await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 3
    assert delivery["error_code"] == "platform_unavailable"
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "failed"


async def test_a_rejection_is_permanent(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1), text="forbidden words")
    await control.put("/control/faults", json={"reject_text": "forbidden"})
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "content_rejected")
    assert len(delivery["attempts"]) == 1
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "failed"


async def test_a_throttled_send_waits_for_retry_after(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"rate_limit_next": 1, "retry_after_seconds": 90})
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "rate_limited"
    from datetime import datetime

    wait = datetime.fromisoformat(delivery["next_attempt_at"]) - clock.now()
    assert wait >= timedelta(seconds=90)
    clock.advance(timedelta(seconds=60))
    await worker.tick()
    assert (await deliveries(tenant, post["id"]))[0]["status"] == "pending"
    clock.advance(timedelta(seconds=31))
    await worker.tick()
    assert (await deliveries(tenant, post["id"]))[0]["status"] == "published"


async def test_an_unanswered_send_is_found_by_its_key_not_sent_twice(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"hang_after_accept_next": 1, "hang_seconds": 1})
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "timeout"
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published"
    assert len(delivery["attempts"]) == 1, "settled by looking the key up, not by resending"
    [attempt] = delivery["attempts"]
    assert (attempt["outcome"], attempt["error_code"]) == ("published", "timeout")
    assert "idempotency key" in attempt["message"]

    assert len(await received_for(control, {delivery["id"]})) == 1


async def test_an_interrupted_send_not_found_on_the_platform_is_sent_again_once(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient, db: Database
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"hang_next": 1, "hang_seconds": 1})
    clock.advance(timedelta(minutes=1))
    await worker.tick()  # the call hangs before the platform stores anything
    [delivery] = await deliveries(tenant, post["id"])
    # As a worker killed during that call leaves it: the attempt still open.
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(
            update(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == UUID(delivery["id"]))
            .values(outcome="sending", finished_at=None, error_code=None, message=None)
        )
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published"
    interrupted, resent = delivery["attempts"]
    assert (interrupted["outcome"], interrupted["error_code"]) == ("unknown", "outcome_unknown")
    assert "not found on the platform" in interrupted["message"]
    assert interrupted["finished_at"] is not None
    assert resent["outcome"] == "published"
    assert len(await received_for(control, {delivery["id"]})) == 1


async def test_a_post_cancelled_after_queuing_is_never_sent(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, minutes=3))
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "queued"
    assert [d["status"] for d in await deliveries(tenant, post["id"])] == ["pending"]
    clock.advance(timedelta(minutes=2, seconds=59))
    assert (await tenant.post(f"/v1/posts/{post['id']}/cancel")).status_code == 200
    clock.advance(timedelta(seconds=1))
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "cancelled"
    sent = await deliveries(tenant, post["id"])
    assert all(d["attempts"] == [] for d in sent)
    assert [(d["status"], d["next_attempt_at"]) for d in sent] == [("cancelled", None)]
    assert await received_for(control, {d["id"] for d in sent}) == []


async def test_an_expiring_token_is_refreshed_before_sending(
    tenant: Tenant, worker: Worker, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    post = await schedule(tenant, [account], at(clock, hours=3))
    clock.advance(timedelta(hours=2, minutes=56))  # the 2-hour token has expired
    await worker.tick()
    refreshed = (await tenant.get(f"/v1/social-accounts/{account}")).json()
    assert refreshed["status"] == "active"
    clock.advance(timedelta(minutes=4))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery


async def test_a_revoked_account_fails_its_delivery_at_once(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    external = (await tenant.get(f"/v1/social-accounts/{account}")).json()["external_id"]
    post = await schedule(tenant, [account], at(clock, minutes=1))
    await control.post(f"/control/accounts/{external}/revoke")
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_revoked")
    assert len(delivery["attempts"]) == 1


async def test_deliveries_of_another_workspace_answer_404(
    tenant: Tenant, other_tenant: Tenant, worker: Worker, clock: FakeClock
) -> None:
    post = await schedule(other_tenant, [await sandbox_account(other_tenant)], at(clock, minutes=1))
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    assert_problem(await tenant.get(f"/v1/posts/{post['id']}/deliveries"), 404, "not-found")
    assert len(await deliveries(other_tenant, post["id"])) == 1


async def test_retry_resends_only_the_failed_targets(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    good, flaky = await sandbox_account(tenant), await sandbox_account(tenant)
    post = await schedule(tenant, [good, flaky], at(clock, minutes=1))
    assert_problem(await tenant.post(f"/v1/posts/{post['id']}/retry"), 409, "post-not-retryable")
    # One of the two concurrent sends is refused for good; which one does not matter.
    await control.put("/control/faults", json={"reject_next": 1})

    clock.advance(timedelta(minutes=1))
    await worker.tick()
    first = await deliveries(tenant, post["id"])
    assert sorted(d["status"] for d in first) == ["failed", "published"]
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "failed"

    retried = await tenant.post(f"/v1/posts/{post['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "scheduled"
    await worker.tick()
    after = await deliveries(tenant, post["id"])
    assert {d["status"] for d in after} == {"published"}
    by_id = {d["id"]: d for d in after}
    was_failed = next(d for d in first if d["status"] == "failed")
    was_published = next(d for d in first if d["status"] == "published")
    assert len(by_id[was_failed["id"]]["attempts"]) == 2
    assert by_id[was_published["id"]]["attempts"] == was_published["attempts"]
    assert len(await received_for(control, set(by_id))) == 2
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "published"


async def test_metrics_show_lateness_outcomes_and_the_queue(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    account = await sandbox_account(tenant)
    await schedule(tenant, [account], at(clock, minutes=1))
    await control.put("/control/faults", json={"fail_next": 1})
    clock.advance(timedelta(minutes=1, seconds=2))
    await worker.tick()
    metrics = (await tenant.http.get("/metrics")).text
    assert "crier_publish_lateness_seconds_bucket" in metrics
    assert (
        'crier_delivery_attempts_total{error_code="platform_unavailable",outcome="retrying"}'
        in metrics
    )
    assert "crier_queue_depth " in metrics
    assert "crier_leases_held " in metrics


@asynccontextmanager
async def running(runtime: Runtime, scheduler_db: Database, batch: int) -> AsyncIterator[Worker]:
    """A worker running on its own with a one-minute poll, stopped afterwards."""
    worker = runtime.worker(
        scheduler_db, worker_id="running-worker", poll=timedelta(minutes=1), batch=batch
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def statuses_within_seconds(tenant: Tenant, posts: list[dict[str, Any]]) -> list[str]:
    """The posts' statuses once all are published, or after ~10 s (far below the poll)."""
    statuses: list[str] = []
    for _ in range(100):
        statuses = [(await tenant.get(f"/v1/posts/{p['id']}")).json()["status"] for p in posts]
        if set(statuses) == {"published"}:
            break
        await asyncio.sleep(0.1)
    return statuses


async def test_a_post_scheduled_for_now_wakes_the_worker_at_once(
    tenant: Tenant, runtime: Runtime, scheduler_db: Database, clock: FakeClock
) -> None:
    """With a one-minute poll, only the NOTIFY can get this post out within seconds."""
    async with running(runtime, scheduler_db, batch=1000) as worker:
        await asyncio.wait_for(worker.listening.wait(), timeout=10)
        await asyncio.sleep(0)
        post = await schedule(tenant, [await sandbox_account(tenant)], clock.now().isoformat())
        assert await statuses_within_seconds(tenant, [post]) == ["published"]


async def test_a_full_claim_is_followed_by_another_without_waiting_for_the_poll(
    tenant: Tenant, runtime: Runtime, scheduler_db: Database, clock: FakeClock
) -> None:
    """Five posts already due, claims of two, a minute-long poll and no NOTIFY once the
    worker runs: only claiming again straight after a full claim sends all five soon."""
    account = await sandbox_account(tenant)
    posts = [await schedule(tenant, [account], clock.now().isoformat()) for _ in range(5)]
    async with running(runtime, scheduler_db, batch=2):
        assert await statuses_within_seconds(tenant, posts) == ["published"] * 5


async def test_a_claim_held_up_in_the_database_holds_up_no_post_falling_due(
    tenant: Tenant,
    runtime: Runtime,
    scheduler_db: Database,
    db_urls: DatabaseUrls,
    clock: FakeClock,
) -> None:
    """The claim round that takes this post goes on to purge expired idempotency keys, and
    that table is locked: the post is sent all the same, as claims run beside the firing."""
    async with running(runtime, scheduler_db, batch=1000) as worker:
        await asyncio.wait_for(worker.listening.wait(), timeout=10)
        account = await sandbox_account(tenant)
        with connect_as(db_urls, SCHEDULER_ROLE) as blocker:
            blocker.execute("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE")
            clock.advance(PURGE_EVERY + timedelta(seconds=1))  # the next round purges
            post = await schedule(tenant, [account], clock.now().isoformat())
            assert await statuses_within_seconds(tenant, [post]) == ["published"]
            blocker.rollback()


async def test_worker_logs_never_carry_tokens(
    tenant: Tenant,
    worker: Worker,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    from uuid import UUID

    from crier.models import SocialAccount

    caplog.set_level(logging.DEBUG)
    account = await sandbox_account(tenant)
    await schedule(tenant, [account], at(clock, hours=3))
    await control.put("/control/faults", json={"fail_next": 1})
    clock.advance(timedelta(hours=2, minutes=56))  # refresh, then a failed and a good send
    await worker.tick()
    clock.advance(timedelta(minutes=5))
    await worker.tick()
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        row = await session.get(SocialAccount, (UUID(tenant.id), UUID(account)))
        assert row is not None
        assert row.access_token
        assert row.refresh_token
        secrets_now = [vault.open(row.access_token), vault.open(row.refresh_token), tenant.key]
    assert caplog.records, "the worker logged something to check"
    for secret in secrets_now:
        assert secret not in caplog.text


async def test_a_refused_refresh_expires_the_account_and_fails_with_auth_expired(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient, db: Database
) -> None:
    account = await sandbox_account(tenant)
    external = (await tenant.get(f"/v1/social-accounts/{account}")).json()["external_id"]
    post = await schedule(tenant, [account], at(clock, hours=3))
    within_a_week = await schedule(tenant, [account], at(clock, days=6))
    await schedule(tenant, [account], at(clock, days=8))
    await control.post(f"/control/accounts/{external}/revoke")  # refresh tokens die too
    clock.advance(timedelta(hours=2, minutes=56))
    await worker.tick()
    assert (await tenant.get(f"/v1/social-accounts/{account}")).json()["status"] == "expired"
    clock.advance(timedelta(minutes=4))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_expired")
    assert delivery["attempts"] == []
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "failed"
    # Each step was announced to webhooks, the account's expiry once.
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        sent = [
            (e.type, e.payload["data"])
            for e in (
                await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))
            ).scalars()
        ]
    sent = [(t, d) for t, d in sent if t != "post.scheduled" or d["id"] == post["id"]]
    assert [t for t, _ in sent] == [
        "post.scheduled",
        "post.queued",
        "social_account.expired",
        "post.delivery.failed",
        "post.failed",
    ]
    assert (sent[2][1]["id"], sent[2][1]["status"]) == (account, "expired")
    assert sent[2][1]["scheduled_posts"] == [post["id"], within_a_week["id"]]
    assert sent[3][1]["error_code"] == "auth_expired"


async def test_media_are_sent_in_the_crop_the_platform_prefers(
    tenant: Tenant, worker: Worker, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    from tests.media.conftest import image_bytes, mp4_bytes

    image = (
        await tenant.post("/v1/media", files={"file": ("a.png", image_bytes("PNG"), "image/png")})
    ).json()["id"]
    video = (
        await tenant.post("/v1/media", files={"file": ("v.mp4", mp4_bytes(), "video/mp4")})
    ).json()["id"]
    account = await sandbox_account(tenant)
    posts = []
    for media in ([image], [video]):
        response = await tenant.post(
            "/v1/posts",
            json={
                "payload": {"text": "with media", "media_ids": media},
                "targets": [{"social_account_id": account}],
                "status": "scheduled",
                "publish_at": at(clock, minutes=1),
            },
        )
        assert response.status_code == 201, response.text
        posts.append(response.json()["id"])
    clock.advance(timedelta(minutes=1))
    await worker.tick()
    keys = {d["id"]: post for post in posts for d in await deliveries(tenant, post)}
    sent = {keys[p["idempotency_key"]]: p["media"] for p in await received_for(control, set(keys))}
    assert sent[posts[0]] == [
        {"kind": "image", "url": f"http://127.0.0.1:8000/v1/media/{image}/file?variant=square"}
    ]
    assert sent[posts[1]] == [
        {"kind": "video", "url": f"http://127.0.0.1:8000/v1/media/{video}/file"}
    ]
