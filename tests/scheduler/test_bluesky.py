"""Bluesky: an account connected with an app password, posts with images, alt text, facets
and reply rules published by the scheduler exactly once, sessions refreshed as they run out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from crier.kit.db import Database
from crier.platforms.bluesky.adapter import record_key
from crier.scheduler.worker import Worker
from tests.bluesky import Bluesky, connect_bluesky, sign_in
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.scheduler.test_mastodon import image, publish_due, schedule
from tests.scheduler.test_metric_collection import collected_an_hour_on
from tests.scheduler.test_refresh import events_of
from tests.scheduler.test_worker import deliveries


@pytest.fixture
def platform_timeout() -> float:
    return 0.5  # the server is made to hang after storing a post


def posts(bluesky: Bluesky, did: str) -> list[dict[str, Any]]:
    return bluesky.server.posts_of(did)


async def test_an_app_password_connects_the_account_and_is_never_kept(
    tenant: Tenant, bluesky: Bluesky, db: Database
) -> None:
    did, password = bluesky.account("alice.test")
    bluesky.server.accounts[did].display_name = "Alice"
    connected = await sign_in(tenant, bluesky.url, "alice.test", password)
    assert connected.status_code == 201, connected.text
    account = connected.json()
    assert (account["platform"], account["external_id"], account["handle"]) == (
        "bluesky",
        did,
        "alice.test",
    )
    assert account["display_name"] == "Alice"
    assert account["server_url"] == bluesky.url
    assert account["token_expires_at"] is not None  # the access token's own expiry
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = (await session.execute(text("SELECT * FROM social_accounts"))).all()
    assert rows
    assert all(password not in repr(row) for row in rows)
    again = await sign_in(tenant, bluesky.url, "alice.test", password)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == account["id"]  # reconnected in place


async def test_a_wrong_password_or_the_accounts_own_is_refused_and_connects_nothing(
    tenant: Tenant, bluesky: Bluesky
) -> None:
    did, _ = bluesky.account("bob.test")
    wrong = await sign_in(tenant, bluesky.url, "bob.test", "aaaa-bbbb-cccc-dddd")
    assert_problem(wrong, 422, "platform-credentials-refused")
    own = await sign_in(tenant, bluesky.url, "bob.test", bluesky.server.accounts[did].password)
    body = assert_problem(own, 422, "platform-credentials-refused")
    assert "app password" in str(body["detail"])
    assert len(bluesky.server.spent) == 1  # that session was ended at once
    missing = await tenant.post(
        "/v1/social-accounts", json={"platform": "bluesky", "handle": "b.test"}
    )
    assert_problem(missing, 422, "validation-error")
    misplaced = await tenant.post(
        "/v1/social-accounts", json={"platform": "sandbox", "app_password": "x"}
    )
    assert_problem(misplaced, 422, "validation-error")
    listed = (await tenant.get("/v1/social-accounts", params={"platform": "bluesky"})).json()
    assert listed["data"] == []


async def test_a_server_that_is_not_http_or_has_a_path_is_refused(
    tenant: Tenant, bluesky: Bluesky
) -> None:
    _, password = bluesky.account("carol.test")
    for url in ("ftp://127.0.0.1", f"{bluesky.url}/xrpc", "https://user@host.example"):
        refused = await sign_in(tenant, url, "carol.test", password)
        assert_problem(refused, 422, "validation-error")


async def test_a_post_with_an_image_facets_and_a_reply_rule_is_published_once(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    bluesky.account("bob.test")
    media = await image(tenant, alt_text="A red square")
    words = "Café ☕ with @bob.test, see https://example.com/menu. #crier"
    post = await schedule(
        tenant,
        account,
        clock,
        text=words,
        media=[media],
        settings={"langs": ["en", "fr"], "replies": "mentioned"},
    )
    await publish_due(worker, clock)

    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    rkey = record_key(delivery["id"])
    did = account["external_id"]
    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    assert delivery["platform_post_id"] == uri
    assert delivery["permalink"] == f"https://bsky.app/profile/{did}/post/{rkey}"
    [record] = posts(bluesky, did)
    value = record["value"]
    assert (value["text"], value["langs"]) == (words, ["en", "fr"])
    encoded = words.encode()
    shown = {
        encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(): f["features"][0]
        for f in value["facets"]
    }
    assert shown["@bob.test"]["did"] == next(
        a.did for a in bluesky.server.accounts.values() if a.handle == "bob.test"
    )
    assert shown["https://example.com/menu"]["uri"] == "https://example.com/menu"
    assert shown["#crier"]["tag"] == "crier"
    [picture] = value["embed"]["images"]
    assert picture["alt"] == "A red square"
    assert picture["aspectRatio"]["width"] > picture["aspectRatio"]["height"]
    assert picture["image"]["ref"]["$link"] in bluesky.server.blobs
    gate = bluesky.server.records[f"at://{did}/app.bsky.feed.threadgate/{rkey}"]
    assert gate["value"]["post"] == uri
    assert gate["value"]["allow"] == [{"$type": "app.bsky.feed.threadgate#mentionRule"}]
    await worker.tick()
    assert len(posts(bluesky, did)) == 1


async def test_a_call_that_hangs_after_the_server_stored_the_post_posts_once(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    bluesky.server.faults.hang_after_store = 1
    bluesky.server.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "timeout"

    await publish_due(worker, clock)  # looked up by its record key, not sent again
    [delivery] = await deliveries(tenant, post["id"])
    [record] = posts(bluesky, account["external_id"])
    assert delivery["status"] == "published"
    assert delivery["platform_post_id"] == record["uri"]


async def test_a_500_after_the_post_was_stored_is_settled_by_its_record_key(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    bluesky.server.faults.fail_after_store = 1
    post = await schedule(tenant, account, clock)
    for _ in range(3):
        await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [record] = posts(bluesky, account["external_id"])
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == record["uri"]


async def test_text_over_300_graphemes_or_3000_bytes_is_refused_when_scheduled(
    tenant: Tenant, bluesky: Bluesky, clock: FakeClock
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    fits = "👩‍👩‍👧" * 300  # 300 graphemes, 7,500 bytes
    for words in ("x" * 301, fits):
        refused = await tenant.post(
            "/v1/posts",
            json={
                "payload": {"text": words, "media_ids": []},
                "targets": [{"social_account_id": account["id"]}],
                "status": "scheduled",
                "publish_at": (clock.now() + timedelta(minutes=5)).isoformat(),
            },
        )
        body = assert_problem(refused, 422, "target-validation-failed")
        assert "text_too_long" in str(body), body
    ok = await schedule(tenant, account, clock, text="é" * 300)
    assert ok["status"] == "scheduled"
    bad = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": "hi", "media_ids": []},
            "targets": [
                {"social_account_id": account["id"], "platform_settings": {"langs": ["not a tag"]}}
            ],
            "status": "scheduled",
            "publish_at": (clock.now() + timedelta(minutes=5)).isoformat(),
        },
    )
    assert_problem(bad, 422, "target-validation-failed")


async def test_an_expired_session_is_refreshed_with_its_single_use_token_before_posting(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    clock.advance(timedelta(hours=3))  # past the access token's two hours
    post = await schedule(tenant, account, clock)  # still schedulable: it has a refresh token
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert len(bluesky.server.spent) == 1  # the refresh token was spent, the new one kept
    refreshed = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert refreshed["last_refreshed_at"] > account["last_refreshed_at"]
    assert refreshed["token_expires_at"] > account["token_expires_at"]


async def test_an_expired_token_answer_gets_one_refresh_and_one_retry(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock
) -> None:
    """The server calls the token expired (400 ExpiredToken) though Crier thought it
    fresh (its clock runs ahead): one refresh, one resend at once, published."""
    account = await connect_bluesky(tenant, bluesky)
    post = await schedule(tenant, account, clock)
    clock.advance(timedelta(minutes=1, seconds=1))
    bluesky.server.clock = _Later(clock, timedelta(hours=2))
    await worker.tick()
    bluesky.server.clock = clock
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert [a["error_code"] for a in delivery["attempts"]] == ["auth_expired", None]
    assert delivery["status"] == "published", delivery
    assert len(posts(bluesky, account["external_id"])) == 1


class _Later:
    def __init__(self, clock: FakeClock, ahead: timedelta) -> None:
        self._clock, self._ahead = clock, ahead

    def now(self) -> Any:
        return self._clock.now() + self._ahead


async def test_a_refused_refresh_expires_the_account_and_fails_its_post_at_once(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    bluesky.server.secret = (
        "a-key-none-of-its-tokens-was-signed-with"  # every token Crier holds is now invalid
    )
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "failed", delivery
    assert delivery["error_code"] == "auth_expired"
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "expired"
    [expired] = await events_of(db, tenant, "social_account.expired")
    assert (expired["id"], expired["scheduled_posts"]) == (account["id"], [post["id"]])


async def test_another_workspace_neither_sees_the_account_nor_takes_it_over(
    tenant: Tenant, other_tenant: Tenant, bluesky: Bluesky
) -> None:
    did, password = bluesky.account("erin.test")
    mine = await sign_in(tenant, bluesky.url, "erin.test", password)
    assert mine.status_code == 201, mine.text
    account_id = mine.json()["id"]
    assert_problem(await other_tenant.get(f"/v1/social-accounts/{account_id}"), 404, "not-found")
    assert_problem(await other_tenant.delete(f"/v1/social-accounts/{account_id}"), 404, "not-found")
    theirs = await sign_in(other_tenant, bluesky.url, "erin.test", password)
    assert theirs.status_code == 201, theirs.text
    assert (theirs.json()["external_id"], theirs.json()["id"] != account_id) == (did, True)
    still = await tenant.get(f"/v1/social-accounts/{account_id}")
    assert (still.status_code, still.json()["status"]) == (200, "active")


async def test_disconnecting_ends_the_session_at_the_server(
    tenant: Tenant, bluesky: Bluesky
) -> None:
    account = await connect_bluesky(tenant, bluesky, "fay.test")
    gone = await tenant.delete(f"/v1/social-accounts/{account['id']}")
    assert gone.status_code == 204, gone.text
    assert len(bluesky.server.spent) == 1  # its refresh token, with deleteSession
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "disconnected"


async def test_the_posts_and_the_accounts_figures_are_collected_from_the_server(
    tenant: Tenant, bluesky: Bluesky, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_bluesky(tenant, bluesky)
    post = await schedule(tenant, account, clock, text="Counted on Bluesky")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    bluesky.server.accounts[account["external_id"]].followers = 12
    bluesky.server.likes[delivery["platform_post_id"]] = 3
    figures, own = await collected_an_hour_on(tenant, worker, clock, db, delivery)
    assert figures == {"likes": 3, "shares": 0, "comments": 0, "quotes": 0, "engagements": 3}
    assert own == {"followers": 12, "following": 0, "posts": 1}
