"""Relay: a small test network with its own wire format, and Crier's adapter for it.

It shows that a platform is added by registering an adapter, with nothing changed in the
scheduler. Relay's contract (all JSON):

- `POST /api/posts` with `Authorization: Bearer <token>` (else 401 `{"error":
  "unauthorized"}`) and `Idempotency-Key` (else 400 `{"error": "idempotency_key_required"}`)
  and a body `{"text": str}` (else 422). 201 `{"id", "url", "created_at"}` (ISO 8601); the
  same key again answers 200 with the post it made.
- `GET /api/posts?key=<idempotency key>` (bearer as above): `{"posts": [...]}`.
- `POST /api/token` `{"refresh_token"}`: 200 `{"access_token", "refresh_token",
  "expires_in"}`, or 400 `{"error": "invalid_grant"}` for an unknown refresh token.

Faults a test can set: `store_then_fail` posts are stored but answered 503 (a gateway that
timed out after the network kept the post); `throttle` posts are answered 429 with
`Retry-After: 1` and not stored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crier.kit.time import Clock
from crier.platforms.base import Account, Prepared, Published, Tokens
from crier.platforms.errors import ErrorCode, PlatformError

PLATFORM = "facebook"
"""The name Relay is registered under: a platform Crier knows the content rules of but has
no adapter for in this build."""


@dataclass
class Received:
    key: str
    token: str
    text: str
    id: str


@dataclass
class Relay:
    """The network's state: valid tokens, refresh tokens, and every post it received."""

    clock: Clock
    tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    lookups: int = 0
    store_then_fail: int = 0
    throttle: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/posts", self._publish, methods=["POST"]),
                Route("/api/posts", self._find, methods=["GET"]),
                Route("/api/token", self._refresh, methods=["POST"]),
            ]
        )

    def _bearer(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token if scheme == "Bearer" and token in self.tokens else None

    def _shown(self, post: Received) -> dict[str, Any]:
        return {
            "id": post.id,
            "url": f"https://relay.test/p/{post.id}",
            "created_at": self.clock.now().isoformat(),
        }

    async def _publish(self, request: Request) -> JSONResponse:
        token = self._bearer(request)
        if token is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "idempotency_key_required"}, status_code=400)
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return JSONResponse({"error": "text_required"}, status_code=422)
        if self.throttle:
            self.throttle -= 1
            return JSONResponse(
                {"error": "slow_down"}, status_code=429, headers={"Retry-After": "1"}
            )
        for post in self.received:
            if post.key == key:
                return JSONResponse(self._shown(post), status_code=200)
        post = Received(key, token, body["text"], f"r{next(self._ids)}")
        self.received.append(post)
        if self.store_then_fail:
            self.store_then_fail -= 1
            return JSONResponse({"error": "gateway_timeout"}, status_code=503)
        return JSONResponse(self._shown(post), status_code=201)

    async def _find(self, request: Request) -> JSONResponse:
        if self._bearer(request) is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        self.lookups += 1
        key = request.query_params.get("key")
        found = [self._shown(p) for p in self.received if p.key == key]
        return JSONResponse({"posts": found})

    async def _refresh(self, request: Request) -> JSONResponse:
        body = await request.json()
        old = body.get("refresh_token") if isinstance(body, dict) else None
        if old not in self.refresh_tokens:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.refresh_tokens.discard(old)
        n = next(self._ids)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.tokens.add(access)
        self.refresh_tokens.add(refresh)
        body = {"access_token": access, "refresh_token": refresh, "expires_in": 3600}
        return JSONResponse(body)


class RelayAdapter:
    """Crier's adapter for Relay, as an adapter for any network is written."""

    platform = PLATFORM

    def __init__(self, http: httpx.AsyncClient, base_url: str, clock: Clock) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._clock = clock

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        response = await self._http.post(
            f"{self._base}/api/posts",
            json={"text": post.text},
            headers={
                "Authorization": f"Bearer {account.access_token}",
                "Idempotency-Key": idempotency_key,
            },
        )
        return _published(_checked(response, sends=True))

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        response = await self._http.get(
            f"{self._base}/api/posts",
            params={"key": idempotency_key},
            headers={"Authorization": f"Bearer {account.access_token}"},
        )
        posts = _checked(response)["posts"]
        return _published(posts[0]) if posts else None

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        return {}

    async def account_metrics(self, account: Account) -> dict[str, int]:
        return {}

    async def refresh(
        self, refresh_token: str, server_url: str | None = None, external_id: str = ""
    ) -> Tokens:
        response = await self._http.post(
            f"{self._base}/api/token", json={"refresh_token": refresh_token}
        )
        body = _checked(response)
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_at=self._clock.now() + timedelta(seconds=body["expires_in"]),
            external_id="relay-account",
            handle="relay",
        )


def _checked(response: httpx.Response, sends: bool = False) -> dict[str, Any]:
    """The body of a success, or the failure in Crier's catalogue. A server error on a send
    may come after Relay stored the post: it is reported as maybe accepted."""
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    error, status = str(response.json().get("error")), response.status_code
    if status == 429:
        retry_after = float(response.headers["retry-after"])
        raise PlatformError(ErrorCode.RATE_LIMITED, error, status=status, retry_after=retry_after)
    if status >= 500:
        raise PlatformError(
            ErrorCode.PLATFORM_UNAVAILABLE, error, status=status, may_have_succeeded=sends
        )
    if status == 401 or error == "invalid_grant":
        raise PlatformError(ErrorCode.AUTH_REVOKED, error, status=status)
    code = ErrorCode.CONTENT_REJECTED if status == 422 else ErrorCode.INVALID_REQUEST
    raise PlatformError(code, error, status=status)


def _published(body: dict[str, Any]) -> Published:
    return Published(
        external_id=body["id"],
        permalink=body["url"],
        published_at=datetime.fromisoformat(body["created_at"]),
    )
