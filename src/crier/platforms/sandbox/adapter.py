"""Crier's adapter for the sandbox platform, over real HTTP (httpx)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crier.kit.time import Clock, SystemClock
from crier.platforms.base import (
    Account,
    NetworkReview,
    Prepared,
    Published,
    ReplyReceipt,
    ReviewPage,
    Tokens,
)
from crier.platforms.calls import call, throttled_or_failed
from crier.platforms.errors import ErrorCode, PlatformError

_CODES = {
    "token_expired": ErrorCode.AUTH_EXPIRED,
    "token_revoked": ErrorCode.AUTH_REVOKED,
    "invalid_token": ErrorCode.AUTH_REVOKED,
    "invalid_grant": ErrorCode.AUTH_REVOKED,
    "content_rejected": ErrorCode.CONTENT_REJECTED,
    "media_rejected": ErrorCode.MEDIA_REJECTED,
    "rate_limited": ErrorCode.RATE_LIMITED,
}

_NAMES = {"reposts": "shares", "replies": "comments", "link_clicks": "clicks"}
"""The sandbox's names for a post's counts that Crier names otherwise."""


class SandboxAdapter:
    platform = "sandbox"

    def __init__(self, http: httpx.AsyncClient, base_url: str, clock: Clock | None = None) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._clock = clock or SystemClock()

    async def connect(self, handle: str) -> Tokens:
        """Open a sandbox account (the sandbox needs no OAuth consent)."""
        body = await self._call(
            "POST",
            "/oauth/token",
            None,
            data={"grant_type": "client_credentials", "handle": handle},
        )
        return self._tokens(body)

    async def refresh(
        self, refresh_token: str, server_url: str | None = None, external_id: str = ""
    ) -> Tokens:
        body = await self._call(
            "POST",
            "/oauth/token",
            None,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        return self._tokens(body)

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        body = await self._call(
            "POST",
            "/v1/posts",
            account.access_token,
            json={"text": post.text, "media": [{"kind": m.kind, "url": m.url} for m in post.media]},
            headers={"Idempotency-Key": idempotency_key},
            sends=True,
        )
        return _published(body)

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        body = await self._call(
            "GET", "/v1/posts", account.access_token, params={"idempotency_key": idempotency_key}
        )
        found = body["data"]
        return _published(found[0]) if found else None

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        body = await self._call("GET", f"/v1/posts/{external_id}/metrics", account.access_token)
        return {
            _NAMES.get(k, k): int(v) for k, v in body.items() if k not in ("post_id", "measured_at")
        }

    async def account_metrics(self, account: Account) -> dict[str, int]:
        body = await self._call("GET", "/v1/me/metrics", account.access_token)
        return {k: int(v) for k, v in body.items() if k not in ("account_id", "measured_at")}

    async def reviews(self, account: Account, page_token: str | None) -> ReviewPage:
        params = {"page_size": "50"} | ({"page_token": page_token} if page_token else {})
        body = await self._call("GET", "/v1/reviews", account.access_token, params=params)
        return ReviewPage(
            reviews=[_review(r) for r in body["reviews"]],
            next_page_token=body.get("next_page_token"),
            total=body.get("total_review_count"),
        )

    async def reply(self, account: Account, review_id: str, text: str) -> ReplyReceipt:
        body = await self._call(
            "PUT", f"/v1/reviews/{review_id}/reply", account.access_token, json={"comment": text}
        )
        return ReplyReceipt(body["comment"], datetime.fromtimestamp(body["updated_at"], UTC))

    async def delete_reply(self, account: Account, review_id: str) -> None:
        await self._call("DELETE", f"/v1/reviews/{review_id}/reply", account.access_token)

    def _tokens(self, body: dict[str, Any]) -> Tokens:
        expires_in = body.get("expires_in")
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=self._clock.now() + timedelta(seconds=expires_in) if expires_in else None,
            external_id=body["account_id"],
            handle=body.get("handle") or body["account_id"],
        )

    async def _call(
        self, method: str, path: str, access_token: str | None, *, sends: bool = False, **kw: Any
    ) -> dict[str, Any]:
        """One HTTP call, every failure turned into a catalogued `PlatformError`.

        `sends`: the call creates something, so a timeout leaves its outcome unknown.
        """
        headers = dict(kw.pop("headers", None) or {})
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        response = await call(
            self._http, method, self._base + path, sends=sends, headers=headers, **kw
        )
        if response.is_success:
            body: dict[str, Any] = response.json()
            return body
        raise _error(response, self._clock.now(), sends)


def _error(response: httpx.Response, now: datetime, sends: bool) -> PlatformError:
    """Map an error answer to the catalogue."""
    try:
        detail = response.json().get("error", {})
    except ValueError:
        detail = {}
    platform_code = str(detail.get("code", ""))
    message = str(detail.get("message", response.reason_phrase))
    status = response.status_code
    failure = throttled_or_failed(response, message, now, sends=sends)
    if failure is not None:
        return failure

    code = _CODES.get(platform_code)
    if code is None:
        code = ErrorCode.AUTH_REVOKED if status in (401, 403) else ErrorCode.INVALID_REQUEST
    return PlatformError(code, message, status=status)


def _published(body: dict[str, Any]) -> Published:
    return Published(
        external_id=body["id"],
        permalink=body["permalink"],
        published_at=datetime.fromtimestamp(body["created_at"], UTC),
    )


def _review(body: dict[str, Any]) -> NetworkReview:
    reply = body.get("reply") or {}
    return NetworkReview(
        external_id=body["id"],
        rating=int(body["rating"]),
        text=body.get("comment"),
        reviewer_name=(body.get("reviewer") or {}).get("display_name"),
        created_at=datetime.fromtimestamp(body["created_at"], UTC),
        updated_at=datetime.fromtimestamp(body["updated_at"], UTC),
        reply=reply.get("comment"),
        reply_updated_at=(
            datetime.fromtimestamp(reply["updated_at"], UTC) if reply.get("updated_at") else None
        ),
    )
