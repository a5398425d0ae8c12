"""FastAPI dependencies: the authenticated principal and permission checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crier.auth import service
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.http import DbSession, RequestClock

# Declares the scheme in OpenAPI (the docs' Authorize button); the header itself is checked
# by `service.authenticate`, so that every failure is the same problem response.
_bearer = HTTPBearer(auto_error=False, description="An API key: `crier_sk_...`.")


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
