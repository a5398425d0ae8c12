"""Crier's adapter for X, API v2 (docs.x.com: fundamentals/authentication/oauth-2-0,
x-api/posts, x-api/media, x-api/users, fundamentals/rate-limits).

Accounts connect by OAuth 2.0 authorization code with PKCE, through the one app this server
is configured with (`CRIER_X_CLIENT_ID`, and `CRIER_X_CLIENT_SECRET` for a confidential
client, which authenticates with HTTP Basic). The access token lives two hours; with
`offline.access` a refresh token comes too, and each refresh answers a new one, the old one
then spent, so it is stored at once (the scheduler refreshes under its per-account lease).

X has no idempotency key. What keeps a post from being made twice is looking first: a
delivery whose outcome is unknown (a worker killed mid-call, a timeout, a server error) is
looked up among the account's own posts since its first attempt (`GET
/2/users/{id}/tweets`), matched by its text, and sent again only when it is not there; when
X cannot be asked, nothing is sent and the look-up is tried again later
(`lookup_before_resend`). X also refuses a post whose text repeats one of the account's
recent posts (403), which is permanent.

Media go up first through the chunked upload (`initialize`, `append`, `finalize`, then the
status until processed), with alt text set on images and GIFs (`POST /2/media/metadata`).
"""

from __future__ import annotations

import asyncio
import html
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import regex

from crier.kit.storage import Storage
from crier.kit.time import Clock, SystemClock
from crier.platforms.base import (
    Account,
    AppCredentials,
    Consent,
    MediaRef,
    Prepared,
    Published,
    Tokens,
)
from crier.platforms.calls import (
    call,
    json_object,
    media_bytes,
    parse_time,
    seconds_after,
    throttled_or_failed,
)
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.x.rules import LINK

SCOPES = "tweet.read tweet.write users.read media.write offline.access"
"""Reading the account and its posts, posting, uploading media, and refreshing tokens."""
CHUNK = 4 * 1024 * 1024
"""Bytes per `append` of a chunked upload."""
MEDIA_POLLS = 60
"""How many times a media still processing is asked about before the send is retried."""
LOOKUP_PAGES = 5
"""Pages of 100 recent posts read when looking a delivery up."""
LOOKUP_MARGIN = timedelta(minutes=2)
"""How much earlier than the delivery's first attempt the look-up starts (clock skew)."""
_CATEGORIES = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}
_TCO = regex.compile(r"https?://t\.co/\w+")
_ACCESS_PROBLEMS = ("/client-forbidden", "/unsupported-authentication")
"""Problem types of a 403 about the token's access (a scope it lacks), not the post."""


