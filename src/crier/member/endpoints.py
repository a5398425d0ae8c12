"""Members of the workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from crier.auth.dependencies import CurrentPrincipal, IdempotentRequest, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.member import service
from crier.member.schemas import Member, MemberCreate, MemberId, MemberUpdate

router = APIRouter(prefix="/members", tags=["Members"], route_class=JsonRoute)

CanRead = Annotated[Principal, requires(Permission.MEMBERS_READ)]
CanManage = Annotated[Principal, requires(Permission.MEMBERS_MANAGE)]


@router.get("", response_model=Page[Member], responses=problem_responses(401, 403, 422))
async def list_members(
    _: CanRead, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[Member]:
    """Current members, in the order they joined."""
    rows = await service.list_members(session, page.after, page.limit + 1)
    items, cursor = make_page(rows, page.limit, lambda m: m.id)
    return Page[Member](data=items, next_cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Member,
    responses=problem_responses(401, 403, 409, 422),
)
async def add_member(
    data: MemberCreate, principal: CanManage, session: DbSession, idem: IdempotentRequest
) -> Response:
    """Add a person to the workspace by email, with a role.

    Making someone an owner needs `members:manage_owners`; granting a permission needs
    holding it. Counts against the plan's `members` limit. Adding a former member brings
    them back with the new role.
    """
    return respond(
        await idem.create(
            fingerprint("POST", "/v1/members", data.model_dump(mode="json")),
            lambda: service.add_member(session, principal, data),
        )
    )


@router.get("/{member_id}", response_model=Member, responses=problem_responses(401, 403, 404, 422))
async def get_member(member_id: MemberId, _: CanRead, session: DbSession) -> Member:
    """One member, with the permissions their role and overrides give them."""
    return await service.get_member(session, member_id)


@router.patch(
    "/{member_id}", response_model=Member, responses=problem_responses(401, 403, 404, 409, 422)
)
async def update_member(
    member_id: MemberId, data: MemberUpdate, principal: CurrentPrincipal, session: DbSession
) -> Member:
    """Change a member's name, role or permission overrides.

    Needs `members:manage`, and `members:manage_owners` when an owner is concerned. The
    last owner cannot be given another role (`last-owner`).
    """
    return await service.update_member(session, principal, member_id, data)


@router.delete(
    "/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def remove_member(
    member_id: MemberId, principal: CurrentPrincipal, session: DbSession, clock: RequestClock
) -> Response:
    """Remove a member (anyone may leave; removing others needs `members:manage`).

    Their API keys are revoked at once. The last owner cannot be removed (`last-owner`).
    """
    await service.remove_member(session, clock, principal, member_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
