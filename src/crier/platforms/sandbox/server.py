"""The sandbox platform's HTTP API: OAuth-style tokens, posts, metrics, reviews, and a
control API.

It behaves like a small social network: it authenticates with bearer tokens that expire and
can be refreshed or revoked, accepts posts (one per idempotency key and account), lets a
client look a post up by that key, and serves metrics that grow with time. Every account is
also a business location with reviews, listed the most recently changed first in pages
(as Google Business Profile lists them), which the control API adds, edits and removes. Under
`/control` a test or a person can make it slow, failing, throttling, hanging or refusing.
Errors are `{"error": {"code": ..., "message": ...}}`. See docs/sandbox.md.
"""

# No `from __future__ import annotations` here: the routes' dependencies live in a closure,
# and FastAPI must see their annotations as objects, not as names to resolve later.
import asyncio
import base64
import binascii
import hashlib
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from crier.kit.time import Clock, SystemClock
from crier.platforms.sandbox.faults import Faults, FaultState
from crier.platforms.sandbox.store import SandboxPost, SandboxReview, Store

MAX_TEXT = 500
MAX_MEDIA = 4
MAX_REVIEW_PAGE = 50
MAX_REPLY = 4096
REFRESH_TOKEN_TTL = 60 * 24 * 3600
# The `error.code` of what FastAPI itself answers (unknown paths, methods, bodies).
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


class SandboxError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern="^(image|gif|video)$", description="image, gif or video.")
    url: str = Field(max_length=2000, description="Where the platform can fetch the file.")


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=10_000, description="The post's text.")
    media: list[MediaIn] = Field(default_factory=list, description="Attached media.")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer_name: str | None = Field(default=None, max_length=200, description="Who wrote it.")
    rating: int = Field(ge=1, le=5, description="1 to 5 stars.")
    comment: str | None = Field(default=None, max_length=4096, description="Its text, if any.")
    reply: str | None = Field(
        default=None, max_length=4096, description="A reply the business already made."
    )


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=MAX_REPLY, description="The reply.")


class ReviewEdit(BaseModel):
    """What changes; fields left out stay as they are (`null` removes a comment or reply)."""

    model_config = ConfigDict(extra="forbid")

    rating: int | None = Field(default=None, ge=1, le=5, description="1 to 5 stars.")
    comment: str | None = Field(default=None, max_length=4096, description="Its text.")
    reply: str | None = Field(default=None, max_length=4096, description="The reply.")


SAMPLE_REVIEWS = (
    ("Maria K.", 5, "Wonderful service, the staff went out of their way to help us.", None),
    ("Tom B.", 2, "Waited forty minutes and nobody told us why. Disappointing.", None),
    ("Aiko S.", 4, "Good value and a friendly team. Parking is hard to find.", "Thank you, Aiko!"),
    ("Jonas W.", 1, "Rude staff and a dirty table. I will not come back.", None),
    ("Lena P.", 5, None, None),
    ("Carlos M.", 3, "It was fine, nothing special.", None),
    ("Sofía R.", 4, "Muy buena atención y el café estaba riquísimo.", None),
)
"""What a new account's location has been told, in `crier run` (`sample_reviews`)."""


