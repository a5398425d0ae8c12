"""API keys, the caller's identity and the role catalogue."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status

from crier.auth import service
from crier.auth.dependencies import CurrentPrincipal, IdempotentRequest, requires
from crier.auth.permissions import DESCRIPTIONS, ROLE_PERMISSIONS, Permission
from crier.auth.principal import Principal
from crier.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyId,
    Me,
    PermissionInfo,
    RoleCatalogue,
    RoleGrants,
)
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request

router = APIRouter(tags=["API keys"], route_class=JsonRoute)

CanCreateKeys = Annotated[Principal, requires(Permission.API_KEYS_CREATE)]


@router.get("/me", response_model=Me, responses=problem_responses(401), tags=["Identity"])
async def get_me(principal: CurrentPrincipal) -> Me:
    """Who the API key acts as, in which workspace, and what it may do."""
    return Me(
        workspace_id=principal.workspace_id,
        member_id=principal.member_id,
        api_key_id=principal.api_key_id,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


@router.get(
    "/roles", response_model=RoleCatalogue, responses=problem_responses(401), tags=["Identity"]
)
async def get_roles(_: CurrentPrincipal) -> RoleCatalogue:
    """Every role with the permissions it grants, and what each permission allows."""
    return RoleCatalogue(
        roles=[RoleGrants(role=r, permissions=sorted(p)) for r, p in ROLE_PERMISSIONS.items()],
        permissions=[PermissionInfo(permission=p, description=d) for p, d in DESCRIPTIONS.items()],
    )


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_api_key(
    data: ApiKeyCreate,
    principal: CanCreateKeys,
    session: DbSession,
    clock: RequestClock,
    idem: IdempotentRequest,
) -> Response:
    """Create an API key for the calling member. The secret is in this response only.

    Scopes may narrow the key to some of the member's permissions, never widen it. A key
    created with a scoped key is at most as powerful as that key.
    """

    async def create() -> ApiKeyCreated:
        key, secret = await service.create_key(session, clock, principal, data)
        return ApiKeyCreated.model_validate(
            {**ApiKey.model_validate(key).model_dump(), "key": secret}
        )

    return respond(
        await idem.create(fingerprint("POST", "/v1/api-keys", data.model_dump(mode="json")), create)
    )


@router.get("/api-keys", response_model=Page[ApiKey], responses=problem_responses(401, 403, 422))
async def list_api_keys(
    principal: CanCreateKeys,
    session: DbSession,
    page: Annotated[PageRequest, Depends(page_request)],
    member_id: Annotated[
        UUID | None,
        Query(description="Only this member's keys (needs `api_keys:manage` for others)."),
    ] = None,
) -> Page[ApiKey]:
    """The caller's API keys, revoked ones included; with `api_keys:manage`, everyone's."""
    rows = await service.list_keys(session, principal, member_id, page.after, page.limit + 1)
    items, cursor = make_page([ApiKey.model_validate(r) for r in rows], page.limit, _id)
    return Page[ApiKey](data=items, next_cursor=cursor)


@router.get(
    "/api-keys/{key_id}", response_model=ApiKey, responses=problem_responses(401, 403, 404, 422)
)
async def get_api_key(key_id: ApiKeyId, principal: CanCreateKeys, session: DbSession) -> ApiKey:
    """One API key (never its secret)."""
    return ApiKey.model_validate(await service.get_key(session, principal, key_id))


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_key(
    key_id: ApiKeyId, principal: CanCreateKeys, session: DbSession, clock: RequestClock
) -> Response:
    """Revoke an API key at once. Its own member, or anyone with `api_keys:manage`, may."""
    await service.revoke_key(session, clock, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _id(key: ApiKey) -> UUID:
    return key.id
