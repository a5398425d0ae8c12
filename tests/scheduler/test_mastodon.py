"""Publishing to Mastodon: an account connected through the consent screen, posts with
images and alt text published by the scheduler exactly once, whatever the instance does."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from crier.kit.db import Database
from crier.platforms.mastodon.emulator import App, StoredStatus
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.mastodon import Mastodon, connect_mastodon
from tests.media.conftest import image_bytes
from tests.post.conftest import at
from tests.scheduler.test_metric_collection import collected_an_hour_on
from tests.scheduler.test_worker import deliveries


@pytest.fixture
def platform_timeout() -> float:
    return 0.5  # the instance is made to hang after storing a status


async def image(tenant: Tenant, alt_text: str | None = None) -> str:
    uploaded = await tenant.post(
        "/v1/media", files={"file": ("cat.png", image_bytes("PNG", (640, 480)), "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    media_id: str = uploaded.json()["id"]
    if alt_text is not None:
        described = await tenant.patch(f"/v1/media/{media_id}", json={"alt_text": alt_text})
        assert described.status_code == 200, described.text
        assert described.json()["alt_text"] == alt_text
    return media_id


async def schedule(
    tenant: Tenant,
    account: dict[str, Any],
    clock: FakeClock,
    text: str = "Hello, fediverse",
    media: list[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": text, "media_ids": media or []},
            "targets": [{"social_account_id": account["id"], "platform_settings": settings or {}}],
            "status": "scheduled",
            "publish_at": at(clock, minutes=1),
        },
    )
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


async def schedule_refused(
    tenant: Tenant,
    account: dict[str, Any],
    clock: FakeClock,
    text: str,
    settings: dict[str, Any] | None = None,
) -> dict[str, object]:
    """Schedule a post the account's platform cannot take: the 422 problem's body."""
    refused = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": text},
            "targets": [{"social_account_id": account["id"], "platform_settings": settings or {}}],
            "status": "scheduled",
            "publish_at": at(clock, minutes=5),
        },
    )
    return assert_problem(refused, 422, "target-validation-failed")


async def publish_due(worker: Worker, clock: FakeClock, minutes: float = 1) -> None:
    clock.advance(timedelta(minutes=minutes, seconds=1))
    await worker.tick()


def statuses(mastodon: Mastodon) -> list[StoredStatus]:
    return list(mastodon.instance.statuses.values())


async def test_a_post_with_an_image_and_alt_text_is_published_once(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    media = await image(tenant, alt_text="A red square, photographed at noon")
    mastodon.instance.faults.processing_polls = 2  # processed in the background: 202, 206
    post = await schedule(
        tenant,
        account,
        clock,
        media=[media],
        settings={"visibility": "unlisted", "language": "en", "spoiler_text": "cats"},
    )
    await publish_due(worker, clock)

    [status] = statuses(mastodon)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert status.idempotency_key == delivery["id"]
    assert (status.text, status.visibility, status.language, status.spoiler_text) == (
        "Hello, fediverse",
        "unlisted",
        "en",
        "cats",
    )
    [attached] = [mastodon.instance.media[m] for m in status.media_ids]
    assert attached.description == "A red square, photographed at noon"
    assert attached.polls_left == 0
    assert delivery["platform_post_id"] == status.id
    assert delivery["permalink"] == f"{mastodon.url}/@alice/{status.id}"
    await worker.tick()
    assert len(statuses(mastodon)) == 1


async def test_a_call_that_hangs_after_the_instance_stored_the_status_posts_once(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending"  # to be sent again
    assert delivery["attempts"][0]["error_code"] == "timeout"
    assert len(statuses(mastodon)) == 1

    await publish_due(worker, clock)  # the resend carries the same Idempotency-Key
    [delivery] = await deliveries(tenant, post["id"])
    [status] = statuses(mastodon)
    assert delivery["status"] == "published"
    assert delivery["platform_post_id"] == status.id


async def test_a_status_of_unknown_outcome_is_found_on_the_instance_after_its_key_is_forgotten(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    """Say the only worker died mid-call and came back the next morning: the instance has
    forgotten the Idempotency-Key, and the status is found among the account's own."""
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [status] = statuses(mastodon)
    clock.advance(timedelta(hours=10))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["platform_post_id"]) == ("published", status.id)
    assert len(delivery["attempts"]) == 1
    assert len(statuses(mastodon)) == 1, "not posted twice"


