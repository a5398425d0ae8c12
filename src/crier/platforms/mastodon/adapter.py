"""Crier's adapter for Mastodon, on any instance (docs.joinmastodon.org, methods/).

Each instance is its own server with its own app: Crier registers one on first use
(`POST /api/v1/apps`) and keeps it (`platform_apps`). Accounts connect by OAuth 2.0 with
PKCE; Mastodon's tokens do not expire and have no refresh token. A status is sent with the
delivery's id as its `Idempotency-Key`, which Mastodon keeps for an hour: a resend with the
same key answers the status already made. Not every server of the Mastodon API keeps keys
(GoToSocial takes the header and ignores it), so a send whose outcome is unknown is first
looked up among the account's own statuses since its first attempt (`find`), and sent
again, with the same key, only once the instance said it has no such status. Media go up
first through `POST /api/v2/media`, which may answer 202 and process in the background; the
status waits until each is ready.

Instances are named by users, so every call goes through the guarded HTTP client: a name
resolving to a private, loopback or metadata address is refused before any connection.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

import httpx

from crier.kit.outbound import Guard
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
    media_bytes,
    named_server,
    parse_time,
    throttled_or_failed,
)
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.mastodon.rules import instance_limits

SCOPES = "read:accounts read:statuses write:statuses write:media"
"""Reading the account's profile and statuses, posting statuses and their media."""
MEDIA_POLLS = 30
"""How many times a media still processing is polled before the send is retried later."""
LOOKUP_PAGES = 5
"""Pages of the account's statuses (40 each, newest first) read when looking a delivery up."""
LOOKUP_MARGIN = timedelta(minutes=5)
"""How much earlier than a delivery's first attempt its status may say it was made (the
instance's clock and ours disagree)."""


