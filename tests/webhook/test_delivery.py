"""Events reach a real receiver on 127.0.0.1, signed, retried, in order, and never lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select, text

from crier.kit.db import Database
from crier.kit.outbound import Guard
from crier.models import Post, WebhookEvent
from crier.scheduler.worker import Worker
from crier.webhook import events
from crier.webhook import repository as webhook_repository
from crier.webhook.dispatcher import RETRY_SCHEDULE, Dispatcher
from crier.webhook.events import EventType
from tests.conftest import FakeClock, MakeTenant, Tenant
from tests.post.conftest import at, create, draft_body, sandbox_account, with_etag
from tests.post.test_safety import upload
from tests.webhook.conftest import Receiver, add_endpoint, deliver_due


async def scheduled_post(
    tenant: Tenant, clock: FakeClock, account: str | None = None, **delta: float
) -> dict[str, object]:
    account = account or await sandbox_account(tenant)
    response = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, **delta))
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_scheduled_post_reaches_the_receiver_signed(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    post = await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)

    [call] = receiver.to("/hooks")
    # As an independent receiver checks it, at the time the test clock says it is.
    payload = call.verify(endpoint["secret"], clock.now())
    assert payload["type"] == "post.scheduled"
    assert payload["sequence"] == 1
    assert payload["data"]["id"] == post["id"]
    assert payload["data"]["status"] == "scheduled"
    assert payload["timestamp"].endswith("Z")
    assert call.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match="signature"):
        call.verify("whsec_" + "A" * 44, clock.now())
    with pytest.raises(Exception, match="too old"):
        call.verify(endpoint["secret"], clock.now() + timedelta(minutes=6))


async def test_the_lifecycle_is_sent_in_sequence_with_one_event_per_target(
    tenant: Tenant,
    clock: FakeClock,
    receiver: Receiver,
    dispatcher: Dispatcher,
    worker: Worker,
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    first, second = await sandbox_account(tenant), await sandbox_account(tenant)
    body = draft_body(first, status="scheduled", publish_at=at(clock, seconds=60))
    body["targets"].append({"social_account_id": second})
    post = (await create(tenant, body)).json()
    await worker.tick()  # queued, held for its time
    clock.advance(timedelta(seconds=61))
    await worker.tick()  # sent and settled
    await deliver_due(dispatcher)

    mine = [c.payload for c in receiver.to("/hooks") if c.payload["data"].get("id") == post["id"]]
    mine += [
        c.payload for c in receiver.to("/hooks") if c.payload["data"].get("post_id") == post["id"]
    ]
    mine.sort(key=lambda p: p["sequence"])
    assert [p["sequence"] for p in mine] == [1, 2, 3, 4, 5]
    types = [p["type"] for p in mine]
    assert types[:2] == ["post.scheduled", "post.queued"]
    assert sorted(types[2:4]) == ["post.delivery.published"] * 2
    assert types[4] == "post.published"
    assert mine[4]["data"]["status"] == "published"
    deliveries = {p["data"]["social_account_id"] for p in mine[2:4]}
    assert deliveries == {first, second}
    for call in receiver.to("/hooks"):
        call.verify(endpoint["secret"])


async def test_a_rolled_back_change_emits_nothing(
    tenant: Tenant, clock: FakeClock, db: Database
) -> None:
    post = await scheduled_post(tenant, clock, hours=1)

    async def change_that_fails() -> None:
        async with db.workspace_transaction(UUID(tenant.id)) as session:
            await events.emit(
                session, clock.now(), EventType.POST_CANCELLED, {}, post_id=UUID(str(post["id"]))
            )
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        types = (await session.execute(select(WebhookEvent.type))).scalars().all()
        sequence = await session.scalar(select(Post.event_sequence))
    assert types == ["post.scheduled"]
    assert sequence == 1


async def test_a_refused_api_change_emits_nothing(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    tenant = await make_tenant()
    account = await sandbox_account(tenant)
    body = draft_body(account, status="scheduled", publish_at=at(clock, hours=1))
    body["payload"]["text"] = "x" * 100_000  # too long for every platform: 422
    assert (await create(tenant, body)).status_code == 422
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


async def test_committed_events_are_delivered_by_a_dispatcher_started_afterwards(
    tenant: Tenant,
    clock: FakeClock,
    receiver: Receiver,
    db: Database,
    scheduler_db: Database,
    dispatcher: Dispatcher,
) -> None:
    await add_endpoint(tenant, f"{receiver.url}/hooks")
    await scheduled_post(tenant, clock, hours=1)
    # The first dispatcher claims the delivery and dies before sending (its lease stays).
    async with scheduler_db.engine.begin() as conn:
        claimed = await webhook_repository.claim_due_deliveries(
            conn,
            worker="dead-dispatcher",
            now=clock.now(),
            lease_until=clock.now() + timedelta(seconds=60),
            busy_ids=[],
            busy_room=[],
            per_endpoint=4,
            limit=10,
        )
        assert len(claimed) == 1
    await deliver_due(dispatcher)
    assert receiver.to("/hooks") == []  # leased by the dead one
    clock.advance(timedelta(seconds=61))
    await deliver_due(dispatcher)
    assert [c.payload["type"] for c in receiver.to("/hooks")] == ["post.scheduled"]


async def test_failures_are_retried_on_schedule_with_the_same_webhook_id(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    receiver.script = [500, 503, 200]
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 1
    clock.advance(RETRY_SCHEDULE[1] * 0.85)  # before the earliest jittered retry
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 1
    clock.advance(RETRY_SCHEDULE[1] * 0.3)
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 2
    clock.advance(RETRY_SCHEDULE[2] * 1.1)
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 3
    assert len({c.headers["webhook-id"] for c in receiver.calls}) == 1
    for call in receiver.calls:
        call.verify(endpoint["secret"])

    listed = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    [delivery] = listed["data"]
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["next_attempt_at"] is None
    assert (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()[
        "failing_since"
    ] is None


async def test_retry_after_is_honoured(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    receiver.script = [(429, {"Retry-After": "120"})]
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    clock.advance(timedelta(seconds=100))  # past the 5-second schedule, within Retry-After
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 1
    listed = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    assert listed["data"][0]["status"] == "pending"
    clock.advance(timedelta(seconds=21))
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 2


async def test_410_gone_disables_the_endpoint(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    receiver.script = [410]
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    shown = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert shown["enabled"] is False
    assert "410" in shown["disabled_reason"]
    await scheduled_post(tenant, clock, hours=2)
    clock.advance(timedelta(hours=1))
    await deliver_due(dispatcher)
    assert len(receiver.calls) == 1


async def test_an_endpoint_failing_for_long_enough_is_disabled_and_says_why(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    dispatcher.disable_after = timedelta(hours=1)
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    receiver.script = [500] * 20
    await scheduled_post(tenant, clock, hours=30)
    for _ in range(6):
        await deliver_due(dispatcher)
        clock.advance(timedelta(minutes=35))
    shown = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert shown["enabled"] is False
    assert "failed since" in shown["disabled_reason"]
    assert shown["failing_since"] is not None
    calls = len(receiver.calls)
    clock.advance(timedelta(hours=11))
    await deliver_due(dispatcher)
    assert len(receiver.calls) == calls
    # Re-enabled, it gets new events again.
    response = await tenant.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True})
    assert (response.json()["disabled_reason"], response.json()["failing_since"]) == (None, None)
    receiver.script = []
    await scheduled_post(tenant, clock, hours=30)
    await deliver_due(dispatcher)
    assert len(receiver.calls) == calls + 1


async def test_a_posts_events_wait_for_the_earlier_ones(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    await add_endpoint(tenant, f"{receiver.url}/hooks")
    receiver.script = [500]
    created = await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)  # post.scheduled fails once
    cancel = await tenant.post(f"/v1/posts/{created['id']}/cancel")
    assert cancel.status_code == 200
    await deliver_due(dispatcher)
    assert [c.payload["type"] for c in receiver.calls] == ["post.scheduled"]
    clock.advance(timedelta(seconds=6))
    await deliver_due(dispatcher)
    assert [c.payload["type"] for c in receiver.calls] == [
        "post.scheduled",
        "post.scheduled",
        "post.cancelled",
    ]
    assert [c.payload["sequence"] for c in receiver.calls[1:]] == [1, 2]


async def test_a_hanging_receiver_does_not_delay_another_endpoint(
    make_tenant: MakeTenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    slow, fast = await make_tenant(), await make_tenant()
    receiver.hang.add("/slow")
    await add_endpoint(slow, f"{receiver.url}/slow")
    await add_endpoint(fast, f"{receiver.url}/fast")
    account = await sandbox_account(slow)
    for _ in range(6):
        await scheduled_post(slow, clock, account, hours=1)
    await dispatcher.tick()  # the slow endpoint's calls start and hang
    await scheduled_post(fast, clock, hours=1)
    await dispatcher.tick()
    async with asyncio.timeout(1.5):  # well before the 2-second call timeout
        await receiver.called("/fast")
    assert len(receiver.to("/slow")) == dispatcher.per_endpoint
    receiver.released.set()
    await dispatcher.drain()


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    rotated = (await tenant.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["secret"].startswith("whsec_")
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    [call] = receiver.calls
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    call.verify(endpoint["secret"])
    call.verify(rotated["secret"])

    clock.advance(timedelta(hours=24, seconds=1))
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    last = receiver.calls[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    last.verify(rotated["secret"])


async def test_a_forbidden_destination_is_refused_before_any_connection(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    """The name resolves, through the guard's injected resolver only, to this machine, which
    this guard forbids. Were the guard to fail, the call would land on the test's own
    receiver (as it does in test_outbound when loopback is allowed), never off the machine;
    it must not land at all. Private and metadata ranges are refused by the same check
    (test_outbound), without any connection being possible."""
    looked_up: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    port = receiver.url.rsplit(":", 1)[1]
    endpoint = await add_endpoint(tenant, f"http://hooks.crier-guard.invalid:{port}/hooks")
    # Set before its first call, when the dispatcher builds its HTTP client.
    dispatcher.guard = Guard(resolver=resolver)
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    # Looked up once; another test's endpoint of the shared database may come due too.
    assert [h for h in looked_up if h == "hooks.crier-guard.invalid"] == [
        "hooks.crier-guard.invalid"
    ]
    assert receiver.calls == []
    listed = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    [attempt] = listed["data"][0]["attempts"]
    assert attempt["status_code"] is None
    assert "resolves to 127.0.0.1, a loopback address" in attempt["error"]
    # Its retries would reach other tests' dispatchers: the endpoint goes.
    assert (await tenant.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 204


async def test_test_events_and_replays_keep_their_webhook_id(
    tenant: Tenant, other_tenant: Tenant, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    sent = await tenant.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    assert sent.status_code == 202
    await deliver_due(dispatcher)
    [call] = receiver.calls
    assert call.payload["type"] == "webhook.test"
    event_id = sent.json()["event_id"]
    assert call.headers["webhook-id"] == event_id

    assert (await other_tenant.post(f"/v1/webhook-events/{event_id}/replay")).status_code == 404
    replay = await tenant.post(f"/v1/webhook-events/{event_id}/replay")
    assert replay.json()["deliveries"] == 1
    await deliver_due(dispatcher)
    assert [c.headers["webhook-id"] for c in receiver.calls] == [event_id, event_id]
    assert receiver.calls[0].body == receiver.calls[1].body
    event = (await tenant.get(f"/v1/webhook-events/{event_id}")).json()
    assert event["payload"]["type"] == "webhook.test"


async def test_media_deletion_and_unscheduling_are_events(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    await add_endpoint(
        tenant, f"{receiver.url}/hooks", event_types=["post.unscheduled", "media.deleted"]
    )
    created = await scheduled_post(tenant, clock, hours=1)
    unscheduled = await with_etag(
        tenant, "POST", f"/v1/posts/{created['id']}/unschedule", f'"{created["version"]}"'
    )
    assert unscheduled.status_code == 200, unscheduled.text
    media = await upload(tenant)
    assert (await tenant.delete(f"/v1/media/{media}")).status_code == 204
    await deliver_due(dispatcher)
    sent = {c.payload["type"]: c.payload for c in receiver.calls}
    assert sorted(sent) == ["media.deleted", "post.unscheduled"]  # not post.scheduled
    assert sent["media.deleted"]["data"]["id"] == media
    assert sent["media.deleted"]["sequence"] is None  # sequences number a post's events
    assert sent["post.unscheduled"]["data"]["status"] == "draft"


async def test_a_post_taken_over_mid_publishing_is_not_announced_as_queued_again(
    tenant: Tenant, clock: FakeClock, db: Database, worker: Worker
) -> None:
    post = await scheduled_post(tenant, clock, seconds=60)
    post_id, workspace_id = UUID(str(post["id"])), UUID(tenant.id)
    await worker.tick()  # queued and prepared
    async with db.workspace_transaction(workspace_id) as session:
        await events.emit(
            session, clock.now(), EventType.POST_DELIVERY_PUBLISHED, {}, post_id=post_id
        )
    # Another worker takes the post over (its lease expired) and prepares it again.
    await worker.sender.prepare(workspace_id, [post_id])
    async with db.workspace_transaction(workspace_id) as session:
        types = (
            await session.execute(select(WebhookEvent.type).order_by(WebhookEvent.sequence))
        ).scalars()
        assert list(types) == ["post.scheduled", "post.queued", "post.delivery.published"]


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    tenant: Tenant,
    clock: FakeClock,
    receiver: Receiver,
    db: Database,
    scheduler_db: Database,
    dispatcher: Dispatcher,
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/slow")
    receiver.hang.add("/slow")
    # Set before its first call, when the dispatcher builds its HTTP client.
    dispatcher.guard = Guard(allow_loopback=True)
    dispatcher.timeout = timedelta(seconds=0.3)
    await scheduled_post(tenant, clock, hours=1)
    await deliver_due(dispatcher)
    listed = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    [delivery] = listed["data"]
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["error"] == "no answer within 0.3 s"
    assert delivery["attempts"][0]["status_code"] is None
    assert delivery["next_attempt_at"] is not None


async def test_old_settled_events_are_purged_in_every_workspace_and_only_those(
    make_tenant: MakeTenant,
    clock: FakeClock,
    receiver: Receiver,
    db: Database,
    scheduler_db: Database,
    dispatcher: Dispatcher,
) -> None:
    from crier.models import WebhookAttempt

    ages = {}
    for name, status in (("delivered", 200), ("pending", 500), ("young", 200)):
        tenant = await make_tenant()
        await add_endpoint(tenant, f"{receiver.url}/{name}")
        receiver.script = [status]
        await scheduled_post(tenant, clock, hours=1)
        await deliver_due(dispatcher)
        ages[name] = (UUID(tenant.id), timedelta(days=3 if name != "young" else 1))
    # Age the events in the database's own time, which the purge policy reads.
    for workspace_id, age in ages.values():
        async with db.workspace_transaction(workspace_id) as session:
            await session.execute(
                text("UPDATE webhook_events SET created_at = now() - :age"), {"age": age}
            )
    purged = await webhook_repository.purge_events(
        scheduler_db, datetime.now(UTC) - timedelta(days=2)
    )
    assert purged >= 1

    async def left(workspace_id: UUID) -> tuple[int, int]:
        async with db.workspace_transaction(workspace_id) as session:
            event_count = await session.scalar(select(func.count()).select_from(WebhookEvent))
            attempt_count = await session.scalar(select(func.count()).select_from(WebhookAttempt))
        return event_count or 0, attempt_count or 0

    assert await left(ages["delivered"][0]) == (0, 0)  # with its delivery and attempt
    assert await left(ages["pending"][0]) == (1, 1)  # a retry is still to come
    assert await left(ages["young"][0]) == (1, 1)
