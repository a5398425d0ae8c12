"""Connecting Mastodon accounts through the consent screen, as a browser would: the state
is single-use, short-lived and bound to its workspace; every failure creates nothing."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from crier.kit.db import Database
from crier.models import PlatformApp
from tests.conftest import FakeClock, MakeTenant, Tenant, assert_problem
from tests.mastodon import Mastodon, callback_path, connect_mastodon, query_of, start_connect


async def accounts_of(tenant: Tenant) -> list[dict[str, object]]:
    return list((await tenant.get("/v1/social-accounts")).json()["data"])


async def test_an_account_connects_by_following_the_consent_screen(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    started = await start_connect(tenant, mastodon)
    assert started.status_code == 200, started.text
    body = started.json()
    authorize = query_of(body["authorize_url"])
    assert body["authorize_url"].startswith(f"{mastodon.url}/oauth/authorize?")
    assert authorize["response_type"] == "code"
    assert authorize["code_challenge_method"] == "S256"
    assert len(authorize["code_challenge"]) == 43
    assert authorize["redirect_uri"].endswith("/v1/oauth/callback/mastodon")
    assert authorize["state"].startswith(tenant.id + ".")

    location = await mastodon.consent(body["authorize_url"], username="alice")
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200
    assert "text/html" in done.headers["content-type"]
    assert "alice@" in done.text

    [account] = await accounts_of(tenant)
    host = mastodon.url.removeprefix("http://")
    assert account["platform"] == "mastodon"
    assert account["handle"] == f"alice@{host}"
    assert account["server_url"] == mastodon.url
    assert account["status"] == "active"
    assert account["token_expires_at"] is None  # Mastodon tokens do not expire
    assert account["last_refreshed_at"] is not None
    token = next(iter(mastodon.instance.tokens.values()))
    assert mastodon.instance.accounts[token.account_id]["username"] == "alice"
    assert account["external_id"] == token.account_id


async def test_the_app_is_registered_once_per_instance(
    make_tenant: MakeTenant, mastodon: Mastodon, db: Database
) -> None:
    first, second = await make_tenant(), await make_tenant()
    await connect_mastodon(first, mastodon, "alice")
    await connect_mastodon(second, mastodon, "bob")
    assert len(mastodon.instance.apps) == 1
    async with db.transaction() as session:
        kept = await session.scalar(
            select(func.count())
            .select_from(PlatformApp)
            .where(PlatformApp.server_url == mastodon.url)
        )
    assert kept == 1


async def test_a_state_is_spent_once(tenant: Tenant, mastodon: Mastodon) -> None:
    started = (await start_connect(tenant, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"])
    assert (await tenant.http.get(callback_path(location))).status_code == 200
    replay = await tenant.http.get(callback_path(location))
    assert_problem(replay, 409, "oauth-state-used")
    assert len(await accounts_of(tenant)) == 1


async def test_an_expired_state_creates_nothing(
    tenant: Tenant, mastodon: Mastodon, clock: FakeClock
) -> None:
    started = (await start_connect(tenant, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"])
    clock.advance(timedelta(minutes=10, seconds=1))
    assert_problem(await tenant.http.get(callback_path(location)), 410, "oauth-state-expired")
    assert await accounts_of(tenant) == []


async def test_a_state_of_another_workspace_or_platform_is_refused(
    tenant: Tenant, other_tenant: Tenant, mastodon: Mastodon
) -> None:
    started = (await start_connect(tenant, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"])
    query = query_of(location)
    _, secret = query["state"].split(".", 1)
    # The same secret presented as another workspace's finds nothing there.
    foreign = f"/v1/oauth/callback/mastodon?code={query['code']}&state={other_tenant.id}.{secret}"
    assert_problem(await tenant.http.get(foreign), 400, "oauth-state-invalid")
    other_platform = callback_path(location).replace("/mastodon?", "/x?")
    assert_problem(await tenant.http.get(other_platform), 400, "oauth-state-invalid")
    for state in ("", "not-a-state", f"{uuid4()}.{secret}"):
        answer = await tenant.http.get(
            f"/v1/oauth/callback/mastodon?code={query['code']}&state={state}"
        )
        assert_problem(answer, 400, "oauth-state-invalid")
    assert await accounts_of(tenant) == []
    assert await accounts_of(other_tenant) == []
    # Still unspent: the real callback completes.
    assert (await tenant.http.get(callback_path(location))).status_code == 200


async def test_a_refused_consent_creates_nothing_and_spends_the_state(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    started = (await start_connect(tenant, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"], decision="deny")
    assert query_of(location)["error"] == "access_denied"
    refused = assert_problem(
        await tenant.http.get(callback_path(location)), 403, "oauth-consent-refused"
    )
    assert refused["oauth_error"] == "access_denied"
    assert_problem(await tenant.http.get(callback_path(location)), 409, "oauth-state-used")
    assert await accounts_of(tenant) == []


async def test_a_failed_exchange_creates_nothing(tenant: Tenant, mastodon: Mastodon) -> None:
    started = (await start_connect(tenant, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"])
    query = query_of(location)
    forged = f"/v1/oauth/callback/mastodon?code=not-the-code&state={query['state']}"
    failed = assert_problem(await tenant.http.get(forged), 502, "oauth-exchange-failed")
    assert failed["platform_error"] == "invalid_request"
    assert "grant" in str(failed["detail"])
    assert await accounts_of(tenant) == []


async def test_a_member_who_left_cannot_complete_their_consent(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    editor = await tenant.member_with_key("admin")
    started = (await start_connect(editor, mastodon)).json()
    location = await mastodon.consent(started["authorize_url"])
    assert (await tenant.delete(f"/v1/members/{editor.owner_id}")).status_code == 204
    assert_problem(await tenant.http.get(callback_path(location)), 400, "oauth-state-invalid")
    assert await accounts_of(tenant) == []


async def test_reconnecting_updates_the_account_in_place(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    first = await connect_mastodon(tenant, mastodon, "alice")
    tokens_before = set(mastodon.instance.tokens)
    again = await connect_mastodon(tenant, mastodon, "alice")
    assert again["id"] == first["id"]
    assert len(await accounts_of(tenant)) == 1
    assert set(mastodon.instance.tokens) - tokens_before  # a new token was issued and kept
    other = await connect_mastodon(tenant, mastodon, "bob")
    assert other["id"] != first["id"]


async def test_redirect_to_leads_back_only_to_allowed_origins(
    tenant: Tenant, mastodon: Mastodon
) -> None:
    refused = await start_connect(tenant, mastodon, redirect_to="https://evil.example/done")
    body = assert_problem(refused, 422, "validation-error")
    assert body["errors"][0]["type"] == "origin_not_allowed"  # type: ignore[index]

    back = "http://127.0.0.1:8000/app/accounts?tab=social"
    started = await start_connect(tenant, mastodon, redirect_to=back)
    assert started.status_code == 200, started.text
    location = await mastodon.consent(started.json()["authorize_url"])
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 303
    target = done.headers["location"]
    assert target.startswith(back + "&account_id=")
    [account] = await accounts_of(tenant)
    assert query_of(target) == {
        "tab": "social",
        "account_id": account["id"],
        "platform": "mastodon",
    }


@pytest.mark.parametrize(
    ("instance_url", "kind"),
    [
        ("https://10.0.0.7", "destination_refused"),
        ("https://169.254.169.254", "destination_refused"),
        ("https://mastodon.example/path", "invalid_instance"),
        ("ftp://mastodon.example", "invalid_instance"),
    ],
)
async def test_an_instance_url_is_checked_before_any_call(
    tenant: Tenant, instance_url: str, kind: str
) -> None:
    answer = await tenant.post(
        "/v1/social-accounts/connect", json={"platform": "mastodon", "instance_url": instance_url}
    )
    body = assert_problem(answer, 422, "validation-error")
    assert body["errors"][0]["type"] == kind  # type: ignore[index]
    assert body["errors"][0]["loc"] == ["body", "instance_url"]  # type: ignore[index]


async def test_connect_needs_an_instance_and_a_platform_with_a_consent_screen(
    tenant: Tenant,
) -> None:
    missing = await tenant.post("/v1/social-accounts/connect", json={"platform": "mastodon"})
    assert_problem(missing, 422, "validation-error")
    sandbox = await tenant.post("/v1/social-accounts/connect", json={"platform": "sandbox"})
    assert_problem(sandbox, 422, "platform-not-connectable")
    unknown = await tenant.post("/v1/social-accounts/connect", json={"platform": "myspace"})
    assert_problem(unknown, 422, "validation-error")


async def test_connecting_needs_the_manage_permission(tenant: Tenant, mastodon: Mastodon) -> None:
    viewer = await tenant.member_with_key("viewer")
    assert_problem(await start_connect(viewer, mastodon), 403, "permission-denied")
    anonymous = await tenant.http.post(
        "/v1/social-accounts/connect", json={"platform": "mastodon", "instance_url": mastodon.url}
    )
    assert_problem(anonymous, 401, "unauthorized")


async def test_the_plan_limit_holds_for_consent_connections(
    make_tenant: MakeTenant, mastodon: Mastodon
) -> None:
    tenant = await make_tenant(plan="free")
    from crier.workspace.plans import limits_of

    for n in range(limits_of("free").social_accounts):
        await connect_mastodon(tenant, mastodon, f"user{n}")
    assert_problem(await start_connect(tenant, mastodon), 403, "plan-limit-exceeded")
