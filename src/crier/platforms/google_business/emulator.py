"""Google Business Profile on loopback: the documented endpoints Crier uses for a user's
business locations, their reviews and their local posts, and nothing else, on one host.

Written from Google's documentation (developers.google.com: identity/protocols/oauth2/
web-server (authorization, token, refresh, revoke; refresh tokens of apps in "Testing"
end after 7 days); my-business/reference/accountmanagement/rest/v1/accounts/list;
my-business/reference/businessinformation/rest/v1/accounts.locations/list;
my-business/reference/rest/v4/accounts.locations.reviews (list, updateReply,
deleteReply); accounts.locations.localPosts (create, list); my-business/content/
posts-data), and as strict as Google where it is strict:

- `GET /o/oauth2/v2/auth` shows a consent page for a known client and its exact redirect
  URI (else Google's error page, 400 `redirect_uri_mismatch` / `invalid_client`), with
  scope `https://www.googleapis.com/auth/business.manage`; approving redirects with `code`
  and `state`, refusing with `error=access_denied`. PKCE (S256) is checked when a
  challenge was sent;
- `POST /token` (form-encoded, the client's id and secret in the form or as HTTP Basic):
  a code is single-use, lives 10 minutes and must come with its redirect URI (and
  verifier); the access token lives 3,599 seconds. A refresh token is given only with
  `access_type=offline`, and again for a user who consented before only with
  `prompt=consent`. A refresh does not rotate it. Refresh tokens of a client in
  "Testing" end 7 days after the consent: `invalid_grant` "Token has been expired or
  revoked.", like a revoked one. `POST /revoke?token=` ends a grant;
- `GET /v1/accounts` (`pageSize` at most 20): the user's business accounts;
- `GET /v1/accounts/{a}/locations` needs a `readMask` of known fields (`pageSize` at
  most 100): the account's locations, with only the fields asked for;
- `GET /v4/accounts/{a}/locations/{l}/reviews` (`pageSize` at most 50, `pageToken`,
  `orderBy` `updateTime desc` (the default), `rating` or `rating desc`): reviews with
  `starRating` as an enum, `reviewReply` when answered, `averageRating`,
  `totalReviewCount` and an opaque `nextPageToken`;
- `PUT /v4/.../reviews/{r}/reply` `{"comment"}` (at most 4,096 bytes) sets or replaces
  the reply; `DELETE` removes it (`{}`, also with none). Whether a reply moves the
  review's `updateTime` is not documented: here it does not (`reply_bumps_update_time`);
- `POST /v4/.../localPosts`: `topicType` (`STANDARD`, `EVENT`, `OFFER`, `ALERT`), a
  `summary` of at most 1,500 characters, `languageCode`, `callToAction`
  (`{actionType, url}`, no url for `CALL`) and `media` (`[{mediaFormat, sourceUrl}]`);
  unknown fields are refused as Google's JSON parser refuses them. `GET` lists a
  location's posts, the newest first (`pageSize` at most 100);
- `GET /v1/locations/{l}:fetchMultiDailyMetricsTimeSeries` (the Performance API,
  my-business/reference/performance/rest/v1/locations/fetchMultiDailyMetricsTimeSeries,
  DailyMetric, DailyRange, TimeSeries): `dailyMetrics` (repeated, required, known
  `DailyMetric` names) and `dailyRange.startDate.{year,month,day}` and
  `dailyRange.endDate.*` (required, valid dates, the start not after the end; the
  `daily_range.start_date.*` spelling is taken too, as Google's API frontend takes
  either). The range may begin at most 18 months back (the limit v4's insights document;
  the Performance API's own pages do not state one). It answers
  `{"multiDailyMetricTimeSeries": [{"dailyMetricTimeSeries": [{"dailyMetric",
  "timeSeries": {"datedValues": [{"date", "value"}]}}]}]}`, a dated value per day with
  `value` an int64 string left out when it is 0; the last `daily_lag_days` days (3) have
  no figures yet, as Google's newest days come in late. A location's figures are made up
  from its name and the day, unless a test set them (`Network.set_daily`).

Every call needs a bearer token with the scope (401 `UNAUTHENTICATED`, 403
`PERMISSION_DENIED`); a location that is not the user's is 403 and a review that does not
exist 404. Errors are `{"error": {"code", "message", "status"}}`. Calls per minute per
project are capped (`calls_per_minute`): past it, 429 `RESOURCE_EXHAUSTED`, with no
header saying when to come back.

Faults for tests and demos: `faults` (or `PUT /_emulator/faults`) can make the next posts
hang or fail with a 500 after they were stored, the next calls fail 503, or the quota run
out. `POST /_emulator/users` makes a user with business accounts and locations;
`POST /_emulator/locations/{a}/{l}/reviews` adds a review (`PATCH`/`DELETE
/_emulator/reviews/{id}` edit and remove it); `GET /_emulator/posts` lists every post.
`crier emulator google_business` runs one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crier.kit.time import Clock, SystemClock
from crier.platforms.emulation import hidden_fields, redirect_back, refuse_back, set_faults

SCOPE = "https://www.googleapis.com/auth/business.manage"
CODE_TTL = timedelta(minutes=10)
ACCESS_TTL = timedelta(seconds=3599)
TESTING_REFRESH_TTL = timedelta(days=7)
STARS = {1: "ONE", 2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}
TOPIC_TYPES = frozenset({"STANDARD", "EVENT", "OFFER", "ALERT"})
ACTION_TYPES = frozenset({"BOOK", "ORDER", "SHOP", "LEARN_MORE", "SIGN_UP", "CALL"})
MEDIA_FORMATS = frozenset({"PHOTO", "VIDEO"})
POST_FIELDS = frozenset(
    {
        "languageCode",
        "summary",
        "callToAction",
        "event",
        "media",
        "topicType",
        "alertType",
        "offer",
    }
)
LOCATION_FIELDS = frozenset(
    {"name", "title", "storefrontAddress", "metadata", "languageCode", "websiteUri"}
)
DAILY_METRICS = (
    "BUSINESS_IMPRESSIONS_DESKTOP_MAPS",
    "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH",
    "BUSINESS_IMPRESSIONS_MOBILE_MAPS",
    "BUSINESS_IMPRESSIONS_MOBILE_SEARCH",
    "BUSINESS_CONVERSATIONS",
    "BUSINESS_DIRECTION_REQUESTS",
    "CALL_CLICKS",
    "WEBSITE_CLICKS",
    "BUSINESS_BOOKINGS",
    "BUSINESS_FOOD_ORDERS",
    "BUSINESS_FOOD_MENU_CLICKS",
)
"""The Performance API's `DailyMetric` values (but `DAILY_METRIC_UNKNOWN`)."""
HISTORY_MONTHS = 18
MAX_SUMMARY = 1500
MAX_REPLY_BYTES = 4096


