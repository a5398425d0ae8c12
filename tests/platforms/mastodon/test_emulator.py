"""The Mastodon emulator is as strict as Mastodon's documentation: what a malformed client
sends fails here as it would on an instance."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.conftest import FakeClock
from tests.mastodon import Mastodon, query_of

REDIRECT = "https://crier.example/v1/oauth/callback/mastodon"


async def register(mastodon: Mastodon, scopes: str = "read write") -> dict[str, Any]:
    answer = await mastodon.browser.post(
        "/api/v1/apps",
        json={"client_name": "Test", "redirect_uris": [REDIRECT], "scopes": scopes},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorized_code(mastodon: Mastodon, app: dict[str, str], verifier: str) -> str:
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read write",
        "state": "s1",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    location = await mastodon.consent(str(httpx.URL("/oauth/authorize", params=query)))
    assert query_of(location)["state"] == "s1"
    return query_of(location)["code"]


async def token(
    mastodon: Mastodon, app: dict[str, str], code: str, verifier: str
) -> httpx.Response:
    return await mastodon.browser.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )


async def test_registering_an_app_needs_a_name_and_a_redirect_uri(mastodon: Mastodon) -> None:
    missing = await mastodon.browser.post("/api/v1/apps", json={"client_name": "Test"})
    assert missing.status_code == 422
    assert missing.json() == {"error": "Validation failed: Redirect URI can't be blank"}
    bad_scope = await mastodon.browser.post(
        "/api/v1/apps", json={"client_name": "T", "redirect_uris": REDIRECT, "scopes": "root"}
    )
    assert bad_scope.status_code == 422
    app = await register(mastodon)
    assert app["redirect_uris"] == [REDIRECT]
    assert app["client_secret_expires_at"] == 0


async def test_the_consent_screen_checks_client_redirect_and_scopes(mastodon: Mastodon) -> None:
    app = await register(mastodon, scopes="read")
    unknown = await mastodon.browser.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": "nope", "redirect_uri": REDIRECT},
    )
    assert unknown.status_code == 401
    elsewhere = await mastodon.browser.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "https://evil.example/cb",
        },
    )
    assert elsewhere.status_code == 400
    wider = await mastodon.browser.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "read write",
            "state": "x",
        },
    )
    assert wider.status_code == 302
    assert query_of(wider.headers["location"])["error"] == "invalid_scope"
    plain = await mastodon.browser.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "code_challenge": "abc",
            "code_challenge_method": "plain",
        },
    )
    assert query_of(plain.headers["location"])["error"] == "invalid_request"


async def test_a_code_is_traded_once_with_its_verifier(
    mastodon: Mastodon, clock: FakeClock
) -> None:
    app = await register(mastodon)
    verifier = "v" * 64
    code = await authorized_code(mastodon, app, verifier)
    wrong = await token(mastodon, app, code, "w" * 64)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    # The failed try spent the code (the emulator treats every try as its one use).
    code = await authorized_code(mastodon, app, verifier)
    good = await token(mastodon, app, code, verifier)
    assert good.status_code == 200, good.text
    assert set(good.json()) == {"access_token", "token_type", "scope", "created_at"}
    again = await token(mastodon, app, code, verifier)
    assert again.status_code == 400

    late = await authorized_code(mastodon, app, verifier)
    clock.advance(timedelta(minutes=11))
    assert (await token(mastodon, app, late, verifier)).status_code == 400

    stranger = {**app, "client_secret": "guess"}
    fresh = await authorized_code(mastodon, app, verifier)
    refused = await token(mastodon, stranger, fresh, verifier)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")


async def signed_in(mastodon: Mastodon) -> tuple[dict[str, str], dict[str, str]]:
    app = await register(mastodon)
    verifier = "v" * 64
    code = await authorized_code(mastodon, app, verifier)
    access = (await token(mastodon, app, code, verifier)).json()["access_token"]
    return app, {"Authorization": f"Bearer {access}"}


async def test_the_api_wants_a_valid_token_and_the_right_scope(mastodon: Mastodon) -> None:
    anonymous = await mastodon.browser.post("/api/v1/statuses", json={"status": "hi"})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "The access token is invalid"}
    app = await register(mastodon, scopes="read")
    verifier = "r" * 64
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    location = await mastodon.consent(str(httpx.URL("/oauth/authorize", params=query)))
    access = (await token(mastodon, app, query_of(location)["code"], verifier)).json()
    reader = {"Authorization": f"Bearer {access['access_token']}"}
    assert (
        await mastodon.browser.get("/api/v1/accounts/verify_credentials", headers=reader)
    ).status_code == 200
    forbidden = await mastodon.browser.post(
        "/api/v1/statuses", json={"status": "hi"}, headers=reader
    )
    assert forbidden.status_code == 403


async def test_statuses_are_validated_and_idempotent_for_an_hour(
    mastodon: Mastodon, clock: FakeClock
) -> None:
    _, auth = await signed_in(mastodon)
    blank = await mastodon.browser.post("/api/v1/statuses", json={"status": " "}, headers=auth)
    assert blank.json() == {"error": "Validation failed: Text can't be blank"}
    long = await mastodon.browser.post("/api/v1/statuses", json={"status": "x" * 501}, headers=auth)
    assert long.status_code == 422
    keyed = {**auth, "Idempotency-Key": "k1"}
    first = await mastodon.browser.post("/api/v1/statuses", data={"status": "one"}, headers=keyed)
    again = await mastodon.browser.post("/api/v1/statuses", data={"status": "two"}, headers=keyed)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["content"] == "<p>one</p>"
    clock.advance(timedelta(hours=1, seconds=1))
    later = await mastodon.browser.post("/api/v1/statuses", data={"status": "two"}, headers=keyed)
    assert later.json()["id"] != first.json()["id"]


async def test_media_process_in_the_background_and_cannot_be_attached_before(
    mastodon: Mastodon,
) -> None:
    _, auth = await signed_in(mastodon)
    mastodon.instance.faults.processing_polls = 1
    files = {"file": ("a.png", b"\x89PNG fake", "image/png")}
    upload = await mastodon.browser.post(
        "/api/v2/media", files=files, data={"description": "alt"}, headers=auth
    )
    assert upload.status_code == 202
    media = upload.json()
    assert media["url"] is None
    early = await mastodon.browser.post(
        "/api/v1/statuses", json={"media_ids": [media["id"]]}, headers=auth
    )
    assert early.status_code == 422
    assert (
        await mastodon.browser.get(f"/api/v1/media/{media['id']}", headers=auth)
    ).status_code == 206
    ready = await mastodon.browser.get(f"/api/v1/media/{media['id']}", headers=auth)
    assert ready.status_code == 200
    assert ready.json()["url"]
    posted = await mastodon.browser.post(
        "/api/v1/statuses", json={"media_ids": [media["id"]]}, headers=auth
    )
    assert posted.status_code == 200
    wrong_type = await mastodon.browser.post(
        "/api/v2/media", files={"file": ("a.txt", b"hello", "text/plain")}, headers=auth
    )
    assert wrong_type.status_code == 422


async def test_every_authenticated_answer_carries_the_rate_limit(
    mastodon: Mastodon, clock: FakeClock
) -> None:
    _, auth = await signed_in(mastodon)
    mastodon.instance.faults.rate_limit = 2
    first = await mastodon.browser.get("/api/v1/accounts/verify_credentials", headers=auth)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    reset = datetime.fromisoformat(first.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert reset == clock.now() + timedelta(minutes=5)
    await mastodon.browser.get("/api/v1/accounts/verify_credentials", headers=auth)
    over = await mastodon.browser.get("/api/v1/accounts/verify_credentials", headers=auth)
    assert over.status_code == 429
    assert over.json() == {"error": "Too many requests"}
    assert over.headers["X-RateLimit-Remaining"] == "0"


async def test_a_token_is_revoked_only_by_its_own_client(mastodon: Mastodon) -> None:
    app, auth = await signed_in(mastodon)
    other = await register(mastodon)
    access = auth["Authorization"].removeprefix("Bearer ")
    foreign = await mastodon.browser.post(
        "/oauth/revoke",
        data={
            "client_id": other["client_id"],
            "client_secret": other["client_secret"],
            "token": access,
        },
    )
    assert (foreign.status_code, foreign.json()["error"]) == (403, "unauthorized_client")
    own = await mastodon.browser.post(
        "/oauth/revoke",
        data={
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "token": access,
        },
    )
    assert (own.status_code, own.json()) == (200, {})
    assert (
        await mastodon.browser.get("/api/v1/accounts/verify_credentials", headers=auth)
    ).status_code == 401


async def test_a_status_is_measured_as_mastodon_documents_it(mastodon: Mastodon) -> None:
    """Links count 23 and a mention's domain nothing, in characters as people see them."""
    _, auth = await signed_in(mastodon)
    link = "https://example.com/" + "a" * 300
    fits = "b" * 467 + " " + link + " @carol@far.example.social 👍🏽"  # 467+1+23+1+6+1+1
    assert len(fits) > 500
    ok = await mastodon.browser.post("/api/v1/statuses", json={"status": fits}, headers=auth)
    assert ok.status_code == 200, ok.text
    over = await mastodon.browser.post(
        "/api/v1/statuses", json={"status": "b" + fits}, headers=auth
    )
    assert over.status_code == 422


