"""Crier's adapter for Google Business Profile: a business location's local posts and its
reviews (developers.google.com: identity/protocols/oauth2/web-server; my-business/
reference/accountmanagement/rest/v1/accounts/list; businessinformation/rest/v1/
accounts.locations/list; rest/v4/accounts.locations.reviews, accounts.locations.localPosts;
my-business/content/posts-data, review-data).

A Google user consents once, by Google's web-server flow with offline access (so a
refresh token comes back; `prompt=consent` asks for one again on a second consent) and
PKCE. The consent reaches every location of every business account the user manages:
they are listed (`choices`) and the member picks which become Crier accounts, each named
by its v4 name, `accounts/{a}/locations/{l}`, all sharing the consent's tokens. An
access token lives an hour and is refreshed with the refresh token, which Google does not
rotate; the refresh token of an app whose consent screen is in "Testing" ends after 7
days (`invalid_grant`), as does a revoked one, and the location then shows `expired`.

A local post ("What's new", `topicType` `STANDARD`) is created with `POST
.../localPosts`: its summary, at most one photo that Google fetches from the media's URL
(this server's public address must be reachable from Google), and a call-to-action
button. Google has no idempotency key, so a delivery whose outcome is unknown is sent
again only after a look-up of the location's posts found it is not there
(`lookup_before_resend`). Google keeps no per-post metrics.

A location's own figures are counts per day (developers.google.com: my-business/reference/
performance/rest/v1/locations/fetchMultiDailyMetricsTimeSeries, TimeSeries): impressions
on Maps and Search, on desktop and mobile, and the clicks on its call, website and
directions buttons, its conversations, bookings and food orders, each day on Google's own
date. A day's value is a string, absent when it is 0; the newest days may not be there yet.
The first fetch reads back `HISTORY_DAYS`; each later one the last `REVISED_DAYS` again.

Reviews are listed the most recently changed first, 50 a page; a reply is an upsert (PUT)
and its removal a DELETE. Errors are Google's `{"error": {"code", "message", "status"}}`;
quotas are per minute, and a 429 says nothing of when to come back: the next minute.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from crier.kit.time import Clock, SystemClock
from crier.platforms.base import (
    Account,
    AppCredentials,
    Choice,
    Consent,
    NetworkReview,
    Prepared,
    Published,
    ReplyReceipt,
    ReviewPage,
    Tokens,
)
from crier.platforms.calls import (
    call,
    json_object,
    parse_time,
    seconds_after,
    throttled_or_failed,
)
from crier.platforms.errors import ErrorCode, PlatformError

SCOPE = "https://www.googleapis.com/auth/business.manage"
STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
REVIEW_PAGE = 50
"""Reviews per page: the most Google serves."""
ACCOUNT_PAGES = 20
"""Pages of business accounts (20 each) and of each one's locations (100 each) read at
most when listing what a consent reaches."""
LOOKUP_PAGES = 5
"""Pages of a location's posts (100 each) looked through to find a delivery's."""
LOOKUP_MARGIN = timedelta(minutes=5)
"""How much earlier than a delivery's first attempt a post found may have been made
(the network's clock and Crier's differ)."""
QUOTA_WAIT = 60.0
"""Seconds to wait after a 429: Google's quotas are per minute and it says no more."""
DAILY_METRICS = {
    "BUSINESS_IMPRESSIONS_DESKTOP_MAPS": "impressions_desktop_maps",
    "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH": "impressions_desktop_search",
    "BUSINESS_IMPRESSIONS_MOBILE_MAPS": "impressions_mobile_maps",
    "BUSINESS_IMPRESSIONS_MOBILE_SEARCH": "impressions_mobile_search",
    "BUSINESS_CONVERSATIONS": "conversations",
    "BUSINESS_DIRECTION_REQUESTS": "direction_requests",
    "CALL_CLICKS": "call_clicks",
    "WEBSITE_CLICKS": "website_clicks",
    "BUSINESS_BOOKINGS": "bookings",
    "BUSINESS_FOOD_ORDERS": "food_orders",
    "BUSINESS_FOOD_MENU_CLICKS": "food_menu_clicks",
}
"""Google's daily metrics, by the names Crier keeps them under."""
SUMMED = {
    "impressions": (
        "impressions_desktop_maps",
        "impressions_desktop_search",
        "impressions_mobile_maps",
        "impressions_mobile_search",
    ),
    "clicks": ("call_clicks", "website_clicks", "direction_requests"),
}
"""The normalized figures a location's day adds up from Google's own."""
HISTORY_DAYS = 540
"""Days read back on a location's first fetch: Google keeps about 18 months."""
REVISED_DAYS = 14
"""Recent days each later fetch reads again: Google's newest days come in late."""