async def test_a_status_not_found_is_not_sent_again_once_the_key_is_forgotten(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    """Gone from the account's statuses (its author deleted it) and the key forgotten: a
    resend could make a second status, so the delivery fails `outcome_unknown`."""
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    mastodon.instance.statuses.clear()
    clock.advance(timedelta(hours=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "outcome_unknown")
    assert len(delivery["attempts"]) == 1
    assert statuses(mastodon) == [], "not posted again"


async def test_an_instance_that_ignores_idempotency_keys_gets_each_status_once(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    """GoToSocial takes `Idempotency-Key` and ignores it: the call that hung after the
    instance stored the status is settled by the lookup, not by a resend."""
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.ignore_idempotency_keys = True
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    media = await image(tenant, alt_text="A red square")
    post = await schedule(tenant, account, clock, media=[media])
    await publish_due(worker, clock)
    await publish_due(worker, clock)
    [status] = statuses(mastodon)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["platform_post_id"]) == ("published", status.id)
    assert [a["outcome"] for a in delivery["attempts"]] == ["published"]


async def test_the_lookup_takes_only_crier_s_status_of_this_delivery(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    """The same text posted before the delivery's first attempt, or by another app since,
    is not the delivery's status: nothing is found, and it is sent again."""
    account = await connect_mastodon(tenant, mastodon)
    instance = mastodon.instance
    instance.faults.ignore_idempotency_keys = True
    text = "Hello, fediverse"
    owner = next(a for a in instance.accounts.values() if a["username"] == "alice")
    other = StoredStatus(
        instance.next_id(),
        owner["id"],
        text,
        clock.now() - timedelta(minutes=30),
        "public",
        None,
        "",
        False,
        [],
        None,
        next(iter(instance.apps)),
    )
    instance.statuses[other.id] = other  # earlier, from Crier
    post = await schedule(tenant, account, clock, text=text)
    instance.faults.unavailable = 1  # 503: the send may have been taken
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending", delivery
    instance.apps["elsewhere"] = App("1", "Elsewhere", [], {"write"}, "elsewhere", "-", None)
    later = instance.next_id()
    instance.statuses[later] = replace(
        other, id=later, created_at=clock.now(), client_id="elsewhere"
    )
    await publish_due(worker, clock)

    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    [made] = [s for s in statuses(mastodon) if s.idempotency_key == delivery["id"]]
    assert delivery["platform_post_id"] == made.id
    assert len(statuses(mastodon)) == 3


async def test_the_lookup_does_not_take_another_deliverys_status_of_the_same_text(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    """The first post's call hangs after the instance stored it; the second, with the same
    text, is published before the first is looked up: each keeps its own status."""
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.ignore_idempotency_keys = True
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    first = await schedule(tenant, account, clock)
    clock.advance(timedelta(minutes=1, seconds=0.1))
    await worker.tick()  # stored, the answer lost: looked up about 2 s later
    [delivery] = await deliveries(tenant, first["id"])
    assert delivery["status"] == "pending", delivery
    [held] = statuses(mastodon)
    second = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "Hello, fediverse"},
            "targets": [{"social_account_id": account["id"]}],
            "status": "scheduled",
            "publish_at": at(clock, seconds=0.5),
        },
    )
    assert second.status_code == 201, second.text
    clock.advance(timedelta(seconds=1))
    await worker.tick()
    [other] = await deliveries(tenant, second.json()["id"])
    assert other["status"] == "published", other
    assert other["platform_post_id"] != held.id

    clock.advance(timedelta(seconds=5))
    await worker.tick()
    [delivery] = await deliveries(tenant, first["id"])
    assert (delivery["status"], delivery["platform_post_id"]) == ("published", held.id)
    assert len(statuses(mastodon)) == 2


async def test_a_lookup_that_fails_sends_nothing_and_asks_again_later(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.ignore_idempotency_keys = True
    mastodon.instance.faults.hang_after_store = 1
    mastodon.instance.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    mastodon.instance.faults.unavailable = 1  # the lookup answers 503
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "pending", delivery
    assert len(statuses(mastodon)) == 1
    await publish_due(worker, clock, minutes=10)
    [delivery] = await deliveries(tenant, post["id"])
    [status] = statuses(mastodon)
    assert (delivery["status"], delivery["platform_post_id"]) == ("published", status.id)


async def test_a_server_error_after_storing_is_sent_again_with_its_key_and_posts_once(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    mastodon.instance.faults.fail_after_store = 1
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["http_status"] == 500
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published"
    assert len(statuses(mastodon)) == 1


async def test_a_rate_limit_waits_for_the_instances_reset_time(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    post = await schedule(tenant, account, clock)
    # One call so far (verify_credentials, at connect): the next is over a limit of one.
    mastodon.instance.faults.rate_limit = 1
    [first_call] = next(iter(mastodon.instance.calls.values()))
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "rate_limited"
    assert delivery["attempts"][0]["http_status"] == 429
    reset = first_call + timedelta(minutes=5)
    assert datetime.fromisoformat(delivery["next_attempt_at"]) >= reset
    assert statuses(mastodon) == []

    mastodon.instance.faults.rate_limit = 300
    clock.set(reset + timedelta(seconds=5))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published"


async def test_a_revoked_token_fails_at_once_without_retries(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    post = await schedule(tenant, account, clock)
    for token in mastodon.instance.tokens.values():
        token.revoked = True  # the user revoked Crier's access on the instance
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_revoked")
    assert len(delivery["attempts"]) == 1
    assert delivery["attempts"][0]["message"] == "The access token is invalid"


@pytest.mark.parametrize(
    ("gotosocial", "message"),
    [
        (False, "Validation failed: Text character limit of 20 exceeded"),
        (True, "Bad Request: text with spoiler exceed max chars (20)"),
    ],
)
async def test_a_status_the_instance_refuses_fails_with_its_message(
    tenant: Tenant,
    mastodon: Mastodon,
    worker: Worker,
    clock: FakeClock,
    gotosocial: bool,
    message: str,
) -> None:
    """Mastodon refuses with 422, GoToSocial with 400: both are the content's refusal."""
    account = await connect_mastodon(tenant, mastodon)
    post = await schedule(tenant, account, clock, text="x" * 40)
    mastodon.instance.faults.max_characters = 20  # the instance lowered its limit since
    mastodon.instance.faults.refuses_as_gotosocial = gotosocial
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "content_rejected")
    assert [(a["http_status"], a["message"]) for a in delivery["attempts"]] == [
        (400 if gotosocial else 422, message)
    ]
    assert statuses(mastodon) == []


async def test_the_instances_own_limits_and_counting_apply_when_scheduling(
    tenant: Tenant, mastodon: Mastodon, clock: FakeClock
) -> None:
    mastodon.instance.faults.max_characters = 1000
    roomy = await connect_mastodon(tenant, mastodon, "alice")
    assert (await schedule(tenant, roomy, clock, text="a" * 1000))["status"] == "scheduled"
    too_long = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "a" * 1001},
            "targets": [{"social_account_id": roomy["id"]}],
            "status": "scheduled",
            "publish_at": at(clock, minutes=1),
        },
    )
    body = assert_problem(too_long, 422, "target-validation-failed")
    assert body["errors"][0]["type"] == "text_too_long"  # type: ignore[index]

    # A link counts 23 whatever its length, and a mention only to its username.
    mastodon.instance.faults.max_characters = 500
    default = await connect_mastodon(tenant, mastodon, "bob")
    link = "https://example.com/" + "a" * 300
    text = "b" * 440 + " " + link + " @carol@very.long.example.social"
    assert len(text) > 500
    assert (await schedule(tenant, default, clock, text=text))["status"] == "scheduled"

    # An instance that counts a link 25 (GoToSocial) has its links counted so.
    mastodon.instance.faults.characters_reserved_per_url = 25
    carol = await connect_mastodon(tenant, mastodon, "carol")
    fits = "b" * 474 + " " + link  # 474 + 1 + 25
    assert (await schedule(tenant, carol, clock, text=fits))["status"] == "scheduled"
    over = await schedule_refused(tenant, carol, clock, "b" + fits)
    assert over["errors"][0]["type"] == "text_too_long"  # type: ignore[index]
    assert (await schedule(tenant, default, clock, text="b" + fits))["status"] == "scheduled"

    # A content warning counts with the text.
    warned = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "c" * 490},
            "targets": [
                {
                    "social_account_id": default["id"],
                    "platform_settings": {"spoiler_text": "x" * 11},
                }
            ],
            "status": "scheduled",
            "publish_at": at(clock, minutes=1),
        },
    )
    body = assert_problem(warned, 422, "target-validation-failed")
    assert body["errors"][0]["type"] == "text_too_long"  # type: ignore[index]


