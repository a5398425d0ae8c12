"""Connecting X accounts through X's consent page, with this server's app: PKCE and a
single-use state, the profile read, tokens sealed; refusals and failed exchanges create
nothing; reconnecting keeps the account; disconnecting revokes the token at X."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.conftest import FakeClock, Tenant, assert_problem
from tests.mastodon import callback_path, query_of
from tests.x import X, connect_x, new_username


async def start(tenant: Tenant, **extra: object) -> httpx.Response:
    return await tenant.post("/v1/social-accounts/connect", json={"platform": "x", **extra})


async def test_an_account_connects_by_following_xs_consent_page(
    tenant: Tenant, x: X, clock: FakeClock
) -> None:
    started = await start(tenant)
    assert started.status_code == 200, started.text
    authorize = query_of(started.json()["authorize_url"])
    assert started.json()["authorize_url"].startswith(f"{x.authorize_url}?")
    assert authorize["client_id"] == x.client.client_id
    assert authorize["code_challenge_method"] == "S256"
    assert set(authorize["scope"].split()) == {
        "tweet.read",
        "tweet.write",
        "users.read",
        "media.write",
        "offline.access",
    }
    assert authorize["redirect_uri"].endswith("/v1/oauth/callback/x")
    name = new_username()
    location = await x.consent(started.json()["authorize_url"], username=name)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text

    [account] = (await tenant.get("/v1/social-accounts", params={"platform": "x"})).json()["data"]
    user = x.network.user_named(name)
    assert (account["external_id"], account["handle"], account["display_name"]) == (
        user.id,
        name,
        user.name,
    )
    assert account["server_url"] is None
    assert account["status"] == "active"
    expires = datetime.fromisoformat(account["token_expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now() + timedelta(hours=2)  # X's access tokens live two hours


async def test_x_is_listed_as_configured_with_its_weighted_rules(tenant: Tenant, x: X) -> None:
    listed = (await tenant.get("/v1/platforms")).json()
    [found] = [p for p in listed if p["name"] == "x"]
    assert (found["configured"], found["connects"]) == (True, "oauth")
    rules = found["rules"]
    assert (rules["max_text"], rules["max_media"], rules["max_video_seconds"]) == (280, 4, 140)
    assert "weighted" in rules["text_counting"]


async def test_a_refused_consent_or_a_spent_code_creates_nothing(
    tenant: Tenant, x: X, clock: FakeClock
) -> None:
    started = await start(tenant)
    denied = await x.consent(started.json()["authorize_url"], decision="deny")
    assert query_of(denied)["error"] == "access_denied"
    body = assert_problem(
        await tenant.http.get(callback_path(denied)), 403, "oauth-consent-refused"
    )
    assert body["oauth_error"] == "access_denied"

    again = await start(tenant)
    location = await x.consent(again.json()["authorize_url"], username=new_username())
    clock.advance(timedelta(seconds=31))  # X's code lives 30 seconds
    late = await tenant.http.get(callback_path(location))
    body = assert_problem(late, 502, "oauth-exchange-failed")
    assert "authorization code was invalid" in str(body["detail"])
    replay = await tenant.http.get(callback_path(location))
    assert_problem(replay, 409, "oauth-state-used")
    listed = (await tenant.get("/v1/social-accounts", params={"platform": "x"})).json()
    assert listed["data"] == []


async def test_an_instance_url_is_not_taken_for_x(tenant: Tenant, x: X) -> None:
    refused = await start(tenant, instance_url="https://x.example")
    assert_problem(refused, 422, "validation-error")


async def test_reconnecting_updates_the_account_in_place_with_its_new_tokens(
    tenant: Tenant, x: X
) -> None:
    name = new_username()
    first = await connect_x(tenant, x, name)
    second = await connect_x(tenant, x, name)
    assert second["id"] == first["id"]
    listed = (await tenant.get("/v1/social-accounts", params={"platform": "x"})).json()
    assert [a["id"] for a in listed["data"]] == [first["id"]]


async def test_disconnecting_revokes_the_token_at_x(tenant: Tenant, x: X) -> None:
    account = await connect_x(tenant, x)
    user = x.network.user_named(account["handle"])
    [access] = [
        t for t in x.network.tokens.values() if t.user_id == user.id and t.expires_at is not None
    ]
    assert not access.spent
    gone = await tenant.delete(f"/v1/social-accounts/{account['id']}")
    assert gone.status_code == 204, gone.text
    assert access.spent
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "disconnected"


async def test_another_workspace_neither_sees_nor_completes_the_connection(
    tenant: Tenant, other_tenant: Tenant, x: X
) -> None:
    account = await connect_x(tenant, x)
    assert_problem(await other_tenant.get(f"/v1/social-accounts/{account['id']}"), 404, "not-found")
    assert_problem(
        await other_tenant.delete(f"/v1/social-accounts/{account['id']}"), 404, "not-found"
    )
    started = await start(tenant)
    location = await x.consent(started.json()["authorize_url"], username=new_username())
    forged = callback_path(location).replace(f"state={tenant.id}", f"state={other_tenant.id}")
    assert_problem(await tenant.http.get(forged), 400, "oauth-state-invalid")
