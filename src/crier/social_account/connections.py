"""Connecting accounts through a network's consent screen: OAuth 2.0 authorization code
with PKCE (S256) and a `state` that is single-use, lives 10 minutes and is bound to the
workspace and member who started it.

`start` keeps the state (its secret hashed, the PKCE verifier sealed) and answers where to
send the browser; the network sends it back to `GET /v1/oauth/callback/{platform}`, where
`complete` spends the state first (so a replay finds it used), then trades the code for
tokens and keeps the account. Nothing is created unless every step succeeded.

The state the network carries is `<workspace id>.<secret>`: the callback has no API key, and
the workspace part says which workspace's rows to look in (under Row Level Security, as
ever); the secret, of which only a hash is stored, is what proves the state.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.db import Database
from crier.kit.errors import Conflict, CrierError, NotFound, ValidationFailed, field_error
from crier.kit.ids import new_id
from crier.kit.outbound import DestinationRefused
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import Member, OAuthGrant, OAuthState, PlatformApp, SocialAccount
from crier.platforms.base import (
    AppCredentials,
    ConnectsWithOAuth,
    Consent,
    HasReviews,
    PicksAccounts,
    Tokens,
)
from crier.platforms.errors import OrganizationRefused, PlatformError
from crier.platforms.registry import Platforms, PlatformUnavailable
from crier.review import repository as review_repository
from crier.social_account import repository
from crier.workspace import plans
from crier.workspace import repository as workspace_repository

STATE_TTL = timedelta(minutes=10)
GRANT_TTL = timedelta(hours=1)
"""How long accounts can be chosen from a consent that reaches many."""
KEEP_SPENT_STATES = timedelta(days=1)
"""Spent or expired states are kept this long, so that a replay is told it was used."""


class PlatformNotConnectable(CrierError):
    """This server cannot connect accounts of this platform through its consent screen: it
    has no adapter for it, the adapter connects another way, or the app's credentials are
    not configured (see docs/platforms.md)."""

    slug = "platform-not-connectable"
    title = "Platform cannot be connected this way"
    status = 422


class OAuthStateInvalid(CrierError):
    """The callback's `state` is not one this server issued for this platform: malformed,
    unknown, from another workspace, or started by a member who has since left. Start the
    connection again."""

    slug = "oauth-state-invalid"
    title = "Unknown OAuth state"
    status = 400


class OAuthStateUsed(Conflict):
    """This `state` was already used: each consent can complete once. Start again."""

    slug = "oauth-state-used"
    title = "OAuth state already used"


class OAuthStateExpired(CrierError):
    """The consent took longer than the 10 minutes a `state` lives. Start again."""

    slug = "oauth-state-expired"
    title = "OAuth state expired"
    status = 410


class ConsentRefused(CrierError):
    """The network says the user did not grant access (`error=access_denied`, or another
    OAuth error); `oauth_error` is what it said. Nothing was connected."""

    slug = "oauth-consent-refused"
    title = "Consent refused"
    status = 403


class ExchangeFailed(CrierError):
    """The network refused to trade the authorization code for tokens, or to show the
    account's profile; `platform_error` says how. Nothing was connected; start again."""

    slug = "oauth-exchange-failed"
    title = "OAuth exchange failed"
    status = 502


class OrganizationNotPostable(CrierError):
    """The member who consented may not post for the organization named when the
    connection started (no approved administrator, content admin or sponsored content
    poster role on it, or no such page); `allowed` lists the pages they may post for.
    Nothing was connected."""

    slug = "oauth-organization-refused"
    title = "Organization not manageable"
    status = 403


@dataclass(frozen=True)
class Started:
    authorize_url: str
    expires_at: datetime


class GrantExpired(CrierError):
    """The hour in which accounts could be chosen from this consent has passed, and its
    tokens are erased. Connect again (`POST /v1/social-accounts/connect`)."""

    slug = "oauth-grant-expired"
    title = "Consent expired"
    status = 410


class NotAChoice(CrierError):
    """An account named is not one the consent reaches (see the grant's `choices`);
    `unknown` lists them. Nothing was connected."""

    slug = "oauth-grant-choice-unknown"
    title = "Account not offered by the consent"
    status = 422