class GoogleBusinessAdapter:
    platform = "google_business"
    registers_apps = False
    organizations = False
    scopes = SCOPE
    lookup_before_resend = True
    """Google has no idempotency key: a delivery whose outcome is unknown is sent again
    only once a look-up found it is not there."""
    keys_kept = timedelta(days=7)
    """How far back a delivery is looked up."""
    history_days = HISTORY_DAYS
    revised_days = REVISED_DAYS

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str | None,
        client_secret: str | None,
        authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth",
        oauth_url: str = "https://oauth2.googleapis.com",
        accounts_url: str = "https://mybusinessaccountmanagement.googleapis.com",
        information_url: str = "https://mybusinessbusinessinformation.googleapis.com",
        api_url: str = "https://mybusiness.googleapis.com",
        performance_url: str = "https://businessprofileperformance.googleapis.com",
        clock: Clock | None = None,
    ) -> None:
        self._http = http
        self._client_id = client_id or ""
        self._client_secret = client_secret or ""
        self._authorize = authorize_url
        self._oauth = oauth_url.rstrip("/")
        self._accounts = accounts_url.rstrip("/")
        self._information = information_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._performance = performance_url.rstrip("/")
        self._clock = clock or SystemClock()

    def configured(self) -> bool:
        return bool(self._client_id and self._client_secret)

    async def server(self, given: str | None) -> str | None:
        return None  # one network, at the configured address

    async def register_app(self, server_url: str, redirect_uri: str) -> AppCredentials:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "Google's app comes from the settings")

    # Consent

    def authorize_url(self, consent: Consent) -> str:
        query = consent.authorize_query(self._client_id, SCOPE) | {
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        }
        return f"{self._authorize}?{urlencode(query)}"

    async def exchange(self, consent: Consent, code: str) -> Tokens:
        """The consent's tokens; which locations become accounts is chosen after
        (`choices`), so the identity is left empty."""
        token = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": consent.redirect_uri,
                "code_verifier": consent.code_verifier,
            }
        )
        return self._tokens(token, None)

    async def choices(self, access_token: str) -> list[Choice]:
        """Every location of every business account the user may manage."""
        found: list[Choice] = []
        for account in await self._paged(
            f"{self._accounts}/v1/accounts", access_token, "accounts", {"pageSize": 20}
        ):
            account_name = str(account.get("name", ""))  # accounts/{a}
            if not account_name.startswith("accounts/"):
                continue
            group = str(account.get("accountName") or account_name)
            for location in await self._paged(
                f"{self._information}/v1/{account_name}/locations",
                access_token,
                "locations",
                {"readMask": "name,title,storefrontAddress", "pageSize": 100},
            ):
                name = str(location.get("name", ""))  # locations/{l}
                if not name.startswith("locations/"):
                    continue
                address = (location.get("storefrontAddress") or {}).get("addressLines") or []
                found.append(
                    Choice(
                        external_id=f"{account_name}/{name}",
                        name=str(location.get("title") or name),
                        group=group,
                        detail=", ".join(map(str, address)) or None,
                    )
                )
        return found

    async def _paged(
        self, url: str, access_token: str, key: str, query: dict[str, Any]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = dict(query)
        for _ in range(ACCOUNT_PAGES):
            body = await self._json("GET", url, Account(access_token), params=params)
            items += [i for i in body.get(key) or [] if isinstance(i, dict)]
            following = body.get("nextPageToken")
            if not following:
                break
            params["pageToken"] = following
        return items

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        token = await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self._tokens(token, refresh_token)

    async def revoke(self, account: Account, app: AppCredentials | None) -> None:
        """Not revoked at Google: the consent a location was connected through is shared
        by every location chosen from it, and revoking it would cut them all off. Crier
        erases the location's tokens; the user removes Crier's access in their Google
        Account once no location needs it."""

    def _tokens(self, token: dict[str, Any], refresh_token: str | None) -> Tokens:
        now = self._clock.now()
        given = token.get("refresh_token")
        return Tokens(
            access_token=str(token["access_token"]),
            refresh_token=str(given) if given else refresh_token,
            expires_at=seconds_after(now, token.get("expires_in")),
            external_id="",
            handle="",
            reconnect_by=seconds_after(now, token.get("refresh_token_expires_in")),
        )

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        """A call to the token endpoint, with the app's credentials in the form."""
        response = await call(
            self._http,
            "POST",
            f"{self._oauth}/token",
            data={**form, "client_id": self._client_id, "client_secret": self._client_secret},
        )
        body = json_object(response) or {}
        if response.is_success:
            if body.get("access_token"):
                return body
            raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "Google answered no token")
        message = str(body.get("error_description") or body.get("error") or response.reason_phrase)
        failure = throttled_or_failed(response, message, self._clock.now())
        if failure is not None:
            raise failure
        if body.get("error") == "invalid_grant":  # expired, revoked, or a testing app's week
            raise PlatformError(ErrorCode.AUTH_EXPIRED, message, status=response.status_code)
        raise PlatformError(
            ErrorCode.INVALID_REQUEST,
            f"the app was refused: {message}",
            status=response.status_code,
        )

    # Local posts

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        body: dict[str, Any] = {"topicType": "STANDARD", "summary": post.text}
        settings = post.settings
        if settings.get("language"):
            body["languageCode"] = settings["language"]
        if settings.get("call_to_action"):
            action = settings["call_to_action"]
            body["callToAction"] = {"actionType": action["type"]} | (
                {"url": action["url"]} if action.get("url") else {}
            )
        if post.media:
            body["media"] = [{"mediaFormat": "PHOTO", "sourceUrl": m.url} for m in post.media]
        made = await self._json(
            "POST",
            f"{self._api}/v4/{account.external_id}/localPosts",
            account,
            sends=True,
            json=body,
        )
        if not made.get("name"):
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                "Google answered without the post's name",
                may_have_succeeded=True,
            )
        return self._published(made)

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        """The location's post made for this delivery, if Google has it: one of its posts
        since the delivery's first attempt whose summary is the delivery's text, and not
        another delivery's (`taken`)."""
        if post is None:
            raise PlatformError(ErrorCode.INVALID_REQUEST, "Google looks a post up by its text")
        start = (since or self._clock.now() - self.keys_kept) - LOOKUP_MARGIN
        params: dict[str, Any] = {"pageSize": 100}
        url = f"{self._api}/v4/{account.external_id}/localPosts"
        for _ in range(LOOKUP_PAGES):
            page = await self._json("GET", url, account, params=params)
            for shown in page.get("localPosts") or []:
                made = parse_time(shown.get("createTime"))
                if made is not None and made < start:
                    return None  # the newest first: older ones cannot be the delivery's
                if shown.get("summary") == post.text and str(shown.get("name")) not in taken:
                    return self._published(shown)
            following = page.get("nextPageToken")
            if not following:
                return None
            params["pageToken"] = following
        return None

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        """Google keeps no counts for a local post (only for the location, by day)."""
        return {}

    async def account_metrics(self, account: Account) -> dict[str, int]:
        """A location's figures are counts per day (`daily_metrics`), not levels."""
        return {}

    async def daily_metrics(
        self, account: Account, first: date, last: date
    ) -> dict[date, dict[str, int]]:
        location = "locations/" + account.external_id.rpartition("/")[2]
        params: list[tuple[str, str | int]] = [("dailyMetrics", m) for m in DAILY_METRICS]
        for end, day in (("startDate", first), ("endDate", last)):
            params += [
                (f"dailyRange.{end}.year", day.year),
                (f"dailyRange.{end}.month", day.month),
                (f"dailyRange.{end}.day", day.day),
            ]
        body = await self._json(
            "GET",
            f"{self._performance}/v1/{location}:fetchMultiDailyMetricsTimeSeries",
            account,
            params=params,
        )
        days: dict[date, dict[str, int]] = {}
        for multi in body.get("multiDailyMetricTimeSeries") or []:
            for series in (multi or {}).get("dailyMetricTimeSeries") or []:
                name = DAILY_METRICS.get(str((series or {}).get("dailyMetric")))
                values = ((series or {}).get("timeSeries") or {}).get("datedValues") or []
                if name is None:
                    continue
                for dated in values:
                    found = _date(dated.get("date")) if isinstance(dated, dict) else None
                    value = _count(dated.get("value")) if found else None
                    if found is not None and value is not None:
                        days.setdefault(found, {})[name] = value
        for figures in days.values():
            for total, parts in SUMMED.items():
                if any(p in figures for p in parts):
                    figures[total] = sum(figures.get(p, 0) for p in parts)
        return days

    def _published(self, shown: dict[str, Any]) -> Published:
        name = str(shown["name"])
        return Published(
            name,
            str(shown.get("searchUrl") or ""),
            parse_time(shown.get("createTime")) or self._clock.now(),
        )

    # Reviews

    async def reviews(self, account: Account, page_token: str | None) -> ReviewPage:
        params: dict[str, Any] = {"pageSize": REVIEW_PAGE}
        if page_token:
            params["pageToken"] = page_token
        body = await self._json(
            "GET", f"{self._api}/v4/{account.external_id}/reviews", account, params=params
        )
        total = body.get("totalReviewCount")
        return ReviewPage(
            [self._review(r) for r in body.get("reviews") or [] if isinstance(r, dict)],
            str(body["nextPageToken"]) if body.get("nextPageToken") else None,
            int(total) if isinstance(total, int) else None,
        )

    def _review(self, shown: dict[str, Any]) -> NetworkReview:
        stars = STARS.get(str(shown.get("starRating")))
        created, updated = parse_time(shown.get("createTime")), parse_time(shown.get("updateTime"))
        if stars is None or created is None or updated is None or not shown.get("reviewId"):
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE, "Google sent a review it did not fill"
            )
        reply = shown.get("reviewReply") or {}
        reviewer = shown.get("reviewer") or {}
        return NetworkReview(
            external_id=str(shown["reviewId"]),
            rating=stars,
            text=shown.get("comment") or None,
            reviewer_name=None if reviewer.get("isAnonymous") else reviewer.get("displayName"),
            created_at=created,
            updated_at=updated,
            reply=reply.get("comment") or None,
            reply_updated_at=parse_time(reply.get("updateTime")),
        )

    async def reply(self, account: Account, review_id: str, text: str) -> ReplyReceipt:
        body = await self._json(
            "PUT",
            f"{self._api}/v4/{account.external_id}/reviews/{quote(review_id, safe='')}/reply",
            account,
            json={"comment": text},
        )
        return ReplyReceipt(
            str(body.get("comment") or text),
            parse_time(body.get("updateTime")) or self._clock.now(),
        )

    async def delete_reply(self, account: Account, review_id: str) -> None:
        await self._json(
            "DELETE",
            f"{self._api}/v4/{account.external_id}/reviews/{quote(review_id, safe='')}/reply",
            account,
        )

    async def _json(
        self, method: str, url: str, account: Account, *, sends: bool = False, **kw: Any
    ) -> dict[str, Any]:
        """A call to one of Google's APIs; its JSON body, or its error in the catalogue."""
        response = await call(
            self._http, method, url, sends=sends, token=account.access_token, **kw
        )
        if not response.is_success:
            raise _error(response, self._clock.now(), sends=sends)
        body = json_object(response)
        if body is None:
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                f"Google answered {response.status_code} with no JSON",
                may_have_succeeded=sends,
            )
        return body


