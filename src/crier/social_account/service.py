"""Connecting and disconnecting social accounts."""

from __future__ import annotations

import secrets
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.errors import NotFound
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import SocialAccount
from crier.platforms.base import ConnectsDirectly
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import Platforms, PlatformUnavailable
from crier.social_account import repository
from crier.social_account.schemas import AccountStatus, Platform, SocialAccountConnect
from crier.workspace import plans
from crier.workspace import repository as workspace_repository


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
    principal: Principal,
    data: SocialAccountConnect,
) -> SocialAccount:
    """Connect an account; the sandbox needs no credentials. Counts against the plan.

    The platform is asked for tokens before the plan's limit is locked and checked, so no
    lock is held while waiting on the network.
    """
    workspace = await workspace_repository.get(session, principal.workspace_id)
    assert workspace is not None
    plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    handle = data.handle or f"{data.platform.value}-{secrets.token_hex(4)}"
    try:
        adapter = platforms.adapter(data.platform.value)
        if not isinstance(adapter, ConnectsDirectly):
            raise PlatformError(
                ErrorCode.PLATFORM_NOT_CONFIGURED,
                "this platform connects through its consent screen",
            )
        tokens = await adapter.connect(handle)
    except PlatformError as error:
        raise PlatformUnavailable.from_error(data.platform.value, error) from None
    workspace = await workspace_repository.lock(session, principal.workspace_id)
    plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    account = SocialAccount(
        workspace_id=principal.workspace_id,
        platform=data.platform.value,
        external_id=tokens.external_id,
        handle=tokens.handle,
        display_name=data.display_name or tokens.handle,
        status=AccountStatus.ACTIVE.value,
        access_token=vault.seal(tokens.access_token),
        refresh_token=vault.seal(tokens.refresh_token) if tokens.refresh_token else None,
        token_expires_at=tokens.expires_at,
    )
    session.add(account)
    await session.flush()
    await session.refresh(account)
    return account


async def disconnect(session: AsyncSession, clock: Clock, account_id: UUID) -> None:
    """Disconnect an account: its tokens are erased at once; the record stays for history.

    Disconnecting a disconnected account changes nothing.
    """
    account = await get_account(session, account_id)
    if account.status == AccountStatus.DISCONNECTED.value:
        return
    account.status = AccountStatus.DISCONNECTED.value
    account.access_token = None
    account.refresh_token = None
    account.disconnected_at = clock.now()
    await session.flush()