@dataclass(frozen=True)
class Completed:
    account: SocialAccount | None
    """The account connected; None when it is to be chosen from `grant`."""
    redirect_to: str | None
    grant: OAuthGrant | None = None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def redirect_uri(base_url: str, platform: str) -> str:
    """Where the network sends the browser back: the URI to register with its app."""
    return f"{base_url}/v1/oauth/callback/{platform}"


def _oauth_adapter(platforms: Platforms, platform: str) -> ConnectsWithOAuth:
    adapter = platforms.adapter(platform) if platform in platforms else None
    if not isinstance(adapter, ConnectsWithOAuth):
        raise PlatformNotConnectable(
            f"This server does not connect {platform} accounts through a consent screen.",
            platform=platform,
        )
    if not adapter.configured():
        raise PlatformNotConnectable(
            f"This server has no app credentials for {platform}; see docs/platforms.md.",
            platform=platform,
        )
    return adapter


def check_redirect(redirect_to: str | None, allowed: frozenset[str]) -> None:
    """Refuse a `redirect_to` outside the origins the server allows."""
    if redirect_to is None:
        return
    parts = urlsplit(redirect_to)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("http", "https") or not parts.netloc or origin not in allowed:
        raise ValidationFailed(
            "redirect_to must be on an origin this server allows (CRIER_OAUTH_REDIRECT_ORIGINS).",
            [
                field_error(
                    ["body", "redirect_to"],
                    f"{origin} is not an allowed origin",
                    "origin_not_allowed",
                )
            ],
        )


async def start(
    session: AsyncSession,
    vault: Vault,
    platforms: Platforms,
    clock: Clock,
    principal: Principal,
    *,
    platform: str,
    base_url: str,
    allowed_origins: frozenset[str],
    redirect_to: str | None,
    instance_url: str | None,
    organization: str | None = None,
) -> Started:
    """Begin a connection: keep a state for it and answer where to send the browser."""
    adapter = _oauth_adapter(platforms, platform)
    check_redirect(redirect_to, allowed_origins)
    workspace = await workspace_repository.get(session, principal.workspace_id)
    assert workspace is not None
    plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    if instance_url is not None and not adapter.registers_apps:
        raise ValidationFailed(
            f"{platform} has one server; instance_url is only for Mastodon.",
            [field_error(["body", "instance_url"], "not used by this platform", "extra_forbidden")],
        )
    if organization is not None and not adapter.organizations:
        raise ValidationFailed(
            f"{platform} accounts are people's own; organization is only for LinkedIn.",
            [field_error(["body", "organization"], "not used by this platform", "extra_forbidden")],
        )
    try:
        server = await adapter.server(instance_url)
    except DestinationRefused as refused:
        raise ValidationFailed(
            f"The instance may not be called: {refused}.",
            [field_error(["body", "instance_url"], str(refused), "destination_refused")],
        ) from None
    except PlatformError as error:
        raise ValidationFailed(
            f"The instance is refused: {error.message}.",
            [field_error(["body", "instance_url"], error.message, "invalid_instance")],
        ) from None
    callback = redirect_uri(base_url, platform)
    app = await _app(session, vault, adapter, platform, server, callback)
    secret = secrets.token_urlsafe(32)
    state = f"{principal.workspace_id}.{secret}"
    verifier = secrets.token_urlsafe(64)
    now = clock.now()
    await repository.purge_states(session, now - KEEP_SPENT_STATES)
    await repository.purge_grants(session, now, now - KEEP_SPENT_STATES)
    session.add(
        OAuthState(
            workspace_id=principal.workspace_id,
            member_id=principal.member_id,
            platform=platform,
            secret_hash=_hash(secret),
            code_verifier=vault.seal(verifier),
            redirect_to=redirect_to,
            server_url=server,
            organization=organization,
            app_id=app.id if app else None,
            expires_at=now + STATE_TTL,
        )
    )
    await session.flush()
    consent = Consent(callback, state, verifier, server, _credentials(vault, app), organization)
    return Started(adapter.authorize_url(consent), now + STATE_TTL)