async def test_mastodon_settings_are_checked_when_scheduling(
    tenant: Tenant, mastodon: Mastodon, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    refused = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "hi"},
            "targets": [
                {
                    "social_account_id": account["id"],
                    "platform_settings": {"visibility": "everyone", "colour": "red"},
                }
            ],
            "status": "scheduled",
            "publish_at": at(clock, minutes=1),
        },
    )
    body = assert_problem(refused, 422, "target-validation-failed")
    errors = body["errors"]
    assert isinstance(errors, list)
    kinds = {(tuple(e["loc"]), e["type"]) for e in errors}
    assert kinds == {
        (("targets", 0, "platform_settings", "visibility"), "literal_error"),
        (("targets", 0, "platform_settings", "colour"), "extra_forbidden"),
    }


async def test_a_disconnected_account_is_revoked_on_the_instance_and_its_posts_fail(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    post = await schedule(tenant, account, clock)
    in_use = await tenant.delete(f"/v1/social-accounts/{account['id']}")
    body = assert_problem(in_use, 409, "account-in-use")
    assert body["posts"] == [post["id"]]
    assert not any(t.revoked for t in mastodon.instance.tokens.values())

    forced = await tenant.delete(f"/v1/social-accounts/{account['id']}", params={"force": "true"})
    assert forced.status_code == 204
    assert all(t.revoked for t in mastodon.instance.tokens.values())
    gone = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert gone["status"] == "disconnected"

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "account_disconnected")
    assert statuses(mastodon) == []


async def test_an_account_with_no_scheduled_posts_disconnects_and_is_revoked(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    assert (await tenant.delete(f"/v1/social-accounts/{account['id']}")).status_code == 204
    assert all(t.revoked for t in mastodon.instance.tokens.values())
    # Reconnecting brings the same account back, active.
    again = await connect_mastodon(tenant, mastodon)
    assert (again["id"], again["status"]) == (account["id"], "active")


async def test_the_statuss_and_the_accounts_figures_are_collected_from_the_instance(
    tenant: Tenant, mastodon: Mastodon, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_mastodon(tenant, mastodon)
    post = await schedule(tenant, account, clock, text="Counted on Mastodon")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    mastodon.instance.followers[account["external_id"]] = 77
    figures, own = await collected_an_hour_on(tenant, worker, clock, db, delivery)
    assert figures == {
        "comments": 0,
        "shares": 0,
        "likes": 0,
        "quotes": 0,
        "engagements": 0,
    }
    assert own == {"followers": 77, "following": 0, "posts": 1}