class XAdapter:
    platform = "x"
    registers_apps = False
    organizations = False
    scopes = SCOPES
    lookup_before_resend = True
    """A resend could make a second post (X has no idempotency key): a delivery whose
    outcome is unknown is sent again only once a look-up found it is not there."""
    keys_kept = timedelta(days=7)
    """How far back a delivery is looked up: after that, one whose outcome is unknown is
    not sent again (the scheduler fails it `outcome_unknown`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        storage: Storage,
        *,
        client_id: str | None,
        client_secret: str | None = None,
        api_url: str = "https://api.x.com",
        authorize_url: str = "https://x.com/i/oauth2/authorize",
        web_url: str = "https://x.com",
        clock: Clock | None = None,
        poll_cap: float = 5.0,
    ) -> None:
        self._http = http
        self._storage = storage
        self._client_id = client_id or ""
        self._client_secret = client_secret or ""
        self._api = api_url.rstrip("/")
        self._authorize = authorize_url
        self._web = web_url.rstrip("/")
        self._clock = clock or SystemClock()
        self._poll_cap = poll_cap
        """The longest wait between two questions about a media still processing."""

    def configured(self) -> bool:
        return bool(self._client_id)

    async def server(self, given: str | None) -> str | None:
        return None  # one network, at the configured address

    async def register_app(self, server_url: str, redirect_uri: str) -> AppCredentials:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "X's app comes from the settings")

    def authorize_url(self, consent: Consent) -> str:
        return f"{self._authorize}?{urlencode(consent.authorize_query(self._client_id, SCOPES))}"

    async def exchange(self, consent: Consent, code: str) -> Tokens:
        token = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": consent.redirect_uri,
                "code_verifier": consent.code_verifier,
            }
        )
        access = str(token["access_token"])
        me = (await self._json("GET", "/2/users/me", access))["data"]
        return Tokens(
            access_token=access,
            refresh_token=_optional(token.get("refresh_token")),
            expires_at=self._expiry(token),
            external_id=str(me["id"]),
            handle=str(me["username"]),
            display_name=me.get("name") or None,
        )

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        token = await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return Tokens(
            access_token=str(token["access_token"]),
            refresh_token=_optional(token.get("refresh_token")),
            expires_at=self._expiry(token),
            external_id="",
            handle="",
        )

    async def revoke(self, account: Account, app: AppCredentials | None) -> None:
        response = await self._token_call(
            "/2/oauth2/revoke", {"token": account.access_token, "token_type_hint": "access_token"}
        )
        if not response.is_success:
            raise _oauth_error(response, self._clock.now())

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        media_ids = [await self._upload(account, m) for m in post.media]
        body: dict[str, Any] = {}
        if post.text:
            body["text"] = post.text
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        if post.settings.get("reply_settings"):
            body["reply_settings"] = post.settings["reply_settings"]
        made = await self._json("POST", "/2/tweets", account.access_token, sends=True, json=body)
        data = made.get("data") or {}
        if not data.get("id"):
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                "X answered without the post's id",
                may_have_succeeded=True,
            )
        return Published(str(data["id"]), self._permalink(str(data["id"])), self._clock.now())

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        """The account's post made for this delivery, if X has it: one of its posts since
        the delivery's first attempt, not another delivery's (`taken`), whose text is the
        delivery's (links aside, which X shows as t.co links)."""
        if post is None:
            raise PlatformError(ErrorCode.INVALID_REQUEST, "X looks a post up by its text")
        start = (since or self._clock.now() - self.keys_kept) - LOOKUP_MARGIN
        wanted = _comparable(post.text)
        query: dict[str, Any] = {
            "max_results": 100,
            "start_time": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "exclude": "replies,retweets",
            "tweet.fields": "created_at,entities",
        }
        path = f"/2/users/{account.external_id}/tweets"
        for _ in range(LOOKUP_PAGES):
            page = await self._json("GET", path, account.access_token, params=query)
            for shown in page.get("data") or []:
                if str(shown["id"]) in taken:
                    continue  # another delivery's post, of the same text
                if _comparable(_as_written(shown)) == wanted:
                    return Published(
                        str(shown["id"]),
                        self._permalink(str(shown["id"])),
                        parse_time(shown.get("created_at")) or self._clock.now(),
                    )
            token = (page.get("meta") or {}).get("next_token")
            if not token:
                return None
            query["pagination_token"] = token
        return None

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        body = await self._json(
            "GET",
            f"/2/tweets/{external_id}",
            account.access_token,
            params={"tweet.fields": "public_metrics"},
        )
        if not body.get("data"):  # X answers 200 with `errors` for a post it does not have
            raise _error(httpx.Response(404, json=body), self._clock.now())
        counts = body["data"].get("public_metrics") or {}

        def count(*names: str) -> int:  # the 2026 API renames retweets to reposts
            return next((int(counts[n]) for n in names if n in counts), 0)

        return {
            "likes": count("like_count"),
            "shares": count("retweet_count", "repost_count"),
            "comments": count("reply_count"),
            "quotes": count("quote_count"),
            "impressions": count("impression_count"),
            "bookmarks": count("bookmark_count"),
        }

    async def account_metrics(self, account: Account) -> dict[str, int]:
        body = await self._json(
            "GET", "/2/users/me", account.access_token, params={"user.fields": "public_metrics"}
        )
        counts = body["data"].get("public_metrics") or {}
        return {
            "followers": int(counts.get("followers_count", 0)),
            "following": int(counts.get("following_count", 0)),
            "posts": int(counts.get("tweet_count", 0)),
            "listed": int(counts.get("listed_count", 0)),
        }

    async def _upload(self, account: Account, media: MediaRef) -> str:
        """Upload one file in chunks, wait until X has processed it, set its alt text;
        its id."""
        content = await media_bytes(self._storage, media)
        token = account.access_token
        begun = await self._json(
            "POST",
            "/2/media/upload/initialize",
            token,
            media=True,
            json={
                "media_type": media.content_type,
                "total_bytes": len(content),
                "media_category": _CATEGORIES.get(media.kind, "tweet_image"),
            },
        )
        media_id = str(begun["data"]["id"])
        for index, start in enumerate(range(0, len(content), CHUNK)):
            await self._json(
                "POST",
                f"/2/media/upload/{media_id}/append",
                token,
                media=True,
                data={"segment_index": str(index)},
                files={"media": ("chunk", content[start : start + CHUNK], media.content_type)},
            )
        done = await self._json("POST", f"/2/media/upload/{media_id}/finalize", token, media=True)
        await self._processed(token, media_id, (done.get("data") or {}).get("processing_info"))
        if media.alt_text and media.kind in ("image", "gif"):
            await self._json(
                "POST",
                "/2/media/metadata",
                token,
                media=True,
                json={"id": media_id, "metadata": {"alt_text": {"text": media.alt_text}}},
            )
        return media_id

    async def _processed(self, token: str, media_id: str, info: dict[str, Any] | None) -> None:
        """Wait until X says the media is processed (at once, when it says nothing)."""
        for _ in range(MEDIA_POLLS):
            state = (info or {}).get("state", "succeeded")
            if state == "succeeded":
                return
            if state == "failed":
                error = (info or {}).get("error") or {}
                raise PlatformError(
                    ErrorCode.MEDIA_REJECTED,
                    str(error.get("message") or "X could not process the media"),
                )
            wait = float((info or {}).get("check_after_secs") or 1)
            await asyncio.sleep(min(wait, self._poll_cap))
            status = await self._json(
                "GET",
                "/2/media/upload",
                token,
                media=True,
                params={"command": "STATUS", "media_id": media_id},
            )
            info = (status.get("data") or {}).get("processing_info")
        raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "X is still processing the media")

    def _permalink(self, post_id: str) -> str:
        return f"{self._web}/i/web/status/{post_id}"

    def _expiry(self, token: dict[str, Any]) -> datetime | None:
        return seconds_after(self._clock.now(), token.get("expires_in"))

    async def _token_call(self, path: str, form: dict[str, str]) -> httpx.Response:
        """A call to the token endpoints, authenticated as X asks of the app: HTTP Basic
        for a confidential client, its `client_id` in the form for a public one."""
        if self._client_secret:
            auth: httpx.BasicAuth | None = httpx.BasicAuth(self._client_id, self._client_secret)
        else:
            auth, form = None, {**form, "client_id": self._client_id}
        return await call(self._http, "POST", self._api + path, data=form, auth=auth)

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        response = await self._token_call("/2/oauth2/token", form)
        if not response.is_success:
            raise _oauth_error(response, self._clock.now())
        body = json_object(response)
        if body is None or not body.get("access_token"):
            raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "X answered no access token")
        return body

    async def _json(
        self,
        method: str,
        path: str,
        token: str,
        *,
        sends: bool = False,
        media: bool = False,
        **kw: Any,
    ) -> dict[str, Any]:
        response = await call(self._http, method, self._api + path, sends=sends, token=token, **kw)
        if not response.is_success:
            raise _error(response, self._clock.now(), sends=sends, media=media)
        if not response.content:
            return {}
        body = json_object(response)
        if body is None:
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                f"{path} answered {response.status_code} with no JSON object",
                may_have_succeeded=sends,
            )
        return body


