"""The reviews API: filters, one review, syncs on demand, and what it refuses."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import httpx

from crier.review.tasks import ReviewSyncer
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.review.conftest import Location, feed, new_location, whole_feed


async def test_filters_pick_reviews_by_location_rating_reply_and_date(
    tenant: Tenant, control: httpx.AsyncClient, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    cafe = await new_location(tenant, control)
    shop = await new_location(tenant, control)
    early = clock.now()
    await cafe.review(1, "Cold", reviewer_name="Ann")
    clock.advance(timedelta(days=2))
    middle = clock.now()
    await cafe.review(5, "Warm", reply="Thanks!")
    await shop.review(2, "Slow")
    clock.advance(timedelta(days=2))
    await shop.review(4, None)  # a rating alone
    for place in (cafe, shop):
        await syncer.sync(place.workspace, UUID(place.account_id))

    def bodies(reviews: list[dict[str, object]]) -> list[str]:
        return sorted(str(r["body"]) for r in reviews)

    assert bodies((await whole_feed(tenant))[0]) == ["Cold", "None", "Slow", "Warm"]
    only_cafe = (await whole_feed(tenant, social_account_id=cafe.account_id))[0]
    assert bodies(only_cafe) == ["Cold", "Warm"]
    assert bodies((await whole_feed(tenant, rating=[1, 2]))[0]) == ["Cold", "Slow"]
    assert bodies((await whole_feed(tenant, responded="true"))[0]) == ["Warm"]
    assert bodies((await whole_feed(tenant, responded="false"))[0]) == ["Cold", "None", "Slow"]
    window = {
        "reviewed_from": middle.isoformat(),
        "reviewed_to": (middle + timedelta(days=1)).isoformat(),
    }
    assert bodies((await whole_feed(tenant, **window))[0]) == ["Slow", "Warm"]
    assert bodies((await whole_feed(tenant, reviewed_to=middle.isoformat()))[0]) == ["Cold"]
    assert early < middle


async def test_one_review_shows_its_reply_and_another_workspace_cannot_see_it(
    location: Location, syncer: ReviewSyncer, other_tenant: Tenant
) -> None:
    await location.review(3, "Fine", reply="Come again")
    await syncer.sync(location.workspace, UUID(location.account_id))
    [listed] = (await feed(location.tenant))["data"]
    one = await location.tenant.get(f"/v1/reviews/{listed['id']}")
    assert one.status_code == 200
    assert {k: v for k, v in one.json().items() if k != "replies"} == listed
    assert one.headers["etag"] == f'"{listed["sequence"]}"'
    [seen] = one.json()["replies"]  # the reply made on the network, as a sync saw it
    assert (seen["origin"], seen["action"], seen["text"]) == ("network", "reply", "Come again")
    assert one.json()["reply"]["text"] == "Come again"
    assert_problem(await other_tenant.get(f"/v1/reviews/{listed['id']}"), 404, "not-found")
    assert (await feed(other_tenant))["data"] == []
    assert_problem(await location.tenant.get(f"/v1/reviews/{uuid4()}"), 404, "not-found")
    assert_problem(await location.tenant.get("/v1/reviews/not-an-id"), 422, "validation-error")


async def test_bad_queries_are_clear_problems(tenant: Tenant) -> None:
    for query in (
        {"cursor": "not-a-cursor"},
        {"cursor": "00000000000"},  # well formed, but beyond any position
        {"rating": "6"},
        {"rating": "zero"},
        {"sentiment": "angry"},
        {"limit": "0"},
        {"limit": "101"},
        {"reviewed_from": "2026-01-01T00:00:00"},  # no offset
        {"responded": "maybe"},
    ):
        response = await tenant.get("/v1/reviews", params=query)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_syncing_on_demand_names_the_location_and_refuses_another_workspaces(
    location: Location, other_tenant: Tenant, clock: FakeClock
) -> None:
    tenant = location.tenant
    everything = await tenant.post("/v1/reviews/sync")
    assert everything.status_code == 202
    [state] = everything.json()["data"]
    assert state["social_account_id"] == location.account_id
    listed = (await tenant.get("/v1/reviews/sync")).json()["data"]
    assert [s["social_account_id"] for s in listed] == [location.account_id]
    assert (await other_tenant.get("/v1/reviews/sync")).json()["data"] == []
    assert_problem(
        await other_tenant.post(
            "/v1/reviews/sync", json={"social_account_id": location.account_id}
        ),
        404,
        "not-found",
    )
    assert_problem(
        await tenant.post("/v1/reviews/sync", json={"social_account_id": "nope"}),
        422,
        "validation-error",
    )
    assert_problem(
        await tenant.post("/v1/reviews/sync", json={"location": location.account_id}),
        422,
        "validation-error",
    )


async def test_reading_reviews_needs_the_reviews_read_permission(tenant: Tenant) -> None:
    made = await tenant.post("/v1/api-keys", json={"name": "ro", "scopes": ["workspace:read"]})
    auth = {"Authorization": f"Bearer {made.json()['key']}"}
    for method, path in (
        ("GET", "/v1/reviews"),
        ("GET", f"/v1/reviews/{uuid4()}"),
        ("GET", "/v1/reviews/sync"),
        ("POST", "/v1/reviews/sync"),
    ):
        denied = assert_problem(
            await tenant.http.request(method, path, headers=auth), 403, "permission-denied"
        )
        assert denied["permission"] == "reviews:read"
    assert_problem(await tenant.http.get("/v1/reviews"), 401, "unauthorized")