class MastodonAdapter:
    platform = "mastodon"
    registers_apps = True
    organizations = False
    scopes = SCOPES
    lookup_before_resend = True
    """Some servers of the Mastodon API ignore `Idempotency-Key`: a delivery of unknown
    outcome is sent again only once `find` said the instance has no status for it."""
    keys_kept = timedelta(hours=1)
    """How long an instance remembers an `Idempotency-Key`: a status whose outcome is
    unknown is not sent again after that (the scheduler fails it `outcome_unknown`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        guard: Guard,
        storage: Storage,
        *,
        client_name: str = "Crier",
        website: str | None = None,
        clock: Clock | None = None,
        poll_interval: float = 1.0,
        instances: frozenset[str] = frozenset(),
    ) -> None:
        self._http = http
        self._guard = guard
        self._storage = storage
        self._client_name = client_name
        self._website = website
        self._clock = clock or SystemClock()
        self._poll_interval = poll_interval
        self._instances = instances
        """The only instances that may be connected (host or host:port); any when empty."""

    def configured(self) -> bool:
        return True  # every instance registers Crier's app on first use

    async def server(self, given: str | None) -> str:
        """The instance's base URL (`https://host[:port]`), if it may be called."""
        if not given or not given.strip():
            raise PlatformError(
                ErrorCode.INVALID_REQUEST, "name the Mastodon instance (instance_url)"
            )
        return await named_server(
            given, self._guard, self._instances, "instance", "https://mastodon.social"
        )

    async def register_app(self, server_url: str, redirect_uri: str) -> AppCredentials:
        body = await self._json(
            "POST",
            server_url,
            "/api/v1/apps",
            json={
                "client_name": self._client_name,
                "redirect_uris": redirect_uri,
                "scopes": SCOPES,
                **({"website": self._website} if self._website else {}),
            },
        )
        return AppCredentials(body["client_id"], body["client_secret"])

    def authorize_url(self, consent: Consent) -> str:
        assert consent.server_url
        assert consent.app
        query = consent.authorize_query(consent.app.client_id, SCOPES)
        return f"{consent.server_url}/oauth/authorize?{urlencode(query)}"

    async def exchange(self, consent: Consent, code: str) -> Tokens:
        assert consent.server_url
        assert consent.app
        server = consent.server_url
        token = await self._json(
            "POST",
            server,
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": consent.app.client_id,
                "client_secret": consent.app.client_secret,
                "redirect_uri": consent.redirect_uri,
                "code_verifier": consent.code_verifier,
            },
        )
        access = token["access_token"]
        me = await self._json("GET", server, "/api/v1/accounts/verify_credentials", access)
        try:
            instance = await self._json("GET", server, "/api/v2/instance")
        except PlatformError:
            instance = {}  # an older instance: Mastodon's defaults apply
        host = httpx.URL(server).netloc.decode("ascii")
        acct = str(me.get("acct") or me["username"])
        return Tokens(
            access_token=access,
            refresh_token=None,
            expires_at=None,
            external_id=str(me["id"]),
            handle=acct if "@" in acct else f"{acct}@{host}",
            display_name=me.get("display_name") or me.get("username"),
            server_url=server,
            content_limits=instance_limits(instance) or None,
        )

    async def revoke(self, account: Account, app: AppCredentials | None) -> None:
        if app is None or account.server_url is None:
            return
        await self._json(
            "POST",
            account.server_url,
            "/oauth/revoke",
            data={
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "token": account.access_token,
            },
        )

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        raise PlatformError(
            ErrorCode.AUTH_EXPIRED, "Mastodon tokens are not refreshed; reconnect the account"
        )

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        server = _server_of(account)
        media_ids = [await self._upload(account, server, m) for m in post.media]
        body: dict[str, Any] = {"status": post.text}
        if media_ids:
            body["media_ids"] = media_ids
        for name in ("visibility", "language", "spoiler_text", "sensitive"):
            if post.settings.get(name) is not None:
                body[name] = post.settings[name]
        status = await self._json(
            "POST",
            server,
            "/api/v1/statuses",
            account.access_token,
            sends=True,
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        return _published(status)

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        """The account's status made for this delivery, if the instance has one: one of
        its own statuses since the delivery's first attempt, not another delivery's
        (`taken`), posted by Crier (where the instance names the application), with the
        delivery's text (its source, as typed, not the HTML shown) and as many media.
        Mastodon has no lookup by key."""
        if post is None:
            raise PlatformError(ErrorCode.INVALID_REQUEST, "Mastodon looks a status up by its text")
        server = _server_of(account)
        start = (since or self._clock.now() - self.keys_kept) - LOOKUP_MARGIN
        query: dict[str, Any] = {"limit": 40, "exclude_reblogs": "true"}
        path = f"/api/v1/accounts/{account.external_id}/statuses"
        for _ in range(LOOKUP_PAGES):
            page = await self._answer("GET", server, path, account.access_token, params=query)
            if not isinstance(page, list) or not page:
                return None
            for shown in page:
                made = parse_time(shown.get("created_at"))
                if made is not None and made < start:
                    return None  # newest first: the rest are older still
                if str(shown["id"]) in taken:
                    continue  # another delivery's status, of the same text
                if await self._made_for(account, server, shown, post):
                    return _published(shown)
            query["max_id"] = str(page[-1]["id"])
        return None

    async def _made_for(
        self, account: Account, server: str, shown: dict[str, Any], post: Prepared
    ) -> bool:
        """Whether the status `shown` (an entry of the account's statuses) is `post`."""
        application = shown.get("application")
        if isinstance(application, dict) and application.get("name") != self._client_name:
            return False
        if len(shown.get("media_attachments") or []) != len(post.media):
            return False
        text = shown.get("text")  # GoToSocial gives the source with the status
        if not isinstance(text, str):
            source = await self._json(
                "GET", server, f"/api/v1/statuses/{shown['id']}/source", account.access_token
            )
            text = str(source.get("text") or "")
        return text.strip() == post.text.strip()

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        status = await self._json(
            "GET", _server_of(account), f"/api/v1/statuses/{external_id}", account.access_token
        )
        return {
            "comments": int(status.get("replies_count", 0)),
            "shares": int(status.get("reblogs_count", 0)),
            "likes": int(status.get("favourites_count", 0)),
            "quotes": int(status.get("quotes_count", 0)),
        }

    async def account_metrics(self, account: Account) -> dict[str, int]:
        me = await self._json(
            "GET",
            _server_of(account),
            "/api/v1/accounts/verify_credentials",
            account.access_token,
        )
        return {
            "followers": int(me.get("followers_count", 0)),
            "following": int(me.get("following_count", 0)),
            "posts": int(me.get("statuses_count", 0)),
        }

    async def _upload(self, account: Account, server: str, media: MediaRef) -> str:
        """Upload one file and wait until the instance has processed it; its id."""
        content = await media_bytes(self._storage, media)
        form = {"description": media.alt_text} if media.alt_text else {}
        name = PurePosixPath(media.path or "file").name
        answer = await self._json(
            "POST",
            server,
            "/api/v2/media",
            account.access_token,
            media=True,
            data=form,
            files={"file": (name, content, media.content_type)},
        )
        media_id = str(answer["id"])
        if answer.get("url"):
            return media_id
        for _ in range(MEDIA_POLLS):
            await asyncio.sleep(self._poll_interval)
            response = await self._request(
                "GET", server, f"/api/v1/media/{media_id}", account.access_token
            )
            if response.status_code == 200:
                return media_id
            if response.status_code != 206:
                raise _error(response, self._clock.now(), media=True)
        raise PlatformError(
            ErrorCode.PLATFORM_UNAVAILABLE, "the instance is still processing the media"
        )

    async def _request(
        self,
        method: str,
        server: str,
        path: str,
        access_token: str | None = None,
        *,
        sends: bool = False,
        **kw: Any,
    ) -> httpx.Response:
        return await call(self._http, method, server + path, sends=sends, token=access_token, **kw)

    async def _json(
        self, method: str, server: str, path: str, access_token: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        """The JSON object of a successful answer (`_answer`, with its options)."""
        body = await self._answer(method, server, path, access_token, **kw)
        if not isinstance(body, dict):
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                f"{path} answered JSON that is not an object",
                may_have_succeeded=bool(kw.get("sends")),
            )
        return body

    async def _answer(
        self,
        method: str,
        server: str,
        path: str,
        access_token: str | None = None,
        *,
        sends: bool = False,
        media: bool = False,
        **kw: Any,
    ) -> Any:
        """The JSON of a successful answer; an error answer raised as `PlatformError`."""
        response = await self._request(method, server, path, access_token, sends=sends, **kw)
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise PlatformError(
                    ErrorCode.PLATFORM_UNAVAILABLE,
                    f"{path} answered {response.status_code} with no JSON",
                    may_have_succeeded=sends,
                ) from None
        raise _error(response, self._clock.now(), sends=sends, media=media)


def _server_of(account: Account) -> str:
    if not account.server_url:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "the account has no instance; reconnect it")
    return account.server_url


def _error(
    response: httpx.Response, now: datetime, *, sends: bool = False, media: bool = False
) -> PlatformError:
    """An error answer in the catalogue. Mastodon says `{"error": "..."}` (OAuth adds
    `error_description`); the status code is what counts."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("error_description") or body.get("error") or response.reason_phrase)
    status = response.status_code
    failure = throttled_or_failed(
        response, message, now, sends=sends, reset_header="x-ratelimit-reset"
    )
    if failure is not None:
        return failure
    if status in (401, 403):
        return PlatformError(ErrorCode.AUTH_REVOKED, message, status=status)
    if status == 422 or (status == 400 and (sends or media)):
        # Mastodon refuses a status or a file with 422; GoToSocial with 400 (such as
        # "text with spoiler exceed max chars (5000)").
        code = ErrorCode.MEDIA_REJECTED if media else ErrorCode.CONTENT_REJECTED
        return PlatformError(code, message, status=status)
    return PlatformError(ErrorCode.INVALID_REQUEST, message, status=status)


def _published(status: dict[str, Any]) -> Published:
    return Published(
        external_id=str(status["id"]),
        permalink=str(status.get("url") or status.get("uri") or ""),
        published_at=parse_time(status.get("created_at")) or datetime.now(UTC),
    )
