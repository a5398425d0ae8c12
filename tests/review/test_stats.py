"""Review statistics: counts, ratings, answers and weekly sentiment over days and weeks of
the workspace's timezone, across a change of daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
from sqlalchemy import update

from crier.kit.db import Database
from crier.models import Review, SocialAccount
from crier.platforms.base import NetworkReview
from crier.review import service
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.review.conftest import Location, new_location

HOUR = 3600


async def written(
    db: Database,
    clock: FakeClock,
    place: Location,
    at: str,
    rating: int,
    replied_after: int | None = None,
    removed: bool = False,
) -> None:
    """A review of `rating` stars and no text (so scored from its stars: 1 → -1 ... 5 → 1)
    written at `at` (UTC), answered `replied_after` seconds later if given."""
    created = datetime.fromisoformat(at).replace(tzinfo=UTC)
    replied = created + timedelta(seconds=replied_after) if replied_after is not None else None
    seen = NetworkReview(
        external_id=f"r-{uuid4()}",
        rating=rating,
        text=None,
        reviewer_name="Lin",
        created_at=created,
        updated_at=replied or created,
        reply="Thank you" if replied else None,
        reply_updated_at=replied,
    )
    async with db.workspace_transaction(place.workspace) as session:
        account = await session.get(SocialAccount, (place.workspace, UUID(place.account_id)))
        assert account is not None
        await service.ingest(session, clock, account, [seen])
        if removed:
            await session.execute(
                update(Review)
                .where(Review.external_id == seen.external_id)
                .values(removed_at=clock.now())
            )


async def stats_of(tenant: Tenant, **params: Any) -> dict[str, Any]:
    answer = await tenant.get("/v1/reviews/stats", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def week(monday: str, days: int, count: int, average: float | None, *labels: int) -> dict[str, Any]:
    negative, neutral, positive = labels or (0, 0, 0)
    return {
        "week": monday,
        "days": days,
        "count": count,
        "average_sentiment": average,
        "negative": negative,
        "neutral": neutral,
        "positive": positive,
    }


async def in_new_york(tenant: Tenant) -> None:
    moved = await tenant.patch("/v1/workspace", json={"timezone": "America/New_York"})
    assert moved.status_code == 200, moved.text


async def test_days_and_weeks_are_the_workspaces_across_a_dst_change(
    location: Location, control: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    """New York leaves daylight saving time at 2:00 on Sunday 1 November 2026 (UTC-4, then
    UTC-5). A review at 04:30 UTC on Monday 2 November was written at 23:30 on Sunday
    there: it counts in the week of 26 October, not in the next one as in UTC."""
    tenant = location.tenant
    second = await new_location(tenant, control)
    await in_new_york(tenant)
    cases = [
        ("2026-10-26T03:30:00", 3, None, False),  # Sunday 25 October, 23:30 EDT: before
        ("2026-10-26T04:30:00", 5, 1 * HOUR, False),  # Monday 26 October, 00:30 EDT
        ("2026-11-02T04:30:00", 1, 3 * HOUR, False),  # Sunday 1 November, 23:30 EST
        ("2026-11-02T05:30:00", 2, 2 * HOUR, False),  # Monday 2 November, 00:30 EST
        ("2026-11-09T04:59:00", 5, None, False),  # Sunday 8 November, 23:59 EST
        ("2026-11-09T05:00:00", 4, None, False),  # Monday 9 November, 00:00 EST: after
        ("2026-10-30T12:00:00", 1, None, True),  # removed from the network: left out
    ]
    for at, rating, replied_after, removed in cases:
        await written(db, clock, location, at, rating, replied_after, removed)
    await written(db, clock, second, "2026-10-28T12:00:00", 3)

    both = await stats_of(tenant, **{"from": "2026-10-26", "to": "2026-11-08"})
    assert (both["from"], both["to"], both["timezone"]) == (
        "2026-10-26",
        "2026-11-08",
        "America/New_York",
    )
    assert both["count"] == 5
    assert both["rating_distribution"] == {"1": 1, "2": 1, "3": 1, "4": 0, "5": 2}
    assert both["average_rating"] == 16 / 5
    assert (both["responded"], both["response_rate"]) == (3, 3 / 5)
    assert both["median_response_seconds"] == 2 * HOUR
    assert both["average_sentiment"] == (1 - 1 - 0.5 + 1 + 0) / 5
    assert both["weeks"] == [
        week("2026-10-26", 7, 3, 0.0, 1, 1, 1),  # 5 and 1 stars, and the other's 3
        week("2026-11-02", 7, 2, 0.25, 1, 0, 1),  # 2 and 5 stars
    ]

    one = await stats_of(
        tenant, **{"from": "2026-10-28", "to": "2026-11-10"}, social_account_id=location.account_id
    )
    assert (one["social_account_id"], one["location_id"]) == (location.account_id, None)
    assert one["count"] == 4
    assert one["weeks"] == [  # weeks the range cuts, and one without reviews
        week("2026-10-26", 5, 1, -1.0, 1, 0, 0),
        week("2026-11-02", 7, 2, 0.25, 1, 0, 1),
        week("2026-11-09", 2, 1, 0.5, 0, 0, 1),
    ]
    by_network_id = await stats_of(
        tenant, **{"from": "2026-10-28", "to": "2026-11-10"}, location_id=location.external_id
    )
    assert by_network_id | {"location_id": None, "social_account_id": location.account_id} == one

    empty = await stats_of(tenant, **{"from": "2026-12-01", "to": "2026-12-01"})
    assert empty | {"weeks": []} == {
        "from": "2026-12-01",
        "to": "2026-12-01",
        "timezone": "America/New_York",
        "social_account_id": None,
        "location_id": None,
        "count": 0,
        "average_rating": None,
        "rating_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
        "responded": 0,
        "response_rate": None,
        "median_response_seconds": None,
        "average_sentiment": None,
        "weeks": [],
    }
    assert empty["weeks"] == [week("2026-11-30", 1, 0, None)]

    # The same reviews in a workspace on UTC: the Sunday-night review is a Monday's.
    utc = await tenant.patch("/v1/workspace", json={"timezone": "UTC"})
    assert utc.status_code == 200, utc.text
    in_utc = await stats_of(
        tenant, **{"from": "2026-10-26", "to": "2026-11-08"}, social_account_id=location.account_id
    )
    assert [(w["week"], w["count"]) for w in in_utc["weeks"]] == [
        ("2026-10-26", 2),  # 03:30 and 04:30 on Monday 26 October
        ("2026-11-02", 2),  # 04:30 and 05:30 on Monday 2 November (04:59 on the 9th: out)
    ]


async def test_the_range_defaults_to_the_last_90_days_and_is_checked(
    location: Location, other_tenant: Tenant, control: httpx.AsyncClient, clock: FakeClock
) -> None:
    tenant = location.tenant
    second = await new_location(tenant, control)
    elsewhere = await new_location(other_tenant, control)
    await in_new_york(tenant)
    clock.set(datetime(2026, 3, 1, 4, 30, tzinfo=UTC))  # 29 February... of 2026: 1 March
    ny = await stats_of(tenant)
    assert (ny["from"], ny["to"]) == ("2025-12-01", "2026-02-28")  # still the 28th there
    other = await stats_of(elsewhere.tenant)  # a workspace on UTC
    assert (other["from"], other["to"]) == ("2025-12-02", "2026-03-01")
    assert len(ny["weeks"]) == 13
    assert ny["weeks"][0]["week"] == "2025-12-01"
    assert sum(w["days"] for w in ny["weeks"]) == 90

    assert (await stats_of(tenant, to="2024-03-01"))["from"] == "2023-12-03"
    assert (await stats_of(tenant, **{"from": "2026-02-01"}))["to"] == "2026-02-28"
    later = await stats_of(tenant, **{"from": "2026-06-01"})  # from after today: one day
    assert (later["from"], later["to"]) == ("2026-06-01", "2026-06-01")
    longest = await stats_of(tenant, **{"from": "2024-01-01", "to": "2025-12-31"})
    assert sum(w["days"] for w in longest["weeks"]) == 731

    for params in (
        {"from": "2026-02-02", "to": "2026-02-01"},  # reversed
        {"from": "2024-01-01", "to": "2026-01-01"},  # 732 days
        {"from": "2026-02-30"},
        {"to": "1969-12-31"},
        {"to": "9999-12-31"},
        {"from": "yesterday"},
        {"to": "0"},  # not seconds since 1970
        {"from": "20260201"},
        {"social_account_id": "not-a-uuid"},
        {"location_id": ""},
    ):
        assert_problem(
            await tenant.get("/v1/reviews/stats", params=params), 422, "validation-error"
        )
    for params in (
        {"social_account_id": str(uuid4())},
        {"social_account_id": elsewhere.account_id},  # another workspace's
        {"location_id": "nowhere"},
        {"location_id": elsewhere.external_id},
        {"social_account_id": location.account_id, "location_id": second.external_id},
    ):
        assert_problem(await tenant.get("/v1/reviews/stats", params=params), 404, "not-found")
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get("/v1/reviews/stats")).status_code == 200