@dataclass
class Faults:
    hang_after_store: int = 0
    """The next posts are stored, then their call hangs for `hang_seconds`."""
    hang_seconds: float = 30.0
    fail_after_store: int = 0
    """The next posts are stored, then answered 500."""
    unavailable: int = 0
    """The next API calls (not OAuth) answer 503 `UNAVAILABLE`."""
    calls_per_minute: int = 300
    """API calls per minute for the project; past them, 429."""
    reply_bumps_update_time: bool = False
    """Whether a reply moves the review's `updateTime` (Google does not say)."""


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    testing: bool = False
    """The app's consent screen is in "Testing": refresh tokens end after 7 days."""
    name: str = "Crier"


@dataclass
class Location:
    account_id: str
    location_id: str
    title: str
    address: str

    @property
    def name(self) -> str:
        """Its v4 name: `accounts/{a}/locations/{l}`."""
        return f"accounts/{self.account_id}/locations/{self.location_id}"


@dataclass
class BusinessAccount:
    account_id: str
    account_name: str
    type: str = "LOCATION_GROUP"


@dataclass
class User:
    email: str
    accounts: list[str] = field(default_factory=list)
    """The business accounts the user may manage (their ids)."""


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    email: str
    offline: bool
    force_consent: bool
    challenge: str | None
    expires_at: datetime


@dataclass
class Token:
    client_id: str
    email: str
    expires_at: datetime | None
    refresh: bool = False
    revoked: bool = False
    grant: str = ""
    """The consent it came from: revoking any token of it ends them all."""


@dataclass
class StoredReview:
    review_id: str
    location: str
    rating: int
    comment: str | None
    reviewer: str
    created_at: datetime
    updated_at: datetime
    reply: str | None = None
    reply_updated_at: datetime | None = None


@dataclass
class StoredPost:
    name: str
    location: str
    body: dict[str, Any]
    created_at: datetime