def _optional(value: Any) -> str | None:
    return str(value) if value else None


def _as_written(shown: dict[str, Any]) -> str:
    """A post's text as its author wrote it, from X's display of it: HTML entities
    unescaped, and the t.co links X appends for attached media taken out."""
    text = str(shown.get("text") or "")
    urls = ((shown.get("entities") or {}).get("urls")) or []
    for url in urls:
        if url.get("media_key") and url.get("url"):
            text = text.replace(str(url["url"]), "")
    return html.unescape(text)


def _comparable(text: str) -> str:
    """Text with every link made the same mark (X shows each as its own t.co link)."""
    text = unicodedata.normalize("NFC", text)
    text = _TCO.sub("\x00", LINK.sub("\x00", text))
    return " ".join(text.split())


def _oauth_error(response: httpx.Response, now: datetime) -> PlatformError:
    """A refusal of the token endpoints (`{"error", "error_description"}`): a refresh or
    code that is not (or no longer) valid is final; the app's own refusal too."""
    body = json_object(response) or {}
    message = str(body.get("error_description") or body.get("error") or response.reason_phrase)
    status = response.status_code
    failure = throttled_or_failed(response, message, now, reset_header="x-rate-limit-reset")
    if failure is not None:
        return failure
    if status == 401:
        return PlatformError(ErrorCode.INVALID_REQUEST, f"the app was refused: {message}")
    return PlatformError(ErrorCode.AUTH_EXPIRED, message, status=status)


def _error(
    response: httpx.Response, now: datetime, *, sends: bool = False, media: bool = False
) -> PlatformError:
    """An API error answer in the catalogue. X answers problem JSON (`title`, `detail`,
    `type`), sometimes with `errors[]`; a 429 carries `x-rate-limit-reset` (epoch seconds)."""
    body = json_object(response) or {}
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = str(
        body.get("detail")
        or first.get("message")
        or first.get("detail")
        or body.get("title")
        or response.reason_phrase
    )
    status = response.status_code
    failure = throttled_or_failed(
        response, message, now, sends=sends, reset_header="x-rate-limit-reset"
    )
    if failure is not None:
        return failure
    if status == 401:
        return PlatformError(ErrorCode.AUTH_EXPIRED, message, status=status)
    refused_app = str(body.get("type", "")).endswith(_ACCESS_PROBLEMS)
    if status == 403 and sends and not refused_app:  # a duplicate, or a post refused
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status)
    if status == 403:
        return PlatformError(ErrorCode.AUTH_REVOKED, message, status=status)
    if media and status in (400, 413, 422):
        return PlatformError(ErrorCode.MEDIA_REJECTED, message, status=status)
    if sends and status in (400, 422):
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status)
    return PlatformError(ErrorCode.INVALID_REQUEST, message, status=status)
