"""Connected social accounts."""

from __future__ import annotations

import hashlib
import html
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from crier.auth.dependencies import IdempotentRequest, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.models import OAuthGrant
from crier.platforms.rules import rules_for
from crier.social_account import connections, repository, service
from crier.social_account.schemas import (
    AccountStatus,
    ConnectedAccounts,
    GrantChoice,
    GrantConnect,
    GrantId,
    OAuthConnect,
    OAuthStarted,
    Platform,
    PlatformInfo,
    SocialAccount,
    SocialAccountConnect,
    SocialAccountId,
)
from crier.social_account.schemas import (
    OAuthGrant as OAuthGrantOut,
)

router = APIRouter(prefix="/social-accounts", tags=["Social accounts"], route_class=JsonRoute)
oauth_router = APIRouter(prefix="/oauth", tags=["Social accounts"], route_class=JsonRoute)
platforms_router = APIRouter(prefix="/platforms", tags=["Platforms"], route_class=JsonRoute)

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
    clock: RequestClock,
    idem: IdempotentRequest,
) -> Response:
    """Connect an account on a platform with no consent screen. `sandbox` accounts need no
    credentials: the sandbox platform (`crier sandbox`, started by `crier run`) issues their
    tokens. `bluesky` accounts connect with their handle and an app password, which opens a
    session and is never stored (`platform-credentials-refused` if Bluesky refuses it; the
    account's own password is refused too). Networks with a consent screen connect through
    `POST /v1/social-accounts/connect`. Connecting an account already connected updates it
    in place, keeping its id. Counts against the plan's `social_accounts` limit;
    `platform-unavailable` if the platform cannot be reached."""

    async def connect() -> SocialAccount:
        state = request.app.state
        account = await service.connect(
            session, state.vault, state.platforms, clock, principal, data
        )
        return SocialAccount.model_validate(account)

    content = data.model_dump(mode="json")
    if data.app_password is not None:  # told apart by a hash, never kept as it is
        secret = data.app_password.get_secret_value().encode()
        content["app_password"] = hashlib.sha256(secret).hexdigest()
    return respond(await idem.create(fingerprint("POST", "/v1/social-accounts", content), connect))


@router.post(
    "/connect", response_model=OAuthStarted, responses=problem_responses(401, 403, 422, 503)
)
async def start_oauth_connect(
    data: OAuthConnect,
    principal: CanManage,
    session: DbSession,
    request: Request,
    clock: RequestClock,
) -> OAuthStarted:
    """Start connecting an account through the network's consent screen (OAuth 2.0 with
    PKCE). Send the user's browser to `authorize_url` within 10 minutes; the network sends
    it back to `/v1/oauth/callback/{platform}`, which keeps the account. For Mastodon, name
    the instance (`instance_url`); Crier registers its app there on first use. For a
    LinkedIn company page, name it (`organization`): the consent then asks for posting as
    the pages the member manages, and the page becomes the account. Counts against the
    plan's `social_accounts` limit."""
    state = request.app.state
    started = await connections.start(
        session,
        state.vault,
        state.platforms,
        clock,
        principal,
        platform=data.platform.value,
        base_url=state.base_url,
        allowed_origins=state.redirect_origins,
        redirect_to=data.redirect_to,
        instance_url=data.instance_url,
        organization=data.organization,
    )
    return OAuthStarted(authorize_url=started.authorize_url, expires_at=started.expires_at)


