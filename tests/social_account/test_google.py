"""Google Business Profile: one consent with offline access reaches every location of the
user's business accounts; the member chooses which to connect, within an hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx

from tests.conftest import FakeClock, Tenant, assert_problem
from tests.google import Google, connect_google, consent_google, new_business
from tests.mastodon import query_of


def grant_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    location = httpx.URL(answer.headers["location"])
    assert location.params["platform"] == "google_business"
    return location.params["grant_id"]


async def test_one_consent_lists_every_location_and_connects_those_chosen(
    tenant: Tenant, other_tenant: Tenant, google: Google, clock: FakeClock
) -> None:
    # 105 locations over two business accounts: more than a page of either list.
    titles = [f"Bakery {n:03d}" for n in range(105)]
    business = new_business(google, *titles, accounts=2)
    started = await tenant.post("/v1/social-accounts/connect", json={"platform": "google_business"})
    assert started.status_code == 200, started.text
    asked = query_of(started.json()["authorize_url"])
    assert started.json()["authorize_url"].startswith(google.authorize_url)
    assert asked["scope"] == "https://www.googleapis.com/auth/business.manage"
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent")
    assert asked["code_challenge_method"] == "S256"

    page = await consent_google(tenant, google, business)  # no redirect_to: a page says how
    assert page.status_code == 200, page.text
    assert "/v1/social-accounts/grants/" in page.text
    assert "Bakery 104" in page.text

    grant_id = grant_of(
        await consent_google(tenant, google, business, redirect_to="http://127.0.0.1:8000/x")
    )
    path = f"/v1/social-accounts/grants/{grant_id}"
    shown = await tenant.get(path)
    assert shown.status_code == 200, shown.text
    choices = shown.json()["choices"]
    assert sorted(c["name"] for c in choices) == titles
    assert {c["external_id"] for c in choices} == {loc.name for loc in business.locations}
    assert {c["group"] for c in choices} == {
        f"Group 0 of {business.email}",
        f"Group 1 of {business.email}",
    }
    assert all(c["social_account_id"] is None and c["detail"] for c in choices)
    expires = datetime.fromisoformat(shown.json()["expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now() + timedelta(hours=1)

    first, second = business.locations[0], business.locations[1]
    connected = await tenant.post(
        f"{path}/connect", json={"external_ids": [first.name, second.name]}
    )
    assert connected.status_code == 200, connected.text
    accounts = connected.json()["data"]
    assert [(a["platform"], a["external_id"], a["handle"], a["status"]) for a in accounts] == [
        ("google_business", first.name, first.title, "active"),
        ("google_business", second.name, second.title, "active"),
    ]
    assert accounts[0]["token_expires_at"] == accounts[1]["token_expires_at"]
    after = {
        c["external_id"]: c["social_account_id"] for c in (await tenant.get(path)).json()["choices"]
    }
    assert after[first.name] == accounts[0]["id"]
    assert after[business.locations[2].name] is None
    # Each location's reviews sync from now on.
    syncs = (await tenant.get("/v1/reviews/sync")).json()["data"]
    assert {accounts[0]["id"], accounts[1]["id"]} <= {s["social_account_id"] for s in syncs}
    platforms = {p["name"]: p for p in (await tenant.get("/v1/platforms")).json()}
    assert (platforms["google_business"]["connects"], platforms["google_business"]["reviews"]) == (
        "oauth_choose",
        True,
    )
    assert platforms["linkedin"]["reviews"] is False

    # Choosing one again reconnects it in place; nothing is made twice.
    again = await tenant.post(f"{path}/connect", json={"external_ids": [first.name]})
    assert [a["id"] for a in again.json()["data"]] == [accounts[0]["id"]]
    listed = await tenant.get("/v1/social-accounts", params={"platform": "google_business"})
    assert sorted(a["id"] for a in listed.json()["data"]) == sorted(a["id"] for a in accounts)

    # What the consent does not reach, and malformed choices, connect nothing.
    unknown = await tenant.post(
        f"{path}/connect",
        json={"external_ids": [business.locations[3].name, "accounts/1/locations/2"]},
    )
    assert assert_problem(unknown, 422, "oauth-grant-choice-unknown")["unknown"] == [
        "accounts/1/locations/2"
    ]
    bodies: list[dict[str, Any]] = [
        {"external_ids": []},
        {"external_ids": [first.name, first.name]},
        {},
        {"ids": [first.name]},
    ]
    for body in bodies:
        assert_problem(await tenant.post(f"{path}/connect", json=body), 422, "validation-error")
    listed = await tenant.get("/v1/social-accounts", params={"platform": "google_business"})
    assert len(listed.json()["data"]) == 2

    # Only the member who consented, in this workspace, for an hour.
    for other in (other_tenant, await tenant.member_with_key("admin")):
        assert_problem(await other.get(path), 404, "not-found")
        assert_problem(
            await other.post(f"{path}/connect", json={"external_ids": [first.name]}),
            404,
            "not-found",
        )
    viewer = await tenant.member_with_key("viewer")
    assert_problem(await viewer.get(path), 403, "permission-denied")
    assert_problem(await tenant.get(f"/v1/social-accounts/grants/{uuid4()}"), 404, "not-found")
    clock.advance(timedelta(hours=1))
    assert_problem(await tenant.get(path), 410, "oauth-grant-expired")
    assert_problem(
        await tenant.post(f"{path}/connect", json={"external_ids": [first.name]}),
        410,
        "oauth-grant-expired",
    )


async def test_a_refused_consent_and_a_misconfigured_client_connect_nothing(
    tenant: Tenant, google: Google
) -> None:
    business = new_business(google, "Harbour Books")
    started = await tenant.post("/v1/social-accounts/connect", json={"platform": "google_business"})
    location = await google.consent(started.json()["authorize_url"], "deny", email=business.email)
    from tests.mastodon import callback_path

    refused = await tenant.http.get(callback_path(location))
    assert assert_problem(refused, 403, "oauth-consent-refused")["oauth_error"] == "access_denied"
    # A consent whose code Google no longer takes (used already) is a failed exchange.
    started = await tenant.post("/v1/social-accounts/connect", json={"platform": "google_business"})
    location = await google.consent(started.json()["authorize_url"], email=business.email)
    code = query_of(location)["code"]
    google.network.codes.pop(code)
    failed = await tenant.http.get(callback_path(location))
    assert_problem(failed, 502, "oauth-exchange-failed")
    listed = await tenant.get("/v1/social-accounts", params={"platform": "google_business"})
    assert listed.json()["data"] == []


async def test_a_connected_location_is_not_revoked_at_google_when_disconnected(
    tenant: Tenant, google: Google
) -> None:
    """Every location chosen from one consent shares its grant: disconnecting one erases
    its tokens in Crier and leaves the others working."""
    business = new_business(google, "North Gym", "South Gym")
    north, south = await connect_google(tenant, google, business)
    assert (await tenant.delete(f"/v1/social-accounts/{north['id']}")).status_code == 204
    assert not any(t.revoked for t in google.network.tokens.values() if t.email == business.email)
    shown = (await tenant.get(f"/v1/social-accounts/{south['id']}")).json()
    assert shown["status"] == "active"
