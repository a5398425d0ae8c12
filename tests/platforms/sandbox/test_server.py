"""The sandbox platform over real HTTP: tokens, posts, metrics, and every fault it injects."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from crier.platforms.sandbox.server import create_sandbox_app
from crier.platforms.sandbox.store import Store
from tests.conftest import FakeClock
from tests.platforms.sandbox.conftest import Sandbox
from tests.servers import serving


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_tokens_are_issued_expire_and_refresh(sandbox: Sandbox, clock: FakeClock) -> None:
    tokens = await sandbox.connect("crier_demo")
    assert tokens["expires_in"] == 7200
    me = await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))
    assert me.json()["handle"] == "crier_demo"
    clock.advance(timedelta(hours=2))
    expired = await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))
    assert (expired.status_code, error_code(expired)) == (401, "token_expired")
    refreshed = await sandbox.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["account_id"] == tokens["account_id"]
    assert (await sandbox.http.get("/v1/me", headers=sandbox.bearer(refreshed.json()))).is_success
    reused = await sandbox.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert (reused.status_code, error_code(reused)) == (400, "invalid_grant")


async def test_a_revoked_account_cannot_post(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.http.post(f"/control/accounts/{tokens['account_id']}/revoke")
    response = await sandbox.http.post(
        "/v1/posts", json={"text": "hi"}, headers=sandbox.bearer(tokens)
    )
    assert (response.status_code, error_code(response)) == (401, "token_revoked")
    unknown = await sandbox.http.get("/v1/me", headers={"Authorization": "Bearer nope"})
    assert (unknown.status_code, error_code(unknown)) == (401, "invalid_token")


async def test_one_idempotency_key_never_makes_two_posts(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    headers = {**sandbox.bearer(tokens), "Idempotency-Key": "delivery-1"}
    first = await sandbox.http.post("/v1/posts", json={"text": "hello"}, headers=headers)
    again = await sandbox.http.post("/v1/posts", json={"text": "hello"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    found = await sandbox.http.get(
        "/v1/posts", params={"idempotency_key": "delivery-1"}, headers=sandbox.bearer(tokens)
    )
    assert [p["id"] for p in found.json()["data"]] == [first.json()["id"]]
    missing = await sandbox.http.get(
        "/v1/posts", params={"idempotency_key": "other"}, headers=sandbox.bearer(tokens)
    )
    assert missing.json()["data"] == []
    received = (await sandbox.http.get("/control/received")).json()
    assert (received["count"], received["duplicate_keys"]) == (1, [])
    assert first.json()["permalink"].endswith(first.json()["id"])


async def test_keys_are_per_account(sandbox: Sandbox) -> None:
    one, two = await sandbox.connect("one"), await sandbox.connect("two")
    for tokens in (one, two):
        response = await sandbox.http.post(
            "/v1/posts",
            json={"text": "x"},
            headers={**sandbox.bearer(tokens), "Idempotency-Key": "same"},
        )
        assert response.status_code == 201
    ones = (await sandbox.http.get("/v1/posts", headers=sandbox.bearer(one))).json()["data"]
    other = await sandbox.http.get(f"/v1/posts/{ones[0]['id']}", headers=sandbox.bearer(two))
    assert other.status_code == 404


async def test_metrics_grow_with_time(sandbox: Sandbox, clock: FakeClock) -> None:
    tokens = await sandbox.connect()
    post = (
        await sandbox.http.post("/v1/posts", json={"text": "x"}, headers=sandbox.bearer(tokens))
    ).json()
    seen = []
    for _ in range(3):
        clock.advance(timedelta(minutes=20))

        metrics = await sandbox.http.get(
            f"/v1/posts/{post['id']}/metrics", headers=sandbox.bearer(tokens)
        )
        seen.append(metrics.json()["impressions"])
    assert 0 < seen[0] < seen[1] < seen[2]


async def test_content_over_the_rules_is_rejected(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    long = await sandbox.http.post(
        "/v1/posts", json={"text": "x" * 501}, headers=sandbox.bearer(tokens)
    )
    assert (long.status_code, error_code(long)) == (422, "content_rejected")
    media = [{"kind": "image", "url": "https://example.invalid/a.jpg"}] * 5
    many = await sandbox.http.post(
        "/v1/posts", json={"text": "x", "media": media}, headers=sandbox.bearer(tokens)
    )
    assert (many.status_code, error_code(many)) == (422, "media_rejected")


async def test_told_to_fail_it_fails_then_recovers(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(fail_next=2)
    codes = [
        (
            await sandbox.http.post("/v1/posts", json={"text": "x"}, headers=sandbox.bearer(tokens))
        ).status_code
        for _ in range(3)
    ]
    assert codes == [503, 503, 201]


async def test_told_to_throttle_it_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(rate_limit_next=1, retry_after_seconds=7)
    response = await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert error_code(response) == "rate_limited"
    assert (await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))).is_success


async def test_told_to_reject_content_it_does(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(reject_next=1, reject_text="forbidden")
    first = await sandbox.http.post(
        "/v1/posts", json={"text": "fine"}, headers=sandbox.bearer(tokens)
    )
    assert (first.status_code, error_code(first)) == (422, "content_rejected")
    assert (
        await sandbox.http.post("/v1/posts", json={"text": "fine"}, headers=sandbox.bearer(tokens))
    ).status_code == 201
    bad = await sandbox.http.post(
        "/v1/posts", json={"text": "a forbidden word"}, headers=sandbox.bearer(tokens)
    )
    assert bad.status_code == 422


async def test_told_to_hang_the_client_times_out(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(hang_next=1, hang_seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens), timeout=0.1)
    assert (await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))).is_success


async def test_a_post_accepted_before_a_hang_can_be_found_by_its_key(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(hang_after_accept_next=1, hang_seconds=0.5)
    headers = {**sandbox.bearer(tokens), "Idempotency-Key": "uncertain"}
    with pytest.raises(httpx.ReadTimeout):
        await sandbox.http.post("/v1/posts", json={"text": "did it?"}, headers=headers, timeout=0.1)
    found = await sandbox.http.get(
        "/v1/posts", params={"idempotency_key": "uncertain"}, headers=sandbox.bearer(tokens)
    )
    assert len(found.json()["data"]) == 1
    retry = await sandbox.http.post("/v1/posts", json={"text": "did it?"}, headers=headers)
    assert retry.status_code == 200
    assert (await sandbox.http.get("/control/received")).json()["count"] == 1


async def test_an_error_rate_fails_a_share_of_calls(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.faults(error_rate=0.5)
    codes = [
        (await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))).status_code
        for _ in range(40)
    ]
    assert set(codes) == {200, 503}
    await sandbox.faults(error_rate=1.0)
    assert (await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))).status_code == 503
    await sandbox.http.delete("/control/faults")
    assert (await sandbox.http.get("/v1/me", headers=sandbox.bearer(tokens))).status_code == 200


async def test_bad_control_input_is_refused(sandbox: Sandbox) -> None:
    response = await sandbox.http.put("/control/faults", json={"error_rate": 2})
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"
    assert "error_rate" in response.json()["error"]["message"]
    response = await sandbox.http.put("/control/faults", json={"explode": True})
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


async def test_every_error_has_the_documented_shape(sandbox: Sandbox) -> None:
    """`{"error": {"code", "message"}}`, also for what the framework itself refuses."""
    for response, status, code in (
        (await sandbox.http.get("/no-such-path"), 404, "not_found"),
        (await sandbox.http.post("/control/faults"), 405, "method_not_allowed"),
        (await sandbox.http.post("/oauth/token", data={}), 422, "invalid_request"),
    ):
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"}
        assert error_code(response) == code
        assert response.json()["error"]["message"]


class TickingClock(FakeClock):
    """Each reading is a second after the last: shows the order in which times were read."""

    def now(self) -> datetime:
        self.advance(timedelta(seconds=1))
        return super().now()


async def test_a_post_records_when_its_call_arrived_before_the_latency_added() -> None:
    clock = TickingClock()
    store = Store(None)
    async with (
        serving(create_sandbox_app(store, clock, seed=7)) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as http,
    ):
        sandbox = Sandbox(url, http)
        await sandbox.faults(latency_ms=1)
        tokens = await sandbox.connect()
        created = await http.post("/v1/posts", json={"text": "hi"}, headers=sandbox.bearer(tokens))
        [received] = (await http.get("/control/received")).json()["data"]
    store.close()
    assert created.status_code == 201
    assert received["received_at"] < received["created_at"]
    assert created.json()["received_at"] == received["received_at"]


def test_a_store_from_before_received_at_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE posts (id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
        " idempotency_key TEXT, text TEXT NOT NULL, media TEXT NOT NULL,"
        " created_at REAL NOT NULL, UNIQUE (account_id, idempotency_key));"
        " INSERT INTO posts VALUES ('sbp_old', 'sbx_a', 'k', 'old', '[]', 1.0);"
    )
    old.close()
    store = Store(path)
    try:
        [kept] = store.posts()
        assert (kept.id, kept.received_at) == ("sbp_old", None)
        added, _ = store.add_post("sbx_a", "k2", "new", [], 3.0, received_at=2.0)
        assert store.post_by_key("sbx_a", "k2") == added
        assert added.received_at == 2.0
        again, created = store.add_post("sbx_a", "k2", "other", [], 4.0, received_at=4.0)
        assert (again, created) == (added, False)
        assert len(store.posts("sbx_a")) == 2
    finally:
        store.close()


async def test_reviews_are_listed_most_recently_changed_first_in_pages(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    tokens = await sandbox.connect("cafe")
    location = tokens["account_id"]
    made = []
    for n in range(7):
        clock.advance(timedelta(seconds=1))
        added = await sandbox.http.post(
            f"/control/accounts/{location}/reviews",
            json={"rating": n % 5 + 1, "comment": f"visit {n}", "reviewer_name": "Ada"},
        )
        assert added.status_code == 201
        made.append(added.json()["id"])
    clock.advance(timedelta(seconds=1))
    edited = await sandbox.http.patch(f"/control/reviews/{made[0]}", json={"reply": "Thanks"})
    assert edited.json()["reply"]["comment"] == "Thanks"
    assert edited.json()["updated_at"] == clock.now().timestamp()

    seen, token = [], None
    for _ in range(10):
        params = {"page_size": 3} | ({"page_token": token} if token else {})
        page = await sandbox.http.get("/v1/reviews", params=params, headers=sandbox.bearer(tokens))
        assert page.status_code == 200
        body = page.json()
        assert body["total_review_count"] == 7
        seen += body["reviews"]
        token = body["next_page_token"]
        if token is None:
            break
    assert [r["id"] for r in seen] == [made[0], *reversed(made[1:])]
    assert seen[1] == {
        "id": made[6],
        "reviewer": {"display_name": "Ada"},
        "rating": 2,
        "comment": "visit 6",
        "created_at": seen[1]["created_at"],
        "updated_at": seen[1]["created_at"],
        "reply": None,
    }

    assert (await sandbox.http.delete(f"/control/reviews/{made[3]}")).status_code == 204
    after = await sandbox.http.get("/v1/reviews", headers=sandbox.bearer(tokens))
    assert after.json()["total_review_count"] == 6
    assert made[3] not in [r["id"] for r in after.json()["reviews"]]


async def test_reviews_refuse_big_pages_strange_tokens_and_unknown_reviews(
    sandbox: Sandbox,
) -> None:
    tokens = await sandbox.connect()
    auth = sandbox.bearer(tokens)
    big = await sandbox.http.get("/v1/reviews", params={"page_size": 51}, headers=auth)
    assert (big.status_code, error_code(big)) == (422, "invalid_request")
    strange = await sandbox.http.get("/v1/reviews", params={"page_token": "abc"}, headers=auth)
    assert (strange.status_code, error_code(strange)) == (400, "invalid_request")
    assert (await sandbox.http.get("/v1/reviews")).status_code == 401
    missing = await sandbox.http.patch("/control/reviews/sbr_none", json={"rating": 2})
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    assert (await sandbox.http.delete("/control/reviews/sbr_none")).status_code == 404
    nobody = await sandbox.http.post("/control/accounts/sbx_none/reviews", json={"rating": 5})
    assert nobody.status_code == 404
    bad = await sandbox.http.post(
        f"/control/accounts/{tokens['account_id']}/reviews", json={"rating": 6}
    )
    assert bad.status_code == 422


async def test_a_reply_is_an_upsert_of_the_locations_own_reviews(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    tokens = await sandbox.connect("cafe")
    auth = sandbox.bearer(tokens)
    added = await sandbox.http.post(
        f"/control/accounts/{tokens['account_id']}/reviews", json={"rating": 4, "comment": "Ok"}
    )
    review = added.json()["id"]
    path = f"/v1/reviews/{review}/reply"
    for _ in range(2):  # the same reply twice is one reply
        clock.advance(timedelta(seconds=1))
        put = await sandbox.http.put(path, json={"comment": "Thanks!"}, headers=auth)
        assert put.status_code == 200, put.text
        assert put.json() == {"comment": "Thanks!", "updated_at": clock.now().timestamp()}
    [listed] = (await sandbox.http.get("/v1/reviews", headers=auth)).json()["reviews"]
    assert listed["reply"] == put.json()
    assert listed["updated_at"] == clock.now().timestamp()  # now the most recently changed

    other = sandbox.bearer(await sandbox.connect("shop"))
    foreign = await sandbox.http.put(path, json={"comment": "Mine"}, headers=other)
    assert (foreign.status_code, error_code(foreign)) == (404, "not_found")
    for body in ({}, {"comment": ""}, {"comment": "x" * 4097}, {"comment": "Hi", "x": 1}):
        bad = await sandbox.http.put(path, json=body, headers=auth)
        assert (bad.status_code, error_code(bad)) == (422, "invalid_request"), body
    assert (await sandbox.http.put(path, json={"comment": "Hi"})).status_code == 401

    for _ in range(2):  # removing a reply that is gone is done too
        deleted = await sandbox.http.delete(path, headers=auth)
        assert (deleted.status_code, deleted.json()) == (200, {})
    [listed] = (await sandbox.http.get("/v1/reviews", headers=auth)).json()["reviews"]
    assert listed["reply"] is None
    missing = await sandbox.http.delete("/v1/reviews/sbr_none/reply", headers=auth)
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
