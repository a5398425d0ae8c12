"""Crier's adapter for Bluesky, on any AT Protocol server (atproto.com/specs/xrpc, the
lexicons com.atproto.server.*, com.atproto.repo.* and app.bsky.*).

Accounts connect with an app password (`POST /v1/social-accounts`): it opens a session
(`createSession`) and is never kept; the session's tokens are. The access token lives
about two hours; the refresh token trades for a new pair (`refreshSession`, the old one
then spent), which the scheduler does under its per-account lease. An expired access token
is answered 400 `ExpiredToken`, which the scheduler meets with one refresh and one retry.

A post is a record the adapter names itself: its record key is a TID derived from the
delivery's id (a UUIDv7, so the key carries the time the delivery was made). Sending the
same delivery again writes to the same key, which the server refuses (the reference
server answers 500), so a post cannot be made twice; a delivery whose outcome is unknown is
looked up by that key (`getRecord`). Images and video go up first as blobs
(`uploadBlob`); links, mentions and hashtags become facets; a reply rule is a threadgate
written in the same commit as the post (`applyWrites`).

Servers are named by users, so every call goes through the guarded HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import jwt
from PIL import Image

from crier.kit.outbound import Guard
from crier.kit.storage import Storage
from crier.kit.time import Clock, SystemClock
from crier.platforms.base import Account, MediaRef, Prepared, Published, Tokens
from crier.platforms.bluesky.richtext import facets
from crier.platforms.bluesky.rules import BLUESKY
from crier.platforms.calls import (
    call,
    media_bytes,
    named_server,
    parse_time,
    throttled_or_failed,
)
from crier.platforms.errors import ErrorCode, PlatformError

POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
FULL_ACCESS = "com.atproto.access"
"""The scope of a session opened with the account's own password (not an app password)."""
_REPLY_RULES: dict[str, list[dict[str, str]]] = {
    "nobody": [],
    "mentioned": [{"$type": f"{THREADGATE}#mentionRule"}],
    "following": [{"$type": f"{THREADGATE}#followingRule"}],
}
_EXPIRED = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing", "AuthRequired"})
_REVOKED = frozenset({"AccountTakedown", "AccountDeactivated", "AccountSuspended"})
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def record_key(idempotency_key: str) -> str:
    """The record key (a TID: 13 characters of base32-sortable) of the post sent with
    `idempotency_key`, always the same for the same key. A UUIDv7 key gives its
    millisecond as the TID's time, the rest drawn from its random bits; any other key is
    hashed."""
    try:
        uuid = UUID(idempotency_key)
    except ValueError:
        uuid = None
    if uuid is not None and uuid.version == 7:
        bits = uuid.int
        micros = (bits >> 80) * 1000 + ((bits >> 64) & 0xFFF) % 1000
        clock_id = bits & 0x3FF
    else:
        digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
        micros, clock_id = (digest >> 10) & ((1 << 53) - 1), digest & 0x3FF
    value = (micros << 10) | clock_id
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _expiry(token: str) -> datetime | None:
    """When a session token expires, from its own `exp` claim (read, not verified: it is
    the server's to verify)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


def _scope(token: str) -> str | None:
    try:
        scope = jwt.decode(token, options={"verify_signature": False}).get("scope")
    except jwt.InvalidTokenError:
        return None
    return scope if isinstance(scope, str) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BlueskyAdapter:
    platform = "bluesky"

    def __init__(
        self,
        http: httpx.AsyncClient,
        guard: Guard,
        storage: Storage,
        *,
        service_url: str = "https://bsky.social",
        web_url: str = "https://bsky.app",
        services: frozenset[str] = frozenset(),
        clock: Clock | None = None,
    ) -> None:
        self._http = http
        self._guard = guard
        self._storage = storage
        self._service = service_url.rstrip("/")
        self._web = web_url.rstrip("/")
        self._services = services
        """The only servers that may be named (host or host:port); any when empty."""
        self._clock = clock or SystemClock()

    async def server(self, given: str | None) -> str:
        """The server to sign in at (`service_url`, else this server's default one), if it
        may be called."""
        named = given.strip() if given and given.strip() else self._service
        allowed = self._services | {httpx.URL(self._service).netloc.decode("ascii").lower()}
        return await named_server(
            named,
            self._guard,
            allowed if self._services else frozenset(),
            "service",
            "https://bsky.social",
        )

    async def sign_in(self, identifier: str, password: str, server: str) -> Tokens:
        """Open a session with an app password. The account's own password is refused (its
        session could change the account itself), and that session ended at once."""
        session = await self._xrpc(
            "POST",
            server,
            "com.atproto.server.createSession",
            json={"identifier": identifier, "password": password},
        )
        if _scope(str(session["accessJwt"])) == FULL_ACCESS:
            with contextlib.suppress(PlatformError):  # else it lapses; it is not kept
                await self.sign_out(str(session["refreshJwt"]), server)
            raise PlatformError(
                ErrorCode.AUTH_REVOKED,
                "that is the account's own password: create an app password in Bluesky's "
                "settings (Privacy and security, App passwords) and use it",
            )
        pds = await self._home(session, server)
        return _tokens(session, pds, await self._display_name(pds, str(session["did"])))

    async def sign_out(self, refresh_token: str, server: str) -> None:
        response = await self._request(
            "POST", server, "com.atproto.server.deleteSession", refresh_token
        )
        if not response.is_success:
            raise _error(response, self._clock.now())

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        if not server_url:
            raise PlatformError(ErrorCode.AUTH_EXPIRED, "the account has no server; reconnect it")
        session = await self._xrpc(
            "POST", server_url, "com.atproto.server.refreshSession", refresh_token
        )
        return _tokens(session, server_url)

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        server, did = _server_of(account), account.external_id
        rkey = record_key(idempotency_key)
        record: dict[str, Any] = {"$type": POST, "text": post.text}
        found = await facets(post.text, lambda handle: self._resolve(server, handle))
        if found:
            record["facets"] = found
        if post.settings.get("langs"):
            record["langs"] = list(post.settings["langs"])
        embed = await self._embed(account, server, post.media)
        if embed is not None:
            record["embed"] = embed
        record["createdAt"] = _iso(self._clock.now())
        uri = f"at://{did}/{POST}/{rkey}"
        rule = _REPLY_RULES.get(str(post.settings.get("replies")))
        try:
            if rule is None:
                await self._xrpc(
                    "POST",
                    server,
                    "com.atproto.repo.createRecord",
                    account.access_token,
                    sends=True,
                    json={"repo": did, "collection": POST, "rkey": rkey, "record": record},
                )
            else:
                gate = {"$type": THREADGATE, "post": uri, "allow": rule}
                gate["createdAt"] = record["createdAt"]
                writes = [
                    {"$type": "com.atproto.repo.applyWrites#create", "collection": c, "rkey": rkey}
                    | {"value": v}
                    for c, v in ((POST, record), (THREADGATE, gate))
                ]
                await self._xrpc(
                    "POST",
                    server,
                    "com.atproto.repo.applyWrites",
                    account.access_token,
                    sends=True,
                    json={"repo": did, "writes": writes},
                )
        except PlatformError as error:
            # A record already at this key (an earlier send of this delivery) is refused,
            # by the reference server with a 500: the post is then the one made before.
            if error.status is None or error.status < 500:
                raise
            earlier = await self.find(account, idempotency_key)
            if earlier is None:
                raise
            return earlier
        return Published(uri, self._permalink(did, rkey), self._clock.now())

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        server, did = _server_of(account), account.external_id
        rkey = record_key(idempotency_key)
        response = await self._request(
            "GET",
            server,
            "com.atproto.repo.getRecord",
            params={"repo": did, "collection": POST, "rkey": rkey},
        )
        if response.status_code == 400 and _error_name(response) == "RecordNotFound":
            return None
        record = self._body(response, "com.atproto.repo.getRecord")
        value = record.get("value") or {}
        at = parse_time(value.get("createdAt")) or self._clock.now()
        return Published(str(record["uri"]), self._permalink(did, rkey), at)

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        body = await self._xrpc(
            "GET",
            _server_of(account),
            "app.bsky.feed.getPosts",
            account.access_token,
            params={"uris": external_id},
        )
        posts = body.get("posts") or []
        if not posts:
            raise PlatformError(ErrorCode.INVALID_REQUEST, f"{external_id} is not on Bluesky")
        view = posts[0]
        return {
            "likes": int(view.get("likeCount", 0)),
            "shares": int(view.get("repostCount", 0)),
            "comments": int(view.get("replyCount", 0)),
            "quotes": int(view.get("quoteCount", 0)),
        }

    async def account_metrics(self, account: Account) -> dict[str, int]:
        profile = await self._xrpc(
            "GET",
            _server_of(account),
            "app.bsky.actor.getProfile",
            account.access_token,
            params={"actor": account.external_id},
        )
        return {
            "followers": int(profile.get("followersCount", 0)),
            "following": int(profile.get("followsCount", 0)),
            "posts": int(profile.get("postsCount", 0)),
        }

    def _permalink(self, did: str, rkey: str) -> str:
        return f"{self._web}/profile/{did}/post/{rkey}"

    async def _home(self, session: dict[str, Any], server: str) -> str:
        """The account's own server: the one its DID document names, where it has one
        (signing in at an entryway such as bsky.social), else the one signed in at."""
        document = session.get("didDoc") or {}
        for service in document.get("service") or []:
            if str(service.get("id", "")).endswith("#atproto_pds"):
                endpoint = str(service.get("serviceEndpoint") or "")
                if endpoint and endpoint.rstrip("/") != server:
                    return await named_server(
                        endpoint, self._guard, frozenset(), "server", "https://bsky.social"
                    )
        return server

    async def _display_name(self, server: str, did: str) -> str | None:
        """The name on the account's profile record, if it has one."""
        try:
            body = await self._xrpc(
                "GET",
                server,
                "com.atproto.repo.getRecord",
                params={"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self"},
            )
        except PlatformError:
            return None  # no profile yet
        name = (body.get("value") or {}).get("displayName")
        return name if isinstance(name, str) and name else None

    async def _resolve(self, server: str, handle: str) -> str | None:
        """The DID of a mentioned handle, or None when the server cannot resolve it."""
        try:
            body = await self._xrpc(
                "GET", server, "com.atproto.identity.resolveHandle", params={"handle": handle}
            )
        except PlatformError:
            return None
        did = body.get("did")
        return did if isinstance(did, str) and did.startswith("did:") else None

    async def _embed(
        self, account: Account, server: str, media: Sequence[MediaRef]
    ) -> dict[str, Any] | None:
        if not media:
            return None
        if media[0].kind == "video":
            blob, _ = await self._upload(account, server, media[0])
            video: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": blob}
            if media[0].alt_text:
                video["alt"] = media[0].alt_text
            return video
        images = []
        for item in media:
            blob, size = await self._upload(account, server, item)
            image: dict[str, Any] = {"alt": item.alt_text or "", "image": blob}
            if size is not None:
                image["aspectRatio"] = {"width": size[0], "height": size[1]}
            images.append(image)
        return {"$type": "app.bsky.embed.images", "images": images}

    async def _upload(
        self, account: Account, server: str, media: MediaRef
    ) -> tuple[dict[str, Any], tuple[int, int] | None]:
        """Upload one file as a blob: the blob, and an image's width and height."""
        content = await media_bytes(self._storage, media)
        cap = BLUESKY.max_video_bytes if media.kind == "video" else BLUESKY.max_image_bytes
        if cap is not None and len(content) > cap:
            raise PlatformError(
                ErrorCode.MEDIA_REJECTED, f"{len(content)} bytes; Bluesky takes {cap} at most"
            )
        size = None if media.kind == "video" else await asyncio.to_thread(_dimensions, content)
        body = await self._xrpc(
            "POST",
            server,
            "com.atproto.repo.uploadBlob",
            account.access_token,
            media=True,
            content=content,
            headers={"Content-Type": media.content_type},
        )
        return body["blob"], size

    async def _request(
        self, method: str, server: str, nsid: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        return await call(self._http, method, f"{server}/xrpc/{nsid}", token=token, **kw)

    async def _xrpc(
        self,
        method: str,
        server: str,
        nsid: str,
        token: str | None = None,
        *,
        sends: bool = False,
        media: bool = False,
        **kw: Any,
    ) -> dict[str, Any]:
        response = await self._request(method, server, nsid, token, sends=sends, **kw)
        if not response.is_success:
            raise _error(response, self._clock.now(), sends=sends, media=media)
        return self._body(response, nsid, sends=sends)

    def _body(self, response: httpx.Response, nsid: str, sends: bool = False) -> dict[str, Any]:
        if not response.is_success:
            raise _error(response, self._clock.now(), sends=sends)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                f"{nsid} answered {response.status_code} with no JSON object",
                may_have_succeeded=sends,
            )
        return body


