"""The X emulator is as strict as X's documentation: what a malformed client sends fails
here as it would on X."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from crier.platforms.x.emulator import weighted_length
from tests.conftest import FakeClock
from tests.mastodon import query_of
from tests.media.conftest import image_bytes
from tests.x import X, x_network

BASE = "https://crier.example"
REDIRECT = f"{BASE}/v1/oauth/callback/x"
SCOPES = "tweet.read tweet.write users.read media.write offline.access"


@pytest.fixture
async def emulated(clock: FakeClock) -> AsyncIterator[X]:
    async with x_network(clock, BASE) as network:
        yield network


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(x: X) -> dict[str, str]:
    pair = f"{x.client.client_id}:{x.client.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def code_for(x: X, verifier: str = "v" * 43, scope: str = SCOPES, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": x.client.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s1",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    location = await x.consent(str(httpx.URL(x.authorize_url, params=query)), username="zoe")
    assert query_of(location)["state"] == "s1"
    return query_of(location)["code"]


async def exchange(x: X, code: str, verifier: str = "v" * 43, **headers: str) -> httpx.Response:
    return await x.browser.post(
        "/2/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=headers or basic(x),
    )


async def tokens(x: X, scope: str = SCOPES) -> dict[str, Any]:
    answer = await exchange(x, await code_for(x, scope=scope))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


async def test_the_consent_page_takes_only_a_known_client_its_exact_redirect_and_pkce(
    emulated: X,
) -> None:
    good = {
        "response_type": "code",
        "client_id": emulated.client.client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "s",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    page = await emulated.browser.get(emulated.authorize_url, params=good)
    assert page.status_code == 200
    for wrong in ({"client_id": "nobody"}, {"redirect_uri": REDIRECT + "/other"}):
        refused = await emulated.browser.get(emulated.authorize_url, params=good | wrong)
        assert refused.status_code == 400
    for wrong, error in (
        ({"scope": "tweet.read bogus.scope"}, "invalid_scope"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"state": "s" * 501}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ):
        answer = await emulated.browser.get(emulated.authorize_url, params=good | wrong)
        assert answer.status_code == 302
        assert query_of(answer.headers["location"])["error"] == error


async def test_a_code_is_single_use_lives_30_seconds_and_needs_its_verifier(
    emulated: X, clock: FakeClock
) -> None:
    code = await code_for(emulated)
    wrong = await exchange(emulated, code, verifier="w" * 43)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_request")
    code = await code_for(emulated)
    assert (await exchange(emulated, code)).status_code == 200
    assert (await exchange(emulated, code)).status_code == 400  # spent
    late = await code_for(emulated)
    clock.advance(timedelta(seconds=31))
    assert (await exchange(emulated, late)).status_code == 400


async def test_a_confidential_client_must_authenticate_with_basic(emulated: X) -> None:
    code = await code_for(emulated)
    in_form = await emulated.browser.post(
        "/2/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": "v" * 43,
            "client_id": emulated.client.client_id,
        },
    )
    assert (in_form.status_code, in_form.json()["error"]) == (401, "unauthorized_client")
    wrong = base64.b64encode(f"{emulated.client.client_id}:nope".encode()).decode()
    bad = await exchange(emulated, code, Authorization=f"Basic {wrong}")
    assert bad.status_code == 401
    as_json = await emulated.browser.post(
        "/2/oauth2/token", json={"grant_type": "authorization_code"}, headers=basic(emulated)
    )
    assert as_json.status_code == 400  # form-encoded only


async def test_refresh_tokens_come_only_with_offline_access_and_rotate(emulated: X) -> None:
    without = await tokens(emulated, scope="tweet.read users.read")
    assert "refresh_token" not in without
    assert without["expires_in"] == 7200
    first = await tokens(emulated)

    async def refresh(value: str) -> httpx.Response:
        return await emulated.browser.post(
            "/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": value},
            headers=basic(emulated),
        )

    second = await refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    spent = await refresh(first["refresh_token"])
    assert spent.status_code == 400
    assert spent.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }
    assert (await refresh(second.json()["refresh_token"])).status_code == 200


async def test_api_calls_need_a_live_token_and_its_scopes_and_say_their_rate_limit(
    emulated: X, clock: FakeClock
) -> None:
    token = await tokens(emulated, scope="tweet.read users.read")
    me = await emulated.browser.get("/2/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["data"]["username"] == "zoe"
    assert me.headers["x-rate-limit-limit"] == "75"
    assert me.headers["x-rate-limit-remaining"] == "74"
    reset = int(me.headers["x-rate-limit-reset"])
    assert reset == int((clock.now() + timedelta(minutes=15)).timestamp())
    post = await emulated.browser.post("/2/tweets", json={"text": "hi"}, headers=bearer(token))
    assert post.status_code == 403  # no tweet.write
    assert post.headers["content-type"] == "application/problem+json"
    clock.advance(timedelta(hours=2, seconds=1))
    late = await emulated.browser.get("/2/users/me", headers=bearer(token))
    assert (late.status_code, late.json()["title"]) == (401, "Unauthorized")


async def test_past_the_limit_it_answers_429_with_the_reset(emulated: X) -> None:
    token = await tokens(emulated)
    emulated.network.faults.tweet_limit = 1
    made = await emulated.browser.post("/2/tweets", json={"text": "one"}, headers=bearer(token))
    assert made.status_code == 201
    refused = await emulated.browser.post("/2/tweets", json={"text": "two"}, headers=bearer(token))
    assert refused.status_code == 429
    assert refused.headers["x-rate-limit-remaining"] == "0"
    assert int(refused.headers["x-rate-limit-reset"]) > 0


async def test_a_post_is_checked_as_x_checks_it(emulated: X) -> None:
    auth = bearer(await tokens(emulated))

    async def create(body: Any, **kw: Any) -> httpx.Response:
        return await emulated.browser.post("/2/tweets", json=body, headers=auth, **kw)

    assert (await create({"status": "wrong field"})).status_code == 400
    assert (await create({})).status_code == 400
    assert (await create({"text": "a" * 281})).status_code == 403
    assert (await create({"text": "hi", "reply_settings": "friends"})).status_code == 400
    assert (await create({"text": "hi", "media": {"media_ids": ["1"]}})).status_code == 400
    plain = await emulated.browser.post(
        "/2/tweets", content=b'{"text": "hi"}', headers=auth | {"Content-Type": "text/plain"}
    )
    assert plain.status_code == 400
    made = await create({"text": "Tom & Jerry at https://example.com/tom"})
    assert made.status_code == 201, made.text
    shown = made.json()["data"]["text"]
    assert shown.startswith("Tom &amp; Jerry at https://t.co/")
    duplicate = await create({"text": "Tom & Jerry at https://example.com/tom"})
    assert duplicate.status_code == 403
    assert duplicate.json()["detail"] == (
        "You are not allowed to create a Tweet with duplicate content."
    )


async def test_the_timeline_pages_newest_first_within_its_bounds(emulated: X) -> None:
    token = await tokens(emulated)
    auth = bearer(token)
    user = (await emulated.browser.get("/2/users/me", headers=auth)).json()["data"]["id"]
    for i in range(7):
        await emulated.browser.post("/2/tweets", json={"text": f"post {i}"}, headers=auth)
    path = f"/2/users/{user}/tweets"
    for bad in ({"max_results": "4"}, {"max_results": "101"}, {"exclude": "likes"}):
        assert (await emulated.browser.get(path, params=bad, headers=auth)).status_code == 400
    bad_field = await emulated.browser.get(path, params={"tweet.fields": "nope"}, headers=auth)
    assert bad_field.status_code == 400
    first = (await emulated.browser.get(path, params={"max_results": 5}, headers=auth)).json()
    assert [t["text"] for t in first["data"]] == [f"post {i}" for i in (6, 5, 4, 3, 2)]
    rest = await emulated.browser.get(
        path,
        params={"max_results": 5, "pagination_token": first["meta"]["next_token"]},
        headers=auth,
    )
    assert [t["text"] for t in rest.json()["data"]] == ["post 1", "post 0"]
    assert "next_token" not in rest.json()["meta"]
    future = await emulated.browser.get(
        path, params={"start_time": "2999-01-01T00:00:00Z"}, headers=auth
    )
    assert future.json() == {"meta": {"result_count": 0}}


async def test_media_go_up_in_chunks_of_the_declared_size_and_type(emulated: X) -> None:
    auth = bearer(await tokens(emulated))
    png = image_bytes("PNG", (64, 48))

    async def initialize(**body: Any) -> httpx.Response:
        return await emulated.browser.post("/2/media/upload/initialize", json=body, headers=auth)

    assert (
        await initialize(media_type="image/png", total_bytes=6 * 1024 * 1024)
    ).status_code == 400
    assert (
        await initialize(media_type="video/mp4", total_bytes=10, media_category="tweet_image")
    ).status_code == 400
    begun = await initialize(media_type="image/png", total_bytes=len(png))
    media_id = begun.json()["data"]["id"]

    async def append(index: str, chunk: bytes) -> httpx.Response:
        return await emulated.browser.post(
            f"/2/media/upload/{media_id}/append",
            data={"segment_index": index},
            files={"media": ("c", chunk, "image/png")},
            headers=auth,
        )

    assert (await append("1000", png)).status_code == 400
    assert (await append("0", png[:10])).status_code == 200
    short = await emulated.browser.post(f"/2/media/upload/{media_id}/finalize", headers=auth)
    assert short.status_code == 400  # 10 bytes of the declared size
    assert (await append("1", png[10:])).status_code == 200
    done = await emulated.browser.post(f"/2/media/upload/{media_id}/finalize", headers=auth)
    assert done.status_code == 200, done.text
    assert "processing_info" not in done.json()["data"]  # an image is ready at once
    alt = await emulated.browser.post(
        "/2/media/metadata",
        json={"id": media_id, "metadata": {"alt_text": {"text": "a" * 1001}}},
        headers=auth,
    )
    assert alt.status_code == 400
    emulated.network.media[media_id].user_id = "someone-else"  # another user's media
    taken = await emulated.browser.post(
        "/2/tweets", json={"media": {"media_ids": [media_id]}}, headers=auth
    )
    assert taken.status_code == 400


async def test_a_video_processes_before_it_can_be_posted(emulated: X) -> None:
    auth = bearer(await tokens(emulated))
    content = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100
    begun = await emulated.browser.post(
        "/2/media/upload/initialize",
        json={
            "media_type": "video/mp4",
            "total_bytes": len(content),
            "media_category": "tweet_video",
        },
        headers=auth,
    )
    media_id = begun.json()["data"]["id"]
    await emulated.browser.post(
        f"/2/media/upload/{media_id}/append",
        data={"segment_index": "0"},
        files={"media": ("c", content, "video/mp4")},
        headers=auth,
    )
    done = await emulated.browser.post(f"/2/media/upload/{media_id}/finalize", headers=auth)
    assert done.json()["data"]["processing_info"]["state"] == "pending"
    early = await emulated.browser.post(
        "/2/tweets", json={"media": {"media_ids": [media_id]}}, headers=auth
    )
    assert early.status_code == 400
    status = await emulated.browser.get(
        "/2/media/upload", params={"command": "STATUS", "media_id": media_id}, headers=auth
    )
    assert status.json()["data"]["processing_info"]["state"] == "in_progress"
    status = await emulated.browser.get(
        "/2/media/upload", params={"command": "STATUS", "media_id": media_id}, headers=auth
    )
    assert status.json()["data"]["processing_info"]["state"] == "succeeded"
    made = await emulated.browser.post(
        "/2/tweets", json={"media": {"media_ids": [media_id]}}, headers=auth
    )
    assert made.status_code == 201, made.text


def test_weight_is_counted_as_xs_page_counts_it() -> None:
    assert weighted_length("Hello, world! 👋") == 16  # X's own example
    assert weighted_length("cafe\u0301") == 4  # NFC first
    assert weighted_length("👨‍👩‍👧‍👦") == 2
    assert weighted_length("日本語") == 6
    assert weighted_length("see https://example.com/a/very/long/path") == 4 + 23
