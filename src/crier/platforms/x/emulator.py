"""X on loopback: the documented API v2 endpoints Crier uses, and nothing else.

Written from X's documentation (docs.x.com: fundamentals/authentication/oauth-2-0
(authorization-code, user-access-token), x-api/posts (create, user timeline, lookup),
x-api/media (chunked upload, metadata), x-api/users/me, fundamentals/rate-limits,
fundamentals/response-codes-and-errors, fundamentals/counting-characters; that a refresh
answers a new refresh token and spends the old one, and that a confidential client is
refused without HTTP Basic, as client libraries met it: r-lib/httr2#197,
unasuke/omniauth-twitter2#4), and as strict as X where it is strict:

- `GET /i/oauth2/authorize` shows a consent page for a known client, its exact redirect
  URI, known scopes, a `state` of at most 500 characters and a PKCE challenge (`S256` or
  `plain`); approving redirects with `code` and `state`, denying with
  `error=access_denied`;
- `POST /2/oauth2/token` (form-encoded only): a confidential client authenticates with HTTP
  Basic, a public one sends `client_id`; a code is single-use and lives 30 seconds; tokens
  live two hours; a refresh token comes only with `offline.access`, and each refresh
  answers a new one, the old one spent (400 `invalid_request` if used again);
  `POST /2/oauth2/revoke` revokes a token of the client's;
- `GET /2/users/me`; `POST /2/tweets` (JSON; unknown fields refused; text weighed as X
  weighs it, at most 280; up to 4 of the author's processed media; the same text as one of
  the author's recent posts is 403); `GET /2/users/{id}/tweets` (newest first,
  `max_results` 5 to 100, `start_time`, `exclude`, `pagination_token`, `tweet.fields`);
  `GET /2/tweets/{id}`. A post's text is shown as X shows it: links as t.co links (23
  characters), a t.co link appended for attached media, `&`, `<` and `>` as HTML entities;
- chunked media upload: `POST /2/media/upload/initialize` (JSON `media_type`,
  `total_bytes`, `media_category`), `.../{id}/append` (multipart `media` and
  `segment_index`), `.../{id}/finalize` (the bytes must add up and be of the declared
  type), `GET /2/media/upload?command=STATUS&media_id=` while a video processes;
  `POST /2/media/metadata` sets alt text (at most 1,000 characters).

Errors are problem JSON (`title`, `detail`, `type`, `status`), OAuth ones `{"error",
"error_description"}`. Every authenticated call answers `x-rate-limit-limit`, `-remaining`
and `-reset` (epoch seconds) for its endpoint, per user, per 15 minutes; past the limit,
429.

Faults for tests and demos: `faults` (or `PUT /_emulator/faults`) can make the next posts
hang or fail with a 503 after they were stored, the timeline fail, or a video take polls
to process. `POST /_emulator/users` makes a user, `POST /_emulator/clients` registers a
client; `GET /_emulator/tweets` lists every post. `crier emulator x` runs one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import secrets
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import regex
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crier.kit.time import Clock, SystemClock
from crier.platforms.emulation import redirect_back, set_faults

CODE_TTL = timedelta(seconds=30)
ACCESS_TTL = timedelta(hours=2)
RATE_WINDOW = timedelta(minutes=15)
DUPLICATE_WINDOW = timedelta(hours=24)
SCOPES = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.email",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "space.read",
        "mute.read",
        "mute.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "block.read",
        "block.write",
        "bookmark.read",
        "bookmark.write",
        "dm.read",
        "dm.write",
        "media.write",
    }
)
TWEET_FIELDS = frozenset(
    {
        "attachments",
        "author_id",
        "conversation_id",
        "created_at",
        "edit_history_tweet_ids",
        "entities",
        "id",
        "lang",
        "public_metrics",
        "reply_settings",
        "text",
    }
)
POST_FIELDS = frozenset(
    {
        "text",
        "media",
        "reply_settings",
        "reply",
        "quote_tweet_id",
        "poll",
        "community_id",
        "made_with_ai",
        "nullcast",
        "geo",
        "for_super_followers_only",
        "paid_partnership",
        "direct_message_deep_link",
        "edit_options",
        "card_uri",
        "share_with_followers",
    }
)
REPLY_SETTINGS = frozenset({"following", "mentionedUsers", "subscribers", "verified"})
LIMITS = {
    "users_me": 75,
    "tweets_create": 100,
    "timeline": 900,
    "tweet_lookup": 900,
    "media_upload": 1875,
    "media_status": 1000,
    "media_metadata": 500,
}
"""Calls per user per 15 minutes, by endpoint."""
MEDIA = {
    "tweet_image": ({"image/jpeg", "image/png", "image/webp", "image/bmp"}, 5 * 1024 * 1024),
    "tweet_gif": ({"image/gif"}, 15 * 1024 * 1024),
    "tweet_video": ({"video/mp4", "video/quicktime"}, 512 * 1024 * 1024),
}
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "image/bmp": (b"BM",),
}
_URL = regex.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"]+")
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_INVALID_TOKEN = "Value passed for the token was invalid."  # noqa: S105 - X's message
_PROBLEMS = "https://api.x.com/2/problems"


def weighted_length(text: str) -> int:
    """A post's weight as X's counting-characters page states it, counted here on its own:
    NFC first; a URL weighs 23; a grapheme that is an emoji 2; any other code point 1 in
    the light ranges (U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037), else 2."""
    text = unicodedata.normalize("NFC", text)
    total = 23 * len(_URL.findall(text))
    for grapheme in regex.findall(r"\X", _URL.sub("", text)):
        if regex.search(r"\p{Extended_Pictographic}|\p{Regional_Indicator}", grapheme):
            total += 2
            continue
        for char in grapheme:
            total += 1 if any(a <= ord(char) <= b for a, b in _LIGHT_RANGES) else 2
    return total


@dataclass
class Faults:
    hang_after_store: int = 0
    """The next posts are stored, then their call hangs for `hang_seconds`."""
    hang_seconds: float = 30.0
    fail_after_store: int = 0
    """The next posts are stored, then answered 503."""
    timeline_unavailable: int = 0
    """The next timeline reads answer 503."""
    video_polls: int = 1
    """Status checks a video is `in_progress` for before it `succeeded`."""
    tweet_limit: int = LIMITS["tweets_create"]
    """Posts per user per 15 minutes."""


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    """None for a public client."""
    redirect_uris: list[str]
    name: str = "Crier"


@dataclass
class User:
    id: str
    username: str
    name: str
    followers: int = 0
    """As other users of the network follow them."""


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scopes: set[str]
    user_id: str
    challenge: str
    method: str
    expires_at: datetime


@dataclass
class Token:
    client_id: str
    user_id: str
    scopes: set[str]
    expires_at: datetime | None
    """None for a refresh token."""
    spent: bool = False


@dataclass
class Media:
    id: str
    user_id: str
    media_type: str
    category: str
    total_bytes: int
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized: bool = False
    polls_left: int = 0
    alt_text: str | None = None

    @property
    def key(self) -> str:
        prefix = {"tweet_video": "7", "tweet_gif": "16"}.get(self.category, "3")
        return f"{prefix}_{self.id}"


@dataclass
class Tweet:
    id: str
    author_id: str
    text: str
    """As the author wrote it."""
    media_ids: list[str]
    reply_settings: str
    created_at: datetime
    links: list[tuple[str, str]] = field(default_factory=list)
    """Each t.co link in the text with the link it stands for."""
    media_link: str | None = None
    """The t.co link X appends for the attached media."""


@dataclass
class Network:
    """X's state, in memory."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)
    tweets: dict[str, Tweet] = field(default_factory=dict)
    calls: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: count(1_870_000_000_000_000_000))

    def next_id(self) -> str:
        return str(next(self.ids))

    def register_client(
        self, redirect_uris: list[str], *, confidential: bool = True, client_id: str | None = None
    ) -> Client:
        client = Client(
            client_id or secrets.token_urlsafe(24),
            secrets.token_urlsafe(36) if confidential else None,
            list(redirect_uris),
        )
        self.clients[client.client_id] = client
        return client

    def user_named(self, username: str) -> User:
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        user = User(self.next_id(), username, username.title())
        self.users[user.id] = user
        return user

    def tweets_of(self, user_id: str) -> list[Tweet]:
        return [t for t in self.tweets.values() if t.author_id == user_id]


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> Refused:
    return Refused(status, {"title": title, "detail": detail, "type": kind, "status": status})