@dataclass
class Network:
    """Google's state, in memory."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    accounts: dict[str, BusinessAccount] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    consented: set[tuple[str, str]] = field(default_factory=set)
    reviews: dict[str, StoredReview] = field(default_factory=dict)
    posts: dict[str, StoredPost] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    """API calls by minute (`YYYY-MM-DDTHH:MM`)."""
    served: dict[str, int] = field(default_factory=dict)
    """API calls answered, by method and route (`GET reviews`)."""
    ids: Any = field(default_factory=lambda: count(10_000_000_000))
    daily: dict[tuple[str, str, date], int] = field(default_factory=dict)
    """Figures a test set: by location (v4 name), `DailyMetric` and day."""
    daily_lag_days: int = 3
    """The newest days that have no figures yet."""

    def next_id(self) -> str:
        return str(next(self.ids))

    def register_client(
        self, redirect_uris: list[str], *, testing: bool = False, client_id: str | None = None
    ) -> Client:
        client = Client(
            client_id or f"{secrets.token_hex(6)}.apps.googleusercontent.com",
            "GOCSPX-" + secrets.token_urlsafe(20),
            list(redirect_uris),
            testing,
        )
        self.clients[client.client_id] = client
        return client

    def user(self, email: str) -> User:
        return self.users.setdefault(email, User(email))

    def add_account(self, email: str, account_name: str) -> BusinessAccount:
        """A business account (a location group) that the user may manage."""
        account = BusinessAccount(self.next_id(), account_name)
        self.accounts[account.account_id] = account
        self.user(email).accounts.append(account.account_id)
        return account

    def add_location(self, account: BusinessAccount, title: str, address: str = "") -> Location:
        location = Location(account.account_id, self.next_id(), title, address or "1 Main St")
        self.locations[location.name] = location
        return location

    def add_review(
        self,
        location: str,
        rating: int,
        comment: str | None,
        reviewer: str = "A Google user",
        reply: str | None = None,
    ) -> StoredReview:
        now = self.clock.now()
        review = StoredReview(
            "AbFvOq" + secrets.token_urlsafe(24),
            location,
            rating,
            comment,
            reviewer,
            now,
            now,
            reply,
            now if reply else None,
        )
        self.reviews[review.review_id] = review
        return review

    def reviews_of(self, location: str, order: str = "updateTime desc") -> list[StoredReview]:
        found = [r for r in self.reviews.values() if r.location == location]
        if order == "rating":
            return sorted(found, key=lambda r: (r.rating, r.review_id))
        if order == "rating desc":
            return sorted(found, key=lambda r: (-r.rating, r.review_id))
        return sorted(found, key=lambda r: (r.updated_at, r.review_id), reverse=True)

    def posts_of(self, location: str) -> list[StoredPost]:
        return [p for p in self.posts.values() if p.location == location]

    def set_daily(self, location: str, metric: str, day: date, value: int) -> None:
        """The location's figure of `metric` on `day` from now on (Google revising it)."""
        self.daily[(location, metric, day)] = value

    def figure(self, location: str, metric: str, day: date) -> int | None:
        """The location's figure of `metric` on `day`: None while the day is too recent,
        a test's when set, or else made up from the location, metric and day."""
        if day > self.clock.now().astimezone(UTC).date() - timedelta(days=self.daily_lag_days):
            return None
        if (location, metric, day) in self.daily:
            return self.daily[(location, metric, day)]
        seed = hashlib.sha256(f"{location} {metric} {day}".encode()).digest()
        scale = 400 if "IMPRESSIONS" in metric else 12
        return int.from_bytes(seed[:4]) % scale


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _refused(status: int, message: str) -> Refused:
    """Google's JSON error: `{"error": {"code", "message", "status"}}`."""
    return Refused(
        status, {"error": {"code": status, "message": message, "status": _STATUS[status]}}
    )


def _invalid(message: str = "Request contains an invalid argument.") -> Refused:
    return _refused(400, message)


def _oauth(status: int, error: str, description: str) -> Refused:
    return Refused(status, {"error": error, "error_description": description})