@router.get(
    "/{account_id:uuid}",
    response_model=SocialAccount,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_social_account(
    account_id: SocialAccountId, _: CanRead, session: DbSession
) -> SocialAccount:
    """One account, with its status and token expiry (never the token)."""
    return SocialAccount.model_validate(await service.get_account(session, account_id))


@router.delete(
    "/{account_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def disconnect_social_account(
    account_id: SocialAccountId,
    _: CanManage,
    session: DbSession,
    request: Request,
    clock: RequestClock,
    force: Annotated[
        bool, Query(description="Disconnect even though scheduled posts target it.")
    ] = False,
) -> Response:
    """Disconnect an account: its token is revoked at the network where it can be
    (Mastodon), its tokens are erased at once and it stops counting against the plan. The
    record stays, with status `disconnected`. While scheduled posts target it, refused with
    `account-in-use` naming them, unless `force=true`: their targets then fail at their time
    with `account_disconnected`."""
    state = request.app.state
    await service.disconnect(session, state.vault, state.platforms, clock, account_id, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _grant_out(grant: OAuthGrant, connected: dict[str, UUID]) -> OAuthGrantOut:
    return OAuthGrantOut(
        id=grant.id,
        platform=Platform(grant.platform),
        expires_at=grant.expires_at,
        choices=[
            GrantChoice(
                external_id=str(c["external_id"]),
                name=str(c["name"]),
                group=c.get("group"),
                detail=c.get("detail"),
                social_account_id=connected.get(str(c["external_id"])),
            )
            for c in grant.choices
        ],
    )


@router.get(
    "/grants/{grant_id}",
    response_model=OAuthGrantOut,
    responses=problem_responses(401, 403, 404, 410, 422),
)
async def get_grant(
    grant_id: GrantId, principal: CanManage, session: DbSession, clock: RequestClock
) -> OAuthGrantOut:
    """A consent that reaches many accounts (a Google user's business locations), as the
    callback left it: every account it reaches, and which the workspace has connected.
    Only the member who consented sees it, for an hour (then `410`
    `oauth-grant-expired`)."""
    grant = await connections.grant_of(session, clock, principal, grant_id)
    ids = [str(c["external_id"]) for c in grant.choices]
    connected = await repository.accounts_with_ids(session, grant.platform, ids)
    return _grant_out(grant, connected)


@router.post(
    "/grants/{grant_id}/connect",
    response_model=ConnectedAccounts,
    responses=problem_responses(401, 403, 404, 410, 422),
)
async def connect_from_grant(
    grant_id: GrantId,
    data: GrantConnect,
    principal: CanManage,
    session: DbSession,
    request: Request,
    clock: RequestClock,
) -> ConnectedAccounts:
    """Connect the accounts chosen among a consent's `choices` (by `external_id`), each
    with the consent's tokens: a new account for each, or the workspace's account for it
    updated in place (reconnected). All or none: an id the consent does not reach is
    `422` `oauth-grant-choice-unknown`, and the plan's `social_accounts` limit counts them
    all. A location's reviews start syncing at once."""
    state = request.app.state
    accounts = await connections.connect_chosen(
        session, state.vault, state.platforms, clock, principal, grant_id, data.external_ids
    )
    return ConnectedAccounts(data=[SocialAccount.model_validate(a) for a in accounts])


_CHOOSE_PAGE = """<!doctype html><meta charset="utf-8"><title>Choose what to connect</title>
<h1>Consent given</h1><p>{platform} gave Crier access to {count} account(s). Connect those you
want, within an hour, with <code>POST /v1/social-accounts/grants/{grant}/connect</code>
<code>{{"external_ids": [...]}}</code> (<code>GET /v1/social-accounts/grants/{grant}</code> lists
them):</p><ul>{items}</ul>"""


_CONNECTED_PAGE = """<!doctype html><meta charset="utf-8"><title>Connected</title>
<h1>Connected</h1><p>{platform} account <strong>{handle}</strong> is connected to Crier.
You can close this window.</p>"""


@oauth_router.get(
    "/callback/{platform}",
    response_class=Response,
    responses={
        **problem_responses(400, 403, 409, 410, 422, 502),
        200: {
            "description": "Connected: a small page saying so.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        303: {"description": "Connected: on to `redirect_to` with `account_id` and `platform`."},
    },
)
async def oauth_callback(
    platform: Platform,
    request: Request,
    clock: RequestClock,
    state: Annotated[
        str,
        Query(
            max_length=500,
            description="The state Crier gave the network (RFC 6749: "
            "sent back on success and on error alike).",
        ),
    ],
    code: Annotated[
        str | None, Query(max_length=2000, description="The authorization code.")
    ] = None,
    error: Annotated[
        str | None, Query(max_length=200, description="The network's OAuth error, if any.")
    ] = None,
    error_description: Annotated[
        str | None, Query(max_length=2000, description="What the network says of it.")
    ] = None,
) -> Response:
    """Where the network sends the browser back after consent (no API key: the `state`
    proves the request). Spends the state, trades the code for tokens, reads the profile
    and keeps the account (reconnecting one updates it in place). A replayed
    (`oauth-state-used`), expired (`oauth-state-expired`) or unknown (`oauth-state-invalid`)
    state, a refused consent (`oauth-consent-refused`) and a failed exchange
    (`oauth-exchange-failed`) create nothing."""
    app_state = request.app.state
    completed = await connections.complete(
        app_state.db,
        app_state.vault,
        app_state.platforms,
        clock,
        platform=platform.value,
        base_url=app_state.base_url,
        callback=connections.Callback(state, code, error, error_description),
    )
    grant = completed.grant
    if grant is not None:
        if completed.redirect_to:
            return RedirectResponse(
                connections.redirect_to_grant(completed.redirect_to, grant), status_code=303
            )
        items = "".join(
            f"<li>{html.escape(str(c['name']))} <code>{html.escape(str(c['external_id']))}</code>"
            f"{' — ' + html.escape(str(c['detail'])) if c.get('detail') else ''}</li>"
            for c in grant.choices
        )
        return HTMLResponse(
            _CHOOSE_PAGE.format(
                platform=html.escape(_platform_name(platform)),
                count=len(grant.choices),
                grant=grant.id,
                items=items,
            ),
            status_code=200,
        )
    account = completed.account
    assert account is not None
    if completed.redirect_to:
        return RedirectResponse(
            connections.redirect_target(completed.redirect_to, account), status_code=303
        )
    return HTMLResponse(
        _CONNECTED_PAGE.format(
            platform=html.escape(_platform_name(platform)), handle=html.escape(account.handle)
        ),
        status_code=200,
    )


@platforms_router.get("", response_model=list[PlatformInfo], responses=problem_responses(401, 403))
async def list_platforms(_: CanRead, request: Request) -> list[PlatformInfo]:
    """Every platform Crier knows: whether this server is configured for it, how its
    accounts connect, and what a post for it may hold."""
    platforms = request.app.state.platforms
    connects = {p: platforms.connects(p.value) for p in Platform}
    return [
        PlatformInfo(
            name=p,
            configured=connects[p] is not None,
            connects=connects[p],
            reviews=platforms.has_reviews(p.value),
            rules=rules_for(p.value).describe(),
        )
        for p in Platform
    ]


def _platform_name(platform: Platform) -> str:
    return (
        "Google Business Profile"
        if platform == Platform.GOOGLE_BUSINESS
        else platform.value.title()
    )