def _tokens(session: dict[str, Any], server: str, display_name: str | None = None) -> Tokens:
    access = str(session["accessJwt"])
    return Tokens(
        access_token=access,
        refresh_token=str(session["refreshJwt"]),
        expires_at=_expiry(access),
        external_id=str(session["did"]),
        handle=str(session["handle"]),
        display_name=display_name,
        server_url=server,
    )


def _dimensions(content: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except (OSError, ValueError):
        return None


def _server_of(account: Account) -> str:
    if not account.server_url:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "the account has no server; reconnect it")
    return account.server_url


def _error_name(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, dict) else ""


def _error(
    response: httpx.Response, now: datetime, *, sends: bool = False, media: bool = False
) -> PlatformError:
    """An XRPC error answer (`{"error": name, "message": text}`) in the catalogue."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    name = str(body.get("error") or "")
    message = str(body.get("message") or name or response.reason_phrase)
    if name and name not in message:
        message = f"{name}: {message}"
    status = response.status_code
    failure = throttled_or_failed(
        response, message, now, sends=sends, reset_header="ratelimit-reset"
    )
    if failure is not None:
        return failure
    if name in _REVOKED:
        return PlatformError(ErrorCode.AUTH_REVOKED, message, status=status)
    if name in _EXPIRED or status == 401:
        return PlatformError(ErrorCode.AUTH_EXPIRED, message, status=status)
    if media or status == 413 or name == "BlobTooLarge":
        return PlatformError(ErrorCode.MEDIA_REJECTED, message, status=status)
    if sends and status == 400:
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status)
    return PlatformError(ErrorCode.INVALID_REQUEST, message, status=status)