def _invalid(message: str, **parameters: Any) -> Refused:
    return Refused(
        400,
        {
            "errors": [{"parameters": {k: [v] for k, v in parameters.items()}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{_PROBLEMS}/invalid-request",
        },
    )


def _oauth(status: int, error: str, description: str) -> Refused:
    return Refused(status, {"error": error, "error_description": description})


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def create_emulator_app(network: Network | None = None) -> Starlette:
    """X over `network` (a fresh one when None)."""
    state = network or Network(SystemClock())

    def now() -> datetime:
        return state.clock.now()

    def user_of(request: Request, endpoint: str, *scopes: str) -> User:
        """The user a bearer token acts for, once its scopes and rate limit allow."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = state.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.spent or token.expires_at is None or token.expires_at <= now():
            raise _problem(401, "Unauthorized", "Unauthorized")
        if missing := set(scopes) - token.scopes:
            raise _problem(
                403,
                "Forbidden",
                f"Missing scopes: {' '.join(sorted(missing))}",
                f"{_PROBLEMS}/client-forbidden",
            )
        limit = state.faults.tweet_limit if endpoint == "tweets_create" else LIMITS[endpoint]
        moment = now()
        recent = [
            t for t in state.calls.get((token.user_id, endpoint), []) if t > moment - RATE_WINDOW
        ]
        reset = (recent[0] if recent else moment) + RATE_WINDOW
        request.state.limit = (limit, max(0, limit - len(recent) - 1), reset)
        if len(recent) >= limit:
            request.state.limit = (limit, 0, reset)
            raise _problem(429, "Too Many Requests", "Too Many Requests")
        recent.append(moment)
        state.calls[(token.user_id, endpoint)] = recent
        return state.users[token.user_id]

    def api(handler: Any) -> Any:
        """Error bodies and rate-limit headers around a handler."""

        async def wrapped(request: Request) -> Response:
            request.state.limit = None
            try:
                response: Response = await handler(request)
            except Refused as refused:
                response = JSONResponse(refused.body, status_code=refused.status)
                if "error" not in refused.body:
                    response.headers["content-type"] = "application/problem+json"
            if request.state.limit is not None:
                limit, remaining, reset = request.state.limit
                response.headers["x-rate-limit-limit"] = str(limit)
                response.headers["x-rate-limit-remaining"] = str(remaining)
                response.headers["x-rate-limit-reset"] = str(_epoch(reset))
            return response

        return wrapped

    async def json_body(request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _invalid("The request must be application/json")
        try:
            body = await request.json()
        except ValueError:
            raise _invalid("The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object")
        return body

    async def form_body(request: Request) -> dict[str, str]:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise _oauth(400, "invalid_request", "Missing required parameter [grant_type].")
        async with request.form() as form:
            return {k: v for k, v in form.items() if isinstance(v, str)}

    # OAuth 2.0

    def authorization(params: dict[str, str]) -> tuple[Client, str]:
        client = state.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            raise _oauth(400, "invalid_request", "Something went wrong: the app is not known")
        return client, redirect_uri

    def checked_request(params: dict[str, str]) -> str | None:
        """What is wrong with an authorization request, if anything."""
        scopes = set(params.get("scope", "").split())
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        if not scopes or scopes - SCOPES:
            return "invalid_scope"
        if not params.get("state") or len(params["state"]) > 500:
            return "invalid_request"
        if not params.get("code_challenge") or params.get("code_challenge_method") not in (
            "S256",
            "plain",
        ):
            return "invalid_request"
        return None

    async def authorize_page(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client, redirect_uri = authorization(params)
        except Refused as refused:
            message = html.escape(refused.body["error_description"])
            return HTMLResponse(f"<h1>Something went wrong</h1><p>{message}</p>", 400)
        problem = checked_request(params)
        if problem is not None:
            return redirect_back(redirect_uri, {"error": problem, "state": params.get("state")})
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        return HTMLResponse(
            "<!doctype html><title>Authorize app</title>"
            f"<h1>{html.escape(client.name)} wants to access your X account</h1>"
            f"<p>{html.escape(params['scope'])}</p>"
            f'<form method="post" action="/i/oauth2/authorize">{hidden}'
            '<label>Username <input name="username" value="alice"></label>'
            '<button name="decision" value="approve">Authorize app</button>'
            '<button name="decision" value="deny">Cancel</button></form>'
        )

    async def authorize_decision(request: Request) -> Response:
        async with request.form() as form:
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        client, redirect_uri = authorization(params)
        problem = checked_request(params)
        if problem is not None:
            return redirect_back(redirect_uri, {"error": problem, "state": params.get("state")})
        if params.get("decision") != "approve":
            return redirect_back(
                redirect_uri, {"error": "access_denied", "state": params.get("state")}
            )
        user = state.user_named(params.get("username") or "alice")
        code = secrets.token_urlsafe(48)
        state.grants[code] = Grant(
            client.client_id,
            redirect_uri,
            set(params["scope"].split()),
            user.id,
            params["code_challenge"],
            params["code_challenge_method"],
            now() + CODE_TTL,
        )
        return redirect_back(redirect_uri, {"state": params["state"], "code": code})

    def client_of(request: Request, params: dict[str, str]) -> Client:
        """The client calling a token endpoint: HTTP Basic for a confidential one, its
        `client_id` in the form for a public one."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id, secret = "", ""
            client = state.clients.get(client_id)
            if (
                client is None
                or client.client_secret is None
                or not secrets.compare_digest(client.client_secret, secret)
            ):
                raise _oauth(401, "unauthorized_client", "Missing valid authorization header")
            return client
        client = state.clients.get(params.get("client_id", ""))
        if client is None:
            raise _oauth(400, "invalid_request", "Missing required parameter [client_id].")
        if client.client_secret is not None:
            raise _oauth(401, "unauthorized_client", "Missing valid authorization header")
        return client

    def issue(client: Client, user_id: str, scopes: set[str]) -> dict[str, Any]:
        access = secrets.token_urlsafe(48)
        state.tokens[access] = Token(client.client_id, user_id, scopes, now() + ACCESS_TTL)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": int(ACCESS_TTL.total_seconds()),
            "access_token": access,
            "scope": " ".join(sorted(scopes)),
        }
        if "offline.access" in scopes:
            refresh = secrets.token_urlsafe(48)
            state.tokens[refresh] = Token(client.client_id, user_id, scopes, None)
            answer["refresh_token"] = refresh
        return answer

    async def token(request: Request) -> Response:
        params = await form_body(request)
        client = client_of(request, params)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            for name in ("code", "redirect_uri", "code_verifier"):
                if not params.get(name):
                    raise _oauth(400, "invalid_request", f"Missing required parameter [{name}].")
            grant = state.grants.pop(params["code"], None)
            if (
                grant is None
                or grant.client_id != client.client_id
                or grant.expires_at <= now()
                or grant.redirect_uri != params["redirect_uri"]
                or not _verifies(grant, params["code_verifier"])
            ):
                raise _oauth(
                    400, "invalid_request", "Value passed for the authorization code was invalid."
                )
            return JSONResponse(issue(client, grant.user_id, grant.scopes))
        if grant_type == "refresh_token":
            found = state.tokens.get(params.get("refresh_token", ""))
            if (
                found is None
                or found.expires_at is not None
                or found.spent
                or found.client_id != client.client_id
            ):
                raise _oauth(400, "invalid_request", _INVALID_TOKEN)
            found.spent = True
            return JSONResponse(issue(client, found.user_id, found.scopes))
        raise _oauth(400, "unsupported_grant_type", "Grant type is not supported.")

    async def revoke(request: Request) -> Response:
        params = await form_body(request)
        client = client_of(request, params)
        found = state.tokens.get(params.get("token", ""))
        if found is not None and found.client_id == client.client_id:
            found.spent = True
        return JSONResponse({"revoked": True})

    # Users and posts

    async def users_me(request: Request) -> Response:
        user = user_of(request, "users_me", "users.read", "tweet.read")
        data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "public_metrics" in request.query_params.get("user.fields", ""):
            data["public_metrics"] = {
                "followers_count": user.followers,
                "following_count": 0,
                "tweet_count": len(state.tweets_of(user.id)),
                "listed_count": 0,
                "like_count": 0,
                "media_count": 0,
            }
        return JSONResponse({"data": data})

    def shown(tweet: Tweet) -> str:
        """The post's text as X shows it: t.co links, entities escaped."""
        text = html.escape(tweet.text, quote=False)
        for short, long in tweet.links:
            text = text.replace(html.escape(long, quote=False), short, 1)
        if tweet.media_link:
            text = f"{text} {tweet.media_link}".strip()
        return text

    def entity(tweet: Tweet, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": tweet.id,
            "text": shown(tweet),
            "edit_history_tweet_ids": [tweet.id],
        }
        if "created_at" in fields:
            data["created_at"] = _iso(tweet.created_at)
        if "author_id" in fields:
            data["author_id"] = tweet.author_id
        if "reply_settings" in fields:
            data["reply_settings"] = tweet.reply_settings
        if "attachments" in fields and tweet.media_ids:
            data["attachments"] = {"media_keys": [state.media[m].key for m in tweet.media_ids]}
        if "public_metrics" in fields:
            data["public_metrics"] = {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": 0,
                "quote_count": 0,
                "bookmark_count": 0,
                "impression_count": 0,
            }
        if "entities" in fields and (tweet.links or tweet.media_link):
            text: str = data["text"]
            urls: list[dict[str, Any]] = []
            for short, long in tweet.links:
                urls.append(
                    {
                        "url": short,
                        "expanded_url": long if "://" in long else f"http://{long}",
                        "display_url": long.split("://", 1)[-1][:26],
                    }
                )
            if tweet.media_link:
                urls.append(
                    {
                        "url": tweet.media_link,
                        "expanded_url": f"https://x.com/i/web/status/{tweet.id}/photo/1",
                        "display_url": f"pic.x.com/{tweet.media_link[-10:]}",
                        "media_key": state.media[tweet.media_ids[0]].key,
                    }
                )
            for url in urls:
                url["start"] = text.find(url["url"])
                url["end"] = url["start"] + len(url["url"])
            data["entities"] = {"urls": urls}
        return data

    def fields_of(request: Request) -> set[str]:
        given = request.query_params.get("tweet.fields")
        fields = set(given.split(",")) if given else set()
        if unknown := fields - TWEET_FIELDS:
            raise _invalid(
                f"The `tweet.fields` query parameter value [{sorted(unknown)[0]}] is not one "
                f"of {sorted(TWEET_FIELDS)}",
                **{"tweet.fields": given},
            )
        return fields

    def short_link() -> str:
        return "https://t.co/" + secrets.token_urlsafe(8)[:10]

    async def create_tweet(request: Request) -> Response:
        user = user_of(request, "tweets_create", "tweet.read", "tweet.write", "users.read")
        body = await json_body(request)
        if unknown := set(body) - POST_FIELDS:
            name = sorted(unknown)[0]
            raise _invalid(f"$.{name}: is not defined in the schema", **{name: body[name]})
        text = body.get("text")
        media = body.get("media")
        if text is not None and not isinstance(text, str):
            raise _invalid("$.text: string expected", text=text)
        media_ids: list[str] = []
        if media is not None:
            if not isinstance(media, dict) or not isinstance(media.get("media_ids"), list):
                raise _invalid("$.media.media_ids: array expected", media=media)
            media_ids = media["media_ids"]
            if not 1 <= len(media_ids) <= 4 or not all(isinstance(m, str) for m in media_ids):
                raise _invalid("$.media.media_ids: 1 to 4 ids as strings", media=media)
        if not (text or "").strip() and not media_ids:
            raise _invalid("Post text or media is required", text=text)
        if weighted_length(text or "") > 280:
            raise _problem(
                403,
                "Forbidden",
                "You are not permitted to perform this action: the text is too long.",
            )
        reply_settings = body.get("reply_settings", "everyone")
        if reply_settings != "everyone" and reply_settings not in REPLY_SETTINGS:
            raise _invalid(
                "$.reply_settings: does not have a value in the enumeration",
                reply_settings=reply_settings,
            )
        for media_id in media_ids:
            found = state.media.get(media_id)
            if (
                found is None
                or found.user_id != user.id
                or not found.finalized
                or found.polls_left > 0
            ):
                raise _invalid("Your media IDs are invalid.", media_ids=media_id)
        moving = [m for m in media_ids if state.media[m].category != "tweet_image"]
        if moving and len(media_ids) > 1:
            raise _invalid("A video or GIF must be the only media of a post", media=media)
        recent = now() - DUPLICATE_WINDOW
        written = unicodedata.normalize("NFC", text or "").strip()
        if written and any(
            t.text.strip() == written and t.created_at > recent for t in state.tweets_of(user.id)
        ):
            raise _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        links = [(short_link(), u) for u in _URL.findall(written)]
        tweet = Tweet(
            state.next_id(),
            user.id,
            written,
            media_ids,
            reply_settings,
            now(),
            links,
            short_link() if media_ids else None,
        )
        state.tweets[tweet.id] = tweet
        if state.faults.hang_after_store > 0:
            state.faults.hang_after_store -= 1
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.fail_after_store > 0:
            state.faults.fail_after_store -= 1
            raise _problem(503, "Service Unavailable", "Service Unavailable")
        return JSONResponse({"data": entity(tweet, set())}, status_code=201)

    async def user_tweets(request: Request) -> Response:
        user_of(request, "timeline", "tweet.read", "users.read")
        if state.faults.timeline_unavailable > 0:
            state.faults.timeline_unavailable -= 1
            raise _problem(503, "Service Unavailable", "Service Unavailable")
        user_id = request.path_params["id"]
        query = request.query_params
        if not user_id.isdigit():
            raise _invalid("The `id` query parameter value is not valid", id=user_id)
        fields = fields_of(request)
        try:
            size = int(query.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 5 <= size <= 100:
            raise _invalid(
                "The `max_results` query parameter value is not between 5 and 100",
                max_results=query.get("max_results"),
            )
        excluded = set(filter(None, query.get("exclude", "").split(",")))
        if excluded - {"replies", "retweets"}:
            raise _invalid(
                "The `exclude` query parameter value is not valid", exclude=query["exclude"]
            )
        start = None
        if query.get("start_time"):
            try:
                start = datetime.fromisoformat(query["start_time"].replace("Z", "+00:00"))
            except ValueError:
                raise _invalid(
                    "Invalid 'start_time':'{}'. 'start_time' must be a valid RFC 3339 date",
                    start_time=query["start_time"],
                ) from None
        mine = sorted(
            (t for t in state.tweets_of(user_id) if start is None or t.created_at >= start),
            key=lambda t: int(t.id),
            reverse=True,
        )
        offset = 0
        if query.get("pagination_token"):
            try:
                offset = int(base64.urlsafe_b64decode(query["pagination_token"]).decode())
            except ValueError:
                raise _invalid(
                    "The `pagination_token` query parameter value is not valid",
                    pagination_token=query["pagination_token"],
                ) from None
        page = mine[offset : offset + size]
        if not page:
            return JSONResponse({"meta": {"result_count": 0}})
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": page[0].id,
            "oldest_id": page[-1].id,
        }
        if offset + size < len(mine):
            meta["next_token"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return JSONResponse({"data": [entity(t, fields) for t in page], "meta": meta})

    async def get_tweet(request: Request) -> Response:
        user_of(request, "tweet_lookup", "tweet.read", "users.read")
        fields = fields_of(request)
        tweet_id = request.path_params["id"]
        tweet = state.tweets.get(tweet_id)
        if tweet is None:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "value": tweet_id,
                            "detail": f"Could not find tweet with id: [{tweet_id}].",
                            "title": "Not Found Error",
                            "resource_type": "tweet",
                            "parameter": "id",
                            "resource_id": tweet_id,
                            "type": f"{_PROBLEMS}/resource-not-found",
                        }
                    ]
                }
            )
        return JSONResponse({"data": entity(tweet, fields)})

    # Media

    def own_media(user: User, media_id: str) -> Media:
        found = state.media.get(media_id)
        if found is None or found.user_id != user.id:
            raise _invalid("The media id is not valid", media_id=media_id)
        return found

    async def initialize(request: Request) -> Response:
        user = user_of(request, "media_upload", "media.write")
        body = await json_body(request)
        media_type, total = body.get("media_type"), body.get("total_bytes")
        category = body.get("media_category", "tweet_image")
        if category not in MEDIA:
            raise _invalid("$.media_category: not a valid category", media_category=category)
        types, cap = MEDIA[category]
        if media_type not in types:
            raise _invalid(f"{media_type} is not a type of {category}", media_type=media_type)
        if not isinstance(total, int) or not 0 < total <= cap:
            raise _invalid(f"total_bytes must be between 1 and {cap}", total_bytes=total)
        media = Media(state.next_id(), user.id, media_type, category, total)
        state.media[media.id] = media
        return JSONResponse(
            {"data": {"id": media.id, "media_key": media.key, "expires_after_secs": 86400}}
        )

    async def append(request: Request) -> Response:
        user = user_of(request, "media_upload", "media.write")
        media = own_media(user, request.path_params["id"])
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise _invalid("The request must be multipart/form-data with `media`")
        async with request.form() as form:
            chunk, index = form.get("media"), form.get("segment_index")
            content = await chunk.read() if isinstance(chunk, UploadFile) else None
        if content is None:
            raise _invalid("The `media` field is required", media=None)
        if not isinstance(index, str) or not index.isdigit() or not 0 <= int(index) <= 999:
            raise _invalid("segment_index must be between 0 and 999", segment_index=index)
        if media.finalized:
            raise _invalid("The media is already finalized", media_id=media.id)
        media.segments[int(index)] = content
        return JSONResponse({"data": {"expires_at": _epoch(now() + timedelta(days=1))}})

    def processing(media: Media) -> dict[str, Any] | None:
        if media.category != "tweet_video":
            return None
        if media.polls_left > 0:
            return {"state": "in_progress", "check_after_secs": 1, "progress_percent": 50}
        return {"state": "succeeded", "progress_percent": 100}

    async def finalize(request: Request) -> Response:
        user = user_of(request, "media_upload", "media.write")
        media = own_media(user, request.path_params["id"])
        content = b"".join(media.segments[i] for i in sorted(media.segments))
        if sorted(media.segments) != list(range(len(media.segments))):
            raise _invalid("Segments are missing", media_id=media.id)
        if len(content) != media.total_bytes:
            raise _invalid(
                f"File size mismatch: {len(content)} bytes sent, {media.total_bytes} declared",
                media_id=media.id,
            )
        magic = _MAGIC.get(media.media_type)
        if magic is not None and not content.startswith(magic):
            raise _invalid(f"The file is not {media.media_type}", media_id=media.id)
        media.finalized = True
        if media.category == "tweet_video":
            media.polls_left = state.faults.video_polls
        data: dict[str, Any] = {
            "id": media.id,
            "media_key": media.key,
            "size": media.total_bytes,
            "expires_after_secs": 86400,
        }
        info = processing(media)
        if info is not None and media.polls_left > 0:
            data["processing_info"] = {"state": "pending", "check_after_secs": 1}
        return JSONResponse({"data": data})

    async def status(request: Request) -> Response:
        user = user_of(request, "media_status", "media.write")
        if request.query_params.get("command") != "STATUS":
            raise _invalid("command must be STATUS", command=request.query_params.get("command"))
        media = own_media(user, request.query_params.get("media_id", ""))
        if not media.finalized:
            raise _invalid("The media is not finalized", media_id=media.id)
        if media.polls_left > 0:
            media.polls_left -= 1
            info = {"state": "in_progress", "check_after_secs": 1, "progress_percent": 50}
        else:
            info = processing(media) or {"state": "succeeded", "progress_percent": 100}
        return JSONResponse(
            {"data": {"id": media.id, "media_key": media.key, "processing_info": info}}
        )

    async def metadata(request: Request) -> Response:
        user = user_of(request, "media_metadata", "media.write")
        body = await json_body(request)
        media = own_media(user, str(body.get("id", "")))
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or not 0 < len(alt) <= 1000:
            raise _invalid("$.metadata.alt_text.text: 1 to 1000 characters", alt_text=alt)
        if media.category == "tweet_video":
            raise _invalid("Alt text is supported for images and GIFs", media_id=media.id)
        media.alt_text = alt
        return JSONResponse(
            {"data": {"id": media.id, "associated_metadata": {"alt_text": {"text": alt}}}}
        )

    # Control

    async def control_tweets(request: Request) -> Response:
        return JSONResponse(
            {
                "data": [
                    asdict(t) | {"created_at": _iso(t.created_at), "shown": shown(t)}
                    for t in state.tweets.values()
                ]
            }
        )

    async def control_users(request: Request) -> Response:
        body = await json_body(request)
        user = state.user_named(str(body.get("username") or "alice"))
        return JSONResponse(asdict(user), status_code=201)

    async def control_clients(request: Request) -> Response:
        body = await json_body(request)
        uris = body.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise _invalid("redirect_uris: a list of callback URLs")
        client = state.register_client(
            [str(u) for u in uris], confidential=bool(body.get("confidential", True))
        )
        return JSONResponse(asdict(client), status_code=201)

    async def control_faults(request: Request) -> Response:
        body = await json_body(request)
        unknown = set_faults(state.faults, body)
        if unknown is not None:
            raise _invalid(f"unknown fault {unknown}")
        return JSONResponse(asdict(state.faults))

    routes = [
        Route("/i/oauth2/authorize", authorize_page, methods=["GET"]),
        Route("/i/oauth2/authorize", api(authorize_decision), methods=["POST"]),
        Route("/2/oauth2/token", api(token), methods=["POST"]),
        Route("/2/oauth2/revoke", api(revoke), methods=["POST"]),
        Route("/2/users/me", api(users_me), methods=["GET"]),
        Route("/2/users/{id}/tweets", api(user_tweets), methods=["GET"]),
        Route("/2/tweets", api(create_tweet), methods=["POST"]),
        Route("/2/tweets/{id}", api(get_tweet), methods=["GET"]),
        Route("/2/media/upload/initialize", api(initialize), methods=["POST"]),
        Route("/2/media/upload/{id}/append", api(append), methods=["POST"]),
        Route("/2/media/upload/{id}/finalize", api(finalize), methods=["POST"]),
        Route("/2/media/upload", api(status), methods=["GET"]),
        Route("/2/media/metadata", api(metadata), methods=["POST"]),
        Route("/_emulator/tweets", control_tweets, methods=["GET"]),
        Route("/_emulator/users", api(control_users), methods=["POST"]),
        Route("/_emulator/clients", api(control_clients), methods=["POST"]),
        Route("/_emulator/faults", api(control_faults), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.network = state
    return app


def _verifies(grant: Grant, verifier: str) -> bool:
    if grant.method == "plain":
        return secrets.compare_digest(grant.challenge, verifier)
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return secrets.compare_digest(grant.challenge, challenge)