async def _app(
    session: AsyncSession,
    vault: Vault,
    adapter: ConnectsWithOAuth,
    platform: str,
    server: str | None,
    callback: str,
) -> PlatformApp | None:
    """The app registered on `server` for this callback, registered now if need be."""
    if not adapter.registers_apps or server is None:
        return None
    kept = await repository.find_app(session, platform, server, callback, adapter.scopes)
    if kept is not None:
        return kept
    try:
        credentials = await adapter.register_app(server, callback)
    except PlatformError as error:
        raise PlatformUnavailable.from_error(platform, error) from None
    return await repository.add_app(
        session,
        PlatformApp(
            id=new_id(),
            platform=platform,
            server_url=server,
            redirect_uri=callback,
            scopes=adapter.scopes,
            client_id=credentials.client_id,
            client_secret=vault.seal(credentials.client_secret),
        ),
    )


def _credentials(vault: Vault, app: PlatformApp | None) -> AppCredentials | None:
    if app is None:
        return None
    return AppCredentials(app.client_id, vault.open(app.client_secret))


def _workspace_of(state: str) -> tuple[UUID, str]:
    workspace, _, secret = state.partition(".")
    try:
        return UUID(workspace), secret
    except ValueError:
        raise OAuthStateInvalid("The state is not one this server issued.") from None


@dataclass(frozen=True)
class Callback:
    """What the network's redirect carries."""

    state: str | None
    code: str | None
    error: str | None
    error_description: str | None


async def complete(
    db: Database,
    vault: Vault,
    platforms: Platforms,
    clock: Clock,
    *,
    platform: str,
    base_url: str,
    callback: Callback,
) -> Completed:
    """Finish a connection the network sent back: spend the state, then (if consent was
    given) trade the code and keep the account."""
    if not callback.state:
        raise OAuthStateInvalid("The callback carries no state.")
    workspace_id, secret = _workspace_of(callback.state)
    async with db.workspace_transaction(workspace_id) as session:
        kept = await repository.state_by_secret(session, _hash(secret))
        if kept is None or kept.platform != platform:
            raise OAuthStateInvalid("The state is not one this server issued for this platform.")
        if kept.used_at is not None:
            raise OAuthStateUsed("This consent was already completed or refused.")
        if kept.expires_at <= clock.now():
            raise OAuthStateExpired("The consent took longer than 10 minutes.")
        member = await session.get(Member, (workspace_id, kept.member_id))
        if member is None or member.removed_at is not None:
            raise OAuthStateInvalid("The member who started this connection has left.")
        kept.used_at = clock.now()
        app = await repository.get_app(session, kept.app_id) if kept.app_id else None
        consent = Consent(
            redirect_uri(base_url, platform),
            callback.state,
            vault.open(kept.code_verifier),
            kept.server_url,
            _credentials(vault, app),
            kept.organization,
        )
        redirect_to, app_id, member_id = kept.redirect_to, kept.app_id, kept.member_id
    if callback.error or not callback.code:
        raise ConsentRefused(
            f"{platform} says: {callback.error_description or callback.error or 'no code'}.",
            oauth_error=callback.error or "missing_code",
        )
    adapter = _oauth_adapter(platforms, platform)
    try:
        tokens = await adapter.exchange(consent, callback.code)
    except PlatformError as error:
        raise ExchangeFailed(
            f"{platform} answered: {error.message}", platform_error=error.code.value
        ) from None
    except OrganizationRefused as refused:
        raise OrganizationNotPostable(
            f"The {platform} member who consented may not post for {refused.organization}.",
            organization=refused.organization,
            allowed=refused.allowed,
        ) from None
    if isinstance(adapter, PicksAccounts):
        try:
            choices = await adapter.choices(tokens.access_token)
        except PlatformError as error:
            raise ExchangeFailed(
                f"{platform} answered: {error.message}", platform_error=error.code.value
            ) from None
        async with db.workspace_transaction(workspace_id) as session:
            grant = OAuthGrant(
                id=new_id(),
                workspace_id=workspace_id,
                member_id=member_id,
                platform=platform,
                access_token=vault.seal(tokens.access_token),
                refresh_token=vault.seal(tokens.refresh_token) if tokens.refresh_token else None,
                token_expires_at=tokens.expires_at,
                reconnect_by=tokens.reconnect_by,
                choices=[asdict(c) for c in choices],
                expires_at=clock.now() + GRANT_TTL,
            )
            session.add(grant)
        return Completed(None, redirect_to, grant)
    async with db.workspace_transaction(workspace_id) as session:
        account = await keep_account(
            session,
            vault,
            clock,
            workspace_id,
            platform,
            tokens,
            app_id=app_id,
            reviews=isinstance(adapter, HasReviews),
        )
    return Completed(account, redirect_to)


