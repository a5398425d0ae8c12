"""FastAPI dependencies: the authenticated principal and permission checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crier.auth import keys, service
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.kit.errors import NotAuthenticated
from crier.kit.http import DbSession, RequestClock
from crier.kit.idempotency import HEADER, KEY_PATTERN, Idempotency

# Declares the scheme in OpenAPI (the docs' Authorize button); the header itself is checked
# by `service.authenticate`, so that every failure is the same problem response.
_bearer = HTTPBearer(auto_error=False, description="An API key: `crier_sk_...`.")


BEARER_KEY: dict[str, Any] = {"security": [{_bearer.scheme_name: []}]}
"""`openapi_extra` of a route that authenticates by itself (`key_hash`): it
declares the API key scheme without a dependency to resolve on every request."""


def key_hash(request: Request) -> bytes:
    """The hash to look up the API key of the request's `Authorization` header by (401 if
    it holds none)."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise NotAuthenticated("Send an API key in the header `Authorization: Bearer <key>`.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not keys.looks_like_key(token):
        raise NotAuthenticated(
            "The Authorization header must be `Bearer crier_sk_...` with a Crier API key."
        )
    return keys.hash_key(token)


async def presented_key_hash(request: Request) -> bytes:
    """`key_hash` as a dependency of its own. A coroutine, so that FastAPI runs it on the
    event loop and not in a worker thread, as it would a plain function."""
    return key_hash(request)


async def current_principal(
    request: Request,
    session: DbSession,
    clock: RequestClock,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller, authenticated; the request's transaction now sees only its workspace."""
    return await service.authenticate(session, clock, key_hash(request))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def requires(permission: Permission) -> Any:
    """A dependency giving the principal, or `permission-denied` naming `permission`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return Depends(check)


def acting_with(permission: Permission) -> Any:
    """A dependency giving the principal acting in the request's transaction, or
    `permission-denied` naming `permission`."""

    # A default, not an annotation: annotations are read as strings, without this scope.
    async def build(
        session: DbSession, clock: RequestClock, principal: Principal = requires(permission)
    ) -> Acting:
        return Acting(principal, session, clock)

    return Depends(build)


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description=(
            "Makes this create safe to retry: the same key with the same body replays "
            "the first response (`Idempotent-Replayed: true`) instead of acting twice. "
            "At most 255 characters; kept for 24 hours; scoped to the workspace."
        ),
    ),
]


async def idempotency(
    request: Request,
    session: DbSession,
    clock: RequestClock,
    _: CurrentPrincipal,  # the key is claimed inside the caller's workspace
    key: IdempotencyKey = None,
) -> Idempotency:
    """The `Idempotency-Key` state of a create request."""
    return Idempotency(session, request.app.state.vault, clock, key)


IdempotentRequest = Annotated[Idempotency, Depends(idempotency)]
