"""Connected social accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from crier.auth.dependencies import IdempotentRequest, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.social_account import service
from crier.social_account.schemas import (
    AccountStatus,
    Platform,
    SocialAccount,
    SocialAccountConnect,
    SocialAccountId,
)

router = APIRouter(prefix="/social-accounts", tags=["Social accounts"], route_class=JsonRoute)

CanRead = Annotated[Principal, requires(Permission.SOCIAL_ACCOUNTS_READ)]
CanManage = Annotated[Principal, requires(Permission.SOCIAL_ACCOUNTS_MANAGE)]


@router.get("", response_model=Page[SocialAccount], responses=problem_responses(401, 403, 422))
async def list_social_accounts(
    _: CanRead,
    session: DbSession,
    page: Annotated[PageRequest, Depends(page_request)],
    platform: Annotated[Platform | None, Query(description="Only this platform.")] = None,
    status_: Annotated[
        AccountStatus | None, Query(alias="status", description="Only accounts in this status.")
    ] = None,
) -> Page[SocialAccount]:
    """Connected accounts (disconnected ones too, unless filtered), oldest first."""
    rows = await service.list_accounts(session, platform, status_, page.after, page.limit + 1)
    items, cursor = make_page(
        [SocialAccount.model_validate(r) for r in rows], page.limit, lambda a: a.id
    )
    return Page[SocialAccount](data=items, next_cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SocialAccount,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def connect_social_account(
    data: SocialAccountConnect,
    principal: CanManage,
    session: DbSession,
    request: Request,
    idem: IdempotentRequest,
) -> Response:
    """Connect an account. `sandbox` accounts need no credentials: the sandbox platform
    (`crier sandbox`, started by `crier run`) issues their tokens. Counts against the plan's
    `social_accounts` limit; `platform-unavailable` if the platform cannot be reached."""

    async def connect() -> SocialAccount:
        account = await service.connect(
            session, request.app.state.vault, request.app.state.platforms, principal, data
        )
        return SocialAccount.model_validate(account)

    return respond(
        await idem.create(
            fingerprint("POST", "/v1/social-accounts", data.model_dump(mode="json")), connect
        )
    )


@router.get(
    "/{account_id}", response_model=SocialAccount, responses=problem_responses(401, 403, 404, 422)
)
async def get_social_account(
    account_id: SocialAccountId, _: CanRead, session: DbSession
) -> SocialAccount:
    """One account, with its status and token expiry (never the token)."""
    return SocialAccount.model_validate(await service.get_account(session, account_id))


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def disconnect_social_account(
    account_id: SocialAccountId, _: CanManage, session: DbSession, clock: RequestClock
) -> Response:
    """Disconnect an account: its tokens are erased at once and it stops counting against
    the plan. The record stays, with status `disconnected`."""
    await service.disconnect(session, clock, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
