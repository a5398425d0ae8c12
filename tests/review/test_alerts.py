"""Alert rules: a review that meets a rule raises `review.alert` once, through the outbox;
rules are managed per workspace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx

from crier.kit.db import Database
from crier.review.tasks import ReviewSyncer
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.review.conftest import Location, events_of, new_location


async def rule(tenant: Tenant, **body: Any) -> dict[str, Any]:
    made = await tenant.post("/v1/review-alert-rules", json={"name": "r", **body})
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/v1/review-alert-rules/{made.json()['id']}"
    created: dict[str, Any] = made.json()
    return created


async def synced(place: Location, syncer: ReviewSyncer) -> None:
    due = await place.tenant.post("/v1/reviews/sync", json={"social_account_id": place.account_id})
    assert due.status_code == 202, due.text
    assert await syncer.sync(place.workspace, UUID(place.account_id))


async def alerted(db: Database, tenant: Tenant) -> list[tuple[str, str | None]]:
    """(rule name, review body) of each alert raised, oldest first."""
    return [
        (e["rule"]["name"], e["review"]["body"])
        for e in await events_of(db, tenant, "review.alert")
    ]


async def test_a_review_meeting_a_rule_raises_one_alert(
    tenant: Tenant,
    control: httpx.AsyncClient,
    syncer: ReviewSyncer,
    clock: FakeClock,
    db: Database,
) -> None:
    cafe = await new_location(tenant, control)
    shop = await new_location(tenant, control)
    await cafe.review(1, "Written before any rule")  # old reviews raise nothing
    clock.advance(timedelta(seconds=1))
    await rule(tenant, name="Low on the cafe", max_rating=2, social_account_ids=[cafe.account_id])
    await rule(tenant, name="Angry anywhere", sentiment_below=-0.5)
    await rule(tenant, name="Both", max_rating=3, sentiment_below=0)
    off = await rule(tenant, name="Off", max_rating=5, enabled=False)
    assert off["enabled"] is False
    clock.advance(timedelta(seconds=1))

    await cafe.review(2, "Slow.")  # low, but not angry
    await cafe.review(5, "Terrible, rude and dirty. Awful!")  # angry text, five stars
    await cafe.review(3, "Not good at all, sadly.")  # three stars and negative: both
    lovely = await shop.review(5, "Lovely staff!")
    for place in (cafe, shop):
        await synced(place, syncer)
    # Scored: "Slow." from its two stars (-0.5, not under -0.5); the others from their text.
    assert sorted(await alerted(db, tenant)) == sorted(
        [
            ("Low on the cafe", "Slow."),
            ("Both", "Slow."),
            ("Angry anywhere", "Terrible, rude and dirty. Awful!"),
            ("Angry anywhere", "Not good at all, sadly."),
            ("Both", "Not good at all, sadly."),
        ]
    )

    # An edit that makes a review meet a rule raises it; meeting it again does not.
    clock.advance(timedelta(seconds=1))
    await shop.edit(lovely, rating=1, comment="Awful, horrible, disgusting.")
    await synced(shop, syncer)
    await shop.edit(lovely, comment="Awful, horrible, disgusting!!")
    clock.advance(timedelta(seconds=1))
    await synced(shop, syncer)
    raised = await alerted(db, tenant)
    assert sorted(raised[5:]) == [
        ("Angry anywhere", "Awful, horrible, disgusting."),
        ("Both", "Awful, horrible, disgusting."),
    ]
    [alert] = [
        e
        for e in await events_of(db, tenant, "review.alert")
        if e["rule"]["name"] == "Both" and e["review"]["rating"] == 3
    ]
    assert alert["review"]["body"] == "Not good at all, sadly."
    assert alert["review"]["sentiment_label"] == "negative"


async def test_alert_rules_are_managed_and_checked(
    location: Location, other_tenant: Tenant
) -> None:
    tenant = location.tenant
    made = await rule(tenant, name="Low", max_rating=2)
    assert (made["sentiment_below"], made["social_account_ids"], made["enabled"]) == (
        None,
        None,
        True,
    )
    path = f"/v1/review-alert-rules/{made['id']}"
    changed = await tenant.patch(
        path, json={"sentiment_below": -0.3, "social_account_ids": [location.account_id]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["max_rating"] == 2
    assert changed.json()["sentiment_below"] == -0.3
    dropped = await tenant.patch(path, json={"max_rating": None, "social_account_ids": None})
    assert (dropped.json()["max_rating"], dropped.json()["social_account_ids"]) == (None, None)
    assert_problem(
        await tenant.patch(path, json={"sentiment_below": None}), 422, "validation-error"
    )  # a rule keeps a condition
    listed = (await tenant.get("/v1/review-alert-rules")).json()
    assert [r["id"] for r in listed["data"]] == [made["id"]]
    assert (await tenant.get(path)).json() == dropped.json()

    for body in (
        {"name": "x"},  # no condition
        {"name": "x", "max_rating": 0},
        {"name": "x", "max_rating": None},
        {"name": "x", "sentiment_below": 1.5},
        {"name": "x", "max_rating": 2, "social_account_ids": []},
        {"name": "x", "max_rating": 2, "social_account_ids": [str(uuid4())]},  # no location
        {"name": " ", "max_rating": 2},
        {"name": "x", "max_rating": 2, "keywords": ["rude"]},
    ):
        created = await tenant.post("/v1/review-alert-rules", json=body)
        assert_problem(created, 422, "validation-error")
    assert_problem(
        await tenant.post("/v1/review-alert-rules", json={"name": "Low", "max_rating": 1}),
        409,
        "alert-rule-name-taken",
    )
    # Another workspace's rules and locations are not there.
    assert_problem(await other_tenant.get(path), 404, "not-found")
    assert_problem(await other_tenant.patch(path, json={"enabled": False}), 404, "not-found")
    assert_problem(await other_tenant.delete(path), 404, "not-found")
    assert (await other_tenant.get("/v1/review-alert-rules")).json()["data"] == []
    assert_problem(
        await other_tenant.post(
            "/v1/review-alert-rules",
            json={"name": "x", "max_rating": 2, "social_account_ids": [location.account_id]},
        ),
        422,
        "validation-error",
    )
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get(path)).status_code == 200
    assert_problem(await viewer.patch(path, json={"enabled": False}), 403, "permission-denied")
    assert_problem(
        await viewer.post("/v1/review-alert-rules", json={"name": "v", "max_rating": 1}),
        403,
        "permission-denied",
    )
    assert (await tenant.delete(path)).status_code == 204
    assert_problem(await tenant.get(path), 404, "not-found")
