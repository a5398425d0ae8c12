"""Connecting LinkedIn members through LinkedIn's consent page, with this server's app:
the identity from OpenID Connect, tokens sealed, the grant's end shown; a cancelled
consent or a failed exchange creates nothing; reconnecting keeps the account. A company
page connects through the consent of a member who may post for it."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.conftest import FakeClock, Tenant, assert_problem
from tests.linkedin import LinkedIn, connect_linkedin, connect_linkedin_page, new_name, new_page
from tests.mastodon import callback_path, query_of


async def start(tenant: Tenant, **extra: object) -> httpx.Response:
    return await tenant.post("/v1/social-accounts/connect", json={"platform": "linkedin", **extra})


async def test_a_member_connects_by_following_linkedins_consent_page(
    tenant: Tenant, linkedin: LinkedIn
) -> None:
    started = await start(tenant)
    assert started.status_code == 200, started.text
    authorize = query_of(started.json()["authorize_url"])
    assert started.json()["authorize_url"].startswith(f"{linkedin.oauth_url}/authorization?")
    assert authorize["client_id"] == linkedin.client.client_id
    assert set(authorize["scope"].split()) == {"openid", "profile", "w_member_social"}
    assert authorize["redirect_uri"].endswith("/v1/oauth/callback/linkedin")
    assert authorize["state"].startswith(tenant.id + ".")
    name = new_name()
    location = await linkedin.consent(started.json()["authorize_url"], member=name)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    [account] = (await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})).json()[
        "data"
    ]
    member = linkedin.network.member_named(name)
    assert (account["external_id"], account["handle"], account["display_name"]) == (
        member.id,
        name,
        name,
    )
    assert account["status"] == "active"
    assert account["reconnect_by"] is not None


async def test_a_cancelled_consent_or_a_late_code_creates_nothing(
    tenant: Tenant, linkedin: LinkedIn, clock: FakeClock
) -> None:
    started = await start(tenant)
    cancelled = await linkedin.consent(started.json()["authorize_url"], decision="cancel")
    assert query_of(cancelled)["error"] == "user_cancelled_authorize"
    body = assert_problem(
        await tenant.http.get(callback_path(cancelled)), 403, "oauth-consent-refused"
    )
    assert body["oauth_error"] == "user_cancelled_authorize"
    again = await start(tenant)
    location = await linkedin.consent(again.json()["authorize_url"], member=new_name())
    clock.advance(timedelta(minutes=9))  # within Crier's 10 minutes...
    linkedin.network.grants.clear()  # ...but LinkedIn no longer has the code
    late = await tenant.http.get(callback_path(location))
    body = assert_problem(late, 502, "oauth-exchange-failed")
    assert "authorization code" in str(body["detail"])
    listed = (await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})).json()
    assert listed["data"] == []


async def test_reconnecting_keeps_the_account(tenant: Tenant, linkedin: LinkedIn) -> None:
    name = new_name()
    first = await connect_linkedin(tenant, linkedin, name)
    second = await connect_linkedin(tenant, linkedin, name)
    assert second["id"] == first["id"]


async def test_disconnecting_erases_the_account_and_another_workspace_sees_nothing(
    tenant: Tenant, other_tenant: Tenant, linkedin: LinkedIn
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    assert_problem(await other_tenant.get(f"/v1/social-accounts/{account['id']}"), 404, "not-found")
    assert_problem(
        await other_tenant.delete(f"/v1/social-accounts/{account['id']}"), 404, "not-found"
    )
    gone = await tenant.delete(f"/v1/social-accounts/{account['id']}")
    assert gone.status_code == 204, gone.text
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "disconnected"


async def test_linkedin_is_listed_as_configured_with_its_rules(tenant: Tenant) -> None:
    listed = (await tenant.get("/v1/platforms")).json()
    [found] = [p for p in listed if p["name"] == "linkedin"]
    assert (found["configured"], found["connects"]) == (True, "oauth")
    rules = found["rules"]
    assert (rules["max_text"], rules["media_kinds"]) == (3000, ["image", "video"])
    assert (rules["max_videos"], rules["video_alone"], rules["max_video_seconds"]) == (
        1,
        True,
        1800,
    )


async def test_a_company_page_connects_through_the_consent_of_a_member_who_may_post_for_it(
    tenant: Tenant, linkedin: LinkedIn
) -> None:
    admin = new_name()
    page = new_page(linkedin, admin)
    started = await start(tenant, organization=page.vanity_name)
    assert started.status_code == 200, started.text
    scopes = set(query_of(started.json()["authorize_url"])["scope"].split())
    assert scopes == {"w_organization_social", "r_organization_social", "r_organization_admin"}
    location = await linkedin.consent(started.json()["authorize_url"], member=admin)
    done = await tenant.http.get(callback_path(location))
    assert done.status_code == 200, done.text
    assert page.vanity_name in done.text
    [account] = (await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})).json()[
        "data"
    ]
    assert (account["external_id"], account["handle"], account["display_name"]) == (
        page.urn,
        page.vanity_name,
        page.name,
    )
    by_id = await connect_linkedin_page(tenant, linkedin, page, admin, by=str(page.id))
    assert by_id["id"] == account["id"]  # the same page, reconnected in place
    member = await connect_linkedin(tenant, linkedin, admin)
    assert member["id"] != account["id"]  # the member is an account of their own


async def test_a_page_the_member_may_not_post_for_connects_nothing(
    tenant: Tenant, linkedin: LinkedIn
) -> None:
    admin = new_name()
    theirs = new_page(linkedin, admin, role="CONTENT_ADMINISTRATOR")
    watched = new_page(linkedin, admin, role="ANALYST")  # may read it, not post for it
    for asked in (watched.vanity_name, "no-such-page"):
        started = await start(tenant, organization=asked)
        location = await linkedin.consent(started.json()["authorize_url"], member=admin)
        body = assert_problem(
            await tenant.http.get(callback_path(location)), 403, "oauth-organization-refused"
        )
        assert (body["organization"], body["allowed"]) == (asked, [theirs.vanity_name])
    listed = (await tenant.get("/v1/social-accounts", params={"platform": "linkedin"})).json()
    assert listed["data"] == []


async def test_a_page_is_only_for_linkedin(tenant: Tenant, linkedin: LinkedIn) -> None:
    refused = await tenant.post(
        "/v1/social-accounts/connect", json={"platform": "x", "organization": "acme"}
    )
    body = assert_problem(refused, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "organization"]  # type: ignore[index]
    malformed = await start(tenant, organization="acme corp/../x")
    assert_problem(malformed, 422, "validation-error")
