"""The analytics API: saved views and their data, ad-hoc queries, top posts and a post's
own figures; unhappy paths, permissions and other workspaces."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from crier.analytics import repository
from crier.kit.db import Database
from crier.kit.ids import new_id
from crier.models import AnalyticsSnapshot
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, MakeTenant, Tenant, assert_problem
from tests.post.conftest import sandbox_account
from tests.scheduler.test_metric_collection import published

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 15)  # a Monday


def view_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": f"View {uuid4().hex[:6]}",
        "metrics": ["likes"],
        "range": "last_7_days",
    } | fields


async def snap(
    db: Database, tenant: Tenant, account: str, metric: str, day: date, value: float
) -> None:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        session.add(
            AnalyticsSnapshot(
                id=new_id(),
                workspace_id=UUID(tenant.id),
                social_account_id=UUID(account),
                metric=metric,
                value=value,
                date=day,
            )
        )


@pytest.fixture
async def paris(make_tenant: MakeTenant, clock: FakeClock) -> Tenant:
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    return await make_tenant(timezone="Europe/Paris")


async def test_a_view_is_saved_listed_changed_and_deleted(paris: Tenant) -> None:
    account = await sandbox_account(paris)
    made = await paris.post(
        "/v1/analytics/views",
        json=view_body(
            name="Weekly",
            social_account_ids=[account],
            platforms=["sandbox"],
            metrics=["likes", "followers", "likes"],
            range={"from": "2027-01-01", "to": "2027-01-31"},
            granularity="week",
            comparison="previous_year",
        ),
    )
    assert made.status_code == 201, made.text
    view = made.json()
    assert made.headers["Location"] == f"/v1/analytics/views/{view['id']}"
    assert view | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "name": "Weekly",
        "social_account_ids": [account],
        "platforms": ["sandbox"],
        "metrics": ["likes", "followers"],
        "range": {"from": "2027-01-01", "to": "2027-01-31"},
        "granularity": "week",
        "comparison": "previous_year",
        "created_at": "",
        "updated_at": "",
    }
    assert (await paris.get(f"/v1/analytics/views/{view['id']}")).json() == view
    changed = await paris.patch(
        f"/v1/analytics/views/{view['id']}",
        json={"range": "month_to_date", "comparison": None, "social_account_ids": None},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["range"] == "month_to_date"
    assert changed.json()["comparison"] is None
    assert changed.json()["social_account_ids"] is None
    assert changed.json()["name"] == "Weekly"
    second = await paris.post("/v1/analytics/views", json=view_body(name="Daily"))
    listed = (await paris.get("/v1/analytics/views", params={"limit": 1})).json()
    assert [v["id"] for v in listed["data"]] == [view["id"]]
    rest = (await paris.get("/v1/analytics/views", params={"cursor": listed["next_cursor"]})).json()
    assert [v["id"] for v in rest["data"]] == [second.json()["id"]]
    assert (await paris.delete(f"/v1/analytics/views/{view['id']}")).status_code == 204
    assert_problem(await paris.get(f"/v1/analytics/views/{view['id']}"), 404, "not-found")


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": []},
        {"metrics": ["likez"]},
        {"range": "last_8_days"},
        {"range": {"from": "2027-02-01", "to": "2027-01-01"}},
        {"range": {"from": "2020-01-01", "to": "2027-01-01"}},
        {"range": {"from": "2027-1-1", "to": "2027-01-02"}},
        {"granularity": "hour"},
        {"comparison": "last_week"},
        {"platforms": ["myspace"]},
        {"name": "  "},
        {"colour": "red"},
    ],
)
async def test_a_view_that_is_not_well_formed_is_refused(
    paris: Tenant, fields: dict[str, Any]
) -> None:
    assert_problem(
        await paris.post("/v1/analytics/views", json=view_body(**fields)), 422, "validation-error"
    )


async def test_a_views_name_is_unique_and_its_accounts_must_be_the_workspaces(
    paris: Tenant, other_tenant: Tenant
) -> None:
    assert (await paris.post("/v1/analytics/views", json=view_body(name="Mine"))).status_code == 201
    assert_problem(
        await paris.post("/v1/analytics/views", json=view_body(name="Mine")),
        409,
        "analytics-view-name-taken",
    )
    theirs = await sandbox_account(other_tenant)
    refused = assert_problem(
        await paris.post("/v1/analytics/views", json=view_body(social_account_ids=[theirs])),
        404,
        "not-found",
    )
    assert theirs in str(refused["detail"])
    other = (await paris.post("/v1/analytics/views", json=view_body(name="Other"))).json()
    assert_problem(
        await paris.patch(f"/v1/analytics/views/{other['id']}", json={"name": "Mine"}),
        409,
        "analytics-view-name-taken",
    )
    assert_problem(
        await paris.patch(
            f"/v1/analytics/views/{other['id']}", json={"social_account_ids": [theirs]}
        ),
        404,
        "not-found",
    )


async def test_another_workspaces_views_answer_404(paris: Tenant, other_tenant: Tenant) -> None:
    view = (await paris.post("/v1/analytics/views", json=view_body())).json()
    path = f"/v1/analytics/views/{view['id']}"
    for method, url, body in (
        ("GET", path, None),
        ("GET", f"{path}/data", None),
        ("PATCH", path, {"name": "Theirs"}),
        ("DELETE", path, None),
    ):
        answer = await other_tenant.http.request(method, url, json=body, headers=other_tenant.auth)
        assert_problem(answer, 404, "not-found")
    assert (await other_tenant.get("/v1/analytics/views")).json()["data"] == []
    assert (await paris.get(path)).status_code == 200


async def test_analytics_needs_the_analytics_read_permission(paris: Tenant) -> None:
    made = await paris.post("/v1/api-keys", json={"name": "ro", "scopes": ["posts:read"]})
    auth = {"Authorization": f"Bearer {made.json()['key']}"}
    for method, path in (
        ("GET", "/v1/analytics/views"),
        ("POST", "/v1/analytics/views"),
        ("GET", f"/v1/analytics/views/{uuid4()}/data"),
        ("GET", "/v1/analytics/query?metric=likes&range=last_7_days"),
        ("GET", "/v1/analytics/top-posts"),
        ("GET", f"/v1/analytics/best-times?social_account_id={uuid4()}"),
        ("GET", f"/v1/posts/{uuid4()}/metrics"),
    ):
        denied = assert_problem(
            await paris.http.request(method, path, headers=auth, json=view_body()),
            403,
            "permission-denied",
        )
        assert denied["permission"] == "analytics:read"
    # Without a key, the key is what is wrong first, whatever else is.
    for path in (
        "/v1/analytics/query?metric=likes&range=last_7_days&from=2027-01-01&to=2027-01-02",
        "/v1/analytics/views/not-an-id/data",
    ):
        assert_problem(await paris.http.get(path), 401, "unauthorized")


async def test_view_data_has_series_totals_and_the_previous_period_beside_them(
    paris: Tenant, db: Database
) -> None:
    one, two = await sandbox_account(paris), await sandbox_account(paris)
    last_week = [TODAY - timedelta(days=n) for n in range(7, 0, -1)]  # 8 to 14 March
    week_before = [d - timedelta(days=7) for d in last_week]
    for n, day in enumerate(last_week):
        await snap(db, paris, one, "likes", day, 10 + n)
        await snap(db, paris, two, "likes", day, 1)
        await snap(db, paris, one, "followers", day, 100 + n)
    for day in week_before[2:]:
        await snap(db, paris, one, "likes", day, 5)
    await snap(db, paris, one, "likes", TODAY, 1_000)  # today: outside last_7_days
    await snap(db, paris, one, "likes", week_before[0] - timedelta(days=1), 1_000)
    view = (
        await paris.post(
            "/v1/analytics/views",
            json=view_body(metrics=["likes", "followers"], comparison="previous_period"),
        )
    ).json()
    data = (await paris.get(f"/v1/analytics/views/{view['id']}/data")).json()
    assert data["timezone"] == "Europe/Paris"
    assert data["range"] == {"from": "2027-03-08", "to": "2027-03-14"}
    assert data["comparison_range"] == {"from": "2027-03-01", "to": "2027-03-07"}
    assert sorted(data["social_account_ids"]) == sorted([one, two])
    likes, followers = data["series"]
    assert likes["metric"] == "likes"
    assert [p["value"] for p in likes["points"]] == [11 + n for n in range(7)]
    assert [p["previous"] for p in likes["points"]] == [0, 0, 5, 5, 5, 5, 5]
    assert likes["points"][0]["period"] == "2027-03-08"
    assert (likes["total"], likes["previous_total"]) == (sum(range(11, 18)), 25)
    assert likes["delta"] == sum(range(11, 18)) - 25
    assert likes["delta_ratio"] == pytest.approx((sum(range(11, 18)) - 25) / 25)
    assert [p["value"] for p in followers["points"]] == [100 + n for n in range(7)]
    assert followers["total"] == 106  # the last level, not a sum
    assert followers["previous_total"] is None
    assert followers["delta"] is None

    weekly = (
        await paris.get(
            "/v1/analytics/query",
            params={
                "metric": ["likes", "followers"],
                "from": "2027-03-01",
                "to": "2027-03-14",
                "granularity": "week",
                "social_account_id": one,
            },
        )
    ).json()
    assert weekly["social_account_ids"] == [one]
    assert [(p["period"], p["value"]) for p in weekly["series"][0]["points"]] == [
        ("2027-03-01", 25),
        ("2027-03-08", sum(range(10, 17))),
    ]
    assert [p["value"] for p in weekly["series"][1]["points"]] == [None, 106]


async def test_a_query_says_what_is_wrong_with_its_range(
    paris: Tenant, other_tenant: Tenant
) -> None:
    for params in (
        {"metric": "likes"},
        {"metric": "likes", "from": "2027-01-01"},
        {"metric": "likes", "range": "last_7_days", "from": "2027-01-01"},
        {"metric": "likes", "from": "2027-02-01", "to": "2027-01-01"},
        {"metric": "likes", "from": "2021-01-01", "to": "2027-01-01"},
        {"metric": "likes", "from": "2027-02-30", "to": "2027-03-01"},
        {"range": "last_7_days"},
        {"metric": "shoes", "range": "last_7_days"},
        {"metric": "likes", "range": "last_7_days", "social_account_id": "not-an-id"},
    ):
        assert_problem(
            await paris.get("/v1/analytics/query", params=params), 422, "validation-error"
        )
    theirs = await sandbox_account(other_tenant)
    for path, params in (
        ("/v1/analytics/query", {"metric": "likes", "range": "last_7_days"}),
        ("/v1/analytics/top-posts", {}),
        ("/v1/analytics/best-times", {}),
    ):
        assert_problem(
            await paris.get(path, params={**params, "social_account_id": theirs}),
            404,
            "not-found",
        )


@pytest.mark.parametrize(
    ("relative", "first", "last"),
    [
        ("last_7_days", "2027-03-08", "2027-03-14"),
        ("last_30_days", "2027-02-13", "2027-03-14"),
        ("last_90_days", "2026-12-15", "2027-03-14"),
        ("month_to_date", "2027-03-01", "2027-03-15"),
        ("last_month", "2027-02-01", "2027-02-28"),
        ("year_to_date", "2027-01-01", "2027-03-15"),
    ],
)
async def test_relative_ranges_are_counted_from_today_in_the_workspace_timezone(
    paris: Tenant, relative: str, first: str, last: str
) -> None:
    answer = await paris.get("/v1/analytics/query", params={"metric": "likes", "range": relative})
    assert answer.status_code == 200, answer.text
    assert answer.json()["range"] == {"from": first, "to": last}


async def test_previous_year_compares_the_same_days_a_year_before(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    clock.set(datetime(2028, 3, 1, 12, tzinfo=UTC))
    tenant = await make_tenant()
    account = await sandbox_account(tenant)
    await snap(db, tenant, account, "likes", date(2027, 2, 28), 7)
    answer = await tenant.get(
        "/v1/analytics/query",
        params={
            "metric": "likes",
            "from": "2028-02-28",
            "to": "2028-02-29",
            "comparison": "previous_year",
        },
    )
    assert answer.json()["comparison_range"] == {"from": "2027-02-28", "to": "2027-02-28"}
    assert [p["previous"] for p in answer.json()["series"][0]["points"]] == [7, None]
    assert answer.json()["series"][0]["previous_total"] == 7


async def test_a_posts_metrics_and_the_top_posts_come_from_the_observations(
    tenant: Tenant, other_tenant: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    first = await published(tenant, worker, clock, account)
    second = await published(tenant, worker, clock, account)
    clock.set(datetime.fromisoformat(second["published_at"]) + timedelta(hours=1))
    for delivery in (first, second):
        assert await worker.metrics.fetch(UUID(tenant.id), UUID(account), UUID(delivery["id"]))
    clock.advance(timedelta(seconds=1))
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await repository.observe(
            session,
            UUID(tenant.id),
            UUID(account),
            UUID(second["id"]),
            {"engagements": 10**6},
            clock.now(),
        )
    day = datetime.fromisoformat(first["published_at"]).date()
    around = {"from": str(day - timedelta(days=1)), "to": str(day + timedelta(days=1))}

    shown = (await tenant.get(f"/v1/posts/{first['post_id']}/metrics")).json()
    [target] = shown["targets"]
    assert target["delivery_id"] == first["id"]
    assert target["latest"]["figures"]["impressions"] > 0
    assert [h["observed_at"] for h in target["history"]] == [target["latest"]["observed_at"]]
    assert target["next_fetch_at"] is not None

    top = (
        await tenant.get("/v1/analytics/top-posts", params={"metric": "engagements", **around})
    ).json()
    assert [p["post_id"] for p in top["data"]] == [second["post_id"], first["post_id"]]
    assert top["data"][0]["value"] == 10**6
    assert top["data"][0]["targets"][0]["delivery_id"] == second["id"]
    one = (await tenant.get("/v1/analytics/top-posts", params={"limit": 1, **around})).json()
    assert len(one["data"]) == 1
    assert_problem(
        await tenant.get("/v1/analytics/top-posts", params={"limit": 0}), 422, "validation-error"
    )
    assert_problem(
        await other_tenant.get(f"/v1/posts/{first['post_id']}/metrics"), 404, "not-found"
    )
    assert (await other_tenant.get("/v1/analytics/top-posts", params=around)).json()["data"] == []


async def test_best_times_are_the_accounts_own_engagements_by_weekday_and_hour(
    paris: Tenant, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(paris)
    start = clock.now()
    made = []
    for week in range(10):  # Mondays 9:30 and Fridays 18:30, Paris time, ten weeks
        for day, hour, engagements in ((0, 9, 5.0), (4, 18, 20.0 + week)):
            clock.set(start + timedelta(weeks=week, days=day, hours=hour - 9, minutes=-1))
            delivery = await published(paris, worker, clock, account)
            made.append((delivery, engagements))
    clock.set(start + timedelta(weeks=10, days=6))
    for delivery, engagements in made:
        at = datetime.fromisoformat(delivery["published_at"])
        async with db.workspace_transaction(UUID(paris.id)) as session:
            for age, value in (
                (timedelta(days=1), engagements / 2),
                (timedelta(days=7), engagements),
            ):
                await repository.observe(
                    session,
                    UUID(paris.id),
                    UUID(account),
                    UUID(delivery["id"]),
                    {"engagements": value},
                    at + age,
                )
            await repository.observe(  # a month on: past the week, not counted
                session,
                UUID(paris.id),
                UUID(account),
                UUID(delivery["id"]),
                {"engagements": 10**6},
                at + timedelta(days=30),
            )
    found = (
        await paris.get("/v1/analytics/best-times", params={"social_account_id": account})
    ).json()
    assert found["timezone"] == "Europe/Paris"
    assert found["history"]["posts"] == 20
    assert found["history"]["enough"] is True
    assert found["history"]["weeks"] == pytest.approx(9.6, abs=0.1)
    friday, monday = found["best"]
    assert (friday["weekday"], friday["hour"], friday["posts"]) == (5, 18, 10)
    assert friday["mean_engagements"] == pytest.approx(24.5)
    assert (monday["weekday"], monday["hour"], monday["mean_engagements"]) == (1, 9, 5.0)
    assert [(s["weekday"], s["hour"]) for s in found["slots"]] == [(1, 9), (5, 18)]

    short = (
        await paris.get(
            "/v1/analytics/best-times", params={"social_account_id": account, "weeks": 8}
        )
    ).json()
    assert short["history"]["posts"] < 20
    assert short["history"]["enough"] is False
    assert_problem(
        await paris.get(
            "/v1/analytics/best-times", params={"social_account_id": account, "weeks": 7}
        ),
        422,
        "validation-error",
    )
    assert_problem(await paris.get("/v1/analytics/best-times"), 422, "validation-error")