async def grant_of(
    session: AsyncSession, clock: Clock, principal: Principal, grant_id: UUID
) -> OAuthGrant:
    """The consent to choose accounts from: the principal's own (another member's is not
    there), 410 once its hour has passed."""
    grant = await session.get(OAuthGrant, (principal.workspace_id, grant_id))
    if grant is None or grant.member_id != principal.member_id:
        raise NotFound("No consent with this id of yours in this workspace.")
    if grant.expires_at <= clock.now() or grant.access_token is None:
        raise GrantExpired("Accounts could be chosen from this consent for an hour; connect again.")
    return grant


async def connect_chosen(
    session: AsyncSession,
    vault: Vault,
    platforms: Platforms,
    clock: Clock,
    principal: Principal,
    grant_id: UUID,
    external_ids: list[str],
) -> list[SocialAccount]:
    """Connect the chosen accounts of a consent, each with its tokens, all or none (the
    plan's limit counts them all)."""
    grant = await grant_of(session, clock, principal, grant_id)
    offered = {str(c["external_id"]): c for c in grant.choices}
    unknown = [e for e in external_ids if e not in offered]
    if unknown:
        raise NotAChoice(
            f"The consent does not reach {', '.join(unknown)}.",
            unknown=unknown,
        )
    assert grant.access_token is not None
    access = vault.open(grant.access_token)
    refresh = vault.open(grant.refresh_token) if grant.refresh_token else None
    reviews = platforms.has_reviews(grant.platform)
    connected = []
    for external_id in external_ids:
        chosen = offered[external_id]
        tokens = Tokens(
            access_token=access,
            refresh_token=refresh,
            expires_at=grant.token_expires_at,
            external_id=external_id,
            handle=str(chosen["name"]),
            display_name=str(chosen["name"]),
            reconnect_by=grant.reconnect_by,
        )
        connected.append(
            await keep_account(
                session,
                vault,
                clock,
                principal.workspace_id,
                grant.platform,
                tokens,
                reviews=reviews,
            )
        )
    return connected


async def keep_account(
    session: AsyncSession,
    vault: Vault,
    clock: Clock,
    workspace_id: UUID,
    platform: str,
    tokens: Tokens,
    *,
    display_name: str | None = None,
    app_id: UUID | None = None,
    reviews: bool = False,
) -> SocialAccount:
    """Store a connected account: the one this workspace already has for the same identity
    on the network is updated in place (its id, and so every post's target, is kept); a
    refresh token the network did not send again is kept. A new or reconnected account
    counts against the plan. With `reviews` (the account is a location with reviews), its
    reviews are synced at once."""
    workspace = await workspace_repository.lock(session, workspace_id)
    account = await repository.find_identity(
        session, platform, tokens.external_id, tokens.server_url
    )
    if account is None or account.status == "disconnected":
        plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    if account is None:
        account = SocialAccount(workspace_id=workspace_id, platform=platform)
        session.add(account)
    fields: dict[str, Any] = {
        "external_id": tokens.external_id,
        "handle": tokens.handle,
        "display_name": display_name or tokens.display_name or tokens.handle,
        "status": "active",
        "access_token": vault.seal(tokens.access_token),
        "token_expires_at": tokens.expires_at,
        "server_url": tokens.server_url,
        "content_limits": tokens.content_limits,
        "reconnect_by": tokens.reconnect_by,
        "disconnected_at": None,
        "refreshing_until": None,
        "last_refreshed_at": clock.now(),
    }
    if tokens.refresh_token:
        fields["refresh_token"] = vault.seal(tokens.refresh_token)
    if app_id is not None:
        fields["app_id"] = app_id
    for name, value in fields.items():
        setattr(account, name, value)
    await session.flush()
    await session.refresh(account)
    if reviews:
        await review_repository.track(session, workspace_id, [account.id], clock.now())
    return account


def redirect_target(redirect_to: str, account: SocialAccount) -> str:
    """`redirect_to` with the connected account's id and platform added to its query."""
    return _with_query(redirect_to, {"account_id": str(account.id), "platform": account.platform})


def redirect_to_grant(redirect_to: str, grant: OAuthGrant) -> str:
    """`redirect_to` with the consent to choose accounts from and its platform added."""
    return _with_query(redirect_to, {"grant_id": str(grant.id), "platform": grant.platform})


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(query)