def _date(value: Any) -> date | None:
    """A day of Google's `Date` (`{"year", "month", "day"}`); None for a month or a year."""
    if not isinstance(value, dict):
        return None
    try:
        return date(int(value["year"]), int(value["month"]), int(value["day"]))
    except (KeyError, TypeError, ValueError):
        return None


def _count(value: Any) -> int | None:
    """A day's value: an int64 as a string, absent when it is 0."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _error(response: httpx.Response, now: datetime, *, sends: bool = False) -> PlatformError:
    """An error answer in the catalogue, from Google's `{"error": {"code", "message",
    "status"}}`."""
    shown = (json_object(response) or {}).get("error")
    shown = shown if isinstance(shown, dict) else {}
    message = str(shown.get("message") or response.reason_phrase)
    status = response.status_code
    failure = throttled_or_failed(response, message, now, sends=sends)
    if failure is not None:
        if failure.code == ErrorCode.RATE_LIMITED and failure.retry_after is None:
            failure.retry_after = QUOTA_WAIT
        return failure
    if status == 401:
        return PlatformError(ErrorCode.AUTH_EXPIRED, message, status=status)
    if status == 403:  # the user no longer manages the location, or withdrew the scope
        return PlatformError(ErrorCode.AUTH_REVOKED, message, status=status)
    if sends and status == 400:
        kind = (
            ErrorCode.MEDIA_REJECTED if "media" in message.lower() else ErrorCode.CONTENT_REJECTED
        )
        return PlatformError(kind, message, status=status)
    return PlatformError(ErrorCode.INVALID_REQUEST, message, status=status)