def rfc3339(instant: datetime) -> str:
    """Google's timestamps: UTC, `Z`, with the fraction of a second it has."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "o" or not value.isdigit():
            raise ValueError(text)
        return int(value)
    except ValueError:
        raise _invalid("Request contains an invalid argument.") from None


def _size(request: Request, default: int, most: int) -> int:
    given = request.query_params.get("pageSize")
    if given is None:
        return default
    if not given.isdigit() or int(given) > most:
        raise _invalid(f"pageSize must be between 0 and {most}.")
    return int(given) or default


def create_emulator_app(network: Network | None = None) -> Starlette:
    """Google Business Profile over `network` (a fresh one when None)."""
    state = network or Network(SystemClock())

    def now() -> datetime:
        return state.clock.now()

    def counted(request: Request, route: str) -> None:
        """An API call: its quota, and the faults that fail it before anything happens."""
        key = f"{request.method} {route}"
        state.served[key] = state.served.get(key, 0) + 1
        if state.faults.unavailable > 0:
            state.faults.unavailable -= 1
            raise _refused(503, "The service is currently unavailable.")
        minute = now().strftime("%Y-%m-%dT%H:%M")
        used = state.calls.get(minute, 0)
        if used >= state.faults.calls_per_minute:
            raise _refused(
                429,
                "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' "
                "of service 'mybusiness.googleapis.com'.",
            )
        state.calls[minute] = used + 1

    def user_of(request: Request) -> User:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = state.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if (
            token is None
            or token.refresh
            or token.revoked
            or (token.expires_at is not None and token.expires_at <= now())
        ):
            raise _refused(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        return state.users[token.email]

    def location_of(request: Request, user: User) -> Location:
        name = f"accounts/{request.path_params['a']}/locations/{request.path_params['l']}"
        location = state.locations.get(name)
        if location is None or location.account_id not in user.accounts:
            raise _refused(403, "The caller does not have permission")
        return location

    def api(route: str, handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                if route:
                    counted(request, route)
                response: Response = await handler(request)
            except Refused as refused:
                response = JSONResponse(refused.body, status_code=refused.status)
            return response

        return wrapped

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Root element must be a message.")
        return body

    # OAuth 2.0

    def client_of(params: dict[str, str]) -> tuple[Client, str]:
        client = state.clients.get(params.get("client_id", ""))
        if client is None:
            raise _oauth(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise _oauth(
                400,
                "redirect_uri_mismatch",
                "The redirect URI in the request does not match the ones authorized for the "
                "OAuth client.",
            )
        return client, redirect_uri

    def problem_of(params: dict[str, str]) -> tuple[str, str] | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type", "Invalid response_type."
        if SCOPE not in params.get("scope", "").split():
            return "invalid_scope", f"Missing or unknown scope; this app asks for {SCOPE}."
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "invalid_request", "Invalid code_challenge_method."
        return None

    async def authorize_page(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client, redirect_uri = client_of(params)
        except Refused as refused:
            return HTMLResponse(
                f"<h1>Error 400: {refused.body['error']}</h1>"
                f"<p>{html.escape(refused.body['error_description'])}</p>",
                400,
            )
        problem = problem_of(params)
        if problem is not None:
            return refuse_back(redirect_uri, *problem, params.get("state"))
        hidden = hidden_fields(params)
        return HTMLResponse(
            "<!doctype html><title>Sign in - Google Accounts</title>"
            f"<h1>{_attr(client.name)} wants to access your Google Account</h1>"
            "<p>See, edit, create and delete your Google business listings</p>"
            f'<form method="post" action="/o/oauth2/v2/auth">{hidden}'
            '<label>Email <input name="email" value="ada@example.com"></label>'
            '<button name="decision" value="allow">Continue</button>'
            '<button name="decision" value="deny">Cancel</button></form>'
        )

    async def authorize_decision(request: Request) -> Response:
        async with request.form() as form:
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        client, redirect_uri = client_of(params)
        problem = problem_of(params)
        if problem is not None or params.get("decision") != "allow":
            error, description = problem or ("access_denied", "The user denied access.")
            return refuse_back(redirect_uri, error, description, params.get("state"))
        email = params.get("email") or "ada@example.com"
        state.user(email)
        code = "4/0A" + secrets.token_urlsafe(40)
        state.codes[code] = Code(
            client.client_id,
            redirect_uri,
            email,
            params.get("access_type") == "offline",
            params.get("prompt") == "consent",
            params.get("code_challenge") or None,
            now() + CODE_TTL,
        )
        return redirect_back(
            redirect_uri, {"code": code, "scope": SCOPE, "state": params.get("state")}
        )

    def authenticated(request: Request, params: dict[str, str]) -> Client:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
        client = state.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            raise _oauth(401, "invalid_client", "Unauthorized")
        return client

    def issue(client: Client, code: Code) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(40)
        grant = secrets.token_hex(8)
        state.tokens[access] = Token(client.client_id, code.email, now() + ACCESS_TTL, grant=grant)
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(ACCESS_TTL.total_seconds()),
            "scope": SCOPE,
            "token_type": "Bearer",
        }
        first = (client.client_id, code.email) not in state.consented
        if code.offline and (first or code.force_consent):
            refresh = "1//0" + secrets.token_urlsafe(40)
            ends = now() + TESTING_REFRESH_TTL if client.testing else None
            state.tokens[refresh] = Token(
                client.client_id, code.email, ends, refresh=True, grant=grant
            )
            answer["refresh_token"] = refresh
            if client.testing:
                answer["refresh_token_expires_in"] = int(TESTING_REFRESH_TTL.total_seconds())
        state.consented.add((client.client_id, code.email))
        return answer

    async def token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise _oauth(400, "invalid_request", "Required parameter is missing: grant_type")
        async with request.form() as form:
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        client = authenticated(request, params)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            code = state.codes.pop(params.get("code", ""), None)
            if (
                code is None
                or code.client_id != client.client_id
                or code.expires_at <= now()
                or code.redirect_uri != params.get("redirect_uri")
            ):
                raise _oauth(400, "invalid_grant", "Bad Request")
            if code.challenge is not None:
                verifier = params.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                made = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if not secrets.compare_digest(made, code.challenge):
                    raise _oauth(400, "invalid_grant", "Invalid code verifier.")
            return JSONResponse(issue(client, code))
        if grant_type == "refresh_token":
            found = state.tokens.get(params.get("refresh_token", ""))
            if (
                found is None
                or not found.refresh
                or found.revoked
                or (found.expires_at is not None and found.expires_at <= now())
                or found.client_id != client.client_id
            ):
                raise _oauth(400, "invalid_grant", "Token has been expired or revoked.")
            access = "ya29." + secrets.token_urlsafe(40)
            state.tokens[access] = Token(
                client.client_id, found.email, now() + ACCESS_TTL, grant=found.grant
            )
            return JSONResponse(
                {
                    "access_token": access,
                    "expires_in": int(ACCESS_TTL.total_seconds()),
                    "scope": SCOPE,
                    "token_type": "Bearer",
                }
            )
        raise _oauth(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))

    async def revoke(request: Request) -> Response:
        value = request.query_params.get("token")
        if value is None:
            async with request.form() as form:
                given = form.get("token")
                value = given if isinstance(given, str) else None
        found = state.tokens.get(value or "")
        if found is None or found.revoked:
            raise _oauth(400, "invalid_token", "Token expired or revoked")
        for kept in state.tokens.values():
            if kept.grant == found.grant:
                kept.revoked = True
        return JSONResponse({})

    # Accounts and locations

    async def list_accounts(request: Request) -> Response:
        user = user_of(request)
        size = _size(request, 20, 20)
        start = _offset(request.query_params.get("pageToken"))
        mine = [state.accounts[a] for a in user.accounts]
        shown = mine[start : start + size]
        body: dict[str, Any] = {
            "accounts": [
                {
                    "name": f"accounts/{a.account_id}",
                    "accountName": a.account_name,
                    "type": a.type,
                    "role": "OWNER",
                    "verificationState": "VERIFIED",
                }
                for a in shown
            ]
        }
        if start + size < len(mine):
            body["nextPageToken"] = _page_token(start + size)
        return JSONResponse(body)

    async def list_locations(request: Request) -> Response:
        user = user_of(request)
        account = request.path_params["a"]
        if account not in user.accounts:
            raise _refused(403, "The caller does not have permission")
        mask = request.query_params.get("readMask")
        if not mask:
            raise _invalid("Request contains an invalid argument. (readMask is required)")
        wanted = {f.strip() for f in mask.split(",") if f.strip()}
        if not wanted or wanted - LOCATION_FIELDS:
            raise _invalid(f"Invalid field mask: {mask}")
        size = _size(request, 10, 100)
        start = _offset(request.query_params.get("pageToken"))
        mine = [loc for loc in state.locations.values() if loc.account_id == account]
        shown = mine[start : start + size]

        def shape(location: Location) -> dict[str, Any]:
            every: dict[str, Any] = {
                "name": f"locations/{location.location_id}",
                "title": location.title,
                "storefrontAddress": {"addressLines": [location.address], "regionCode": "US"},
                "metadata": {"hasVoiceOfMerchant": True, "placeId": f"ChIJ{location.location_id}"},
                "languageCode": "en",
                "websiteUri": "https://example.com",
            }
            return {k: v for k, v in every.items() if k in wanted}

        body: dict[str, Any] = {"locations": [shape(loc) for loc in shown], "totalSize": len(mine)}
        if start + size < len(mine):
            body["nextPageToken"] = _page_token(start + size)
        return JSONResponse(body)

    # Reviews

    def review_json(review: StoredReview) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "name": f"{review.location}/reviews/{review.review_id}",
            "reviewId": review.review_id,
            "reviewer": {"displayName": review.reviewer, "isAnonymous": False},
            "starRating": STARS[review.rating],
            "createTime": rfc3339(review.created_at),
            "updateTime": rfc3339(review.updated_at),
        }
        if review.comment is not None:
            shown["comment"] = review.comment
        if review.reply is not None and review.reply_updated_at is not None:
            shown["reviewReply"] = {
                "comment": review.reply,
                "updateTime": rfc3339(review.reply_updated_at),
            }
        return shown

    async def list_reviews(request: Request) -> Response:
        location = location_of(request, user_of(request))
        order = request.query_params.get("orderBy", "updateTime desc")
        if order not in ("updateTime desc", "rating", "rating desc"):
            raise _invalid(f"Invalid orderBy: {order}")
        size = _size(request, 50, 50)
        start = _offset(request.query_params.get("pageToken"))
        every = state.reviews_of(location.name, order)
        body: dict[str, Any] = {
            "reviews": [review_json(r) for r in every[start : start + size]],
            "totalReviewCount": len(every),
        }
        if every:
            body["averageRating"] = round(sum(r.rating for r in every) / len(every), 1)
        if start + size < len(every):
            body["nextPageToken"] = _page_token(start + size)
        return JSONResponse(body)

    def review_of(request: Request) -> StoredReview:
        location = location_of(request, user_of(request))
        review = state.reviews.get(request.path_params["r"])
        if review is None or review.location != location.name:
            raise _refused(404, "Requested entity was not found.")
        return review

    async def put_reply(request: Request) -> Response:
        review = review_of(request)
        body = await json_body(request)
        if unknown := sorted(set(body) - {"comment", "updateTime"}):
            raise _invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}".')
        comment = body.get("comment")
        if not isinstance(comment, str) or not comment.strip():
            raise _invalid("comment is required.")
        if len(comment.encode()) > MAX_REPLY_BYTES:
            raise _invalid(f"comment is longer than {MAX_REPLY_BYTES} bytes.")
        review.reply, review.reply_updated_at = comment, now()
        if state.faults.reply_bumps_update_time:
            review.updated_at = now()
        return JSONResponse({"comment": comment, "updateTime": rfc3339(now())})

    async def delete_reply(request: Request) -> Response:
        review = review_of(request)
        if review.reply is not None:
            review.reply, review.reply_updated_at = None, None
            if state.faults.reply_bumps_update_time:
                review.updated_at = now()
        return JSONResponse({})

    # Local posts

    def check_post(body: dict[str, Any]) -> None:
        if unknown := sorted(set(body) - POST_FIELDS):
            raise _invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}".')
        topic = body.get("topicType")
        if topic not in TOPIC_TYPES:
            raise _invalid("topicType is required: STANDARD, EVENT, OFFER or ALERT.")
        summary = body.get("summary")
        if topic == "STANDARD" and (not isinstance(summary, str) or not summary.strip()):
            raise _invalid("summary is required for a STANDARD post.")
        if isinstance(summary, str) and len(summary) > MAX_SUMMARY:
            raise _invalid(f"summary is longer than {MAX_SUMMARY} characters.")
        if topic in ("EVENT", "OFFER") and not isinstance(body.get("event"), dict):
            raise _invalid("event is required for EVENT and OFFER posts.")
        action = body.get("callToAction")
        if action is not None:
            if not isinstance(action, dict) or action.get("actionType") not in ACTION_TYPES:
                raise _invalid("callToAction.actionType is invalid.")
            url = action.get("url")
            if action["actionType"] == "CALL":
                if url is not None:
                    raise _invalid("callToAction.url must be empty for CALL.")
            elif not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise _invalid("callToAction.url is required and must be a URL.")
        media = body.get("media", [])
        if not isinstance(media, list):
            raise _invalid("media must be a list.")
        for item in media:
            if (
                not isinstance(item, dict)
                or set(item) - {"mediaFormat", "sourceUrl"}
                or item.get("mediaFormat") not in MEDIA_FORMATS
                or not str(item.get("sourceUrl", "")).startswith(("https://", "http://"))
            ):
                raise _invalid("media: each item needs a mediaFormat and a sourceUrl.")

    def post_json(post: StoredPost) -> dict[str, Any]:
        number = post.name.rsplit("/", 1)[-1]
        return post.body | {
            "name": post.name,
            "state": "LIVE",
            "searchUrl": f"https://local.google.com/place?id={number}&use=posts&lpsid={number}",
            "createTime": rfc3339(post.created_at),
            "updateTime": rfc3339(post.created_at),
        }

    async def create_post(request: Request) -> Response:
        location = location_of(request, user_of(request))
        body = await json_body(request)
        check_post(body)
        post = StoredPost(
            f"{location.name}/localPosts/{state.next_id()}", location.name, body, now()
        )
        state.posts[post.name] = post
        if state.faults.hang_after_store > 0:
            state.faults.hang_after_store -= 1
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.fail_after_store > 0:
            state.faults.fail_after_store -= 1
            raise _refused(500, "Internal error encountered.")
        return JSONResponse(post_json(post))

    async def list_posts(request: Request) -> Response:
        location = location_of(request, user_of(request))
        size = _size(request, 20, 100)
        start = _offset(request.query_params.get("pageToken"))
        every = sorted(
            state.posts_of(location.name), key=lambda p: (p.created_at, p.name), reverse=True
        )
        body: dict[str, Any] = {"localPosts": [post_json(p) for p in every[start : start + size]]}
        if start + size < len(every):
            body["nextPageToken"] = _page_token(start + size)
        return JSONResponse(body)

    # Performance

    def range_end(request: Request, end: str) -> date:
        """`dailyRange.{end}` (or `daily_range.{snake}`): a whole date."""
        snake = "start_date" if end == "startDate" else "end_date"
        parts = []
        for part in ("year", "month", "day"):
            given = request.query_params.get(f"dailyRange.{end}.{part}")
            if given is None:
                given = request.query_params.get(f"daily_range.{snake}.{part}")
            if given is None or not given.isdigit():
                raise _invalid(
                    "Request contains an invalid argument. "
                    f"(daily_range.{snake}.{part} is required)"
                )
            parts.append(int(given))
        try:
            return date(parts[0], parts[1], parts[2])
        except ValueError:
            raise _invalid(f"Invalid date in daily_range.{snake}.") from None

    async def daily_series(request: Request) -> Response:
        user = user_of(request)
        named = [n for n in state.locations.values() if n.location_id == request.path_params["l"]]
        if not named:
            raise _refused(404, "Requested entity was not found.")
        location = named[0]
        if location.account_id not in user.accounts:
            raise _refused(403, "The caller does not have permission")
        metrics = request.query_params.getlist("dailyMetrics")
        if not metrics:
            raise _invalid("Request contains an invalid argument. (daily_metrics is required)")
        for i, metric in enumerate(metrics):
            if metric not in DAILY_METRICS:
                raise _invalid(
                    f"Invalid value at 'daily_metrics[{i}]' "
                    f'(type.googleapis.com/google.business.performance.v1.DailyMetric), "{metric}"'
                )
        first, last = range_end(request, "startDate"), range_end(request, "endDate")
        if first > last:
            raise _invalid("Request contains an invalid argument. (start_date after end_date)")
        today = now().astimezone(UTC).date()
        months = today.year * 12 + today.month - 1 - HISTORY_MONTHS
        oldest = date(months // 12, months % 12 + 1, 1)
        if first < oldest:
            raise _invalid(
                "Request contains an invalid argument. (daily_range must be within the "
                "last 18 months)"
            )
        series = []
        for metric in metrics:
            values = []
            day = first
            while day <= last:
                value = state.figure(location.name, metric, day)
                if value is not None:
                    dated: dict[str, Any] = {
                        "date": {"year": day.year, "month": day.month, "day": day.day}
                    }
                    if value:
                        dated["value"] = str(value)
                    values.append(dated)
                day += timedelta(days=1)
            series.append({"dailyMetric": metric, "timeSeries": {"datedValues": values}})
        return JSONResponse({"multiDailyMetricTimeSeries": [{"dailyMetricTimeSeries": series}]})

    # Control

    async def control_users(request: Request) -> Response:
        """`{"email", "accounts": [{"name", "locations": [{"title", "address"}]}]}`."""
        body = await json_body(request)
        email = body.get("email")
        if not isinstance(email, str) or not isinstance(body.get("accounts", []), list):
            raise _invalid("email, and accounts with their locations")
        state.user(email)
        made = []
        for given in body.get("accounts", []):
            account = state.add_account(email, str(given.get("name") or email))
            locations = [
                state.add_location(account, str(loc.get("title")), str(loc.get("address", "")))
                for loc in given.get("locations", [])
            ]
            made.append(asdict(account) | {"locations": [loc.name for loc in locations]})
        return JSONResponse({"email": email, "accounts": made}, status_code=201)

    async def control_add_review(request: Request) -> Response:
        name = f"accounts/{request.path_params['a']}/locations/{request.path_params['l']}"
        if name not in state.locations:
            raise _refused(404, "No such location.")
        body = await json_body(request)
        rating = body.get("rating")
        if rating not in STARS:
            raise _invalid("rating: 1 to 5")
        review = state.add_review(
            name,
            rating,
            body.get("comment"),
            str(body.get("reviewer") or "A Google user"),
            body.get("reply"),
        )
        return JSONResponse(review_json(review), status_code=201)

    async def control_edit_review(request: Request) -> Response:
        review = state.reviews.get(request.path_params["r"])
        if review is None:
            raise _refused(404, "No such review.")
        body = await json_body(request)
        if "rating" in body:
            if body["rating"] not in STARS:
                raise _invalid("rating: 1 to 5")
            review.rating = body["rating"]
        if "comment" in body:
            review.comment = body["comment"]
        if "reply" in body:  # the owner answers on Google itself
            review.reply = body["reply"]
            review.reply_updated_at = now() if body["reply"] is not None else None
        if set(body) & {"rating", "comment"} or state.faults.reply_bumps_update_time:
            review.updated_at = now()
        return JSONResponse(review_json(review))

    async def control_remove_review(request: Request) -> Response:
        if state.reviews.pop(request.path_params["r"], None) is None:
            raise _refused(404, "No such review.")
        return Response(status_code=204)

    async def control_posts(request: Request) -> Response:
        return JSONResponse({"data": [post_json(p) for p in state.posts.values()]})

    async def control_calls(request: Request) -> Response:
        """API calls answered so far, by method and route (`GET reviews`)."""
        return JSONResponse(state.served)

    async def control_clients(request: Request) -> Response:
        body = await json_body(request)
        uris = body.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise _invalid("redirect_uris: a list of callback URLs")
        client = state.register_client([str(u) for u in uris], testing=bool(body.get("testing")))
        return JSONResponse(asdict(client), status_code=201)

    async def control_faults(request: Request) -> Response:
        body = await json_body(request)
        unknown = set_faults(state.faults, body)
        if unknown is not None:
            raise _invalid(f"unknown fault {unknown}")
        return JSONResponse(asdict(state.faults))

    v4 = "/v4/accounts/{a}/locations/{l}"
    routes = [
        Route("/o/oauth2/v2/auth", authorize_page, methods=["GET"]),
        Route("/o/oauth2/v2/auth", api("", authorize_decision), methods=["POST"]),
        Route("/token", api("", token), methods=["POST"]),
        Route("/revoke", api("", revoke), methods=["POST"]),
        Route("/v1/accounts", api("accounts", list_accounts), methods=["GET"]),
        Route("/v1/accounts/{a}/locations", api("locations", list_locations), methods=["GET"]),
        Route(f"{v4}/reviews", api("reviews", list_reviews), methods=["GET"]),
        Route(f"{v4}/reviews/{{r}}/reply", api("reply", put_reply), methods=["PUT"]),
        Route(f"{v4}/reviews/{{r}}/reply", api("reply", delete_reply), methods=["DELETE"]),
        Route(f"{v4}/localPosts", api("localPosts", create_post), methods=["POST"]),
        Route(f"{v4}/localPosts", api("localPosts", list_posts), methods=["GET"]),
        Route(
            "/v1/locations/{l}:fetchMultiDailyMetricsTimeSeries",
            api("performance", daily_series),
            methods=["GET"],
        ),
        Route("/_emulator/users", api("", control_users), methods=["POST"]),
        Route(
            "/_emulator/locations/{a}/{l}/reviews",
            api("", control_add_review),
            methods=["POST"],
        ),
        Route("/_emulator/reviews/{r}", api("", control_edit_review), methods=["PATCH"]),
        Route("/_emulator/reviews/{r}", api("", control_remove_review), methods=["DELETE"]),
        Route("/_emulator/posts", control_posts, methods=["GET"]),
        Route("/_emulator/calls", control_calls, methods=["GET"]),
        Route("/_emulator/clients", api("", control_clients), methods=["POST"]),
        Route("/_emulator/faults", api("", control_faults), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.network = state
    return app


def _attr(value: str) -> str:
    return html.escape(value, quote=True)
