"""The Google Business Profile emulator is as strict as Google's documentation, and
Crier's adapter speaks to it as the documentation says: the web-server flow with offline
access and PKCE, the v4 names of locations, `starRating` enums and paging tokens, and
Google's JSON errors in the delivery error catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest

from crier.platforms.base import Account, Consent, Prepared
from crier.platforms.calls import parse_time
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.google_business.adapter import GoogleBusinessAdapter
from crier.platforms.registry import platform_http
from tests.conftest import FakeClock
from tests.google import Google, google_network, new_business
from tests.mastodon import query_of

BASE = "https://crier.example"
REDIRECT = f"{BASE}/v1/oauth/callback/google_business"


@pytest.fixture
async def emulated(clock: FakeClock) -> AsyncIterator[Google]:
    async with google_network(clock, BASE) as network:
        yield network


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = platform_http()
    yield client
    await client.aclose()


def adapter_for(google: Google, http: httpx.AsyncClient, clock: FakeClock) -> GoogleBusinessAdapter:
    return GoogleBusinessAdapter(
        http,
        client_id=google.client.client_id,
        client_secret=google.client.client_secret,
        authorize_url=google.authorize_url,
        oauth_url=google.url,
        accounts_url=google.url,
        information_url=google.url,
        api_url=google.url,
        performance_url=google.url,
        clock=clock,
    )


async def consented(google: Google, adapter: GoogleBusinessAdapter, email: str) -> Any:
    consent = Consent(REDIRECT, "state-1", "v" * 43)
    location = await google.consent(adapter.authorize_url(consent), email=email)
    return await adapter.exchange(consent, query_of(location)["code"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_consent_gives_a_refresh_token_only_offline_and_checks_pkce(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    business = new_business(emulated, "Dock Cafe")
    tokens = await consented(emulated, adapter, business.email)
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.startswith("1//")
    assert tokens.expires_at == clock.now() + timedelta(seconds=3599)
    assert tokens.reconnect_by is None  # a published app's refresh token has no end

    # A second consent without `prompt=consent` gives no refresh token (Google's rule).
    consent = Consent(REDIRECT, "state-2", "w" * 43)
    url = adapter.authorize_url(consent).replace("prompt=consent", "prompt=select_account")
    location = await emulated.consent(url, email=business.email)
    again = await adapter.exchange(consent, query_of(location)["code"])
    assert again.refresh_token is None
    # Without the verifier the challenge was made from, the code is refused.
    consent = Consent(REDIRECT, "state-3", "x" * 43)
    location = await emulated.consent(adapter.authorize_url(consent), email=business.email)
    wrong = Consent(REDIRECT, "state-3", "y" * 43)
    with pytest.raises(PlatformError) as refused:
        await adapter.exchange(wrong, query_of(location)["code"])
    assert refused.value.code == ErrorCode.AUTH_EXPIRED  # invalid_grant
    # A redirect URI the client did not register is Google's error page, not a redirect.
    page = await emulated.browser.get(
        adapter.authorize_url(Consent("https://evil.example/cb", "s", "v" * 43))
    )
    assert page.status_code == 400
    assert "redirect_uri_mismatch" in page.text

    refreshed = await adapter.refresh(str(tokens.refresh_token), None)
    assert refreshed.refresh_token == tokens.refresh_token  # Google does not rotate it
    assert refreshed.access_token != tokens.access_token


async def test_locations_need_a_read_mask_and_pages_are_bounded(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    business = new_business(emulated, "One", "Two", accounts=2)
    tokens = await consented(emulated, adapter, business.email)
    account = business.locations[0].account_id
    plain = await http.get(
        f"{emulated.url}/v1/accounts/{account}/locations", headers=bearer(tokens.access_token)
    )
    assert plain.status_code == 400
    assert plain.json()["error"]["status"] == "INVALID_ARGUMENT"
    masked = await http.get(
        f"{emulated.url}/v1/accounts/{account}/locations",
        params={"readMask": "name,title"},
        headers=bearer(tokens.access_token),
    )
    assert masked.json()["locations"] == [
        {"name": f"locations/{business.locations[0].location_id}", "title": "One"}
    ]
    too_many = await http.get(
        f"{emulated.url}/v4/{business.locations[0].name}/reviews",
        params={"pageSize": 51},
        headers=bearer(tokens.access_token),
    )
    assert too_many.status_code == 400
    choices = await adapter.choices(tokens.access_token)
    assert sorted(c.external_id for c in choices) == sorted(loc.name for loc in business.locations)


async def test_google_errors_map_to_the_catalogue(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    mine = new_business(emulated, "Mine")
    theirs = new_business(emulated, "Theirs")
    tokens = await consented(emulated, adapter, mine.email)
    own = Account(tokens.access_token, mine.locations[0].name)
    post = Prepared("Hello")

    async def failure(call: Any) -> PlatformError:
        with pytest.raises(PlatformError) as failed:
            await call
        return failed.value

    stranger = await failure(
        adapter.reviews(Account(tokens.access_token, theirs.locations[0].name), None)
    )
    assert (stranger.code, stranger.status) == (ErrorCode.AUTH_REVOKED, 403)
    unknown = await failure(adapter.reply(own, "AbFvOqNoSuchReview", "Thanks"))
    assert (unknown.code, unknown.status) == (ErrorCode.INVALID_REQUEST, 404)
    too_long = await failure(adapter.publish(own, Prepared("é" * 1501), "key"))
    assert (too_long.code, too_long.status) == (ErrorCode.CONTENT_REJECTED, 400)
    bad_token = await failure(adapter.publish(Account("ya29.nope", own.external_id), post, "k"))
    assert (bad_token.code, bad_token.status) == (ErrorCode.AUTH_EXPIRED, 401)
    emulated.network.faults.calls_per_minute = 0
    limited = await failure(adapter.publish(own, post, "key"))
    assert (limited.code, limited.retry_after) == (ErrorCode.RATE_LIMITED, 60.0)
    emulated.network.faults.calls_per_minute = 300
    emulated.network.faults.fail_after_store = 1
    stored = await failure(adapter.publish(own, post, "key"))
    assert (stored.code, stored.may_have_succeeded) == (ErrorCode.PLATFORM_UNAVAILABLE, True)
    found = await adapter.find(own, "key", post, clock.now())
    assert found is not None
    assert found.external_id == emulated.network.posts_of(own.external_id)[0].name
    assert await adapter.find(own, "key", Prepared("Something else"), clock.now()) is None
    taken = frozenset({found.external_id})  # another delivery's post, of the same text
    assert await adapter.find(own, "key", post, clock.now(), taken) is None
    # A post's unknown field is refused as Google's JSON parser refuses it.
    refused = await http.post(
        f"{emulated.url}/v4/{own.external_id}/localPosts",
        headers=bearer(tokens.access_token),
        json={"topicType": "STANDARD", "summary": "x", "cta": {}},
    )
    assert refused.status_code == 400
    assert 'Unknown name "cta"' in refused.json()["error"]["message"]


async def test_a_locations_figures_come_by_day_on_googles_dates_with_zeros_left_out(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    business = new_business(emulated, "Quay Books")
    tokens = await consented(emulated, adapter, business.email)
    name, network = business.locations[0].name, emulated.network
    newest = clock.now().astimezone(UTC).date() - timedelta(days=network.daily_lag_days)
    day = newest - timedelta(days=1)
    network.set_daily(name, "BUSINESS_IMPRESSIONS_MOBILE_SEARCH", day, 7)
    network.set_daily(name, "BUSINESS_IMPRESSIONS_DESKTOP_MAPS", day, 0)
    network.set_daily(name, "WEBSITE_CLICKS", day, 12_000_000_000)  # an int64, as a string
    location = Account(tokens.access_token, name)

    figures = await adapter.daily_metrics(location, day - timedelta(days=2), newest + timedelta(3))
    assert sorted(figures) == [day - timedelta(days=n) for n in (2, 1, 0)] + [newest]
    assert figures[day]["impressions_mobile_search"] == 7
    assert figures[day]["impressions_desktop_maps"] == 0
    assert figures[day]["website_clicks"] == 12_000_000_000
    assert figures[day]["impressions"] == sum(
        figures[day][f"impressions_{where}"]
        for where in ("desktop_maps", "desktop_search", "mobile_maps", "mobile_search")
    )
    assert figures[day]["clicks"] == sum(
        figures[day][m] for m in ("call_clicks", "website_clicks", "direction_requests")
    )
    assert set(figures[day]) == {
        "impressions_desktop_maps",
        "impressions_desktop_search",
        "impressions_mobile_maps",
        "impressions_mobile_search",
        "impressions",
        "conversations",
        "direction_requests",
        "call_clicks",
        "website_clicks",
        "clicks",
        "bookings",
        "food_orders",
        "food_menu_clicks",
    }

    # On the wire: a 0 is left out, the value of any other is an int64 string.
    url = f"{emulated.url}/v1/locations/{business.locations[0].location_id}"
    shown = await http.get(
        f"{url}:fetchMultiDailyMetricsTimeSeries",
        params=[
            ("dailyMetrics", "BUSINESS_IMPRESSIONS_DESKTOP_MAPS"),
            ("dailyMetrics", "WEBSITE_CLICKS"),
            ("daily_range.start_date.year", day.year),  # Google takes either spelling
            ("daily_range.start_date.month", day.month),
            ("daily_range.start_date.day", day.day),
            ("dailyRange.endDate.year", day.year),
            ("dailyRange.endDate.month", day.month),
            ("dailyRange.endDate.day", day.day),
        ],
        headers=bearer(tokens.access_token),
    )
    assert shown.status_code == 200, shown.text
    dated = {"year": day.year, "month": day.month, "day": day.day}
    assert shown.json() == {
        "multiDailyMetricTimeSeries": [
            {
                "dailyMetricTimeSeries": [
                    {
                        "dailyMetric": "BUSINESS_IMPRESSIONS_DESKTOP_MAPS",
                        "timeSeries": {"datedValues": [{"date": dated}]},
                    },
                    {
                        "dailyMetric": "WEBSITE_CLICKS",
                        "timeSeries": {"datedValues": [{"date": dated, "value": "12000000000"}]},
                    },
                ]
            }
        ]
    }


async def test_the_performance_api_refuses_what_google_refuses(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    mine, theirs = new_business(emulated, "Mine"), new_business(emulated, "Theirs")
    tokens = await consented(emulated, adapter, mine.email)
    day = clock.now().astimezone(UTC).date() - timedelta(days=10)
    whole = [("dailyMetrics", "CALL_CLICKS")] + [
        (f"dailyRange.{end}.{part}", getattr(day, part))
        for end in ("startDate", "endDate")
        for part in ("year", "month", "day")
    ]

    async def asked(
        params: list[tuple[str, Any]], location: str = mine.locations[0].location_id, **kw: Any
    ) -> tuple[int, str]:
        headers = kw.get("headers", bearer(tokens.access_token))
        answer = await http.get(
            f"{emulated.url}/v1/locations/{location}:fetchMultiDailyMetricsTimeSeries",
            params=params,
            headers=headers,
        )
        return answer.status_code, answer.json()["error"]["status"] if answer.is_error else ""

    assert await asked(whole) == (200, "")
    assert await asked(whole, headers={}) == (401, "UNAUTHENTICATED")
    assert await asked(whole, theirs.locations[0].location_id) == (403, "PERMISSION_DENIED")
    assert await asked(whole, "999") == (404, "NOT_FOUND")
    assert await asked(whole[1:]) == (400, "INVALID_ARGUMENT")  # no metric
    assert await asked([("dailyMetrics", "CALLS"), *whole[1:]]) == (400, "INVALID_ARGUMENT")
    unknown = [("dailyMetrics", "DAILY_METRIC_UNKNOWN"), *whole[1:]]
    assert await asked(unknown) == (400, "INVALID_ARGUMENT")
    assert await asked(whole[:-1]) == (400, "INVALID_ARGUMENT")  # no end day
    later = [*whole[:4], ("dailyRange.endDate.year", day.year - 1), *whole[5:]]
    assert await asked(later) == (400, "INVALID_ARGUMENT")  # the start after the end
    bad = [*whole[:3], ("dailyRange.startDate.day", 32), *whole[4:]]
    assert await asked(bad) == (400, "INVALID_ARGUMENT")
    old = day - timedelta(days=600)
    too_old = [
        whole[0],
        ("dailyRange.startDate.year", old.year),
        ("dailyRange.startDate.month", old.month),
        ("dailyRange.startDate.day", old.day),
        *whole[4:],
    ]
    assert await asked(too_old) == (400, "INVALID_ARGUMENT")  # beyond 18 months

    # The adapter's history is within what Google keeps; a refusal is in the catalogue.
    location = Account(tokens.access_token, mine.locations[0].name)
    today = clock.now().astimezone(UTC).date()
    read = await adapter.daily_metrics(
        location, today - timedelta(days=adapter.history_days - 1), today
    )
    assert len(read) == adapter.history_days - emulated.network.daily_lag_days
    with pytest.raises(PlatformError) as failed:
        await adapter.daily_metrics(
            Account(tokens.access_token, theirs.locations[0].name), day, day
        )
    assert (failed.value.code, failed.value.status) == (ErrorCode.AUTH_REVOKED, 403)


async def test_reviews_come_as_google_shapes_them(
    emulated: Google, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    adapter = adapter_for(emulated, http, clock)
    business = new_business(emulated, "Shapes")
    tokens = await consented(emulated, adapter, business.email)
    name = business.locations[0].name
    emulated.network.add_review(name, 2, None, "Quiet", reply="Sorry to hear it")
    answer = await http.get(
        f"{emulated.url}/v4/{name}/reviews", headers=bearer(tokens.access_token)
    )
    [shown] = answer.json()["reviews"]
    assert shown["starRating"] == "TWO"
    assert "comment" not in shown
    assert shown["reviewReply"]["comment"] == "Sorry to hear it"
    assert shown["createTime"].endswith("Z")
    assert answer.json()["totalReviewCount"] == 1
    page = await adapter.reviews(Account(tokens.access_token, name), None)
    [review] = page.reviews
    assert (review.rating, review.text, review.reply) == (2, None, "Sorry to hear it")
    assert review.created_at == clock.now()
    with pytest.raises(PlatformError) as stale:
        await adapter.reviews(Account(tokens.access_token, name), "not-a-token")
    assert stale.value.code == ErrorCode.INVALID_REQUEST
    assert parse_time("2026-11-01T06:30:00.123456789Z") == parse_time("2026-11-01T06:30:00.123456Z")
