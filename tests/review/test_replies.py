"""Replies to reviews: asked through the API, sent by workers once, retried on transient
failures, visible when they fail, safe across a worker killed mid-send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import update

from crier.kit.db import Database
from crier.models import ReviewReplyRecord
from crier.platforms.base import NetworkReview
from crier.review import service
from crier.review.sending import REPLY_LEASE, ReplySender
from crier.review.tasks import ReviewSyncer
from crier.social_account import repository as account_repository
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.review.conftest import Location, NewSender, events_of, feed


@pytest.fixture(autouse=True)
async def _settle_replies(tenant: Tenant, db: Database) -> AsyncIterator[None]:
    """The database is shared by the whole suite and workers send due replies of every
    workspace: a reply a test leaves pending is closed after it, so that another test's
    worker does not send it."""
    yield
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(
            update(ReviewReplyRecord)
            .where(ReviewReplyRecord.status == "pending")
            .values(status="superseded", next_attempt_at=None, leased_until=None)
        )


async def one_review(location: Location, syncer: ReviewSyncer, *args: Any, **kw: Any) -> str:
    """A review written on the network and synced: its id in Crier."""
    external = await location.review(*args, **kw)
    due = await location.tenant.post(
        "/v1/reviews/sync", json={"social_account_id": location.account_id}
    )
    assert due.status_code == 202, due.text
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    for review in (await feed(location.tenant, limit=100))["data"]:
        if review["external_id"] == external:
            return str(review["id"])
    raise AssertionError("the review was not synced")


async def read(tenant: Tenant, review_id: str) -> tuple[dict[str, Any], str]:
    """The review with its reply history, and its ETag."""
    got = await tenant.get(f"/v1/reviews/{review_id}")
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body, got.headers["etag"]


async def put_reply(
    tenant: Tenant, review_id: str, etag: str | None, **body: object
) -> httpx.Response:
    headers = tenant.auth | ({"If-Match": etag} if etag is not None else {})
    return await tenant.http.put(f"/v1/reviews/{review_id}/reply", headers=headers, json=body)


async def delete_reply(tenant: Tenant, review_id: str, etag: str) -> httpx.Response:
    headers = tenant.auth | {"If-Match": etag}
    return await tenant.http.delete(f"/v1/reviews/{review_id}/reply", headers=headers)


async def reply_calls(control: httpx.AsyncClient) -> int:
    calls: dict[str, int] = (await control.get("/control/calls")).json()
    return calls.get("PUT /v1/reviews/{review_id}/reply", 0)


async def network_took(control: httpx.AsyncClient, calls: int) -> None:
    """Wait (10 s at most) until the network has received `calls` replies in all."""
    deadline = time.monotonic() + 10
    for _ in range(1000):
        if await reply_calls(control) >= calls or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    assert await reply_calls(control) == calls


async def test_a_reply_is_accepted_then_sent_once_and_confirmed(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
) -> None:
    review_id = await one_review(location, syncer, 2, "Slow service")
    before, etag = await read(location.tenant, review_id)
    calls = await reply_calls(control)

    accepted = await put_reply(location.tenant, review_id, etag, text="Sorry, we are on it.")
    assert accepted.status_code == 202, accepted.text
    pending = accepted.json()
    assert pending["reply_status"] == "pending"
    assert pending["reply"] is None  # not on the network yet
    assert pending["sequence"] > before["sequence"]
    assert accepted.headers["etag"] == f'"{pending["sequence"]}"'
    assert await reply_calls(control) == calls  # nothing is sent by the request itself

    clock.advance(timedelta(seconds=1))
    assert await sender.sweep() == 1
    assert await sender.sweep() == 0  # sent once
    assert await reply_calls(control) == calls + 1
    done, _ = await read(location.tenant, review_id)
    assert done["reply"]["text"] == "Sorry, we are on it."
    assert done["responded_at"] is not None
    assert done["reply_status"] is None
    assert done["reply_error"] is None
    [record] = done["replies"]
    assert record["origin"] == "crier"
    assert record["status"] == "sent"
    assert record["attempts"] == 1
    assert record["requested_by"] == location.tenant.owner_id
    assert record["sent_at"] is not None
    [replied] = await events_of(db, location.tenant, "review.replied")
    assert replied["id"] == review_id
    assert replied["reply"]["text"] == "Sorry, we are on it."

    # The next sync reads the reply Crier made: it is not a change made elsewhere.
    clock.advance(timedelta(minutes=15))
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    after, _ = await read(location.tenant, review_id)
    assert after["sequence"] == done["sequence"]
    assert len(after["replies"]) == 1
    assert await events_of(db, location.tenant, "review.updated") == []


async def test_replying_refuses_stale_missing_and_bad_requests(
    location: Location, syncer: ReviewSyncer, other_tenant: Tenant
) -> None:
    review_id = await one_review(location, syncer, 3, "Fine")
    tenant = location.tenant
    _, etag = await read(tenant, review_id)
    assert_problem(
        await put_reply(tenant, review_id, None, text="Hi"), 428, "precondition-required"
    )
    stale = f'"{int(etag.strip(chr(34))) + 1000}"'
    assert_problem(await put_reply(tenant, review_id, stale, text="Hi"), 412, "precondition-failed")
    assert_problem(await put_reply(tenant, review_id, "nope", text="Hi"), 422, "validation-error")
    for body in (
        {},
        {"text": "   "},
        {"text": "é" * 2049},  # 4098 bytes
        {"text": "Hi", "template_id": str(uuid4())},
        {"text": "Hi", "tone": "warm"},
        {"template_id": str(uuid4())},  # no such template
    ):
        assert_problem(await put_reply(tenant, review_id, etag, **body), 422, "validation-error")
    assert_problem(await put_reply(other_tenant, review_id, etag, text="Hi"), 404, "not-found")
    assert_problem(await put_reply(tenant, str(uuid4()), etag, text="Hi"), 404, "not-found")
    # Nothing was asked: the review is as it was.
    unchanged, same = await read(tenant, review_id)
    assert same == etag
    assert unchanged["replies"] == []
    assert unchanged["reply_status"] is None


async def test_a_removed_review_or_an_unreachable_location_cannot_be_replied_to(
    location: Location, syncer: ReviewSyncer, clock: FakeClock, control: httpx.AsyncClient
) -> None:
    gone = await one_review(location, syncer, 1, "Awful")
    kept = await one_review(location, syncer, 4, "Nice")
    removed = (await feed(location.tenant, limit=100))["data"]
    await location.remove(next(r["external_id"] for r in removed if r["id"] == gone))
    clock.advance(timedelta(minutes=15))
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    body, etag = await read(location.tenant, gone)
    assert body["removed_at"] is not None
    assert_problem(await put_reply(location.tenant, gone, etag, text="Hi"), 409, "review-removed")

    await control.post(f"/control/accounts/{location.external_id}/revoke")
    disconnected = await location.tenant.delete(
        f"/v1/social-accounts/{location.account_id}", params={"force": "true"}
    )
    assert disconnected.status_code in (200, 204), disconnected.text
    _, etag = await read(location.tenant, kept)
    problem = assert_problem(
        await put_reply(location.tenant, kept, etag, text="Hi"), 409, "location-unavailable"
    )
    assert problem["code"] == "account_disconnected"


async def test_replying_needs_the_reviews_reply_permission(
    location: Location, syncer: ReviewSyncer
) -> None:
    review_id = await one_review(location, syncer, 5, "Great")
    viewer = await location.tenant.member_with_key("viewer")
    _, etag = await read(viewer, review_id)  # a viewer reads reviews
    assert_problem(
        await put_reply(viewer, review_id, etag, text="Thanks"), 403, "permission-denied"
    )
    assert_problem(await delete_reply(viewer, review_id, etag), 403, "permission-denied")
    editor = await location.tenant.member_with_key("editor")
    assert (await put_reply(editor, review_id, etag, text="Thanks")).status_code == 202


async def test_a_transient_failure_is_retried_after_backoff_and_the_network_retry_after(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    clock: FakeClock,
    control: httpx.AsyncClient,
) -> None:
    review_id = await one_review(location, syncer, 2, "Cold food")
    _, etag = await read(location.tenant, review_id)
    assert (await put_reply(location.tenant, review_id, etag, text="Sorry!")).status_code == 202
    await control.put("/control/faults", json={"rate_limit_next": 1, "retry_after_seconds": 300})

    assert await sender.sweep() == 1
    waiting, _ = await read(location.tenant, review_id)
    assert waiting["reply_status"] == "pending"
    [record] = waiting["replies"]
    assert (record["status"], record["attempts"]) == ("pending", 1)
    assert record["error"]["code"] == "rate_limited"

    clock.advance(timedelta(seconds=299))
    assert await sender.sweep() == 0  # the network said 300 s
    await control.put("/control/faults", json={"fail_next": 1})
    clock.advance(timedelta(seconds=1))
    assert await sender.sweep() == 1
    [record] = (await read(location.tenant, review_id))[0]["replies"]
    assert (record["attempts"], record["error"]["code"]) == (2, "platform_unavailable")

    clock.advance(timedelta(seconds=20))
    assert await sender.sweep() == 0  # the second failure waits about a minute (30 s doubled)
    clock.advance(timedelta(minutes=2))
    assert await sender.sweep() == 1
    done, _ = await read(location.tenant, review_id)
    assert done["reply"]["text"] == "Sorry!"
    assert done["reply_status"] is None
    [record] = done["replies"]
    assert (record["status"], record["attempts"], record["error"]) == ("sent", 3, None)


async def test_a_reply_that_fails_for_good_shows_on_the_review_and_is_announced(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    new_sender: NewSender,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
) -> None:
    refused = await one_review(location, syncer, 1, "Terrible")
    worn_out = await one_review(location, syncer, 2, "Bad")
    for review_id, text in ((refused, "FORBIDDEN words"), (worn_out, "Sorry")):
        _, etag = await read(location.tenant, review_id)
        assert (await put_reply(location.tenant, review_id, etag, text=text)).status_code == 202

    # A refusal is final at once.
    await control.put("/control/faults", json={"reject_text": "FORBIDDEN"})
    patient = new_sender(attempts=2)
    await patient.send(location.workspace, UUID(await record_id(location.tenant, refused)))
    failed, _ = await read(location.tenant, refused)
    assert failed["reply_status"] == "failed"
    assert failed["reply_error"]["code"] == "content_rejected"
    assert failed["reply_error"]["message"]
    assert failed["replies"][0]["status"] == "failed"
    assert failed["reply"] is None

    # A transient failure is final once the attempts are spent.
    await control.put("/control/faults", json={"fail_next": 2})
    worn = UUID(await record_id(location.tenant, worn_out))
    assert await patient.send(location.workspace, worn) is False
    clock.advance(timedelta(minutes=5))
    assert await patient.send(location.workspace, worn) is False
    spent, _ = await read(location.tenant, worn_out)
    assert spent["reply_status"] == "failed"
    assert spent["reply_error"]["code"] == "platform_unavailable"
    assert spent["replies"][0]["attempts"] == 2
    clock.advance(timedelta(hours=2))
    assert await sender.sweep() == 0  # never sent again

    announced = await events_of(db, location.tenant, "review.reply_failed")
    assert [e["id"] for e in announced] == [refused, worn_out]
    assert await events_of(db, location.tenant, "review.replied") == []

    # Asking again clears the failure.
    await control.delete("/control/faults")
    _, etag = await read(location.tenant, refused)
    again = await put_reply(location.tenant, refused, etag, text="We are sorry.")
    assert again.json()["reply_status"] == "pending"
    assert again.json()["reply_error"] is None
    assert await sender.sweep() == 1
    assert (await read(location.tenant, refused))[0]["reply"]["text"] == "We are sorry."


async def record_id(tenant: Tenant, review_id: str) -> str:
    """The newest reply record of the review."""
    return str((await read(tenant, review_id))[0]["replies"][0]["id"])


async def test_a_worker_killed_after_the_network_took_the_reply_leaves_one_reply(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    new_sender: NewSender,
    clock: FakeClock,
    control: httpx.AsyncClient,
    db: Database,
) -> None:
    review_id = await one_review(location, syncer, 3, "Okay")
    _, etag = await read(location.tenant, review_id)
    assert (await put_reply(location.tenant, review_id, etag, text="Thank you")).status_code == 202
    calls = await reply_calls(control)
    # The network stores the reply, then holds its answer: the worker dies meanwhile.
    await control.put("/control/faults", json={"hang_after_accept_next": 1, "hang_seconds": 1})
    killed = asyncio.create_task(sender.sweep())
    await network_took(control, calls + 1)
    killed.cancel()
    await asyncio.gather(killed, return_exceptions=True)
    unsure, _ = await read(location.tenant, review_id)
    assert unsure["reply_status"] == "pending"

    other = new_sender()
    assert await other.sweep() == 0  # the dead worker's lease still holds
    clock.advance(REPLY_LEASE)
    assert await other.sweep() == 1
    done, _ = await read(location.tenant, review_id)
    assert done["reply"]["text"] == "Thank you"
    assert done["reply_status"] is None
    [record] = done["replies"]
    assert (record["status"], record["attempts"]) == ("sent", 2)
    assert await reply_calls(control) == calls + 2  # sent twice, an upsert: one reply
    assert len(await events_of(db, location.tenant, "review.replied")) == 1
    clock.advance(timedelta(minutes=15))
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    synced, _ = await read(location.tenant, review_id)
    assert synced["reply"]["text"] == "Thank you"
    assert len(synced["replies"]) == 1


async def test_a_newer_reply_replaces_one_not_yet_sent_and_waits_for_one_in_flight(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    new_sender: NewSender,
    control: httpx.AsyncClient,
) -> None:
    review_id = await one_review(location, syncer, 4, "Good")
    tenant = location.tenant
    _, etag = await read(tenant, review_id)
    first = await put_reply(tenant, review_id, etag, text="Thanks!")
    second = await put_reply(tenant, review_id, first.headers["etag"], text="Thank you so much!")
    assert second.status_code == 202
    assert_problem(
        await put_reply(tenant, review_id, etag, text="Stale"), 412, "precondition-failed"
    )
    assert await sender.sweep() == 1
    body, etag = await read(tenant, review_id)
    assert body["reply"]["text"] == "Thank you so much!"
    assert [(r["text"], r["status"]) for r in body["replies"]] == [
        ("Thank you so much!", "sent"),
        ("Thanks!", "superseded"),
    ]

    # One in flight: a newer one waits until it ends, so the network ends with the newer.
    await control.put("/control/faults", json={"hang_after_accept_next": 1, "hang_seconds": 0.5})
    assert (await put_reply(tenant, review_id, etag, text="Edited")).status_code == 202
    in_flight = asyncio.create_task(sender.sweep())
    await network_took(control, await reply_calls(control) + 1)
    _, etag = await read(tenant, review_id)
    assert (await put_reply(tenant, review_id, etag, text="Edited again")).status_code == 202
    assert await new_sender().sweep() == 0  # waits for the reply in flight
    assert await in_flight == 1
    between, _ = await read(tenant, review_id)
    assert between["reply"]["text"] == "Edited"  # what the network holds now
    assert between["reply_status"] == "pending"  # the newer one is still to go
    assert await new_sender().sweep() == 1
    last, _ = await read(tenant, review_id)
    assert last["reply"]["text"] == "Edited again"
    assert last["reply_status"] is None
    assert [(r["text"], r["status"]) for r in last["replies"][:2]] == [
        ("Edited again", "sent"),
        ("Edited", "superseded"),
    ]


async def test_a_reply_is_removed_and_a_reply_made_on_the_network_is_in_the_history(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    clock: FakeClock,
    db: Database,
) -> None:
    review_id = await one_review(location, syncer, 5, "Lovely", reply="Thanks, come again!")
    body, etag = await read(location.tenant, review_id)
    [seen] = body["replies"]
    assert (seen["origin"], seen["action"], seen["status"]) == ("network", "reply", "sent")
    assert seen["text"] == "Thanks, come again!"
    assert seen["requested_by"] is None

    removing = await delete_reply(location.tenant, review_id, etag)
    assert removing.status_code == 202, removing.text
    assert removing.json()["reply_status"] == "pending"
    assert await sender.sweep() == 1
    gone, _ = await read(location.tenant, review_id)
    assert gone["reply"] is None
    assert gone["reply_status"] is None
    assert gone["responded_at"] is not None  # it was answered once
    assert [(r["origin"], r["action"], r["status"]) for r in gone["replies"]] == [
        ("crier", "delete", "sent"),
        ("network", "reply", "sent"),
    ]
    updated = await events_of(db, location.tenant, "review.updated")
    assert [e["reply"] for e in updated] == [None]
    clock.advance(timedelta(minutes=15))
    assert await syncer.sync(location.workspace, UUID(location.account_id))
    assert len((await read(location.tenant, review_id))[0]["replies"]) == 2


async def test_a_page_read_before_a_reply_was_confirmed_does_not_undo_it(
    location: Location,
    syncer: ReviewSyncer,
    sender: ReplySender,
    clock: FakeClock,
    db: Database,
) -> None:
    review_id = await one_review(location, syncer, 4, "Good")
    before, etag = await read(location.tenant, review_id)
    # What a sync running meanwhile had read of the review: no reply yet.
    read_earlier = NetworkReview(
        external_id=before["external_id"],
        rating=4,
        text="Good",
        reviewer_name="Ada",
        created_at=datetime.fromisoformat(before["reviewed_at"]),
        updated_at=datetime.fromisoformat(before["network_updated_at"]),
    )
    assert (await put_reply(location.tenant, review_id, etag, text="Thanks!")).status_code == 202
    clock.advance(timedelta(seconds=1))
    await sender.sweep()
    replied, _ = await read(location.tenant, review_id)
    assert replied["reply"]["text"] == "Thanks!"

    async with db.workspace_transaction(location.workspace) as session:
        account = await account_repository.get(session, UUID(location.account_id))
        assert account is not None
        assert await service.ingest(session, clock, account, [read_earlier]) == 0
    after, _ = await read(location.tenant, review_id)
    assert after["reply"]["text"] == "Thanks!"
    assert after["sequence"] == replied["sequence"]
    assert len(after["replies"]) == 1