def create_sandbox_app(
    store: Store,
    clock: Clock | None = None,
    seed: int | None = None,
    *,
    sample_reviews: bool = False,
) -> FastAPI:
    """The sandbox platform over `store`; `clock` drives token expiry and metric growth.
    With `sample_reviews`, each new account's location starts with a few reviews, written
    over the days before it opened (so the reviews inbox has something to show)."""
    clock = clock or SystemClock()
    faults = FaultState(seed)
    app = FastAPI(
        title="Crier sandbox platform",
        version="1",
        description=__doc__,
        docs_url="/docs",
        redoc_url=None,
        # A stand-in platform needs no traces; checking for them costs every call.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.store, app.state.faults = store, faults
    calls: dict[str, int] = {}
    """Platform API calls received, by method and path (route template)."""

    def now() -> float:
        return clock.now().timestamp()

    @app.exception_handler(SandboxError)
    async def sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message}},
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "The request is invalid."
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": message}}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "invalid_request")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def platform_call(request: Request) -> None:
        """Latency and injected faults, applied to every call of the platform API."""
        request.state.received_at = now()
        route = request.scope.get("route")
        key = f"{request.method} {getattr(route, 'path', request.url.path)}"
        calls[key] = calls.get(key, 0) + 1
        f = faults.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        outcome = faults.decide()
        if outcome.hang:
            await asyncio.sleep(f.hang_seconds)
            raise SandboxError(504, "timeout", "The sandbox hung as it was told to.")
        if outcome.status == 429:
            raise SandboxError(
                429, "rate_limited", "Too many requests.", {"Retry-After": str(outcome.retry_after)}
            )
        if outcome.status is not None:
            raise SandboxError(outcome.status, "unavailable", "The sandbox is failing on purpose.")

    async def account_of(authorization: Annotated[str | None, Header()] = None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        found = store.token(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or found.kind != "access":
            raise SandboxError(401, "invalid_token", "Unknown access token.")
        if found.revoked:
            raise SandboxError(401, "token_revoked", "The access token was revoked.")
        if found.expires_at is not None and found.expires_at <= now():
            raise SandboxError(401, "token_expired", "The access token has expired.")
        return found.account_id

    Call = Depends(platform_call)
    Account = Annotated[str, Depends(account_of)]

    def tokens_for(account_id: str) -> dict[str, Any]:
        ttl = faults.faults.token_ttl_seconds
        account = store.account(account_id) or {}
        return {
            "access_token": store.issue_token("access", account_id, now() + ttl),
            "refresh_token": store.issue_token("refresh", account_id, now() + REFRESH_TOKEN_TTL),
            "token_type": "Bearer",
            "expires_in": ttl,
            "account_id": account_id,
            "handle": account.get("handle"),
        }

    @app.post("/oauth/token", dependencies=[Call])
    async def token(
        grant_type: Annotated[str, Form()],
        handle: Annotated[str | None, Form()] = None,
        refresh_token: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        """`client_credentials` (with `handle`) opens a new account; `refresh_token` trades a
        refresh token for new tokens (the old refresh token stops working)."""
        if grant_type == "client_credentials":
            account_id = store.create_account(handle or "sandbox", now())
            if sample_reviews:
                for days, (name, rating, comment, reply) in enumerate(SAMPLE_REVIEWS):
                    written = now() - (len(SAMPLE_REVIEWS) - days) * 86400
                    store.add_review(account_id, name, rating, comment, written, reply)
            return tokens_for(account_id)
        if grant_type == "refresh_token" and refresh_token:
            found = store.token(refresh_token)
            if (
                found is None
                or found.kind != "refresh"
                or found.revoked
                or (found.expires_at is not None and found.expires_at <= now())
            ):
                raise SandboxError(400, "invalid_grant", "The refresh token is not valid.")
            store.revoke_token(refresh_token)
            return tokens_for(found.account_id)
        raise SandboxError(
            400, "unsupported_grant_type", "Use client_credentials or refresh_token."
        )

    @app.get("/v1/me", dependencies=[Call])
    async def me(account_id: Account) -> dict[str, Any]:
        """The account of the token."""
        return store.account(account_id) or {}

    @app.get("/v1/me/metrics", dependencies=[Call])
    async def account_metrics(account_id: Account) -> dict[str, Any]:
        """The account's followers, growing with its age, and its posts (deterministic for
        a given account and time)."""
        account = store.account(account_id)
        if account is None:
            raise SandboxError(404, "not_found", "No such account.")
        at = now()
        return {
            "account_id": account_id,
            "measured_at": at,
            **grown_followers(account_id, account["created_at"], at),
            "posts": len(store.posts(account_id)),
        }

    @app.post("/v1/posts", dependencies=[Call], status_code=201)
    async def create_post(
        request: Request,
        post: PostIn,
        account_id: Account,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        """Publish a post. With `Idempotency-Key`, the same key never makes two posts: a
        repeat answers 200 with the first post."""
        if idempotency_key is not None:
            existing = store.post_by_key(account_id, idempotency_key)
            if existing is not None:
                return JSONResponse(
                    _post_json(existing), status_code=200, headers={"Idempotent-Replayed": "true"}
                )
        if len(post.text) > MAX_TEXT:
            raise SandboxError(422, "content_rejected", f"Text is over {MAX_TEXT} characters.")
        if len(post.media) > MAX_MEDIA:
            raise SandboxError(422, "media_rejected", f"More than {MAX_MEDIA} media.")
        if faults.reject(post.text):
            raise SandboxError(422, "content_rejected", "The sandbox refused this content.")
        created, _ = store.add_post(
            account_id,
            idempotency_key,
            post.text,
            [m.model_dump() for m in post.media],
            now(),
            request.state.received_at,
        )
        if faults.hang_after_accept():
            await asyncio.sleep(faults.faults.hang_seconds)
        return JSONResponse(_post_json(created), status_code=201)

    @app.get("/v1/posts", dependencies=[Call])
    async def find_posts(
        account_id: Account, idempotency_key: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        """The account's posts, or the one sent with `idempotency_key`."""
        if idempotency_key is not None:
            found = store.post_by_key(account_id, idempotency_key)
            return {"data": [_post_json(found)] if found else []}
        return {"data": [_post_json(p) for p in store.posts(account_id)]}

    @app.get("/v1/posts/{post_id}", dependencies=[Call])
    async def get_post(post_id: str, account_id: Account) -> dict[str, Any]:
        post = store.get_post(post_id)
        if post is None or post.account_id != account_id:
            raise SandboxError(404, "not_found", "No such post.")
        return _post_json(post)

    @app.get("/v1/posts/{post_id}/metrics", dependencies=[Call])
    async def metrics(post_id: str, account_id: Account) -> dict[str, Any]:
        """Counts that grow with the post's age (deterministic for a given post and time)."""
        post = store.get_post(post_id)
        if post is None or post.account_id != account_id:
            raise SandboxError(404, "not_found", "No such post.")
        return {"post_id": post.id, "measured_at": now(), **grown_metrics(post, now())}

    @app.get("/v1/reviews", dependencies=[Call])
    async def list_reviews(
        account_id: Account,
        page_size: Annotated[int, Query(ge=1, le=MAX_REVIEW_PAGE)] = MAX_REVIEW_PAGE,
        page_token: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        """The location's reviews, the most recently changed first, `page_size` (at most
        50) at a time; `next_page_token` asks for the next page. A page token is a position
        in that order, so reviews changed meanwhile move ahead of it."""
        offset = _offset(page_token) if page_token else 0
        found, total, average = store.reviews(account_id, offset, page_size + 1)
        more = len(found) > page_size
        return {
            "reviews": [_review_json(r) for r in found[:page_size]],
            "next_page_token": _page_token(offset + page_size) if more else None,
            "total_review_count": total,
            "average_rating": round(average, 2) if average is not None else None,
        }

    def own_review(account_id: str, review_id: str) -> SandboxReview:
        found = store.review(review_id)
        if found is None or found.account_id != account_id:
            raise SandboxError(404, "not_found", "No such review of this location.")
        return found

    @app.put("/v1/reviews/{review_id}/reply", dependencies=[Call])
    async def put_reply(account_id: Account, review_id: str, reply: ReplyIn) -> dict[str, Any]:
        """Reply to a review as the business, replacing any reply it had (an upsert:
        the same reply sent twice is one reply)."""
        own_review(account_id, review_id)
        if faults.reject(reply.comment):
            raise SandboxError(422, "content_rejected", "The sandbox refused this reply.")
        changed = store.edit_review(review_id, now(), reply=reply.comment)
        assert changed is not None
        if faults.hang_after_accept():
            await asyncio.sleep(faults.faults.hang_seconds)
        return {"comment": changed.reply, "updated_at": changed.reply_updated_at}

    @app.delete("/v1/reviews/{review_id}/reply", dependencies=[Call])
    async def delete_reply(account_id: Account, review_id: str) -> dict[str, Any]:
        """Remove the business's reply to a review (done, too, if it had none)."""
        if own_review(account_id, review_id).reply is not None:
            store.edit_review(review_id, now(), reply=None)
        if faults.hang_after_accept():
            await asyncio.sleep(faults.faults.hang_seconds)
        return {}

    # The control API: for tests and people, never for Crier's adapter.
    @app.get("/control/faults")
    async def get_faults() -> Faults:
        return faults.faults

    @app.put("/control/faults")
    async def set_faults(new: Faults) -> Faults:
        """Replace the faults (fields left out are reset to 'never')."""
        faults.set(new)
        return faults.faults

    @app.delete("/control/faults", status_code=204)
    async def clear_faults() -> None:
        faults.reset()

    @app.post("/control/accounts/{account_id}/revoke")
    async def revoke(account_id: str) -> dict[str, int]:
        """Revoke every token of an account, as a user removing the app would."""
        return {"revoked": store.revoke_account(account_id)}

    @app.post("/control/accounts/{account_id}/reviews", status_code=201)
    async def add_review(account_id: str, review: ReviewIn) -> dict[str, Any]:
        """A customer reviews the account's location (with the business's reply, if given)."""
        if store.account(account_id) is None:
            raise SandboxError(404, "not_found", "No such account.")
        return _review_json(
            store.add_review(
                account_id, review.reviewer_name, review.rating, review.comment, now(), review.reply
            )
        )

    @app.patch("/control/reviews/{review_id}")
    async def edit_review(review_id: str, edit: ReviewEdit) -> dict[str, Any]:
        """The customer edits the review, or the business replies elsewhere: the review
        becomes the most recently changed."""
        given = edit.model_dump(exclude_unset=True)
        changed = store.edit_review(review_id, now(), **given)
        if changed is None:
            raise SandboxError(404, "not_found", "No such review.")
        return _review_json(changed)

    @app.delete("/control/reviews/{review_id}", status_code=204)
    async def remove_review(review_id: str) -> None:
        """The review is taken down (by its author or by the network)."""
        if not store.remove_review(review_id):
            raise SandboxError(404, "not_found", "No such review.")

    @app.get("/control/received")
    async def received() -> dict[str, Any]:
        """Every post received, oldest first, with duplicates per idempotency key counted."""
        posts = store.posts()
        keys: dict[str, int] = {}
        for p in posts:
            if p.idempotency_key is not None:
                keys[p.idempotency_key] = keys.get(p.idempotency_key, 0) + 1
        return {
            "data": [_post_json(p) for p in posts],
            "count": len(posts),
            "duplicate_keys": sorted(k for k, n in keys.items() if n > 1),
        }

    @app.get("/control/calls")
    async def calls_received() -> dict[str, int]:
        """How many platform API calls arrived, by method and path (`GET /v1/reviews`)."""
        return dict(calls)

    @app.post("/control/reset", status_code=204)
    async def reset() -> None:
        store.reset()
        faults.reset()
        calls.clear()

    return app


def grown_metrics(post: SandboxPost, at: float) -> dict[str, int]:
    minutes = max(0.0, (at - post.created_at) / 60)
    seed = int(hashlib.sha256(post.id.encode()).hexdigest()[:4], 16) % 50
    impressions = int((20 + seed) * minutes**0.9)
    likes = impressions // 25
    return {
        "impressions": impressions,
        "reach": impressions * 7 // 10,
        "likes": likes,
        "reposts": likes // 6,
        "replies": likes // 9,
        "link_clicks": impressions // 40,
    }


def grown_followers(account_id: str, created_at: float, at: float) -> dict[str, int]:
    """Followers that start at a few hundred and grow by some each hour."""
    hours = max(0.0, (at - created_at) / 3600)
    seed = int(hashlib.sha256(account_id.encode()).hexdigest()[:4], 16)
    return {
        "followers": 100 + seed % 900 + int((2 + seed % 7) * hours),
        "following": 50 + seed % 150,
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(page_token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise SandboxError(400, "invalid_request", "The page token is not one the sandbox gave.")


def _review_json(review: SandboxReview) -> dict[str, Any]:
    reply = (
        {"comment": review.reply, "updated_at": review.reply_updated_at}
        if review.reply is not None
        else None
    )
    return {
        "id": review.id,
        "reviewer": {"display_name": review.reviewer_name},
        "rating": review.rating,
        "comment": review.comment,
        "created_at": review.created_at,
        "updated_at": review.updated_at,
        "reply": reply,
    }


def _post_json(post: SandboxPost) -> dict[str, Any]:
    body = asdict(post)
    body["permalink"] = f"https://sandbox.crier.invalid/p/{post.id}"
    return body
