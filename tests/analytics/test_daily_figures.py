"""A Google location's own figures are counts per day that Google keeps and revises: the
first fetch reads them back over its history, each later one its recent days again; each
day's figure is kept once on Google's own date, whatever the workspace's timezone, and a
revised day is aggregated again."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from uuid import UUID

from sqlalchemy import func, select

from crier.analytics.rollups import TOUCHED_SOON, Rollups
from crier.kit.db import Database
from crier.models import MetricObservation
from crier.platforms.google_business.adapter import HISTORY_DAYS, REVISED_DAYS
from crier.scheduler.worker import Worker
from tests.analytics.test_rollups import snapshots
from tests.conftest import FakeClock, MakeTenant, Tenant
from tests.google import Google, connect_google, new_business
from tests.scheduler.test_metric_collection import collect

DAY = timedelta(days=1)
FIGURES = 13
"""Google's 11 daily metrics, with the impressions and clicks they add up to."""


async def daily(db: Database, tenant: Tenant, account: str) -> dict[tuple[date, str], float]:
    """The account's figures of whole days, by day and metric; one row for each."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = list(
            await session.scalars(
                select(MetricObservation).where(
                    MetricObservation.social_account_id == UUID(account),
                    MetricObservation.day.is_not(None),
                )
            )
        )
        every = await session.scalar(select(func.count()).select_from(MetricObservation))
    kept = {(r.day, r.metric): r.value for r in rows if r.day is not None}
    assert len(kept) == len(rows) == every  # nothing else was observed, nothing twice
    return kept


async def test_a_locations_days_are_read_back_kept_on_googles_dates_and_revised_in_place(
    make_tenant: MakeTenant,
    google: Google,
    worker: Worker,
    clock: FakeClock,
    db: Database,
    scheduler_db: Database,
) -> None:
    # Kiritimati is 14 hours ahead of UTC: a day placed by an instant would move.
    tenant = await make_tenant(timezone="Pacific/Kiritimati")
    business = new_business(google, "Tide Bakery")
    [account] = await connect_google(tenant, google, business)
    name, network = business.locations[0].name, google.network
    today = clock.now().astimezone(UTC).date()
    newest = today - timedelta(days=network.daily_lag_days)
    day = newest - timedelta(days=5)
    for metric, value in {
        "BUSINESS_IMPRESSIONS_DESKTOP_MAPS": 0,
        "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH": 2,
        "BUSINESS_IMPRESSIONS_MOBILE_MAPS": 40,
        "BUSINESS_IMPRESSIONS_MOBILE_SEARCH": 0,
        "CALL_CLICKS": 3,
        "WEBSITE_CLICKS": 0,
        "BUSINESS_DIRECTION_REQUESTS": 1,
    }.items():
        network.set_daily(name, metric, day, value)

    assert await collect(worker, tenant, account["id"], None)
    kept = await daily(db, tenant, account["id"])
    days = {d for d, _ in kept}
    assert min(days) == today - timedelta(days=HISTORY_DAYS - 1)  # its history, read back
    assert max(days) == newest  # Google's newest days are not there yet
    assert len(days) == HISTORY_DAYS - network.daily_lag_days
    assert len(kept) == len(days) * FIGURES
    assert kept[(day, "impressions")] == 42
    assert kept[(day, "impressions_mobile_maps")] == 40
    assert kept[(day, "impressions_mobile_search")] == 0  # Google leaves a 0 out
    assert kept[(day, "clicks")] == 4  # calls, website and directions
    old = day - timedelta(days=100)
    assert kept[(old, "bookings")] == network.figure(name, "BUSINESS_BOOKINGS", old)

    rollups = Rollups(db, scheduler_db, clock, today_every=None)
    assert await rollups.run(UUID(tenant.id))  # due at once, from the first day read
    made = await snapshots(db, tenant)
    assert made == {(metric, d): value for (d, metric), value in kept.items()}

    query = await tenant.get(
        "/v1/analytics/query",
        params={
            "metric": ["clicks", "impressions"],
            "from": str(day - timedelta(days=6)),
            "to": str(day),
            "granularity": "week",
        },
    )
    assert query.status_code == 200, query.text
    clicks, impressions = query.json()["series"]
    week = [day - timedelta(days=n) for n in range(7)]
    assert clicks["total"] == sum(kept[(d, "clicks")] for d in week)  # a count, added up
    assert impressions["total"] == sum(kept[(d, "impressions")] for d in week)

    # A day later Google has revised a recent day, and one older than it reads again.
    clock.advance(DAY)
    network.set_daily(name, "CALL_CLICKS", day, 9)
    far = newest - timedelta(days=REVISED_DAYS + 5)
    network.set_daily(name, "WEBSITE_CLICKS", far, int(kept[(far, "website_clicks")]) + 50)
    assert await collect(worker, tenant, account["id"], None)
    again = await daily(db, tenant, account["id"])
    assert again[(day, "call_clicks")] == 9  # replaced, not kept twice
    assert again[(day, "clicks")] == 10
    assert again[(far, "website_clicks")] == kept[(far, "website_clicks")]  # not read again
    assert max(d for d, _ in again) == newest + DAY
    assert len(again) == len(kept) + FIGURES

    clock.advance(TOUCHED_SOON)
    assert await rollups.run(UUID(tenant.id))  # the revised day, aggregated again
    made = await snapshots(db, tenant)
    assert made[("clicks", day)] == 10
    assert made[("call_clicks", day)] == 9

    # Another timezone moves the days of instants, not Google's dates.
    changed = await tenant.patch("/v1/workspace", json={"timezone": "Pacific/Pago_Pago"})
    assert changed.status_code == 200, changed.text
    assert await rollups.run(UUID(tenant.id))
    assert await snapshots(db, tenant) == {(m, d): v for (d, m), v in again.items()}