async def test_an_accounts_statuses_are_paged_newest_first_with_their_source_to_the_author(
    mastodon: Mastodon,
) -> None:
    _, auth = await signed_in(mastodon)
    made = []
    for n in range(5):
        sent = await mastodon.browser.post(
            "/api/v1/statuses", json={"status": f"<b>{n}</b> & more"}, headers=auth
        )
        made.append(sent.json())
    alice = made[0]["account"]["id"]
    path = f"/api/v1/accounts/{alice}/statuses"
    first = await mastodon.browser.get(path, params={"limit": 2}, headers=auth)
    assert [s["id"] for s in first.json()] == [made[4]["id"], made[3]["id"]]
    assert first.json()[0]["application"] == {"name": "Test", "website": None}
    assert first.json()[0]["content"] == "<p>&lt;b&gt;4&lt;/b&gt; &amp; more</p>"
    following = httpx.URL(first.links["next"]["url"])
    second = await mastodon.browser.get(following.path, params=following.params, headers=auth)
    assert [s["id"] for s in second.json()] == [made[2]["id"], made[1]["id"]]
    oldest = await mastodon.browser.get(
        path, params={"limit": 2, "min_id": made[0]["id"]}, headers=auth
    )
    assert [s["id"] for s in oldest.json()] == [made[2]["id"], made[1]["id"]]
    bad = await mastodon.browser.get(path, params={"max_id": "x"}, headers=auth)
    assert bad.status_code == 400

    source = await mastodon.browser.get(f"/api/v1/statuses/{made[4]['id']}/source", headers=auth)
    assert source.json() == {"id": made[4]["id"], "text": "<b>4</b> & more", "spoiler_text": ""}

    app = await register(mastodon)
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read write",
    }
    location = await mastodon.consent(
        str(httpx.URL("/oauth/authorize", params=query)), username="bob"
    )
    bobs = (await token(mastodon, app, query_of(location)["code"], "")).json()
    bob = {"Authorization": f"Bearer {bobs['access_token']}"}
    seen = await mastodon.browser.get(path, params={"limit": 1}, headers=bob)
    assert seen.json()[0]["id"] == made[4]["id"]
    assert "application" not in seen.json()[0]  # shown to its author only
    theirs = await mastodon.browser.get(f"/api/v1/statuses/{made[4]['id']}/source", headers=bob)
    assert (theirs.status_code, theirs.json()) == (404, {"error": "Record not found"})


async def test_an_instance_may_ignore_idempotency_keys(mastodon: Mastodon) -> None:
    _, auth = await signed_in(mastodon)
    mastodon.instance.faults.ignore_idempotency_keys = True
    keyed = {**auth, "Idempotency-Key": "k1"}
    first = await mastodon.browser.post("/api/v1/statuses", data={"status": "one"}, headers=keyed)
    again = await mastodon.browser.post("/api/v1/statuses", data={"status": "one"}, headers=keyed)
    assert first.json()["id"] != again.json()["id"]
    assert len(mastodon.instance.statuses_with_key("k1")) == 2
