"""Connecting and disconnecting social accounts."""

from __future__ import annotations

import logging
import secrets
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.errors import Conflict, CrierError, NotFound, ValidationFailed, field_error
from crier.kit.outbound import DestinationRefused
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import SocialAccount
from crier.platforms.base import (
    Account,
    AppCredentials,
    ConnectsDirectly,
    ConnectsWithOAuth,
    ConnectsWithPassword,
    HasReviews,
    Tokens,
)
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms, PlatformUnavailable
from crier.social_account import repository
from crier.social_account.connections import keep_account
from crier.social_account.schemas import AccountStatus, Platform, SocialAccountConnect
from crier.workspace import plans
from crier.workspace import repository as workspace_repository

log = logging.getLogger(__name__)


async def list_accounts(
    session: AsyncSession,
    platform: Platform | None,
    status: AccountStatus | None,
    after: UUID | None,
    limit: int,
) -> list[SocialAccount]:
    return await repository.list_accounts(
        session,
        platform=platform.value if platform else None,
        status=status.value if status else None,
        after=after,
        limit=limit,
    )


async def get_account(session: AsyncSession, account_id: UUID) -> SocialAccount:
    account = await repository.get(session, account_id)
    if account is None:
        raise NotFound("No social account with this id in this workspace.")
    return account


async def connect(
    session: AsyncSession,
    vault: Vault,
    platforms: Platforms,
    clock: Clock,
    principal: Principal,
    data: SocialAccountConnect,
) -> SocialAccount:
    """Connect an account on a platform that needs no consent screen: the sandbox, or
    Bluesky with an app password (which opens a session and is then forgotten). Counts
    against the plan.

    The platform is asked for tokens before the plan's limit is locked and checked, so no
    lock is held while waiting on the network.
    """
    workspace = await workspace_repository.get(session, principal.workspace_id)
    assert workspace is not None
    plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    handle = data.handle or f"{data.platform.value}-{secrets.token_hex(4)}"
    adapter = platforms.adapter(data.platform.value) if data.platform in platforms else None
    try:
        if isinstance(adapter, ConnectsDirectly):
            tokens = await adapter.connect(handle)
        elif isinstance(adapter, ConnectsWithPassword) and data.app_password is not None:
            tokens = await _sign_in(adapter, handle, data)
        else:
            raise PlatformError(
                ErrorCode.PLATFORM_NOT_CONFIGURED,
                "this server does not connect this platform's accounts this way",
            )
    except PlatformError as error:
        raise PlatformUnavailable.from_error(data.platform.value, error) from None
    return await keep_account(
        session,
        vault,
        clock,
        principal.workspace_id,
        data.platform.value,
        tokens,
        display_name=data.display_name,
        reviews=isinstance(adapter, HasReviews),
    )


class CredentialsRefused(CrierError):
    """The network refused the handle and app password (wrong, revoked, or the account's
    own password instead of an app password); `platform_error` says how. Nothing was
    connected."""

    slug = "platform-credentials-refused"
    title = "Credentials refused"
    status = 422


async def _sign_in(
    adapter: ConnectsWithPassword, identifier: str, data: SocialAccountConnect
) -> Tokens:
    assert data.app_password is not None
    try:
        server = await adapter.server(data.service_url)
    except DestinationRefused as refused:
        raise ValidationFailed(
            f"The server may not be called: {refused}.",
            [field_error(["body", "service_url"], str(refused), "destination_refused")],
        ) from None
    except PlatformError as error:
        raise ValidationFailed(
            f"The server is refused: {error.message}.",
            [field_error(["body", "service_url"], error.message, "invalid_service")],
        ) from None
    try:
        return await adapter.sign_in(identifier, data.app_password.get_secret_value(), server)
    except PlatformError as error:
        if error.code in (ErrorCode.AUTH_EXPIRED, ErrorCode.AUTH_REVOKED):
            raise CredentialsRefused(
                f"{data.platform.value} refused the sign-in: {error.message}",
                platform=data.platform.value,
                platform_error=error.code.value,
            ) from None
        raise


class AccountInUse(Conflict):
    """Scheduled posts still target this account; `posts` names them (up to 100).
    Disconnect with `?force=true` to do it anyway: those targets then fail at their time
    with `account_disconnected`."""

    slug = "account-in-use"
    title = "Account in use"


async def disconnect(
    session: AsyncSession,
    vault: Vault,
    platforms: Platforms,
    clock: Clock,
    account_id: UUID,
    *,
    force: bool = False,
) -> None:
    """Disconnect an account: its token is revoked at the network where it can be, and its
    tokens are erased at once; the record stays for history. Refused while scheduled posts
    target it, unless `force`. Disconnecting a disconnected account changes nothing.
    """
    account = await get_account(session, account_id)
    if account.status == AccountStatus.DISCONNECTED.value:
        return
    if not force:
        posts = await repository.scheduled_posts_targeting(session, account_id)
        if posts:
            raise AccountInUse(
                f"{len(posts)} scheduled post(s) target this account; "
                "pass force=true to disconnect it anyway.",
                posts=[str(p) for p in posts],
            )
    await _revoke(session, vault, platforms, account)
    account.status = AccountStatus.DISCONNECTED.value
    account.access_token = None
    account.refresh_token = None
    account.disconnected_at = clock.now()
    await session.flush()


async def _revoke(
    session: AsyncSession, vault: Vault, platforms: Platforms, account: SocialAccount
) -> None:
    """Revoke the account's token at the network, where it has a way to (best effort: the
    token is erased here whatever the network says)."""
    adapter = platforms.adapter(account.platform) if account.platform in platforms else None
    try:
        if isinstance(adapter, ConnectsWithPassword):
            if account.refresh_token is not None and account.server_url is not None:
                await adapter.sign_out(vault.open(account.refresh_token), account.server_url)
            return
        if not isinstance(adapter, ConnectsWithOAuth) or account.access_token is None:
            return
        app = await repository.get_app(session, account.app_id) if account.app_id else None
        credentials = AppCredentials(app.client_id, vault.open(app.client_secret)) if app else None
        opened = Account(vault.open(account.access_token), account.external_id, account.server_url)
        await adapter.revoke(opened, credentials)
    except PlatformError as error:
        log.warning(
            "revoking a token at the network failed",
            extra={"platform": account.platform, "code": error.code.value},
        )
