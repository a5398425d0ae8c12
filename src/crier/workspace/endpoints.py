"""The workspace of the calling API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from crier.auth.dependencies import requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses
from crier.workspace import service
from crier.workspace.schemas import Workspace, WorkspaceUpdate

router = APIRouter(prefix="/workspace", tags=["Workspace"], route_class=JsonRoute)


@router.get("", response_model=Workspace, responses=problem_responses(401, 403))
async def get_workspace(
    principal: Annotated[Principal, requires(Permission.WORKSPACE_READ)],
    session: DbSession,
    clock: RequestClock,
) -> Workspace:
    """The workspace the API key belongs to, with its plan's limits and their usage."""
    return await service.get_workspace(session, principal.workspace_id, clock.now())


@router.patch("", response_model=Workspace, responses=problem_responses(401, 403, 409, 422))
async def update_workspace(
    data: WorkspaceUpdate,
    principal: Annotated[Principal, requires(Permission.WORKSPACE_UPDATE)],
    session: DbSession,
    clock: RequestClock,
) -> Workspace:
    """Rename the workspace, change its slug (unique, else `slug-taken`) or its timezone
    (an IANA zone, else `validation-error`)."""
    return await service.update_workspace(session, principal.workspace_id, data, clock.now())
