"""Connecting and disconnecting social accounts."""

from __future__ import annotations

import secrets
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.errors import NotFound
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import SocialAccount
from crier.social_account import repository
from crier.social_account.schemas import AccountStatus, Platform, SocialAccountConnect
from crier.workspace import plans
from crier.workspace import repository as workspace_repository

SANDBOX_TOKEN_LIFETIME = timedelta(days=60)


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
    clock: Clock,
    vault: Vault,
    principal: Principal,
    data: SocialAccountConnect,
) -> SocialAccount:
    """Connect an account; the sandbox needs no credentials. Counts against the plan."""
    workspace = await workspace_repository.lock(session, principal.workspace_id)
    plans.enforce(workspace.plan, "social_accounts", await repository.count_connected(session))
    handle = data.handle or f"sandbox-{secrets.token_hex(4)}"
    account = SocialAccount(
        workspace_id=principal.workspace_id,
        platform=data.platform.value,
        external_id=f"sbx_{secrets.token_hex(8)}",
        handle=handle,
        display_name=data.display_name or handle,
        status=AccountStatus.ACTIVE.value,
        access_token=vault.seal(secrets.token_urlsafe(32)),
        refresh_token=vault.seal(secrets.token_urlsafe(32)),
        token_expires_at=clock.now() + SANDBOX_TOKEN_LIFETIME,
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
