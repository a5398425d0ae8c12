"""FastAPI dependencies: the authenticated principal and permission checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crier.auth import service
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.http import DbSession, RequestClock
from crier.kit.idempotency import HEADER, KEY_PATTERN, Idempotency

# Declares the scheme in OpenAPI (the docs' Authorize button); the header itself is checked
# by `service.authenticate`, so that every failure is the same problem response.
_bearer = HTTPBearer(auto_error=False, description="An API key: `crier_sk_...`.")


BEARER_KEY: dict[str, Any] = {"security": [{_bearer.scheme_name: []}]}
"""`openapi_extra` of a route that authenticates by itself (`auth.service.key_hash`): it
declares the API key scheme without a dependency to resolve on every request."""


async def current_principal(
    request: Request,
    session: DbSession,
    clock: RequestClock,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller, authenticated; the request's transaction now sees only its workspace."""
    return await service.authenticate(session, clock, request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def requires(permission: Permission) -> Any:
    """A dependency giving the principal, or `permission-denied` naming `permission`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        principal.require(permission)
        return principal

    return Depends(check)


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
